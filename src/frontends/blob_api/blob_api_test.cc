// The Blob API against real, unmodified clients (az-cli from Debian's azure-cli, and the
// @azure/storage-blob SDK under node), and raw HTTP for what clients never send: bad
// signatures, expired SAS, skewed dates, malformed block lists, bad names, truncated bodies.
// Every test checks the bytes the Store holds, not only the statuses.

#include "frontends/blob_api/blob_api.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "crypto/hash.h"
#include "frontends/blob_api/blob_auth.h"
#include "test/support/pattern.h"
#include "test/support/shell.h"
#include "test/support/temp_dir.h"

namespace fieldstack::frontends::blob_api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using fieldstack::testing::Pattern;
using fieldstack::testing::TempDir;

constexpr char kRfc1123[] = "%a, %d %b %Y %H:%M:%S GMT";

std::string AsString(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

std::string RandomSecret() {
  std::mt19937_64 rng{std::random_device{}()};
  std::string raw(32, '\0');
  for (char& c : raw) c = static_cast<char>(rng());
  return crypto::Base64(raw);
}

using testing::RunShell;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

struct Reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Code() const {
    auto it = headers.find("x-ms-error-code");
    return it == headers.end() ? "" : it->second;
  }
};

class BlobApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(&RealClock::Get()); }

  void Start(Clock* clock) {
    server_.reset();
    api_.reset();
    objects_.reset();
    store_.reset();
    clock_ = clock;
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    auto share = store_->GetShare("acct");
    if (!share.ok()) share = store_->CreateShare("acct", store::ShareKind::kLocal);
    ASSERT_TRUE(share.ok()) << share.status().ToString();
    objects_ = std::make_unique<objects::Objects>(*store_);
    std::vector<objects::AccessKey> keys{
        {.user = "tester", .id = "tester", .secret = secret_, .read = {}, .write = {"acct"}},
        {.user = "reader", .id = "reader", .secret = reader_secret_, .read = {"acct"}, .write = {}},
    };
    api_ = std::make_unique<BlobApi>(*objects_, keys, BlobOptions{.clock = clock});
    server_ = std::make_unique<http::HttpServer>(http::ServerOptions{},
                                                 [this](http::Exchange& ex) { api_->Handle(ex); });
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
  }

  void TearDown() override {
    server_.reset();
    api_.reset();
    objects_.reset();
    store_.reset();
  }

  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/acct"; }

  // A signed (Shared Key, with `secret`) or anonymous request.
  Reply Call(const std::string& method, const std::string& target,
             std::vector<std::pair<std::string, std::string>> headers = {}, std::string body = "",
             std::optional<std::string> secret = std::string(), int64_t date_ns = 0) {
    if (secret && secret->empty()) secret = secret_;
    if (date_ns == 0) date_ns = clock_->NowUnixNanos();
    headers.emplace_back("x-ms-date", FormatUtc(date_ns, kRfc1123));
    headers.emplace_back("x-ms-version", "2021-08-06");
    if (!body.empty() || method == "PUT") {
      headers.emplace_back("Content-Length", std::to_string(body.size()));
    }
    if (secret) {
      SignedRequest sreq{method, target, headers};
      std::string to_sign = SharedKeyStringsToSign(sreq, "acct").at(0);
      std::string sig = crypto::Base64(crypto::HmacSha256(crypto::Base64Decode(*secret), to_sign));
      headers.emplace_back("Authorization", "SharedKey acct:" + sig);
    }
    asio::io_context io;
    asio::ip::tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), port_});
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port_));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    bhttp::write(sock, req);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(256 << 20);
    if (method == "HEAD") parser.skip(true);
    beast::error_code ec;
    bhttp::read(sock, buf, parser, ec);
    Reply r;
    if (ec) {
      r.status = -1;
      r.body = ec.message();
      return r;
    }
    r.status = parser.get().result_int();
    r.body = parser.get().body();
    for (const auto& f : parser.get())
      r.headers[Lower(std::string(f.name_string()))] = std::string(f.value());
    return r;
  }

  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  // The bytes the Store holds at `path` in share acct, or "<missing>".
  std::string StoreBytes(const std::string& path) {
    auto a = store_->Resolve("acct", path);
    if (!a.ok()) return "<missing>";
    auto h = store_->OpenFile(a->id, false);
    if (!h.ok()) return "<unreadable>";
    std::string out(a->size, '\0');
    auto n = (*h)->Read(0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    if (!n.ok() || *n != out.size()) return "<short>";
    return out;
  }

  // Names of files under the share's staging "put" folder (leftovers of failed PUTs).
  size_t PutLeftovers() {
    auto d = store_->Resolve("acct", std::string(objects::kStagingDir) + "/put");
    if (!d.ok()) return 0;
    auto page = store_->ReadDir(d->id, "", 100);
    return page.ok() ? page->size() : 999;
  }

  void MakeContainer(const std::string& name) {
    ASSERT_EQ(Call("PUT", "/acct/" + name + "?restype=container").status, 201);
  }

  // Runs az with a private HOME and the connection string of this box.
  std::pair<int, std::string> Az(const std::string& args) {
    std::string conn = "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=" + secret_ +
                       ";BlobEndpoint=" + Endpoint() + ";";
    return RunShell(
        "env -u AZURE_STORAGE_CONNECTION_STRING -u AZURE_STORAGE_ACCOUNT -u "
        "AZURE_STORAGE_KEY -u AZURE_STORAGE_SAS_TOKEN -u AZURE_STORAGE_AUTH_MODE HOME=" +
        dir_.path() +
        " AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=1 "
        "AZURE_CORE_NO_COLOR=1 /usr/bin/az " +
        args + " --connection-string '" + conn + "'");
  }

  TempDir dir_;
  std::string secret_ = RandomSecret();
  std::string reader_secret_ = RandomSecret();
  Clock* clock_ = nullptr;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<objects::Objects> objects_;
  std::unique_ptr<BlobApi> api_;
  std::unique_ptr<http::HttpServer> server_;
  uint16_t port_ = 0;
};

// --- Real clients ---

TEST_F(BlobApiTest, AzCliUploadsListsDownloadsAndDeletes) {
  if (!std::filesystem::exists("/usr/bin/az")) GTEST_SKIP() << "az-cli is not installed";
  auto [rc, out] = Az("storage container create --name azc -o json");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"created\": true"), std::string::npos) << out;

  std::string small = "hello from az\n";
  WriteFile(dir_ / "small.txt", small);
  // Over az's 64 MiB single-put limit, so it goes up as 4 MiB blocks and one Put Block List.
  std::string big = AsString(Pattern(66 * 1024 * 1024 + 777, 5));
  WriteFile(dir_ / "big.bin", big);
  std::tie(rc, out) = Az("storage blob upload --container-name azc --name dir/small.txt --file " +
                         (dir_ / "small.txt") + " -o none");
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Az("storage blob upload --container-name azc --name big.bin --file " +
                         (dir_ / "big.bin") + " -o none");
  ASSERT_EQ(rc, 0) << out;
  // The Store holds the same bytes at <container>/<blob>.
  EXPECT_EQ(StoreBytes("azc/dir/small.txt"), small);
  EXPECT_TRUE(StoreBytes("azc/big.bin") == big);
  auto blocks = Call("GET", "/acct/azc/big.bin?comp=blocklist");
  EXPECT_EQ(blocks.status, 200);
  EXPECT_GE(std::count(blocks.body.begin(), blocks.body.end(), '<') / 6, 16) << blocks.body;

  std::tie(rc, out) = Az("storage blob list --container-name azc --query '[].name' -o tsv");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "big.bin\ndir/small.txt\n");

  std::tie(rc, out) = Az("storage blob download --container-name azc --name big.bin --file " +
                         (dir_ / "big.out") + " -o none");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(ReadFile(dir_ / "big.out") == big);
  std::tie(rc, out) = Az("storage blob download --container-name azc --name dir/small.txt --file " +
                         (dir_ / "small.out") + " -o none");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(ReadFile(dir_ / "small.out"), small);

  std::tie(rc, out) = Az("storage blob delete --container-name azc --name dir/small.txt -o none");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(StoreBytes("azc/dir/small.txt"), "<missing>");
  EXPECT_TRUE(store_->Resolve("acct", "azc").ok()) << "the container outlives its last blob";
  std::tie(rc, out) = Az("storage container delete --name azc -o json");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_FALSE(store_->Resolve("acct", "azc").ok());
  EXPECT_EQ(PutLeftovers(), 0u);
}

TEST_F(BlobApiTest, StorageBlobSdkBlocksListingsRangesMetadataSasAndCopy) {
  std::string sdk = FS_NODE_PATH "/@azure/storage-blob/package.json";
  if (!std::filesystem::exists(sdk)) GTEST_SKIP() << "@azure/storage-blob is not installed";
  std::string out_dir = dir_ / "sdk-out";
  std::filesystem::create_directories(out_dir);
  auto [rc, out] = RunShell("NODE_PATH=" FS_NODE_PATH " BLOB_ENDPOINT=" + Endpoint() +
                            " BLOB_ACCOUNT=acct BLOB_KEY='" + secret_ + "' OUT_DIR=" + out_dir +
                            " node " FS_BLOB_SDK_CLIENT);
  ASSERT_EQ(rc, 0) << out;
  nlohmann::json j = nlohmann::json::parse(
      out.substr(out.rfind("\n{") == std::string::npos ? out.find('{') : out.rfind("\n{") + 1),
      nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["containerExists"], true);
  EXPECT_EQ(j["uncommittedBlocks"], 3);
  EXPECT_EQ(j["committedBlocks"], nlohmann::json({12345, 1 << 20, 700000}));
  EXPECT_EQ(j["uncommittedAfterCommit"], 0);
  EXPECT_EQ(j["uploadBlocks"], 4);
  EXPECT_EQ(j["flat"], nlohmann::json({"dir/a/upload.bin", "dir/b/x.txt"}));
  EXPECT_EQ(j["tree"], nlohmann::json({"P:dir/a/", "P:dir/b/"}));
  EXPECT_EQ(j["paged"],
            nlohmann::json({"dir/a/upload.bin,dir/b/x.txt", "staged/three.bin,top.txt"}));
  EXPECT_EQ(j["containers"], nlohmann::json({"sdk"}));
  EXPECT_EQ(j["contentRange"], "bytes 1000000-2499999/3150049");
  EXPECT_EQ(j["metadata"], nlohmann::json({{"color", "blue"}, {"count", "3"}}));
  EXPECT_EQ(j["contentLength"], 3150049);
  EXPECT_EQ(j["contentType"], "application/x-test");
  EXPECT_EQ(j["sasWrite"], "403 AuthorizationPermissionMismatch");
  EXPECT_EQ(j["containerSasList"], nlohmann::json({"top.txt"}));
  EXPECT_EQ(j["accountSasContainers"], nlohmann::json({"sdk"}));
  EXPECT_EQ(j["copyStatus"], "success");
  EXPECT_EQ(j["missing"], "404 BlobNotFound");
  EXPECT_EQ(j["createAgain"], "409 ContainerAlreadyExists");
  EXPECT_EQ(j["topExists"], false);

  std::string staged =
      AsString(Pattern(12345, 3)) + AsString(Pattern(1 << 20, 1)) + AsString(Pattern(700000, 2));
  std::string big = AsString(Pattern(3 * 1024 * 1024 + 4321, 7));
  EXPECT_TRUE(ReadFile(out_dir + "/staged.bin") == staged);
  EXPECT_TRUE(ReadFile(out_dir + "/whole.bin") == big);
  EXPECT_TRUE(ReadFile(out_dir + "/range.bin") == big.substr(1000000, 1500000));
  EXPECT_TRUE(ReadFile(out_dir + "/sas.bin") == big);
  EXPECT_TRUE(ReadFile(out_dir + "/copy.bin") == big);
  EXPECT_TRUE(StoreBytes("sdk/staged/three.bin") == staged);
  EXPECT_TRUE(StoreBytes("sdk/dir/a/upload.bin") == big);
  EXPECT_TRUE(StoreBytes("sdk/copy/of-upload.bin") == big);
  EXPECT_EQ(StoreBytes("sdk/dir/b/x.txt"), "hello");
  // Metadata set through the SDK is the Objects metadata S3 sees too.
  auto share = objects_->Bucket("acct");
  auto info = objects_->Head(*share, "sdk/dir/a/upload.bin");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->meta.user["color"], "blue");
  EXPECT_EQ(info->meta.content_type, "application/x-test");
}

// --- Consistency with the Store ---

TEST_F(BlobApiTest, BlobsAndStoreFilesAreTheSameBytes) {
  MakeContainer("cons");
  std::string data = AsString(Pattern(300000, 9));
  auto put = Call("PUT", "/acct/cons/a/b.bin", {{"x-ms-blob-type", "BlockBlob"}}, data);
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(put.headers["content-md5"], crypto::Base64(crypto::Digest::Md5(data)));
  EXPECT_TRUE(StoreBytes("cons/a/b.bin") == data);
  auto share = objects_->Bucket("acct");
  auto info = objects_->Head(*share, "cons/a/b.bin");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->attr.size, data.size());
  EXPECT_EQ(put.headers["etag"], "\"" + info->ETag() + "\"");

  // A file written through the Store is a blob.
  auto dir = store_->Resolve("acct", "cons");
  ASSERT_TRUE(dir.ok());
  auto h = store_->Create(dir->id, "from-smb.txt", {});
  ASSERT_TRUE(h.ok());
  std::string smb = "written over SMB";
  ASSERT_TRUE((*h)->Write(0, {reinterpret_cast<const uint8_t*>(smb.data()), smb.size()}).ok());
  ASSERT_TRUE((*h)->Close().ok());
  h->reset();
  auto get = Call("GET", "/acct/cons/from-smb.txt");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, smb);
  EXPECT_EQ(get.headers["x-ms-blob-type"], "BlockBlob");
  auto list = Call("GET", "/acct/cons?restype=container&comp=list");
  EXPECT_NE(list.body.find("<Name>from-smb.txt</Name>"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("<Name>a/b.bin</Name>"), std::string::npos) << list.body;

  // Ranges.
  auto range = Call("GET", "/acct/cons/a/b.bin", {{"x-ms-range", "bytes=100-199"}});
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.headers["content-range"], "bytes 100-199/300000");
  EXPECT_EQ(range.body, data.substr(100, 100));
  auto tail = Call("GET", "/acct/cons/a/b.bin", {{"Range", "bytes=299990-"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, data.substr(299990));
  auto past = Call("GET", "/acct/cons/a/b.bin", {{"x-ms-range", "bytes=300000-300010"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.Code(), "InvalidRange");
  auto head = Call("HEAD", "/acct/cons/a/b.bin");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], "300000");
  EXPECT_EQ(head.headers["accept-ranges"], "bytes");
  EXPECT_FALSE(head.headers["last-modified"].empty());
  EXPECT_FALSE(head.headers["x-ms-request-id"].empty());
  EXPECT_EQ(head.headers["x-ms-version"], "2021-08-06");

  // Deleting the container deletes what is in it.
  EXPECT_EQ(Call("DELETE", "/acct/cons?restype=container").status, 202);
  EXPECT_EQ(StoreBytes("cons/a/b.bin"), "<missing>");
  EXPECT_EQ(Call("GET", "/acct/cons/a/b.bin").Code(), "ContainerNotFound");
}

// --- Bad input ---

TEST_F(BlobApiTest, RefusesBadSignaturesAnonymousAndReadOnlyWrites) {
  MakeContainer("auth");
  std::string other = RandomSecret();
  auto bad = Call("PUT", "/acct/auth/x.bin", {{"x-ms-blob-type", "BlockBlob"}}, "data", other);
  EXPECT_EQ(bad.status, 403);
  EXPECT_EQ(bad.Code(), "AuthenticationFailed");
  EXPECT_NE(bad.body.find("<Code>AuthenticationFailed</Code>"), std::string::npos) << bad.body;
  auto anon = Call("GET", "/acct/auth?restype=container&comp=list", {}, "", std::nullopt);
  EXPECT_EQ(anon.status, 401);
  auto ro =
      Call("PUT", "/acct/auth/x.bin", {{"x-ms-blob-type", "BlockBlob"}}, "data", reader_secret_);
  EXPECT_EQ(ro.status, 403);
  EXPECT_EQ(ro.Code(), "AuthorizationPermissionMismatch");
  EXPECT_EQ(StoreBytes("auth/x.bin"), "<missing>");
  // The read-only key reads.
  ASSERT_EQ(Call("PUT", "/acct/auth/x.bin", {{"x-ms-blob-type", "BlockBlob"}}, "data").status, 201);
  auto read = Call("GET", "/acct/auth/x.bin", {}, "", reader_secret_);
  EXPECT_EQ(read.status, 200);
  EXPECT_EQ(read.body, "data");
  // A tampered request (signed for another blob) fails.
  auto skewed = Call("GET", "/acct/auth/x.bin", {}, "", std::string(),
                     clock_->NowUnixNanos() - int64_t{20} * 60 * 1'000'000'000);
  EXPECT_EQ(skewed.status, 403);
  EXPECT_EQ(skewed.Code(), "AuthenticationFailed");
  EXPECT_EQ(Call("GET", "/acct/nosuch/x.bin").Code(), "ContainerNotFound");
  EXPECT_EQ(Call("GET", "/acct/auth/nosuch.bin").Code(), "BlobNotFound");
  EXPECT_EQ(Call("GET", "/nosuchacct/auth/x.bin").status, 403);  // no key signs for it
}

TEST_F(BlobApiTest, SasExpiryFollowsTheInjectedClock) {
  FakeClock fake;
  Start(&fake);
  MakeContainer("sas");
  ASSERT_EQ(Call("PUT", "/acct/sas/s.txt", {{"x-ms-blob-type", "BlockBlob"}}, "sas bytes").status,
            201);
  auto sas = [&](int64_t expiry_ns, std::string sp) {
    std::string se = FormatUtc(expiry_ns, "%Y-%m-%dT%H:%M:%SZ");
    std::string to_sign =
        sp + "\n\n" + se + "\n/blob/acct/sas/s.txt\n\n\n\n2021-08-06\nb" + std::string(7, '\n');
    std::string sig = crypto::Base64(crypto::HmacSha256(crypto::Base64Decode(secret_), to_sign));
    std::string esc;
    for (char c : sig)
      esc += c == '+' ? "%2B" : c == '/' ? "%2F" : c == '=' ? "%3D" : std::string(1, c);
    return "sv=2021-08-06&sr=b&sp=" + sp + "&se=" + se + "&sig=" + esc;
  };
  std::string q = sas(fake.NowUnixNanos() + int64_t{10} * 60 * 1'000'000'000, "r");
  auto ok = Call("GET", "/acct/sas/s.txt?" + q, {}, "", std::nullopt);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, "sas bytes");
  auto write =
      Call("PUT", "/acct/sas/s.txt?" + q, {{"x-ms-blob-type", "BlockBlob"}}, "new", std::nullopt);
  EXPECT_EQ(write.status, 403);
  EXPECT_EQ(write.Code(), "AuthorizationPermissionMismatch");
  fake.Advance(std::chrono::minutes(11));
  auto expired = Call("GET", "/acct/sas/s.txt?" + q, {}, "", std::nullopt);
  EXPECT_EQ(expired.status, 403);
  EXPECT_EQ(expired.Code(), "AuthenticationFailed");
  EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;
  // The SAS is bound to its blob.
  ASSERT_EQ(Call("PUT", "/acct/sas/t.txt", {{"x-ms-blob-type", "BlockBlob"}}, "other").status, 201);
  std::string fresh = sas(fake.NowUnixNanos() + int64_t{10} * 60 * 1'000'000'000, "r");
  EXPECT_EQ(Call("GET", "/acct/sas/t.txt?" + fresh, {}, "", std::nullopt).status, 403);
  EXPECT_EQ(StoreBytes("sas/s.txt"), "sas bytes");
}

TEST_F(BlobApiTest, BadBlockListsCommitNothing) {
  MakeContainer("blk");
  auto id = [](const std::string& s) { return crypto::Base64(s); };
  auto enc = [](std::string s) {
    std::string o;
    for (char c : s)
      o += c == '+' ? "%2B" : c == '/' ? "%2F" : c == '=' ? "%3D" : std::string(1, c);
    return o;
  };
  ASSERT_EQ(Call("PUT", "/acct/blk/b.bin?comp=block&blockid=" + enc(id("id-1")), {}, "AAAA").status,
            201);
  ASSERT_EQ(Call("PUT", "/acct/blk/b.bin?comp=block&blockid=" + enc(id("id-2")), {}, "BBBB").status,
            201);
  // Block ids: not base64, and of another length than the blob's others.
  auto notb64 = Call("PUT", "/acct/blk/b.bin?comp=block&blockid=%25%25%25", {}, "CCCC");
  EXPECT_EQ(notb64.status, 400);
  EXPECT_EQ(notb64.Code(), "InvalidQueryParameterValue");
  auto longer = Call("PUT", "/acct/blk/b.bin?comp=block&blockid=" + enc(id("id-333")), {}, "DD");
  EXPECT_EQ(longer.status, 400);
  EXPECT_EQ(longer.Code(), "InvalidBlobOrBlock");

  auto malformed = Call("PUT", "/acct/blk/b.bin?comp=blocklist", {}, "<BlockList><Latest>");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.Code(), "InvalidXmlDocument");
  auto unknown = Call("PUT", "/acct/blk/b.bin?comp=blocklist", {},
                      "<?xml version=\"1.0\"?><BlockList><Latest>" + id("id-1") +
                          "</Latest><Uncommitted>" + id("id-9") + "</Uncommitted></BlockList>");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.Code(), "InvalidBlockList");
  auto mixed = Call("PUT", "/acct/blk/b.bin?comp=blocklist", {},
                    "<BlockList><Latest>" + id("id-1") + "</Latest><Latest>" + id("id-22") +
                        "</Latest></BlockList>");
  EXPECT_EQ(mixed.Code(), "InvalidBlockList");
  EXPECT_EQ(StoreBytes("blk/b.bin"), "<missing>");
  EXPECT_EQ(Call("HEAD", "/acct/blk/b.bin").status, 404);

  // The staged blocks survived the failures and commit.
  auto good = Call("PUT", "/acct/blk/b.bin?comp=blocklist", {},
                   "<BlockList><Latest>" + id("id-2") + "</Latest><Uncommitted>" + id("id-1") +
                       "</Uncommitted><Latest>" + id("id-2") + "</Latest></BlockList>");
  ASSERT_EQ(good.status, 201) << good.body;
  EXPECT_EQ(StoreBytes("blk/b.bin"), "BBBBAAAABBBB");
  // Re-commit from the committed list, appending a new block.
  ASSERT_EQ(Call("PUT", "/acct/blk/b.bin?comp=block&blockid=" + enc(id("id-3")), {}, "CC").status,
            201);
  auto append = Call("PUT", "/acct/blk/b.bin?comp=blocklist", {},
                     "<BlockList><Committed>" + id("id-1") + "</Committed><Latest>" + id("id-3") +
                         "</Latest></BlockList>");
  ASSERT_EQ(append.status, 201) << append.body;
  EXPECT_EQ(StoreBytes("blk/b.bin"), "AAAACC");
  auto list = Call("GET", "/acct/blk/b.bin?comp=blocklist&blocklisttype=all");
  EXPECT_EQ(list.body,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><CommittedBlocks><Block><Name>" +
                id("id-1") + "</Name><Size>4</Size></Block><Block><Name>" + id("id-3") +
                "</Name><Size>2</Size></Block></CommittedBlocks><UncommittedBlocks>"
                "</UncommittedBlocks></BlockList>");
}

TEST_F(BlobApiTest, ChecksumMismatchesAndBadNamesStoreNothing) {
  MakeContainer("chk");
  std::string data = "checked body";
  std::string wrong = crypto::Base64(crypto::Digest::Md5("something else"));
  auto md5 = Call("PUT", "/acct/chk/m.bin",
                  {{"x-ms-blob-type", "BlockBlob"}, {"Content-MD5", wrong}}, data);
  EXPECT_EQ(md5.status, 400);
  EXPECT_EQ(md5.Code(), "Md5Mismatch");
  auto crc = Call("PUT", "/acct/chk/m.bin",
                  {{"x-ms-blob-type", "BlockBlob"}, {"x-ms-content-crc64", "AAAAAAAAAAA="}}, data);
  EXPECT_EQ(crc.status, 400);
  EXPECT_EQ(crc.Code(), "Crc64Mismatch");
  EXPECT_EQ(Call("PUT", "/acct/chk/m.bin",
                 {{"x-ms-blob-type", "BlockBlob"}, {"Content-MD5", "===="}}, data)
                .Code(),
            "InvalidHeaderValue");
  EXPECT_EQ(StoreBytes("chk/m.bin"), "<missing>");
  auto wire = crypto::Crc64Nvme::ToWire(
      crypto::Crc64Nvme::Of({reinterpret_cast<const uint8_t*>(data.data()), data.size()}));
  std::string good_crc = crypto::Base64(std::string(wire.begin(), wire.end()));
  auto ok = Call("PUT", "/acct/chk/m.bin",
                 {{"x-ms-blob-type", "BlockBlob"},
                  {"Content-MD5", crypto::Base64(crypto::Digest::Md5(data))},
                  {"x-ms-content-crc64", good_crc}},
                 data);
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(ok.headers["x-ms-content-crc64"], good_crc);
  // A mismatching overwrite leaves the blob as it was.
  EXPECT_EQ(Call("PUT", "/acct/chk/m.bin",
                 {{"x-ms-blob-type", "BlockBlob"}, {"Content-MD5", wrong}}, "replacement")
                .Code(),
            "Md5Mismatch");
  EXPECT_EQ(StoreBytes("chk/m.bin"), data);

  EXPECT_EQ(Call("PUT", "/acct/chk/p.bin", {{"x-ms-blob-type", "PageBlob"}}, "").Code(),
            "InvalidHeaderValue");
  EXPECT_EQ(Call("PUT", "/acct/chk/a/../../x", {{"x-ms-blob-type", "BlockBlob"}}, "x").Code(),
            "InvalidResourceName");
  EXPECT_EQ(Call("PUT", "/acct/chk/a%00b", {{"x-ms-blob-type", "BlockBlob"}}, "x").Code(),
            "InvalidResourceName");
  EXPECT_EQ(
      Call("PUT", "/acct/chk/" + std::string(1030, 'n'), {{"x-ms-blob-type", "BlockBlob"}}, "x")
          .Code(),
      "InvalidResourceName");
  EXPECT_EQ(Call("PUT", "/acct/chk/.fieldstack-staging/x?comp=block&blockid=QUFB", {}, "x").status,
            201)
      << "a blob named like the staging folder lives inside its container";
  EXPECT_EQ(Call("PUT", "/acct/.fieldstack-staging?restype=container").Code(),
            "InvalidResourceName");
  EXPECT_EQ(Call("PUT", "/acct/Bad_Name?restype=container").Code(), "InvalidResourceName");
  auto share = objects_->Bucket("acct");
  auto all = objects_->List(*share, "", "", "", 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->entries.size(), 1u);
  EXPECT_EQ(all->entries[0].key, "chk/m.bin");
}

TEST_F(BlobApiTest, TruncatedBodyLeavesNothingVisible) {
  MakeContainer("cut");
  // Sends a signed PUT promising 1 MB, sends 300 KB and closes its side.
  auto cut_short = [&](const std::string& target, bool put_blob) {
    asio::io_context io;
    asio::ip::tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), port_});
    std::vector<std::pair<std::string, std::string>> headers{
        {"x-ms-date", FormatUtc(clock_->NowUnixNanos(), kRfc1123)},
        {"x-ms-version", "2021-08-06"},
        {"Content-Length", "1000000"}};
    if (put_blob) headers.emplace_back("x-ms-blob-type", "BlockBlob");
    SignedRequest sreq{"PUT", target, headers};
    std::string sig = crypto::Base64(crypto::HmacSha256(
        crypto::Base64Decode(secret_), SharedKeyStringsToSign(sreq, "acct").at(0)));
    std::string head = "PUT " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
    head += "Authorization: SharedKey acct:" + sig + "\r\n\r\n";
    asio::write(sock, asio::buffer(head + std::string(300000, 'x')));
    sock.shutdown(asio::ip::tcp::socket::shutdown_send);
    // The server answers (or drops the connection) once it sees the body end early.
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    beast::error_code ec;
    bhttp::read(sock, buf, res, ec);
    return ec ? 0 : res.result_int();
  };
  int status = cut_short("/acct/cut/t.bin", true);
  EXPECT_TRUE(status == 0 || status == 400) << status;
  EXPECT_EQ(StoreBytes("cut/t.bin"), "<missing>");
  EXPECT_EQ(Call("HEAD", "/acct/cut/t.bin").status, 404);
  status = cut_short("/acct/cut/t.bin?comp=block&blockid=QUFB", false);
  EXPECT_TRUE(status == 0 || status == 400) << status;
  // No blob and no uncommitted block.
  EXPECT_EQ(Call("GET", "/acct/cut/t.bin?comp=blocklist&blocklisttype=all").Code(), "BlobNotFound");
  EXPECT_EQ(PutLeftovers(), 0u);
  auto share = objects_->Bucket("acct");
  auto all = objects_->List(*share, "", "", "", 100);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->entries.empty());
}

}  // namespace
}  // namespace fieldstack::frontends::blob_api
