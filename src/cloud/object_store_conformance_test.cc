// The conformance suite every ObjectStore adapter passes (rclone's fstests). Adapters that need
// a server (Azure on Azurite, S3) join the parameter list with a fixture that starts it.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "cloud/azure_blob/azure_blob_store.h"
#include "cloud/localfs/localfs_store.h"
#include "cloud/memory/memory_store.h"
#include "cloud/object_store.h"
#include "cloud/s3/s3_store.h"
#include "crypto/hash.h"
#include "test/support/azurite.h"
#include "test/support/rgw.h"
#include "test/support/temp_dir.h"

namespace fieldstack::cloud {
namespace {

std::span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Adapter {
  std::string name;
  std::function<std::unique_ptr<ObjectStore>(const std::string& dir)> make;
  // False for Azure: an upload is not a server object, so abort cannot drop its parts and a
  // part can still be put after a commit.
  bool server_tracks_uploads = true;
};

FakeClock g_clock;

// A fresh container on the shared Azurite for each test.
std::unique_ptr<ObjectStore> MakeAzure(const std::string&) {
  auto& azurite = testing::Azurite::Shared();
  EXPECT_FALSE(azurite.endpoint().empty()) << azurite.error();
  if (azurite.endpoint().empty()) return nullptr;
  static std::atomic<int> n{0};
  azure_blob::AzureConfig c{azurite.endpoint(), testing::Azurite::kAccount, testing::Azurite::kKey,
                            "", "conformance-" + std::to_string(++n)};
  auto s = azure_blob::AzureBlobStore::Open(c, RealClock::Get());
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  Status created = (*s)->CreateContainer();
  EXPECT_TRUE(created.ok()) << created.ToString();
  return std::move(*s);
}

// A fresh container on the shared Azurite, reached with a container SAS that the Azure SDK for
// Python (Debian's python3-azure, an independent implementation) signs.
std::string ContainerSas(const std::string& container) {
  std::string cmd =
      "/usr/bin/python3 -c \"import datetime, sys\n"
      "from azure.storage.blob import generate_container_sas, ContainerSasPermissions as P\n"
      "print(generate_container_sas(sys.argv[1], sys.argv[2], account_key=sys.argv[3], "
      "permission=P(read=True, add=True, create=True, write=True, delete=True, list=True), "
      "expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=2)))\" " +
      std::string(testing::Azurite::kAccount) + " " + container + " " + testing::Azurite::kKey;
  FILE* p = popen(cmd.c_str(), "r");
  std::string sas;
  char buf[1024];
  while (p && fgets(buf, sizeof buf, p)) sas += buf;
  if (p) pclose(p);
  while (!sas.empty() && (sas.back() == '\n' || sas.back() == '\r')) sas.pop_back();
  EXPECT_NE(sas.find("sig="), std::string::npos) << "python3-azure made no SAS: " << sas;
  return sas;
}

std::unique_ptr<ObjectStore> MakeAzureSas(const std::string&) {
  auto& azurite = testing::Azurite::Shared();
  if (azurite.endpoint().empty()) return nullptr;
  static std::atomic<int> n{0};
  std::string container = "sas-" + std::to_string(++n);
  auto admin = azure_blob::AzureBlobStore::Open(
      {azurite.endpoint(), testing::Azurite::kAccount, testing::Azurite::kKey, "", container},
      RealClock::Get());
  EXPECT_TRUE(admin.ok() && (*admin)->CreateContainer().ok());
  auto s = azure_blob::AzureBlobStore::Open(
      {azurite.endpoint(), "", "", ContainerSas(container), container}, RealClock::Get());
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(AzureSasTest, ATamperedOrForeignSasIsRefused) {
  auto& azurite = testing::Azurite::Shared();
  ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
  for (std::string c : {"sas-a", "sas-b"}) {
    auto admin = azure_blob::AzureBlobStore::Open(
        {azurite.endpoint(), testing::Azurite::kAccount, testing::Azurite::kKey, "", c},
        RealClock::Get());
    ASSERT_TRUE((*admin)->CreateContainer().ok());
  }
  std::string sas = ContainerSas("sas-a");
  size_t sig = sas.find("sig=") + 4;
  std::string tampered = sas;
  tampered[sig] = tampered[sig] == 'A' ? 'B' : 'A';
  for (auto [container, token] : {std::pair{"sas-a", tampered}, {"sas-b", sas}}) {
    auto s = azure_blob::AzureBlobStore::Open({azurite.endpoint(), "", "", token, container},
                                              RealClock::Get());
    ASSERT_TRUE(s.ok());
    EXPECT_EQ((*s)->Put("k", B("x"), {}).status().code(), StatusCode::kUnauthenticated)
        << container;
  }
}

// A fresh bucket on the shared radosgw for each test, path-style or virtual-hosted
// (bucket.localhost: curl resolves *.localhost to the loopback address).
std::unique_ptr<ObjectStore> MakeS3(bool virtual_hosted) {
  auto& rgw = testing::Rgw::Shared();
  EXPECT_FALSE(rgw.endpoint().empty()) << rgw.error();
  if (rgw.endpoint().empty()) return nullptr;
  static std::atomic<int> n{0};
  s3::S3Config c;
  c.endpoint = rgw.endpoint();
  if (virtual_hosted) c.endpoint.replace(c.endpoint.find("127.0.0.1"), 9, "localhost");
  c.bucket = "conformance-" + std::to_string(++n);
  c.credentials = {rgw.access_key(), rgw.secret_key(), ""};
  c.virtual_hosted = virtual_hosted;
  auto s = s3::S3Store::Open(c, RealClock::Get());
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  Status created = (*s)->CreateBucket();
  EXPECT_TRUE(created.ok()) << created.ToString();
  return std::move(*s);
}

class ConformanceTest : public ::testing::TestWithParam<Adapter> {
 protected:
  void SetUp() override {
    store_ = GetParam().make(dir_.path() + "/store");
    ASSERT_NE(store_, nullptr);
  }
  testing::TempDir dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(ConformanceTest, PutHeadGetRoundTripWithMetadata) {
  PutOptions o;
  o.meta = {{"mtime", "123"}, {"mode", "0644"}};
  auto put = store_->Put("dir/sub/a.txt", B("hello world"), o);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_FALSE(put->etag.empty());
  auto head = store_->Head("dir/sub/a.txt");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, 11u);
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_EQ(head->meta, o.meta);
  EXPECT_EQ(head->content_md5, crypto::Digest::Md5("hello world"));
  EXPECT_EQ(*store_->Get("dir/sub/a.txt", 0, 100), "hello world");
  EXPECT_EQ(*store_->Get("dir/sub/a.txt", 6, 3), "wor");
  EXPECT_EQ(*store_->Get("dir/sub/a.txt", 20, 3), "");
  auto again = store_->Put("dir/sub/a.txt", B("changed"), {});
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->etag, put->etag);
  EXPECT_TRUE(store_->Head("dir/sub/a.txt")->meta.empty());
}

TEST_P(ConformanceTest, AnObjectThatLooksLikeAnErrorDocumentIsJustData) {
  std::string doc = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>";
  ASSERT_TRUE(store_->Put("error.xml", B(doc), {}).ok());
  auto got = store_->Get("error.xml", 0, 1000);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, doc);
}

TEST_P(ConformanceTest, EmptyObjectsAndMissingKeys) {
  ASSERT_TRUE(store_->Put("empty", B(""), {}).ok());
  EXPECT_EQ(store_->Head("empty")->size, 0u);
  EXPECT_EQ(*store_->Get("empty", 0, 10), "");
  EXPECT_EQ(store_->Head("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("nope", 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("nope", {}).code(), StatusCode::kNotFound);
}

TEST_P(ConformanceTest, BadChecksumIsCorruptionAndStoresNothing) {
  PutOptions o;
  o.content_md5 = crypto::Digest::Md5("other bytes");
  auto bad = store_->Put("k", B("these bytes"), o);
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption) << bad.status().ToString();
  EXPECT_EQ(store_->Head("k").status().code(), StatusCode::kNotFound);
  o.content_md5 = crypto::Digest::Md5("these bytes");
  EXPECT_TRUE(store_->Put("k", B("these bytes"), o).ok());
}

TEST_P(ConformanceTest, PreconditionsNeverOverwriteSilently) {
  PutOptions create;
  create.precondition.if_none_match_any = true;
  auto first = store_->Put("c", B("v1"), create);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(store_->Put("c", B("v2"), create).status().code(), StatusCode::kFailedPrecondition);
  PutOptions update;
  update.precondition.if_match = first->etag;
  auto second = store_->Put("c", B("v2"), update);
  ASSERT_TRUE(second.ok());
  // The first etag is stale now.
  EXPECT_EQ(store_->Put("c", B("v3"), update).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->Get("c", 0, 10), "v2");
  Precondition stale;
  stale.if_match = first->etag;
  EXPECT_EQ(store_->Delete("c", stale).code(), StatusCode::kFailedPrecondition);
  Precondition current;
  current.if_match = second->etag;
  EXPECT_TRUE(store_->Delete("c", current).ok());
  EXPECT_EQ(store_->Head("c").status().code(), StatusCode::kNotFound);
}

TEST_P(ConformanceTest, MultipartIsInvisibleUntilCommitAndResumable) {
  auto up = store_->BeginUpload("big/file.bin",
                                {.meta = {{"mode", "0600"}}, .size = 200777, .part_size = 100000});
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  std::string p1(100000, 'a'), p2(100000, 'b'), p3(777, 'c');
  ASSERT_TRUE(store_->PutPart(*up, 3, B(p3), std::nullopt).ok());
  ASSERT_TRUE(store_->PutPart(*up, 1, B(std::string(5, 'x')), std::nullopt).ok());
  ASSERT_TRUE(store_->PutPart(*up, 1, B(p1), crypto::Digest::Md5(p1)).ok());  // replaces
  EXPECT_EQ(store_->PutPart(*up, 2, B(p2), crypto::Digest::Md5("no")).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(store_->Head("big/file.bin").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->List("", "", 100)->objects.empty());
  // A restarted uploader asks what is there and sends only the rest.
  auto parts = store_->ListParts(*up);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].number, 1u);
  EXPECT_EQ((*parts)[0].size, p1.size());
  EXPECT_EQ((*parts)[1].number, 3u);
  ASSERT_TRUE(store_->PutPart(*up, 2, B(p2), crypto::Digest::Md5(p2)).ok());
  EXPECT_EQ(store_->CommitUpload(*up, {2, 1}, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CommitUpload(*up, {1, 4}, {}).status().code(), StatusCode::kInvalidArgument);
  auto info = store_->CommitUpload(*up, {1, 2, 3}, {.meta = {{"mode", "0600"}}});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, p1.size() + p2.size() + p3.size());
  EXPECT_EQ(*store_->Get("big/file.bin", 0, 1 << 20), p1 + p2 + p3);
  EXPECT_EQ(store_->Head("big/file.bin")->meta.at("mode"), "0600");
  if (GetParam().server_tracks_uploads) {
    EXPECT_EQ(store_->PutPart(*up, 1, B(p1), std::nullopt).code(), StatusCode::kNotFound);
  }
}

TEST_P(ConformanceTest, CommitReplacesAnObjectWhoseEtagMatches) {
  std::string a(70000, 'a'), b(70000, 'b'), c(100, 'c');
  auto first = store_->BeginUpload("obj", {.size = 140100, .part_size = 70000});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->PutPart(*first, 1, B(a), std::nullopt).ok());
  ASSERT_TRUE(store_->PutPart(*first, 2, B(b), std::nullopt).ok());
  ASSERT_TRUE(store_->PutPart(*first, 3, B(c), std::nullopt).ok());
  auto v1 = store_->CommitUpload(*first, {1, 2, 3}, {});
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  auto second = store_->BeginUpload("obj", {.size = 70100, .part_size = 70000});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(store_->PutPart(*second, 1, B(b), std::nullopt).ok());
  ASSERT_TRUE(store_->PutPart(*second, 2, B(c), std::nullopt).ok());
  CommitOptions o;
  o.precondition.if_match = v1->etag;
  auto v2 = store_->CommitUpload(*second, {1, 2}, o);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_NE(v2->etag, v1->etag);
  EXPECT_EQ(v2->size, 70100u);
  EXPECT_EQ(*store_->Get("obj", 0, 1 << 20), b + c);
}

TEST_P(ConformanceTest, AbortDropsTheUploadAndCommitRespectsPreconditions) {
  ASSERT_TRUE(store_->Put("x", B("old"), {}).ok());
  auto up = store_->BeginUpload("x", {.size = 3, .part_size = 3});
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(store_->PutPart(*up, 1, B("new"), std::nullopt).ok());
  Precondition none;
  none.if_none_match_any = true;
  EXPECT_EQ(store_->CommitUpload(*up, {1}, {.precondition = none}).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->Get("x", 0, 10), "old");
  ASSERT_TRUE(store_->AbortUpload(*up).ok());
  ASSERT_TRUE(store_->AbortUpload(*up).ok());  // idempotent
  if (GetParam().server_tracks_uploads) {
    EXPECT_EQ(store_->ListParts(*up).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(store_->CommitUpload(*up, {1}, {}).status().code(), StatusCode::kNotFound);
  }
  EXPECT_EQ(store_->PutPart(*up, 0, B("x"), std::nullopt).code(), StatusCode::kInvalidArgument);
}

TEST_P(ConformanceTest, ListIsSortedPrefixedAndPaged) {
  for (std::string k : {"a-c", "a/b", "a/c/d", "b", "ab", "a/c/e", "z/y"}) {
    ASSERT_TRUE(store_->Put(k, B(k), {}).ok()) << k;
  }
  std::vector<std::string> all;
  std::string token;
  for (;;) {
    auto page = store_->List("", token, 2);
    ASSERT_TRUE(page.ok());
    for (auto& o : page->objects) all.push_back(o.key);
    if (page->next_token.empty()) break;
    token = page->next_token;
  }
  EXPECT_EQ(all, (std::vector<std::string>{"a-c", "a/b", "a/c/d", "a/c/e", "ab", "b", "z/y"}));
  auto prefixed = store_->List("a/c", "", 10);
  ASSERT_TRUE(prefixed.ok());
  ASSERT_EQ(prefixed->objects.size(), 2u);
  EXPECT_EQ(prefixed->objects[0].key, "a/c/d");
  EXPECT_EQ(prefixed->objects[0].size, 5u);
  EXPECT_EQ(prefixed->objects[0].etag, store_->Head("a/c/d")->etag);  // one form of etag
  auto first = store_->List("a/", "", 1);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_token.empty());
  EXPECT_EQ(store_->List("a/", first->next_token, 10)->objects.size(), 2u);
}

TEST_P(ConformanceTest, RefusesBadKeys) {
  for (std::string k : {std::string(""), std::string("/abs"), std::string("a//b"),
                        std::string("a/../b"), std::string("./a"), std::string(1025, 'k')}) {
    EXPECT_EQ(store_->Put(k, B("x"), {}).status().code(), StatusCode::kInvalidArgument) << k;
  }
}

TEST_P(ConformanceTest, ConcurrentPutsToDifferentKeys) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string k = "t" + std::to_string(t) + "/o" + std::to_string(i);
        EXPECT_TRUE(store_->Put(k, B(k), {}).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store_->List("", "", 1000)->objects.size(), 160u);
  EXPECT_EQ(*store_->Get("t3/o7", 0, 100), "t3/o7");
}

INSTANTIATE_TEST_SUITE_P(
    Adapters, ConformanceTest,
    ::testing::Values(Adapter{"memory",
                              [](const std::string&) -> std::unique_ptr<ObjectStore> {
                                return std::make_unique<memory::MemoryStore>(g_clock);
                              }},
                      Adapter{"localfs",
                              [](const std::string& dir) -> std::unique_ptr<ObjectStore> {
                                auto s = localfs::LocalFsStore::Open(dir);
                                return s.ok() ? std::move(*s) : nullptr;
                              }},
                      Adapter{"azure_blob", &MakeAzure, /*server_tracks_uploads=*/false},
                      Adapter{"azure_blob_sas", &MakeAzureSas, /*server_tracks_uploads=*/false},
                      Adapter{"s3_path_style", [](const std::string&) { return MakeS3(false); }},
                      Adapter{"s3_virtual_hosted",
                              [](const std::string&) { return MakeS3(true); }}),
    [](const auto& info) { return info.param.name; });

// Page blobs (disk images) on Azurite.
class AzurePageBlobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& azurite = testing::Azurite::Shared();
    ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
    static std::atomic<int> n{0};
    azure_blob::AzureConfig c{azurite.endpoint(),
                              testing::Azurite::kAccount,
                              testing::Azurite::kKey,
                              "",
                              "pages-" + std::to_string(++n),
                              {".vhd", ".vhdx"}};
    auto s = azure_blob::AzureBlobStore::Open(c, RealClock::Get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->CreateContainer().ok());
  }
  std::unique_ptr<azure_blob::AzureBlobStore> store_;
};

std::string Image(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    // 4 KiB of data, then 4 KiB of zeros (sparse regions are skipped on the wire).
    if ((i / 4096) % 2 == 0) s[i] = static_cast<char>(seed + i * 7 % 251);
  }
  return s;
}

TEST_F(AzurePageBlobTest, SmallImageGoesUpWholeWithItsMd5AndNothingStagedRemains) {
  std::string img = Image(3 * 4096 + 512, 'a');
  PutOptions o;
  o.content_md5 = crypto::Digest::Md5(img);
  o.meta = {{"mode", "420"}};
  o.precondition.if_none_match_any = true;
  auto put = store_->Put("images/disk.vhd", B(img), o);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto head = store_->Head("images/disk.vhd");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, img.size());
  EXPECT_EQ(head->content_md5, *o.content_md5);
  EXPECT_EQ(head->meta.at("mode"), "420");
  EXPECT_EQ(*store_->Get("images/disk.vhd", 0, 1 << 20), img);
  auto list = store_->List("", "", 100);
  ASSERT_EQ(list->objects.size(), 1u);  // no staging blob left, none listed
  // The same key again under If-None-Match: refused, the first image untouched.
  o.content_md5 = crypto::Digest::Md5(Image(512, 'z'));
  EXPECT_EQ(store_->Put("images/disk.vhd", B(Image(512, 'z')), o).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->Get("images/disk.vhd", 0, 1 << 20), img);
}

TEST_F(AzurePageBlobTest, MisalignedImagesAreRefusedWithAClearError) {
  auto bad = store_->Put("odd.VHDX", B(std::string(1000, 'x')), {});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("not a multiple of 512"), std::string::npos)
      << bad.status().ToString();
  EXPECT_EQ(store_->BeginUpload("odd.vhd", {.size = 4096, .part_size = 1000}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Head("odd.VHDX").status().code(), StatusCode::kNotFound);
  // Other keys stay block blobs of any size.
  EXPECT_TRUE(store_->Put("notes.txt", B(std::string(1000, 'x')), {}).ok());
}

TEST_F(AzurePageBlobTest, LargeImageResumesByPartAndAppearsOnlyAtCommit) {
  const size_t part = 64 * 1024;
  std::string img = Image(2 * part + 32 * 1024, 'q');
  std::string zeros(part, '\0');
  img.replace(part, part, zeros);  // part 2 is all zeros
  auto up = store_->BeginUpload("vm/os.vhd", {.size = img.size(), .part_size = part});
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  auto piece = [&](uint32_t n) { return img.substr((n - 1) * part, part); };
  ASSERT_TRUE(store_->PutPart(*up, 1, B(piece(1)), crypto::Digest::Md5(piece(1))).ok());
  ASSERT_TRUE(store_->PutPart(*up, 3, B(piece(3)), crypto::Digest::Md5(piece(3))).ok());
  EXPECT_EQ(store_->PutPart(*up, 3, B(piece(3)), crypto::Digest::Md5("no")).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(store_->Head("vm/os.vhd").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->List("", "", 100)->objects.empty());
  auto parts = store_->ListParts(*up);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  std::vector<uint32_t> have;
  for (const auto& p : *parts) have.push_back(p.number);
  EXPECT_EQ(have, (std::vector<uint32_t>{1, 3}));  // zero part 2 was never sent
  ASSERT_TRUE(store_->PutPart(*up, 2, B(piece(2)), crypto::Digest::Md5(piece(2))).ok());
  CommitOptions c;
  c.content_md5 = crypto::Digest::Md5(img);
  c.precondition.if_none_match_any = true;
  auto info = store_->CommitUpload(*up, {1, 2, 3}, c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, img.size());
  EXPECT_EQ(info->content_md5, *c.content_md5);
  EXPECT_EQ(*store_->Get("vm/os.vhd", 0, 1 << 20), img);
  EXPECT_EQ(store_->List("", "", 100)->objects.size(), 1u);
}

TEST(LocalFsTest, ReservedAndConflictingKeys) {
  testing::TempDir dir;
  auto s = localfs::LocalFsStore::Open(dir.path());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Put(".fieldstack-tmp/x", B("x"), {}).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE((*s)->Put("a/b", B("x"), {}).ok());
  EXPECT_EQ((*s)->Put("a", B("x"), {}).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*s)->Put("f", B("x"), {}).ok());
  EXPECT_EQ((*s)->Put("f/g", B("x"), {}).status().code(), StatusCode::kFailedPrecondition);
  // Deleting the last key below a directory removes the directory.
  ASSERT_TRUE((*s)->Delete("a/b", {}).ok());
  EXPECT_TRUE((*s)->Put("a", B("now a file"), {}).ok());
}

}  // namespace
}  // namespace fieldstack::cloud
