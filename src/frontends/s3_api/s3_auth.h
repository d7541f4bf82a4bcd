#pragma once

// SigV4 verification for the box's S3 API: the Authorization header, presigned URLs, and
// aws-chunked bodies (signed chunks, unsigned chunks, trailing checksums and their signature).
// The rules mirror the signer in cloud/s3/sigv4 (docs: "Signature Version 4 signing process",
// "sigv4-streaming" and "sigv4-streaming-trailers").
//
// Pure functions and a decoder over a byte source, so the fuzzer (s3_fuzz.cc) can drive them.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "frontends/objects/objects.h"

namespace fieldstack::frontends::s3_api {

class ChunkHasher;

// An S3 error: HTTP status, S3 code ("SignatureDoesNotMatch") and message.
struct S3Error {
  int http = 0;
  std::string code;
  std::string message;
  bool set() const { return http != 0; }
};

// Query parameters, decoded (a name without '=' has an empty value; the last repeat wins).
std::map<std::string, std::string> ParseQuery(std::string_view query);

struct SigV4Request {
  std::string method;
  std::string path;   // as sent (percent-encoded)
  std::string query;  // as sent, without '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::string Header(std::string_view lower_name) const;  // "" when absent
};

struct SigV4Identity {
  const objects::AccessKey* key = nullptr;
  std::string signing_key;   // raw
  std::string amz_date;      // 20261127T010203Z
  std::string scope;         // 20261127/us-east-1/s3/aws4_request
  std::string signature;     // hex: the seed signature of a chunked body
  std::string payload_hash;  // x-amz-content-sha256 ("UNSIGNED-PAYLOAD" for presigned URLs)
  bool presigned = false;
};

inline constexpr int64_t kMaxSkewNs = 15LL * 60 * 1000000000;

// Verifies the request's signature against `keys`. On failure returns false and sets `err`
// (AccessDenied for anonymous requests, InvalidAccessKeyId, SignatureDoesNotMatch,
// RequestTimeTooSkewed, AccessDenied "Request has expired", AuthorizationHeaderMalformed,
// AuthorizationQueryParametersError).
bool VerifySigV4(const SigV4Request& req, const std::vector<objects::AccessKey>& keys,
                 int64_t now_ns, SigV4Identity* out, S3Error* err);

// Decodes an aws-chunked body pulled from `raw` (0 at its end). `signed_chunks`: each chunk
// carries a chunk-signature chained from the seed signature; `trailer`: trailing headers
// follow the last chunk (signed with x-amz-trailer-signature when chunks are signed).
// Errors are InvalidArgument with a message; the caller maps them to S3 codes
// (SignatureDoesNotMatch for a bad signature: the message starts with "signature").
class AwsChunkedDecoder {
 public:
  using Raw = std::function<Result<size_t>(std::span<uint8_t>)>;
  AwsChunkedDecoder(Raw raw, bool signed_chunks, bool trailer, const SigV4Identity* id);
  ~AwsChunkedDecoder();

  // Fills up to out.size() decoded bytes; 0 once the body and its trailers are read.
  Result<size_t> Read(std::span<uint8_t> out);
  // Trailing headers (lower-case names), once Read returned 0.
  const std::map<std::string, std::string>& trailers() const { return trailers_; }
  uint64_t decoded_bytes() const { return decoded_; }

 private:
  Result<std::string> ReadLine();
  Result<size_t> Fill();
  Status StartChunk();
  Status EndChunk();
  Status ReadTrailers();
  Status CheckChunkSignature(const std::string& data_hash_hex);

  Raw raw_;
  bool signed_;
  bool trailer_;
  const SigV4Identity* id_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  bool raw_end_ = false;
  enum class State { kHeader, kData, kDone } state_ = State::kHeader;
  uint64_t chunk_left_ = 0;
  std::string chunk_sig_;
  std::string prev_sig_;
  bool last_chunk_ = false;
  std::unique_ptr<ChunkHasher> hasher_;
  std::map<std::string, std::string> trailers_;
  uint64_t decoded_ = 0;
};

}  // namespace fieldstack::frontends::s3_api
