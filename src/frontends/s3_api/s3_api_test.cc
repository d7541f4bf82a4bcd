// The S3 API against real, unmodified clients (aws-cli, boto3, s3cmd, rclone, the AWS SDK for
// JavaScript v3) and against bad input sent by hand. Every test compares the bytes the Store
// holds with what was sent.

#include "frontends/s3_api/s3_api.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "cloud/http_client.h"
#include "cloud/s3/sigv4.h"
#include "crypto/certificate.h"
#include "crypto/hash.h"
#include "crypto/key_store.h"
#include "frontends/blob_api/blob_api.h"
#include "frontends/fuse/fuse_fs.h"
#include "frontends/s3_api/s3_auth.h"
#include "frontends/s3_api/s3_xml.h"
#include "platform/file.h"
#include "store/store.h"
#include "test/support/temp_dir.h"

namespace fieldstack::frontends::s3_api {
namespace {

using testing::TempDir;

const std::string kSecret = "c2VjcmV0LWtleS1vZi10aGUtdGVzdGVyLWZvci1zMw==";
const std::string kReaderSecret = "cmVhZGVyLXNlY3JldC1mb3ItdGhlLXMzLWFwaS10ZXN0";

// Runs a shell command; returns its exit status and output (stdout and stderr).
std::pair<int, std::string> Sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen(("(" + cmd + ") 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

std::string ReadFile(const std::string& path) {
  auto s = platform::ReadFileToString(path);
  return s.ok() ? *s : "<unreadable " + path + ">";
}

class S3ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions so;
    so.data_dir = dir_ / "data";
    auto s = store::Store::Open(so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->CreateShare("bucket1", store::ShareKind::kLocal).ok());
    ASSERT_TRUE(store_->CreateShare("other", store::ShareKind::kLocal).ok());
    objects_ = std::make_unique<objects::Objects>(*store_);
    std::vector<objects::AccessKey> keys = {
        {"tester", "AKIATESTER", kSecret, {}, {"*"}},
        {"reader", "AKIAREADER", kReaderSecret, {"bucket1"}, {}},
    };
    S3Options s3o;
    s3o.stream_complete_bytes = 1 << 20;  // the clients' multipart uploads take that path too
    api_ = std::make_unique<S3Api>(*objects_, keys, s3o);
    http::ServerOptions ho;
    server_ =
        std::make_unique<http::HttpServer>(ho, [this](http::Exchange& ex) { api_->Handle(ex); });
    ASSERT_TRUE(server_->Start().ok());
    endpoint_ = "http://127.0.0.1:" + std::to_string(server_->port());
    ASSERT_TRUE(platform::MakeDirs(dir_ / "home").ok());
    env_ = "env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_ENDPOINT_URL HOME=" + (dir_ / "home") +
           " AWS_ACCESS_KEY_ID=AKIATESTER AWS_SECRET_ACCESS_KEY=" + kSecret +
           " AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null"
           " AWS_SHARED_CREDENTIALS_FILE=/dev/null ";
  }
  void TearDown() override {
    server_.reset();
    api_.reset();
    objects_.reset();
    store_.reset();
  }

  // The bytes the Store holds at bucket/key ("<missing>" when there is no such file).
  std::string Stored(const std::string& bucket, const std::string& key) {
    auto a = store_->Resolve(bucket, key);
    if (!a.ok()) return "<missing>";
    auto h = store_->OpenFile(a->id, false);
    if (!h.ok()) return "<unopenable>";
    std::string out(a->size, '\0');
    auto n = (*h)->Read(0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    if (!n.ok()) return "<unreadable>";
    out.resize(*n);
    return out;
  }

  // A request signed with `secret` (SigV4 headers), `skew_s` seconds off the clock.
  cloud::HttpResponse Send(const std::string& method, const std::string& path,
                           const std::string& body = "",
                           std::vector<std::pair<std::string, std::string>> headers = {},
                           const std::string& key = "AKIATESTER",
                           const std::string& secret = kSecret, int64_t skew_s = 0) {
    cloud::HttpRequest req{method,
                           endpoint_ + path,
                           std::move(headers),
                           {reinterpret_cast<const uint8_t*>(body.data()), body.size()}};
    int64_t now = RealClock::Get().NowUnixNanos() + skew_s * 1'000'000'000;
    cloud::s3::SignRequest(req, {key, secret, ""}, "us-east-1", now,
                           crypto::ToHex(crypto::Digest::Sha256(body)));
    auto r = client_.Send(req);
    return r.ok() ? *r : cloud::HttpResponse{0, {}, r.status().ToString()};
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<objects::Objects> objects_;
  std::unique_ptr<S3Api> api_;
  std::unique_ptr<http::HttpServer> server_;
  std::string endpoint_;
  std::string env_;
  cloud::HttpClient client_;
};

TEST_F(S3ApiTest, AwsCliCopiesSyncsMultipartAndPresigns) {
  std::string small = "hello from aws-cli\n";
  std::string large = RandomBytes(20 << 20, 1);  // multipart: over the 8 MiB threshold
  WriteFile(dir_ / "small.txt", small);
  WriteFile(dir_ / "large.bin", large);
  ASSERT_TRUE(platform::MakeDirs(dir_ / "tree/sub").ok());
  WriteFile(dir_ / "tree/a.txt", "a");
  WriteFile(dir_ / "tree/sub/b.txt", RandomBytes(100000, 2));
  std::string aws = env_ + "/usr/bin/aws --endpoint-url " + endpoint_ + " ";
  auto r = Sh(aws + "s3 cp " + (dir_ / "small.txt") + " s3://bucket1/docs/small.txt");
  ASSERT_EQ(r.first, 0) << r.second;
  r = Sh(aws + "s3 cp " + (dir_ / "large.bin") + " s3://bucket1/large.bin");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(Stored("bucket1", "docs/small.txt"), small);
  EXPECT_TRUE(Stored("bucket1", "large.bin") == large);
  r = Sh(aws + "s3 sync " + (dir_ / "tree") + " s3://bucket1/tree");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(Stored("bucket1", "tree/a.txt"), "a");
  EXPECT_TRUE(Stored("bucket1", "tree/sub/b.txt") == ReadFile(dir_ / "tree/sub/b.txt"));
  // A second sync finds nothing to do (sizes and times match).
  r = Sh(aws + "s3 sync " + (dir_ / "tree") + " s3://bucket1/tree");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(r.second.find("upload:"), std::string::npos) << r.second;
  r = Sh(aws + "s3 ls --recursive s3://bucket1/");
  ASSERT_EQ(r.first, 0) << r.second;
  for (const char* k : {"docs/small.txt", "large.bin", "tree/a.txt", "tree/sub/b.txt"}) {
    EXPECT_NE(r.second.find(k), std::string::npos) << r.second;
  }
  EXPECT_EQ(r.second.find(".fieldstack-staging"), std::string::npos) << r.second;
  r = Sh(aws + "s3 cp s3://bucket1/large.bin " + (dir_ / "large.back"));
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(ReadFile(dir_ / "large.back") == large);
  // Presigned GET, fetched by curl with no credentials.
  r = Sh(aws + "s3 presign s3://bucket1/docs/small.txt --expires-in 300");
  ASSERT_EQ(r.first, 0) << r.second;
  std::string url = r.second.substr(0, r.second.find('\n'));
  r = Sh("curl -sS -f '" + url + "'");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(r.second, small);
  // Tampered: another key name under the same signature.
  std::string bad = url;
  bad.replace(bad.find("small.txt"), 9, "small.txx");
  r = Sh("curl -sS -o /dev/null -w '%{http_code}' '" + bad + "'");
  EXPECT_EQ(r.second, "403");
  r = Sh(aws + "s3 rm --recursive s3://bucket1/tree");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(Stored("bucket1", "tree/a.txt"), "<missing>");
  EXPECT_FALSE(store_->Resolve("bucket1", "tree").ok()) << "empty folders go with their objects";
}

TEST_F(S3ApiTest, Boto3ObjectsListingsCopiesMultipartAndErrors) {
  std::string script = R"PY(
import sys, hashlib, boto3, botocore
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="AKIATESTER",
                  aws_secret_access_key=sys.argv[2], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
data = bytes(range(256)) * 4096  # 1 MiB
r = s3.put_object(Bucket="bucket1", Key="b/one.bin", Body=data, ContentType="application/x-test",
                  Metadata={"color": "blue"})
assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest(), r["ETag"]
h = s3.head_object(Bucket="bucket1", Key="b/one.bin")
assert h["ContentLength"] == len(data) and h["Metadata"] == {"color": "blue"}, h
assert h["ContentType"] == "application/x-test", h
g = s3.get_object(Bucket="bucket1", Key="b/one.bin", Range="bytes=100-199")
assert g["Body"].read() == data[100:200] and g["ContentRange"] == "bytes 100-199/%d" % len(data)
try:
    s3.get_object(Bucket="bucket1", Key="b/one.bin", IfNoneMatch=r["ETag"])
    raise SystemExit("304 expected")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "304", e.response
for i in range(5):
    s3.put_object(Bucket="bucket1", Key="list/k%d" % i, Body=b"x" * i)
s3.put_object(Bucket="bucket1", Key="list/sub/deep", Body=b"deep")
keys, token = [], None
while True:
    kw = {"Bucket": "bucket1", "Prefix": "list/", "MaxKeys": 2}
    if token: kw["ContinuationToken"] = token
    page = s3.list_objects_v2(**kw)
    keys += [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]: break
    token = page["NextContinuationToken"]
assert keys == ["list/k0", "list/k1", "list/k2", "list/k3", "list/k4", "list/sub/deep"], keys
d = s3.list_objects_v2(Bucket="bucket1", Prefix="list/", Delimiter="/")
assert [p["Prefix"] for p in d["CommonPrefixes"]] == ["list/sub/"], d
assert len(d["Contents"]) == 5
v = s3.list_object_versions(Bucket="bucket1", Prefix="list/")
assert all(x["VersionId"] == "null" for x in v["Versions"]) and len(v["Versions"]) == 6, v
s3.copy_object(Bucket="other", Key="copied.bin", CopySource={"Bucket": "bucket1", "Key": "b/one.bin"})
assert s3.get_object(Bucket="other", Key="copied.bin")["Body"].read() == data
s3.copy_object(Bucket="bucket1", Key="b/one.bin", CopySource="bucket1/b/one.bin",
               Metadata={"color": "red"}, MetadataDirective="REPLACE")
assert s3.head_object(Bucket="bucket1", Key="b/one.bin")["Metadata"] == {"color": "red"}
r = s3.delete_objects(Bucket="bucket1", Delete={"Objects": [{"Key": "list/k%d" % i} for i in range(5)]})
assert len(r["Deleted"]) == 5, r
# Multipart by hand: 2 parts of 5 MiB and a last one of 1 byte.
part = b"p" * (5 << 20)
up = s3.create_multipart_upload(Bucket="bucket1", Key="mp/obj")
uid = up["UploadId"]
etags = []
for n, body in enumerate([part, part[::-1], b"z"], start=1):
    etags.append(s3.upload_part(Bucket="bucket1", Key="mp/obj", UploadId=uid, PartNumber=n, Body=body)["ETag"])
lp = s3.list_parts(Bucket="bucket1", Key="mp/obj", UploadId=uid)
assert [p["PartNumber"] for p in lp["Parts"]] == [1, 2, 3], lp
lu = s3.list_multipart_uploads(Bucket="bucket1")
assert [u["UploadId"] for u in lu["Uploads"]] == [uid], lu
done = s3.complete_multipart_upload(Bucket="bucket1", Key="mp/obj", UploadId=uid,
    MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in [part, part[::-1], b"z"])).hexdigest() + "-3"
assert done["ETag"] == '"%s"' % want, done
assert s3.get_object(Bucket="bucket1", Key="mp/obj")["Body"].read() == part + part[::-1] + b"z"
def code(fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return "OK"
up2 = s3.create_multipart_upload(Bucket="bucket1", Key="mp/small")["UploadId"]
e1 = s3.upload_part(Bucket="bucket1", Key="mp/small", UploadId=up2, PartNumber=1, Body=b"tiny")["ETag"]
e2 = s3.upload_part(Bucket="bucket1", Key="mp/small", UploadId=up2, PartNumber=2, Body=b"tiny")["ETag"]
assert code(s3.complete_multipart_upload, Bucket="bucket1", Key="mp/small", UploadId=up2,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}) == "EntityTooSmall"
s3.abort_multipart_upload(Bucket="bucket1", Key="mp/small", UploadId=up2)
assert code(s3.upload_part, Bucket="bucket1", Key="mp/small", UploadId=up2, PartNumber=3, Body=b"x") == "NoSuchUpload"
assert code(s3.get_object, Bucket="bucket1", Key="nope") == "NoSuchKey"
assert code(s3.get_object, Bucket="nobucket", Key="x") == "NoSuchBucket"
assert code(s3.put_object, Bucket="bucket1", Key="bad", Body=b"abc", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==") == "BadDigest"
assert code(s3.get_object, Bucket="bucket1", Key="b/one.bin", Range="bytes=99999999-") == "InvalidRange"
print("BOTO3 OK")
)PY";
  WriteFile(dir_ / "t.py", script);
  auto r = Sh(env_ + "/usr/bin/python3 " + (dir_ / "t.py") + " " + endpoint_ + " " + kSecret);
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("BOTO3 OK"), std::string::npos) << r.second;
  std::string mib;
  for (int i = 0; i < 4096; ++i) {
    for (int b = 0; b < 256; ++b) mib.push_back(static_cast<char>(b));
  }
  EXPECT_TRUE(Stored("bucket1", "b/one.bin") == mib);
  EXPECT_TRUE(Stored("other", "copied.bin") == mib);
  std::string part(5 << 20, 'p');
  EXPECT_TRUE(Stored("bucket1", "mp/obj") == part + part + "z");
  EXPECT_EQ(Stored("bucket1", "bad"), "<missing>");
  EXPECT_EQ(Stored("bucket1", "mp/small"), "<missing>");
  EXPECT_EQ(Stored("bucket1", "list/k1"), "<missing>");
  EXPECT_EQ(Stored("bucket1", "list/sub/deep"), "deep");
}

TEST_F(S3ApiTest, S3cmdPutsGetsListsDeletes) {
  std::string cfg = "[default]\naccess_key = AKIATESTER\nsecret_key = " + kSecret +
                    "\nhost_base = 127.0.0.1:" + std::to_string(server_->port()) +
                    "\nhost_bucket = 127.0.0.1:" + std::to_string(server_->port()) +
                    "\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n";
  WriteFile(dir_ / "s3cfg", cfg);
  std::string data = RandomBytes(3 << 20, 7);
  WriteFile(dir_ / "f.bin", data);
  std::string s3cmd = env_ + "s3cmd -c " + (dir_ / "s3cfg") + " ";
  auto r = Sh(s3cmd + "put " + (dir_ / "f.bin") + " s3://bucket1/s3cmd/f.bin");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(Stored("bucket1", "s3cmd/f.bin") == data);
  // A multipart put (s3cmd splits at 15 MiB by default; force 5 MiB chunks).
  std::string big = RandomBytes(11 << 20, 8);
  WriteFile(dir_ / "big.bin", big);
  r = Sh(s3cmd + "--multipart-chunk-size-mb=5 put " + (dir_ / "big.bin") +
         " s3://bucket1/s3cmd/big.bin");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(Stored("bucket1", "s3cmd/big.bin") == big);
  r = Sh(s3cmd + "ls s3://bucket1/s3cmd/");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("s3://bucket1/s3cmd/f.bin"), std::string::npos) << r.second;
  r = Sh(s3cmd + "get --force s3://bucket1/s3cmd/big.bin " + (dir_ / "big.back"));
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(ReadFile(dir_ / "big.back") == big);
  r = Sh(s3cmd + "del s3://bucket1/s3cmd/f.bin");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(Stored("bucket1", "s3cmd/f.bin"), "<missing>");
}

TEST_F(S3ApiTest, RcloneCopiesAndChecks) {
  ASSERT_TRUE(platform::MakeDirs(dir_ / "src/d").ok());
  WriteFile(dir_ / "src/one.txt", "one");
  WriteFile(dir_ / "src/d/two.bin", RandomBytes(7 << 20, 3));
  std::string remote =
      ":s3,provider=Other,env_auth=false,access_key_id=AKIATESTER,"
      "secret_access_key='" +
      kSecret + "',endpoint='" + endpoint_ + "':bucket1/rc";
  std::string rclone = "env -u AWS_CA_BUNDLE HOME=" + (dir_ / "home") +
                       " rclone --config /dev/null --s3-upload-cutoff 5M --s3-chunk-size 5M ";
  auto r = Sh(rclone + "copy " + (dir_ / "src") + " \"" + remote + "\"");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(Stored("bucket1", "rc/one.txt"), "one");
  EXPECT_TRUE(Stored("bucket1", "rc/d/two.bin") == ReadFile(dir_ / "src/d/two.bin"));
  r = Sh(rclone + "check --download " + (dir_ / "src") + " \"" + remote + "\"");
  EXPECT_EQ(r.first, 0) << r.second;
  r = Sh(rclone + "lsf -R \"" + remote + "\"");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("d/two.bin"), std::string::npos) << r.second;
  r = Sh(rclone + "purge \"" + remote + "\"");
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(Stored("bucket1", "rc/one.txt"), "<missing>");
}

TEST_F(S3ApiTest, AwsSdkJsV3SendsAwsChunkedWithTrailingChecksums) {
  std::string npm = std::string(FS_SOURCE_DIR) + "/.deps/npm/node_modules";
  std::string script = R"JS(
const { S3Client, PutObjectCommand, GetObjectCommand, CreateMultipartUploadCommand,
        UploadPartCommand, CompleteMultipartUploadCommand, ListObjectsV2Command,
        DeleteObjectsCommand } = require("@aws-sdk/client-s3");
const crypto = require("crypto");
(async () => {
  const s3 = new S3Client({ endpoint: process.argv[2], region: "us-east-1", forcePathStyle: true,
    credentials: { accessKeyId: "AKIATESTER", secretAccessKey: process.argv[3] } });
  const seen = [];
  s3.middlewareStack.add((next) => async (args) => {
    const h = args.request.headers;
    seen.push(h["x-amz-content-sha256"] + " " + (h["x-amz-trailer"] || "") +
              (h["x-amz-checksum-crc32"] ? " header-crc32" : ""));
    return next(args);
  }, { step: "finalizeRequest", name: "spy" });
  const body = crypto.createHash("sha256").update("seed").digest().toString("hex").repeat(20000);
  await s3.send(new PutObjectCommand({ Bucket: "bucket1", Key: "js/plain.txt", Body: body }));
  await s3.send(new PutObjectCommand({ Bucket: "bucket1", Key: "js/c32c.txt", Body: body,
    ChecksumAlgorithm: "CRC32C" }));
  // A stream of unknown content: the SDK sends it aws-chunked with a trailing CRC32.
  const { Readable } = require("stream");
  await s3.send(new PutObjectCommand({ Bucket: "bucket1", Key: "js/stream.txt",
    Body: Readable.from([Buffer.from(body.slice(0, 70000)), Buffer.from(body.slice(70000))]),
    ContentLength: body.length }));
  const got = await s3.send(new GetObjectCommand({ Bucket: "bucket1", Key: "js/plain.txt", ChecksumMode: "ENABLED" }));
  const text = await got.Body.transformToString();
  if (text !== body) throw new Error("GET returned other bytes");
  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: "bucket1", Key: "js/mp.bin" }));
  const part = Buffer.alloc(5 << 20, 7);
  const p1 = await s3.send(new UploadPartCommand({ Bucket: "bucket1", Key: "js/mp.bin", UploadId: up.UploadId, PartNumber: 1, Body: part }));
  const p2 = await s3.send(new UploadPartCommand({ Bucket: "bucket1", Key: "js/mp.bin", UploadId: up.UploadId, PartNumber: 2, Body: Buffer.from("end") }));
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: "bucket1", Key: "js/mp.bin", UploadId: up.UploadId,
    MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } }));
  const list = await s3.send(new ListObjectsV2Command({ Bucket: "bucket1", Prefix: "js/" }));
  console.log("KEYS " + list.Contents.map((o) => o.Key).join(","));
  await s3.send(new DeleteObjectsCommand({ Bucket: "bucket1", Delete: { Objects: [{ Key: "js/c32c.txt" }] } }));
  console.log("PAYLOADS " + seen.join(" | "));
  console.log("JS OK");
})().catch((e) => { console.error("FAILED", e); process.exit(1); });
)JS";
  WriteFile(dir_ / "t.js", script);
  // Over HTTPS with a box certificate, as the daemon serves it.
  ASSERT_TRUE(crypto::EnsureSelfSignedCertificate(dir_ / "tls/box.crt", dir_ / "tls/box.key",
                                                  {"localhost", "127.0.0.1"})
                  .ok());
  http::ServerOptions tls;
  tls.tls_cert_file = dir_ / "tls/box.crt";
  tls.tls_key_file = dir_ / "tls/box.key";
  http::HttpServer https(tls, [this](http::Exchange& ex) { api_->Handle(ex); });
  ASSERT_TRUE(https.Start().ok());
  std::string url = "https://127.0.0.1:" + std::to_string(https.port());
  auto r = Sh("env -u AWS_CA_BUNDLE HOME=" + (dir_ / "home") + " NODE_PATH=" + npm +
              " NODE_EXTRA_CA_CERTS=" + (dir_ / "tls/box.crt") + " node " + (dir_ / "t.js") + " " +
              url + " " + kSecret);
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("JS OK"), std::string::npos) << r.second;
  EXPECT_NE(r.second.find("KEYS js/c32c.txt,js/mp.bin,js/plain.txt,js/stream.txt"),
            std::string::npos)
      << r.second;
  EXPECT_NE(r.second.find("STREAMING-UNSIGNED-PAYLOAD-TRAILER x-amz-checksum-crc32"),
            std::string::npos)
      << r.second;
  // The SDK's default PutObject is aws-chunked with a trailing checksum: the trap is storing
  // the chunk framing.
  EXPECT_NE(r.second.find("x-amz-checksum-crc32"), std::string::npos) << r.second;
  std::string seed = crypto::ToHex(crypto::Digest::Sha256("seed"));
  std::string body;
  for (int i = 0; i < 20000; ++i) body += seed;
  EXPECT_TRUE(Stored("bucket1", "js/plain.txt") == body);
  EXPECT_TRUE(Stored("bucket1", "js/stream.txt") == body);
  EXPECT_EQ(Stored("bucket1", "js/c32c.txt"), "<missing>");
  EXPECT_TRUE(Stored("bucket1", "js/mp.bin") == std::string(5 << 20, '\7') + "end");
}

// What S3 writes, the Blob API, the FUSE mount (so SMB and NFS) and the Store read at once with
// the same bytes; what the mount writes, S3 reads; nothing staged shows anywhere.
TEST_F(S3ApiTest, ObjectPutOverS3IsTheSameEverywhere) {
  blob_api::BlobApi blob(*objects_, {{"tester", "AKIATESTER", kSecret, {}, {"*"}}}, {});
  http::HttpServer blob_server({}, [&blob](http::Exchange& ex) { blob.Handle(ex); });
  ASSERT_TRUE(blob_server.Start().ok());
  std::string mnt = dir_ / "mnt";
  ASSERT_TRUE(platform::MakeDirs(mnt).ok());
  auto fs = fuse::FuseFs::Mount(*store_, {.mountpoint = mnt, .threads = 2, .allow_other = false});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();

  std::string data = RandomBytes(3 << 20, 11);
  auto r = Send("PUT", "/bucket1/shared/data.bin", data, {{"x-amz-meta-origin", "s3"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Stored("bucket1", "shared/data.bin") == data);
  EXPECT_TRUE(ReadFile(mnt + "/bucket1/shared/data.bin") == data);
  // Over Blob: account bucket1, container "shared", blob "data.bin"; az-style connection string.
  std::string conn = "DefaultEndpointsProtocol=http;AccountName=bucket1;AccountKey=" + kSecret +
                     ";BlobEndpoint=http://127.0.0.1:" + std::to_string(blob_server.port()) +
                     "/bucket1;";
  r = {};
  auto az = Sh("env -u AZURE_STORAGE_CONNECTION_STRING HOME=" + (dir_ / "home") +
               " AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=1 /usr/bin/az "
               "storage blob download --no-progress --connection-string '" +
               conn + "' -c shared -n data.bin -f " + (dir_ / "via-blob.bin") + " -o none");
  ASSERT_EQ(az.first, 0) << az.second;
  EXPECT_TRUE(ReadFile(dir_ / "via-blob.bin") == data);
  // The mount writes; S3 reads the same bytes and lists it.
  std::string local = RandomBytes(100000, 12);
  {
    std::ofstream f(mnt + "/bucket1/shared/from-mount.bin", std::ios::binary);
    f << local;
  }
  r = Send("GET", "/bucket1/shared/from-mount.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == local);
  r = Send("GET", "/bucket1?list-type=2&prefix=shared/");
  EXPECT_NE(r.body.find("<Key>shared/from-mount.bin</Key>"), std::string::npos) << r.body;
  // The staging folder is nowhere to be seen.
  EXPECT_FALSE(std::filesystem::exists(mnt + "/bucket1/.fieldstack-staging"));
  for (auto& e : std::filesystem::directory_iterator(mnt + "/bucket1")) {
    EXPECT_NE(e.path().filename(), ".fieldstack-staging");
  }
  r = Send("GET", "/bucket1?list-type=2");
  EXPECT_EQ(r.body.find("fieldstack-staging"), std::string::npos) << r.body;
  fs->reset();
}

// A bucket that is a folder of a share: keys live below the folder, listings and uploads see
// only it, deleting its last object keeps the folder, rights name the bucket.
TEST_F(S3ApiTest, MappedBucketIsAFolderOfAShare) {
  S3Options o;
  o.buckets["field-in"] = {"other", "in/box"};
  S3Api mapped(*objects_,
               {{"tester", "AKIATESTER", kSecret, {}, {"*"}},
                {"field", "AKIAFIELD", kReaderSecret, {}, {"field-in"}}},
               o);
  http::HttpServer server({}, [&mapped](http::Exchange& ex) { mapped.Handle(ex); });
  ASSERT_TRUE(server.Start().ok());
  std::string saved = endpoint_;
  endpoint_ = "http://127.0.0.1:" + std::to_string(server.port());
  auto r = Send("PUT", "/field-in/a/k.txt", "mapped", {}, "AKIAFIELD", kReaderSecret);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Stored("other", "in/box/a/k.txt"), "mapped");
  ASSERT_TRUE(store_->Resolve("other", "in/outside.txt").status().code() == StatusCode::kNotFound);
  ASSERT_EQ(Send("PUT", "/other/in/outside.txt", "x").status, 200);
  r = Send("GET", "/field-in?list-type=2", "", {}, "AKIAFIELD", kReaderSecret);
  EXPECT_NE(r.body.find("<Key>a/k.txt</Key>"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("outside"), std::string::npos) << r.body;
  r = Send("GET", "/field-in?list-type=2&delimiter=/", "", {}, "AKIAFIELD", kReaderSecret);
  EXPECT_NE(r.body.find("<Prefix>a/</Prefix>"), std::string::npos) << r.body;
  // The key may not touch the share itself.
  r = Send("GET", "/other/in/outside.txt", "", {}, "AKIAFIELD", kReaderSecret);
  EXPECT_EQ(r.status, 403);
  r = Send("GET", "/", "", {}, "AKIAFIELD", kReaderSecret);
  EXPECT_NE(r.body.find("<Name>field-in</Name>"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("<Name>other</Name>"), std::string::npos) << r.body;
  ASSERT_EQ(Send("DELETE", "/field-in/a/k.txt", "", {}, "AKIAFIELD", kReaderSecret).status, 204);
  EXPECT_EQ(Stored("other", "in/box/a/k.txt"), "<missing>");
  EXPECT_TRUE(store_->Resolve("other", "in/box").ok()) << "the bucket's folder stays";
  EXPECT_FALSE(store_->Resolve("other", "in/box/a").ok());
  endpoint_ = saved;
}

// --- Bad input, by hand ---

TEST_F(S3ApiTest, BadSignaturesKeysAndClocksAreRefused) {
  auto r = Send("PUT", "/bucket1/x", "data", {}, "AKIATESTER", "wrong-secret");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos) << r.body;
  r = Send("PUT", "/bucket1/x", "data", {}, "AKIANOBODY", kSecret);
  EXPECT_NE(r.body.find("<Code>InvalidAccessKeyId</Code>"), std::string::npos) << r.body;
  r = Send("PUT", "/bucket1/x", "data", {}, "AKIATESTER", kSecret, /*skew_s=*/3600);
  EXPECT_NE(r.body.find("<Code>RequestTimeTooSkewed</Code>"), std::string::npos) << r.body;
  r = Send("PUT", "/bucket1/x", "data", {}, "AKIAREADER", kReaderSecret);
  EXPECT_NE(r.body.find("<Code>AccessDenied</Code>"), std::string::npos) << r.body;
  auto anon = client_.Send({"GET", endpoint_ + "/bucket1/x", {}, {}});
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->status, 403);
  EXPECT_EQ(Stored("bucket1", "x"), "<missing>");
  // An expired presigned URL.
  std::string url =
      cloud::s3::PresignUrl("GET", endpoint_ + "/bucket1/x", {"AKIATESTER", kSecret, ""},
                            "us-east-1", RealClock::Get().NowUnixNanos() - 7200'000'000'000LL, 60);
  auto p = client_.Send({"GET", url, {}, {}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->status, 403);
  EXPECT_NE(p->body.find("Request has expired"), std::string::npos) << p->body;
  // The reader may read.
  ASSERT_EQ(Send("PUT", "/bucket1/x", "data").status, 200);
  r = Send("GET", "/bucket1/x", "", {}, "AKIAREADER", kReaderSecret);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "data");
}

TEST_F(S3ApiTest, BadKeysDigestsAndXmlGetProperErrorsAndStoreNothing) {
  auto r = Send("PUT", "/bucket1/a/%2E%2E/b", "x");
  EXPECT_EQ(r.status, 400) << r.body;
  r = Send("PUT", "/bucket1/a/%00/b", "x");
  EXPECT_EQ(r.status, 400) << r.body;
  r = Send("PUT", "/bucket1/" + std::string(1100, 'k'), "x");
  EXPECT_NE(r.body.find("KeyTooLongError"), std::string::npos) << r.body;
  r = Send("PUT", "/bucket1/.fieldstack-staging/x", "x");
  EXPECT_EQ(r.status, 400) << r.body;
  r = Send("PUT", "/bucket1/md5", "payload",
           {{"Content-MD5", crypto::Base64(crypto::Digest::Md5("other"))}});
  EXPECT_NE(r.body.find("<Code>BadDigest</Code>"), std::string::npos) << r.body;
  EXPECT_EQ(Stored("bucket1", "md5"), "<missing>");
  r = Send("PUT", "/bucket1/crc", "payload", {{"x-amz-checksum-crc32", "AAAAAA=="}});
  EXPECT_NE(r.body.find("<Code>BadDigest</Code>"), std::string::npos) << r.body;
  EXPECT_EQ(Stored("bucket1", "crc"), "<missing>");
  r = Send("POST", "/bucket1?delete", "<Delete><Object><Key>x</Key></Object");
  EXPECT_NE(r.body.find("<Code>MalformedXML</Code>"), std::string::npos) << r.body;
  r = Send("POST", "/bucket1/k?uploadId=00000000000000000000000000000000",
           "<CompleteMultipartUpload/>");
  EXPECT_NE(r.body.find("<Code>NoSuchUpload</Code>"), std::string::npos) << r.body;
  r = Send("PUT", "/bucket1/k?partNumber=1&uploadId=zzz", "x");
  EXPECT_NE(r.body.find("<Code>NoSuchUpload</Code>"), std::string::npos) << r.body;
  r = Send("GET", "/bucket1?acl");
  EXPECT_EQ(r.status, 501);
  // A file where a folder of the key would be.
  ASSERT_EQ(Send("PUT", "/bucket1/file", "f").status, 200);
  r = Send("PUT", "/bucket1/file/under", "x");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(Stored("bucket1", "file"), "f");
}

// Found in review: each of these once changed data it should not have.
TEST_F(S3ApiTest, UnsignedHeadersSwappedBodiesAndRetriesChangeNothing) {
  ASSERT_EQ(Send("PUT", "/other/secret", "TOPSECRET").status, 200);
  // A presigned PUT signs only the host: an added x-amz-copy-source must not turn it into a
  // copy of something else.
  std::string url =
      cloud::s3::PresignUrl("PUT", endpoint_ + "/bucket1/upload-here", {"AKIATESTER", kSecret, ""},
                            "us-east-1", RealClock::Get().NowUnixNanos(), 300);
  auto r = client_.Send({"PUT", url, {{"x-amz-copy-source", "other/secret"}}, {}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_EQ(Stored("bucket1", "upload-here"), "<missing>");
  std::string fine = "presigned body";
  r = client_.Send({"PUT", url, {}, {reinterpret_cast<const uint8_t*>(fine.data()), fine.size()}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Stored("bucket1", "upload-here"), fine);
  // An XML body other than the one signed.
  ASSERT_EQ(Send("PUT", "/bucket1/keep-me", "k").status, 200);
  std::string signed_xml = "<Delete><Object><Key>a</Key></Object></Delete>";
  std::string sent_xml = "<Delete><Object><Key>keep-me</Key></Object></Delete>";
  cloud::HttpRequest d{"POST", endpoint_ + "/bucket1?delete", {}, {}};
  cloud::s3::SignRequest(d, {"AKIATESTER", kSecret, ""}, "us-east-1",
                         RealClock::Get().NowUnixNanos(),
                         crypto::ToHex(crypto::Digest::Sha256(signed_xml)));
  d.body = {reinterpret_cast<const uint8_t*>(sent_xml.data()), sent_xml.size()};
  r = client_.Send(d);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("XAmzContentSHA256Mismatch"), std::string::npos) << r->body;
  EXPECT_EQ(Stored("bucket1", "keep-me"), "k");
  // A part re-sent with a bad Content-MD5 leaves the part already acknowledged.
  auto up = Send("POST", "/bucket1/mp?uploads");
  size_t at = up.body.find("<UploadId>");
  ASSERT_NE(at, std::string::npos) << up.body;
  std::string id = up.body.substr(at + 10, 32);
  std::string part = "the only part";
  auto p1 = Send("PUT", "/bucket1/mp?partNumber=1&uploadId=" + id, part);
  ASSERT_EQ(p1.status, 200);
  std::string etag = p1.Header("etag");
  auto bad = Send("PUT", "/bucket1/mp?partNumber=1&uploadId=" + id, "other bytes",
                  {{"Content-MD5", crypto::Base64(crypto::Digest::Md5("x"))}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  std::string complete = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + etag +
                         "</ETag></Part></CompleteMultipartUpload>";
  auto done = Send("POST", "/bucket1/mp?uploadId=" + id, complete);
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Stored("bucket1", "mp"), part);
  // Its retry (the answer was lost) succeeds too, with the same ETag.
  auto again = Send("POST", "/bucket1/mp?uploadId=" + id, complete);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("-1&quot;</ETag>"), std::string::npos) << again.body;
  // A copy source with '?' before its '/' names no bucket: a clean 404, not a crash.
  auto up2 = Send("POST", "/bucket1/mp2?uploads");
  std::string id2 = up2.body.substr(up2.body.find("<UploadId>") + 10, 32);
  auto copy = Send("PUT", "/bucket1/mp2?partNumber=1&uploadId=" + id2, "",
                   {{"x-amz-copy-source", "bucket1?x/obj"}});
  EXPECT_NE(copy.body.find("<Code>NoSuchBucket</Code>"), std::string::npos) << copy.body;
  // If-None-Match: * only creates.
  auto once = Send("PUT", "/bucket1/lock", "first", {{"If-None-Match", "*"}});
  EXPECT_EQ(once.status, 200);
  auto twice = Send("PUT", "/bucket1/lock", "second", {{"If-None-Match", "*"}});
  EXPECT_EQ(twice.status, 412) << twice.body;
  EXPECT_EQ(Stored("bucket1", "lock"), "first");
  // A folder marker reads as an empty object.
  ASSERT_EQ(Send("PUT", "/bucket1/folder/", "").status, 200);
  auto marker = Send("GET", "/bucket1/folder/");
  EXPECT_EQ(marker.status, 200) << marker.body;
  EXPECT_EQ(marker.body, "");
}

// A signed aws-chunked body, built the way the SigV4 streaming docs describe.
std::string ChunkedBody(const SigV4Identity& id, const std::string& data, size_t chunk,
                        bool corrupt_second) {
  std::string out, prev = id.signature;
  const std::string empty = crypto::ToHex(crypto::Digest::Sha256(""));
  size_t off = 0;
  int n = 0;
  for (;;) {
    std::string piece = data.substr(off, std::min(chunk, data.size() - off));
    std::string sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + id.amz_date + "\n" + id.scope + "\n" + prev +
                      "\n" + empty + "\n" + crypto::ToHex(crypto::Digest::Sha256(piece));
    std::string sig = crypto::ToHex(crypto::HmacSha256(id.signing_key, sts));
    prev = sig;
    if (corrupt_second && n == 1) sig[0] = sig[0] == 'a' ? 'b' : 'a';
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx", piece.size());
    out += std::string(hex) + ";chunk-signature=" + sig + "\r\n" + piece + "\r\n";
    off += piece.size();
    ++n;
    if (piece.empty()) break;
  }
  return out;
}

TEST(AwsChunkedDecoderTest, DecodesSignedChunksAndRefusesTamperingAndFraming) {
  SigV4Identity id;
  id.signing_key = cloud::s3::SigningKey("secret", "20261127", "us-east-1");
  id.amz_date = "20261127T000000Z";
  id.scope = "20261127/us-east-1/s3/aws4_request";
  id.signature = std::string(64, 'a');
  std::string data = RandomBytes(200000, 5);
  auto decode = [&](const std::string& wire, bool signed_chunks, bool trailer,
                    std::map<std::string, std::string>* trailers = nullptr) -> Result<std::string> {
    size_t pos = 0;
    AwsChunkedDecoder d(
        [&](std::span<uint8_t> out) -> Result<size_t> {
          size_t n = std::min(out.size(), std::min<size_t>(wire.size() - pos, 777));
          std::copy(wire.begin() + pos, wire.begin() + pos + n, out.begin());
          pos += n;
          return n;
        },
        signed_chunks, trailer, &id);
    std::string got;
    uint8_t buf[5000];
    for (;;) {
      FS_ASSIGN_OR_RETURN(size_t n, d.Read(buf));
      if (n == 0) break;
      got.append(reinterpret_cast<char*>(buf), n);
    }
    if (trailers) *trailers = d.trailers();
    return got;
  };
  auto ok = decode(ChunkedBody(id, data, 65536, false), true, false);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(*ok == data);
  auto bad = decode(ChunkedBody(id, data, 65536, true), true, false);
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().message().starts_with("signature")) << bad.status().ToString();
  // Unsigned chunks with a trailer.
  std::string wire = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
  std::map<std::string, std::string> trailers;
  auto t = decode(wire, false, true, &trailers);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, "hello");
  EXPECT_EQ(trailers["x-amz-checksum-crc32"], "NhCmhg==");
  // Framing errors: a chunk longer than its size, a truncated body, garbage sizes, extra data.
  EXPECT_FALSE(decode("3\r\nhello\r\n0\r\n\r\n", false, false).ok());
  EXPECT_FALSE(decode("5\r\nhel", false, false).ok());
  EXPECT_FALSE(decode("zz\r\nhello\r\n0\r\n\r\n", false, false).ok());
  EXPECT_FALSE(decode("5\r\nhello\r\n0\r\n\r\nmore", false, false).ok());
  EXPECT_FALSE(decode("5\r\nhello\r\n0\r\n\r\n", true, false).ok())
      << "unsigned chunks in a signed body";
}

TEST_F(S3ApiTest, TruncatedBodiesAndWrongDecodedLengthsLeaveNothing) {
  // Content-Length promises more than is sent; the client then closes.
  cloud::HttpRequest req{"PUT", endpoint_ + "/bucket1/short", {}, {}};
  std::string body = "only-this";
  cloud::s3::SignRequest(req, {"AKIATESTER", kSecret, ""}, "us-east-1",
                         RealClock::Get().NowUnixNanos(), "UNSIGNED-PAYLOAD");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(server_->port());
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string head = "PUT /bucket1/short HTTP/1.1\r\nContent-Length: 1000\r\n";
  for (auto& [k, v] : req.headers) head += k + ": " + v + "\r\n";
  head += "\r\n" + body;
  ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  shutdown(fd, SHUT_WR);
  char buf[1024];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
  EXPECT_EQ(Stored("bucket1", "short"), "<missing>");
  auto staged = store_->Resolve("bucket1", ".fieldstack-staging/put");
  ASSERT_TRUE(staged.ok());
  auto left = store_->ReadDir(staged->id, "", 10);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << "the staged file of a failed PUT is removed";
  // aws-chunked whose decoded length disagrees with x-amz-decoded-content-length.
  cloud::HttpRequest c{"PUT",
                       endpoint_ + "/bucket1/chunky",
                       {{"x-amz-decoded-content-length", "10"},
                        {"Content-Encoding", "aws-chunked"},
                        {"x-amz-trailer", "x-amz-checksum-crc32"}},
                       {}};
  std::string wire = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
  c.body = {reinterpret_cast<const uint8_t*>(wire.data()), wire.size()};
  cloud::s3::SignRequest(c, {"AKIATESTER", kSecret, ""}, "us-east-1",
                         RealClock::Get().NowUnixNanos(), "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  auto r = client_.Send(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(Stored("bucket1", "chunky"), "<missing>");
  // The same body with the right length is stored decoded, not with its framing.
  c.headers = {{"x-amz-decoded-content-length", "5"},
               {"Content-Encoding", "aws-chunked"},
               {"x-amz-trailer", "x-amz-checksum-crc32"}};
  cloud::s3::SignRequest(c, {"AKIATESTER", kSecret, ""}, "us-east-1",
                         RealClock::Get().NowUnixNanos(), "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  r = client_.Send(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Stored("bucket1", "chunky"), "hello");
  // A wrong trailing checksum.
  wire = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
  c.body = {reinterpret_cast<const uint8_t*>(wire.data()), wire.size()};
  c.url = endpoint_ + "/bucket1/chunky2";
  c.headers = {{"x-amz-decoded-content-length", "5"},
               {"Content-Encoding", "aws-chunked"},
               {"x-amz-trailer", "x-amz-checksum-crc32"}};
  cloud::s3::SignRequest(c, {"AKIATESTER", kSecret, ""}, "us-east-1",
                         RealClock::Get().NowUnixNanos(), "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  r = client_.Send(c);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("<Code>BadDigest</Code>"), std::string::npos) << r->body;
  EXPECT_EQ(Stored("bucket1", "chunky2"), "<missing>");
}

}  // namespace
}  // namespace fieldstack::frontends::s3_api
