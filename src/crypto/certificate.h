#pragma once

// The box certificate: a self-signed X.509 certificate (ECDSA P-256, SHA-256, ten years) made
// on first start for the names and addresses the box answers to, unless an admin configured
// one. Every HTTPS endpoint of the box (S3, Blob, later the API and UI) serves it.

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace fieldstack::crypto {

// Makes `cert_path` (PEM) and `key_path` (PEM, mode 0600) when either is missing; keeps them
// otherwise. `names` are DNS names or IP addresses for the subjectAltName (the first is the
// common name). Internal error naming the OpenSSL failure.
Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                   const std::vector<std::string>& names);

// What a certificate says, for the API and diagnostics.
struct CertificateInfo {
  std::string subject;
  std::string issuer;
  std::vector<std::string> names;  // subjectAltName DNS names and IP addresses
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;
  std::string sha256_fingerprint;  // hex, colon-separated
  bool self_signed = false;
  std::string key_type;  // "EC P-256", "RSA 2048", ...
};

// The first certificate of a PEM text. InvalidArgument when there is none.
Result<CertificateInfo> DescribeCertificate(const std::string& pem);

// An uploaded certificate, checked and normalised: the leaf then its chain, and the key, both
// PEM (the key unencrypted PKCS#8).
struct CertificateBundle {
  std::string chain_pem;
  std::string key_pem;
  CertificateInfo leaf;
};
// From PEM texts: `cert_pem` (the leaf, optionally followed by its chain), `key_pem` (PKCS#8 or
// traditional, unencrypted) and an optional separate `chain_pem`. InvalidArgument, saying
// what is wrong, when a text does not parse, the key does not match the certificate, the
// certificate has expired or is not valid yet (at `now_unix`), or is not for TLS servers.
Result<CertificateBundle> BundleFromPem(const std::string& cert_pem, const std::string& key_pem,
                                        const std::string& chain_pem, int64_t now_unix);
// From a PKCS#12 (.pfx) file's bytes and its password; the same checks.
Result<CertificateBundle> BundleFromPfx(const std::string& pfx_der, const std::string& password,
                                        int64_t now_unix);

}  // namespace fieldstack::crypto
