#include "crypto/certificate.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include <ctime>
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

namespace {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::string NameText(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

int64_t UnixOf(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

CertificateInfo Describe(X509* x) {
  CertificateInfo info;
  info.subject = NameText(X509_get_subject_name(x));
  info.issuer = NameText(X509_get_issuer_name(x));
  info.not_before_unix = UnixOf(X509_get0_notBefore(x));
  info.not_after_unix = UnixOf(X509_get0_notAfter(x));
  info.self_signed = X509_check_issued(x, x) == X509_V_OK;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(x, EVP_sha256(), md, &len);
  static const char* kHex = "0123456789ABCDEF";
  for (unsigned int i = 0; i < len; ++i) {
    if (i > 0) info.sha256_fingerprint += ':';
    info.sha256_fingerprint += kHex[md[i] >> 4];
    info.sha256_fingerprint += kHex[md[i] & 15];
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
    if (g->type == GEN_DNS) {
      const ASN1_IA5STRING* s = g->d.dNSName;
      info.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                              static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = g->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(s);
      if (len != 4 && len != 16) continue;  // not an address (a malformed certificate)
      int af = len == 4 ? AF_INET : AF_INET6;
      if (inet_ntop(af, ASN1_STRING_get0_data(s), buf, sizeof buf) != nullptr) {
        info.names.emplace_back(buf);
      }
    }
  }
  GENERAL_NAMES_free(sans);
  if (EVP_PKEY* k = X509_get0_pubkey(x)) {
    int bits = EVP_PKEY_get_bits(k);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
      info.key_type = "EC " + std::to_string(bits);
    } else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
      info.key_type = "RSA " + std::to_string(bits);
    } else {
      info.key_type = OBJ_nid2sn(EVP_PKEY_get_base_id(k));
    }
  }
  return info;
}

std::vector<X509Ptr> ReadCerts(const std::string& pem) {
  std::vector<X509Ptr> out;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(x, X509_free);
  }
  ERR_clear_error();
  return out;
}

Result<CertificateBundle> Bundle(std::vector<X509Ptr> certs, KeyPtr key, int64_t now_unix) {
  if (certs.empty()) return InvalidArgumentError("no certificate found (expected PEM or PFX)");
  if (!key) return InvalidArgumentError("no private key found (expected an unencrypted PEM key)");
  X509* leaf = certs[0].get();
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("the private key does not belong to the certificate");
  }
  CertificateBundle b;
  b.leaf = Describe(leaf);
  if (b.leaf.not_after_unix <= now_unix) {
    return InvalidArgumentError("the certificate expired (not after " +
                                std::to_string(b.leaf.not_after_unix) + ")");
  }
  if (b.leaf.not_before_unix > now_unix + 300) {
    return InvalidArgumentError("the certificate is not valid yet; check the box's clock");
  }
  if (X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) != 1) {
    return InvalidArgumentError("the certificate is not for TLS servers (extended key usage)");
  }
  for (auto& c : certs) {
    b.chain_pem += Pem([&](BIO* bio) { return PEM_write_bio_X509(bio, c.get()); });
  }
  b.key_pem = Pem([&](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  if (b.key_pem.empty() || b.chain_pem.empty()) return InternalError(OpensslError("PEM"));
  return b;
}

}  // namespace

Result<CertificateInfo> DescribeCertificate(const std::string& pem) {
  auto certs = ReadCerts(pem);
  if (certs.empty()) return InvalidArgumentError("no PEM certificate found");
  return Describe(certs[0].get());
}

Result<CertificateBundle> BundleFromPem(const std::string& cert_pem, const std::string& key_pem,
                                        const std::string& chain_pem, int64_t now_unix) {
  auto certs = ReadCerts(cert_pem);
  auto chain = ReadCerts(chain_pem);
  if (!chain_pem.empty() && chain.empty()) {
    return InvalidArgumentError("the chain holds no PEM certificate");
  }
  for (auto& c : chain) certs.push_back(std::move(c));
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  // No password callback: an encrypted key fails instead of prompting on the console.
  KeyPtr key(PEM_read_bio_PrivateKey(
                 bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr),
             EVP_PKEY_free);
  ERR_clear_error();
  return Bundle(std::move(certs), std::move(key), now_unix);
}

Result<CertificateBundle> BundleFromPfx(const std::string& pfx_der, const std::string& password,
                                        int64_t now_unix) {
  const auto* p = reinterpret_cast<const unsigned char*>(pfx_der.data());
  std::unique_ptr<PKCS12, decltype(&PKCS12_free)> p12(
      d2i_PKCS12(nullptr, &p, static_cast<long>(pfx_der.size())), PKCS12_free);
  if (!p12) {
    ERR_clear_error();
    return InvalidArgumentError("not a PKCS#12 (.pfx) file");
  }
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* ca = nullptr;
  if (PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &ca) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("cannot open the .pfx file: wrong password or unsupported format");
  }
  std::vector<X509Ptr> certs;
  if (cert != nullptr) certs.emplace_back(cert, X509_free);
  for (int i = 0; ca != nullptr && i < sk_X509_num(ca); ++i) {
    certs.emplace_back(sk_X509_value(ca, i), X509_free);
  }
  sk_X509_free(ca);
  return Bundle(std::move(certs), KeyPtr(key, EVP_PKEY_free), now_unix);
}

}  // namespace fieldstack::crypto
