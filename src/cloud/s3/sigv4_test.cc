// SigV4: AWS's published examples, and botocore (an independent implementation, Debian's
// python3-botocore) signing the same requests.

#include "cloud/s3/sigv4.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/hash.h"
#include "crypto/key_store.h"
#include "test/support/temp_dir.h"

namespace fieldstack::cloud::s3 {
namespace {

const Credentials kAws{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr int64_t k20130524 = int64_t{1369353600} * 1'000'000'000;

std::string HeaderOf(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

// AWS's "Example: GET Object" of the S3 SigV4 documentation.
TEST(SigV4Test, AwsDocumentedGetObject) {
  HttpRequest r{
      "GET", "https://examplebucket.s3.amazonaws.com/test.txt", {{"Range", "bytes=0-9"}}, {}};
  SignRequest(r, kAws, "us-east-1", k20130524, crypto::ToHex(crypto::Digest::Sha256("")));
  EXPECT_EQ(HeaderOf(r, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// AWS's presigned URL example (GET test.txt, 86400 s).
TEST(SigV4Test, AwsDocumentedPresignedUrl) {
  std::string url = PresignUrl("GET", "https://examplebucket.s3.amazonaws.com/test.txt", kAws,
                               "us-east-1", k20130524, 86400);
  EXPECT_TRUE(url.ends_with(
      "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"))
      << url;
}

struct Signed {
  std::string authorization;
  std::string canonical;
  std::string url;
};

// Runs test/support/botocore_sign.py on the same request.
Signed Botocore(const HttpRequest& unsigned_req, const Credentials& c, const std::string& region,
                int64_t when, int presign_expires) {
  nlohmann::json in;
  in["method"] = unsigned_req.method;
  in["url"] = unsigned_req.url;
  in["headers"] = nlohmann::json::array();
  for (const auto& [k, v] : unsigned_req.headers) in["headers"].push_back({k, v});
  in["body_b64"] = crypto::Base64(
      {reinterpret_cast<const char*>(unsigned_req.body.data()), unsigned_req.body.size()});
  in["amz_date"] = AmzDate(when);
  in["access_key"] = c.access_key;
  in["secret_key"] = c.secret_key;
  in["token"] = c.session_token;
  in["region"] = region;
  in["presign_expires"] = presign_expires;
  testing::TempDir dir;
  std::ofstream(dir / "in.json") << in.dump();
  std::string cmd = "/usr/bin/python3 " FS_SOURCE_DIR "/test/support/botocore_sign.py < " +
                    (dir / "in.json") + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (p && !feof(p)) {
    size_t n = fread(buf, 1, sizeof buf, p);
    out.append(buf, n);
  }
  int rc = p ? pclose(p) : -1;
  EXPECT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) {
    ADD_FAILURE() << "botocore_sign.py: " << out;
    return {};
  }
  return {j["authorization"], j["canonical_request"], j["url"]};
}

std::span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Case {
  std::string name;
  HttpRequest req;
  Credentials creds;
  std::string region = "us-east-1";
};

TEST(SigV4Test, HeaderSignaturesMatchBotocore) {
  static const std::string body = "hello, world\n";
  static const std::string xml = "<CompleteMultipartUpload><Part/></CompleteMultipartUpload>";
  const Credentials temp{"ASIAEXAMPLE", "secret+/key", "token/with+chars=="};
  std::vector<Case> cases = {
      {"put with metadata and md5",
       {"PUT",
        "http://127.0.0.1:7480/bucket/dir/a%20file%2Bplus.txt",
        {{"Content-MD5", crypto::Base64(crypto::Digest::Md5(body))},
         {"x-amz-meta-mode", "0644"},
         {"x-amz-meta-mtime", "  1700000000   123 "},
         {"If-None-Match", "*"}},
        B(body)},
       kAws},
      {"get with range, unicode key",
       {"GET",
        "http://localhost:9000/bucket/%C3%A9t%C3%A9/%E6%97%A5.bin",
        {{"Range", "bytes=5-9"}},
        {}},
       kAws,
       "eu-west-1"},
      {"list with prefix and token",
       {"GET",
        "http://127.0.0.1:7480/"
        "bucket?list-type=2&max-keys=1000&prefix=a%2Fb%20c&continuation-token=x%2By%3D",
        {},
        {}},
       kAws},
      {"create multipart upload",
       {"POST", "http://127.0.0.1:7480/bucket/big.bin?uploads=", {}, {}},
       kAws},
      {"complete multipart upload",
       {"POST",
        "http://bucket.localhost:7480/big.bin?uploadId=2~abc_DEF-1.x",
        {{"Content-Type", "application/xml"}, {"If-Match", "\"0123\""}},
        B(xml)},
       kAws},
      {"temporary credentials, https unsigned payload",
       {"PUT",
        "https://bucket.s3.eu-central-1.amazonaws.com/k?partNumber=3&uploadId=u",
        {},
        B(body)},
       temp,
       "eu-central-1"},
  };
  const int64_t when = int64_t{1795741323} * 1'000'000'000;
  for (const auto& c : cases) {
    HttpRequest ours = c.req;
    std::string hash =
        c.req.url.starts_with("https")
            ? std::string(kUnsignedPayload)
            : crypto::ToHex(crypto::Digest::Sha256(
                  {reinterpret_cast<const char*>(c.req.body.data()), c.req.body.size()}));
    SignRequest(ours, c.creds, c.region, when, hash);
    Signed theirs = Botocore(c.req, c.creds, c.region, when, 0);
    EXPECT_EQ(HeaderOf(ours, "Authorization"), theirs.authorization)
        << c.name << "\nours:\n"
        << CanonicalRequest(c.req, hash) << "\nbotocore:\n"
        << theirs.canonical;
  }
}

TEST(SigV4Test, PresignedUrlsMatchBotocore) {
  const int64_t when = int64_t{1795741323} * 1'000'000'000;
  for (const std::string url : {"http://127.0.0.1:7480/bucket/dir/file%20name.txt",
                                "https://bucket.s3.amazonaws.com/%E6%97%A5"}) {
    for (const std::string method : {"GET", "PUT"}) {
      std::string ours = PresignUrl(method, url, kAws, "us-east-1", when, 3600);
      Signed theirs = Botocore({method, url, {}, {}}, kAws, "us-east-1", when, 3600);
      auto sig = [](const std::string& u) { return u.substr(u.find("X-Amz-Signature=")); };
      ASSERT_NE(theirs.url.find("X-Amz-Signature="), std::string::npos) << theirs.url;
      EXPECT_EQ(sig(ours), sig(theirs.url))
          << method << " " << url << "\nours:   " << ours << "\ntheirs: " << theirs.url;
    }
  }
}

}  // namespace
}  // namespace fieldstack::cloud::s3
