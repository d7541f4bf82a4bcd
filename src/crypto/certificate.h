#pragma once

// The box certificate: a self-signed X.509 certificate (ECDSA P-256, SHA-256, ten years) made
// on first start for the names and addresses the box answers to, unless an admin configured
// one. Every HTTPS endpoint of the box (S3, Blob, later the API and UI) serves it.

#include <string>
#include <vector>

#include "common/status.h"

namespace fieldstack::crypto {

// Makes `cert_path` (PEM) and `key_path` (PEM, mode 0600) when either is missing; keeps them
// otherwise. `names` are DNS names or IP addresses for the subjectAltName (the first is the
// common name). Internal error naming the OpenSSL failure.
Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                   const std::vector<std::string>& names);

}  // namespace fieldstack::crypto
