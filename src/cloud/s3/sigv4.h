#pragma once

// AWS Signature Version 4 for S3 (and any S3-compatible service): the Authorization header
// and presigned URLs. The canonical request follows the S3 rules: the URL path is used as sent
// (each segment percent-encoded once, never normalised), query parameters are decoded,
// re-encoded (RFC 3986) and sorted, and every header of the request is signed.
//
// Checked against botocore's independent signer (sigv4_test.cc).

#include <cstdint>
#include <string>
#include <string_view>

#include "cloud/http_client.h"

namespace fieldstack::cloud::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // temporary credentials only
};

// The payload hash that tells the service the body is not part of the signature.
inline constexpr char kUnsignedPayload[] = "UNSIGNED-PAYLOAD";

// 20261127T010203Z for a Unix time in nanoseconds.
std::string AmzDate(int64_t unix_ns);

// Adds host, x-amz-date, x-amz-content-sha256 (`payload_hash`: the hex SHA-256 of the body or
// kUnsignedPayload), x-amz-security-token when there is one, and Authorization to `req`.
void SignRequest(HttpRequest& req, const Credentials& creds, std::string_view region,
                 int64_t unix_ns, std::string_view payload_hash);

// A URL that lets its holder send `method` to `url` until `expires_s` seconds after `unix_ns`
// (at most 7 days), signed with the host header only.
std::string PresignUrl(std::string_view method, std::string_view url, const Credentials& creds,
                       std::string_view region, int64_t unix_ns, int64_t expires_s);

// Exposed for tests: the canonical request of `req` with `payload_hash`.
std::string CanonicalRequest(const HttpRequest& req, std::string_view payload_hash);

// Pieces shared with the S3 API's verifier (src/frontends/s3_api):
// the raw signing key of `secret` for a date (YYYYMMDD) and region, service s3;
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region);
// a query string decoded, re-encoded (RFC 3986) and sorted;
std::string CanonicalQueryOf(std::string_view query);
// a header value trimmed, with runs of spaces collapsed.
std::string CanonicalHeaderValue(std::string_view v);

// The Host header value of `url` (host, and the port when the URL names one).
std::string HostOf(std::string_view url);

}  // namespace fieldstack::cloud::s3
