// The box certificate: inspection, and uploads as PEM or PKCS#12 checked before use.

#include "crypto/certificate.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include <ctime>
#include <memory>

#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::crypto {
namespace {

class CertificateTest : public ::testing::Test {
 protected:
  // A fresh self-signed pair for `names`; returns {cert PEM, key PEM}.
  std::pair<std::string, std::string> Make(const std::string& stem,
                                           const std::vector<std::string>& names) {
    std::string crt = dir_ / (stem + ".crt"), key = dir_ / (stem + ".key");
    EXPECT_TRUE(EnsureSelfSignedCertificate(crt, key, names).ok());
    return {*platform::ReadFileToString(crt), *platform::ReadFileToString(key)};
  }
  int64_t now_ = static_cast<int64_t>(std::time(nullptr));
  testing::TempDir dir_;
};

TEST_F(CertificateTest, DescribesSubjectNamesValidityAndFingerprint) {
  auto [crt, key] = Make("a", {"box.example", "10.1.2.3", "::1"});
  auto info = DescribeCertificate(crt);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_NE(info->subject.find("CN=box.example"), std::string::npos) << info->subject;
  EXPECT_EQ(info->names, (std::vector<std::string>{"box.example", "10.1.2.3", "::1"}));
  EXPECT_TRUE(info->self_signed);
  EXPECT_EQ(info->key_type, "EC 256");
  EXPECT_NEAR(info->not_after_unix - info->not_before_unix, 10L * 365 * 86400 + 3600, 10);
  EXPECT_EQ(info->sha256_fingerprint.size(), 32u * 3 - 1);
  EXPECT_EQ(DescribeCertificate("not a certificate").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CertificateTest, PemBundleNeedsAMatchingKeyAndAValidServerCertificate) {
  auto [crt, key] = Make("a", {"box.example"});
  auto [other_crt, other_key] = Make("b", {"other.example"});
  auto b = BundleFromPem(crt, key, other_crt, now_);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->leaf.names, std::vector<std::string>{"box.example"});
  EXPECT_EQ(b->chain_pem, crt + other_crt);  // leaf first, then the chain
  EXPECT_NE(b->key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  auto mismatch = BundleFromPem(crt, other_key, "", now_);
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("does not belong"), std::string::npos);
  EXPECT_NE(BundleFromPem("", key, "", now_).status().message().find("no certificate"),
            std::string::npos);
  EXPECT_NE(BundleFromPem(crt, "garbage", "", now_).status().message().find("no private key"),
            std::string::npos);
  auto expired = BundleFromPem(crt, key, "", now_ + 11L * 365 * 86400);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
  auto early = BundleFromPem(crt, key, "", now_ - 86400);
  EXPECT_NE(early.status().message().find("not valid yet"), std::string::npos);
}

TEST_F(CertificateTest, PfxBundleOpensWithItsPasswordOnly) {
  auto [crt, key] = Make("a", {"box.example"});
  std::unique_ptr<BIO, decltype(&BIO_free)> cb(BIO_new_mem_buf(crt.data(), -1), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> kb(BIO_new_mem_buf(key.data(), -1), BIO_free);
  X509* x = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr);
  ASSERT_TRUE(x != nullptr && k != nullptr);
  PKCS12* p12 = PKCS12_create("pfx pass", "box", k, x, nullptr, 0, 0, 0, 0, 0);
  ASSERT_NE(p12, nullptr);
  unsigned char* der = nullptr;
  int len = i2d_PKCS12(p12, &der);
  std::string pfx(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  PKCS12_free(p12);
  X509_free(x);
  EVP_PKEY_free(k);
  auto b = BundleFromPfx(pfx, "pfx pass", now_);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->chain_pem, crt);
  EXPECT_EQ(BundleFromPfx(pfx, "wrong", now_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BundleFromPfx("garbage", "", now_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BundleFromPfx(pfx.substr(0, pfx.size() / 2), "pfx pass", now_).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fieldstack::crypto
