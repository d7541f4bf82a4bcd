#pragma once

// The pure parts of the Blob API that read untrusted input without touching the Store: URL and
// query decoding, Shared Key string-to-sign and verification, SAS verification and Put Block
// List XML parsing. Kept apart from the handler so that blob_fuzz.cc can drive them directly.
//
// Shared Key follows "Authorize with Shared Key" for x-ms-version 2009-09-19 and later (the
// string-to-sign is listed in docs/blob_api.md). Two client quirks are accepted as well, each
// only as an alternative string: @azure/storage-blob puts Content-Language before
// Content-Encoding, and it sorts x-ms- headers in .NET culture order (hyphens ignored first)
// where Python clients sort by bytes.
//
// SAS: service SAS (sr=c or b) in the layouts of signedVersion 2015-04-05, 2018-11-09 and
// 2020-12-06 (still current), and account SAS before and from 2020-12-06.
//
// Thread safety: free functions without shared state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fieldstack::frontends::blob_api {

// Percent-decodes `in` ("+" stays "+"). nullopt for a bad escape.
std::optional<std::string> UrlDecode(std::string_view in);

// A query string split into decoded (name, value) pairs, in the order sent. Names keep their
// case. nullopt when an escape is malformed.
using QueryParams = std::vector<std::pair<std::string, std::string>>;
std::optional<QueryParams> ParseQuery(std::string_view query);
// The first value of `name` (case-insensitive), or nullopt.
std::optional<std::string> QueryValue(const QueryParams& q, std::string_view name);

// The parts of a request that Shared Key signs.
struct SignedRequest {
  std::string method;  // "PUT"
  std::string target;  // path and query exactly as sent: "/acct/c/b?comp=block&blockid=..."
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, any case
};

// The strings a client may have signed for `req` against `account` (first the one the Azure
// docs define, then the client variants above when they differ). Empty when the target has a
// malformed escape.
std::vector<std::string> SharedKeyStringsToSign(const SignedRequest& req, std::string_view account);

// Whether `signature_b64` is HMAC-SHA256 under `key` (raw bytes) of one of the strings above.
// Compares in constant time.
bool VerifySharedKey(const SignedRequest& req, std::string_view account, std::string_view key,
                     std::string_view signature_b64);

// "SharedKey <account>:<signature>" split; nullopt for any other form.
struct SharedKeyHeader {
  std::string account;
  std::string signature;
};
std::optional<SharedKeyHeader> ParseSharedKeyHeader(std::string_view authorization);

// ISO 8601 UTC as SAS and XML use it: "2026-01-01", "2026-01-01T10:00Z",
// "2026-01-01T10:00:00Z", "2026-01-01T10:00:00.1234567Z". Nanoseconds since the epoch, or
// nullopt.
std::optional<int64_t> ParseIso8601(std::string_view text);

// What a verified SAS allows.
struct SasGrant {
  bool account_sas = false;
  std::string permissions;  // "racwdl...", as signed
  // Service SAS: the container it is for, and the blob when sr=b ("" for sr=c).
  std::string container;
  std::string blob;
  // Account SAS: resource types "s", "c", "o".
  std::string resource_types;
  bool Allows(char permission) const { return permissions.find(permission) != std::string::npos; }
};

// Verifies the SAS in `query` for a request on `account`/`container`/`blob` (decoded; empty
// for service or container level requests) at `now_ns`, signed with `key` (raw bytes), from
// client address `peer` over HTTPS or not. Unauthenticated with a reason when the signature
// does not match, the SAS is expired or not yet valid, a field is missing or malformed, or it
// covers another resource, service, protocol or address; the caller checks permissions with
// SasGrant::Allows and resource scope.
Result<SasGrant> VerifySas(const QueryParams& query, std::string_view account,
                           std::string_view container, std::string_view blob, std::string_view key,
                           int64_t now_ns, bool https, std::string_view peer);

// One entry of a Put Block List body.
struct BlockRef {
  enum class From { kCommitted, kUncommitted, kLatest };
  From from = From::kLatest;
  std::string id;  // decoded block id bytes
};

inline constexpr size_t kMaxBlockIdBytes = 64;
inline constexpr size_t kMaxBlocksPerBlob = 50000;
inline constexpr size_t kMaxBlockListBytes = 8 << 20;

// Decodes padded standard base64; nullopt for anything else.
std::optional<std::string> DecodeBase64Strict(std::string_view in);

// Decodes a base64 block id. InvalidArgument when it is not base64 or decodes to nothing or to
// more than 64 bytes.
Result<std::string> DecodeBlockId(std::string_view base64);

// Parses a <BlockList> document. InvalidArgument("xml: ...") for malformed XML or a wrong root,
// InvalidArgument("block: ...") for a bad or inconsistent block id or more than 50,000 blocks.
Result<std::vector<BlockRef>> ParseBlockList(std::string_view xml);

// Lower-case hex of raw bytes.
std::string Hex(std::string_view raw);

}  // namespace fieldstack::frontends::blob_api
