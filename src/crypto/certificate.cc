#include "crypto/certificate.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <functional>
#include <memory>

#include "crypto/chunk_codec.h"
#include "platform/file.h"

namespace fieldstack::crypto {

namespace {

std::string OpensslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  return what + ": " + buf;
}

bool IsAddress(const std::string& s) {
  unsigned char b[16];
  return inet_pton(AF_INET, s.c_str(), b) == 1 || inet_pton(AF_INET6, s.c_str(), b) == 1;
}

std::string Pem(const std::function<int(BIO*)>& write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || write(bio.get()) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                   const std::vector<std::string>& names) {
  if (platform::PathExists(cert_path) && platform::PathExists(key_path)) return Status::Ok();
  if (names.empty()) return InvalidArgumentError("a certificate needs at least one name");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) return InternalError(OpensslError("cannot make a P-256 key"));
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  X509_set_version(x.get(), 2);
  uint8_t serial[16];
  FS_RETURN_IF_ERROR(RandomBytes(serial));
  serial[0] &= 0x7f;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(serial, sizeof serial, nullptr),
                                                 BN_free);
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* subject = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Fieldstack box"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(names[0].c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), subject);
  std::string san;
  for (const std::string& n : names) {
    if (!san.empty()) san += ",";
    san += (IsAddress(n) ? "IP:" : "DNS:") + n;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san},
                            {NID_basic_constraints, std::string("critical,CA:TRUE")},
                            {NID_key_usage, std::string("critical,digitalSignature,keyCertSign")},
                            {NID_ext_key_usage, std::string("serverAuth")}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) return InternalError(OpensslError("bad certificate extension " + value));
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) {
    return InternalError(OpensslError("cannot sign the certificate"));
  }
  std::string key_pem = Pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  std::string cert_pem = Pem([&](BIO* b) { return PEM_write_bio_X509(b, x.get()); });
  if (key_pem.empty() || cert_pem.empty()) return InternalError(OpensslError("cannot write PEM"));
  FS_RETURN_IF_ERROR(platform::MakeDirs(platform::DirName(key_path)));
  FS_RETURN_IF_ERROR(platform::MakeDirs(platform::DirName(cert_path)));
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(key_path, key_pem, 0600));
  return platform::WriteFileAtomic(cert_path, cert_pem, 0644);
}

}  // namespace fieldstack::crypto
