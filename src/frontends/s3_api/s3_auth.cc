#include "frontends/s3_api/s3_auth.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include "cloud/http_client.h"
#include "cloud/s3/sigv4.h"
#include "common/clock.h"
#include "crypto/hash.h"
#include "crypto/key_store.h"

namespace fieldstack::frontends::s3_api {

namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";
constexpr size_t kMaxLine = 4096;
constexpr uint64_t kMaxChunk = 64ull << 20;
const std::string kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EqualHex(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

S3Error Err(int http, std::string code, std::string message) {
  return {http, std::move(code), std::move(message)};
}

// The query without X-Amz-Signature (presigned URLs sign everything else).
std::string QueryWithoutSignature(std::string_view query) {
  std::string out;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    if (!kv.starts_with("X-Amz-Signature=") && kv != "X-Amz-Signature") {
      if (!out.empty()) out += '&';
      out += kv;
    }
    pos = amp + 1;
  }
  return out;
}

struct Credential {
  std::string key_id, date, region, service, terminator;
};

bool ParseCredential(std::string_view text, Credential* c) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    size_t slash = text.find('/', pos);
    parts.emplace_back(text.substr(pos, slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  if (parts.size() != 5) return false;
  *c = {parts[0], parts[1], parts[2], parts[3], parts[4]};
  return c->date.size() == 8 && c->service == "s3" && c->terminator == "aws4_request";
}

std::string CanonicalHeaders(const SigV4Request& req, const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    std::string value;
    bool first = true;
    for (const auto& [k, v] : req.headers) {
      if (Lower(k) != name) continue;
      if (!first) value += ',';
      value += cloud::s3::CanonicalHeaderValue(v);
      first = false;
    }
    out += name + ":" + value + "\n";
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    size_t eq = kv.find('=');
    out[cloud::UrlDecode(kv.substr(0, eq))] =
        eq == std::string_view::npos ? "" : cloud::UrlDecode(kv.substr(eq + 1));
    pos = amp + 1;
  }
  return out;
}

std::string SigV4Request::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (Lower(k) == lower_name) return v;
  }
  return "";
}

bool VerifySigV4(const SigV4Request& req, const std::vector<objects::AccessKey>& keys,
                 int64_t now_ns, SigV4Identity* out, S3Error* err) {
  std::string auth = req.Header("authorization");
  auto params = ParseQuery(req.query);
  bool presigned = params.count("X-Amz-Signature") != 0 || params.count("X-Amz-Algorithm") != 0;
  std::string credential, signed_headers, signature, amz_date;
  int64_t expires_s = 0;
  if (!auth.empty()) {
    if (auth.starts_with("AWS ")) {
      *err = Err(400, "InvalidRequest",
                 "Signature Version 2 is not supported; use AWS4-HMAC-SHA256 (SigV4)");
      return false;
    }
    if (!auth.starts_with(std::string(kAlgorithm) + " ")) {
      *err = Err(400, "AuthorizationHeaderMalformed", "unsupported authorization algorithm");
      return false;
    }
    std::string_view rest = std::string_view(auth).substr(sizeof(kAlgorithm) - 1 + 1);
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view part = rest.substr(0, comma);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      size_t eq = part.find('=');
      if (eq != std::string_view::npos) {
        std::string_view k = part.substr(0, eq), v = part.substr(eq + 1);
        if (k == "Credential") credential = v;
        if (k == "SignedHeaders") signed_headers = v;
        if (k == "Signature") signature = v;
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    amz_date = req.Header("x-amz-date");
    if (amz_date.empty()) {
      std::string date = req.Header("date");
      int64_t t = ParseUtc(date, "%a, %d %b %Y %H:%M:%S GMT");
      if (t != 0) amz_date = cloud::s3::AmzDate(t);
    }
    out->payload_hash = req.Header("x-amz-content-sha256");
    if (out->payload_hash.empty()) {
      *err = Err(400, "InvalidRequest", "missing required header x-amz-content-sha256");
      return false;
    }
  } else if (presigned) {
    if (params["X-Amz-Algorithm"] != kAlgorithm) {
      *err =
          Err(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm must be AWS4-HMAC-SHA256");
      return false;
    }
    credential = params["X-Amz-Credential"];
    signed_headers = params["X-Amz-SignedHeaders"];
    signature = params["X-Amz-Signature"];
    amz_date = params["X-Amz-Date"];
    const std::string& ex = params["X-Amz-Expires"];
    if (ex.empty() || ex.size() > 7 ||
        !std::all_of(ex.begin(), ex.end(), [](char c) { return std::isdigit(c); })) {
      *err = Err(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be a number");
      return false;
    }
    expires_s = std::stoll(ex);
    if (expires_s > 604800) {
      *err = Err(400, "AuthorizationQueryParametersError",
                 "X-Amz-Expires must be less than a week (in seconds); that is, the given "
                 "X-Amz-Expires must be less than 604800 seconds");
      return false;
    }
    out->payload_hash = "UNSIGNED-PAYLOAD";
  } else {
    *err = Err(403, "AccessDenied", "anonymous access is not allowed; sign the request (SigV4)");
    return false;
  }
  Credential cred;
  if (!ParseCredential(credential, &cred) || signed_headers.empty() || signature.empty()) {
    *err = Err(presigned && auth.empty() ? 400 : 400,
               presigned && auth.empty() ? "AuthorizationQueryParametersError"
                                         : "AuthorizationHeaderMalformed",
               "the authorization is missing Credential, SignedHeaders or Signature, or its "
               "credential scope is not <key>/<date>/<region>/s3/aws4_request");
    return false;
  }
  const objects::AccessKey* key = nullptr;
  for (const objects::AccessKey& k : keys) {
    if (k.id == cred.key_id) key = &k;
  }
  if (key == nullptr) {
    *err = Err(403, "InvalidAccessKeyId",
               "The AWS Access Key Id you provided does not exist in our records.");
    return false;
  }
  int64_t when = amz_date.size() == 16 ? ParseUtc(amz_date, "%Y%m%dT%H%M%SZ") : 0;
  if (when == 0 || amz_date.substr(0, 8) != cred.date) {
    *err = Err(403, "AccessDenied", "missing or malformed request date (x-amz-date)");
    return false;
  }
  if (presigned && auth.empty()) {
    if (now_ns > when + expires_s * 1'000'000'000 || now_ns < when - kMaxSkewNs) {
      *err = Err(403, "AccessDenied", "Request has expired");
      return false;
    }
  } else if (std::llabs(now_ns - when) > kMaxSkewNs) {
    *err = Err(403, "RequestTimeTooSkewed",
               "The difference between the request time and the server's time is too large.");
    return false;
  }
  std::vector<std::string> names;
  {
    std::string_view sh = signed_headers;
    while (!sh.empty()) {
      size_t semi = sh.find(';');
      names.push_back(Lower(sh.substr(0, semi)));
      if (semi == std::string_view::npos) break;
      sh.remove_prefix(semi + 1);
    }
  }
  if (std::find(names.begin(), names.end(), "host") == names.end()) {
    *err = Err(400, "AuthorizationHeaderMalformed", "the host header must be signed");
    return false;
  }
  // x-amz-* headers change what a request does (a copy source, metadata, a checksum): one that
  // is not signed could have been added by whoever holds a presigned URL or a captured request.
  for (const auto& [k, v] : req.headers) {
    std::string name = Lower(k);
    if (!name.starts_with("x-amz-") || name == "x-amz-user-agent") continue;
    if (presigned && auth.empty() && name == "x-amz-content-sha256") continue;
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      *err = Err(403, "AccessDenied",
                 "There were headers present in the request which were not signed: " + name);
      return false;
    }
  }
  std::string query = presigned && auth.empty() ? QueryWithoutSignature(req.query) : req.query;
  std::string canonical = req.method + "\n" + (req.path.empty() ? "/" : req.path) + "\n" +
                          cloud::s3::CanonicalQueryOf(query) + "\n" + CanonicalHeaders(req, names) +
                          "\n" + signed_headers + "\n" + out->payload_hash;
  std::string scope = cred.date + "/" + cred.region + "/s3/aws4_request";
  std::string sts = std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope + "\n" +
                    crypto::ToHex(crypto::Digest::Sha256(canonical));
  std::string signing_key = cloud::s3::SigningKey(key->secret, cred.date, cred.region);
  std::string want = crypto::ToHex(crypto::HmacSha256(signing_key, sts));
  if (!EqualHex(want, Lower(signature))) {
    *err = Err(403, "SignatureDoesNotMatch",
               "The request signature we calculated does not match the signature you provided. "
               "Check your key and signing method.");
    return false;
  }
  out->key = key;
  out->signing_key = std::move(signing_key);
  out->amz_date = amz_date;
  out->scope = scope;
  out->signature = want;
  out->presigned = presigned && auth.empty();
  return true;
}

// --- aws-chunked ---

class ChunkHasher {
 public:
  crypto::Digest sha{crypto::Digest::Kind::kSha256};
};

AwsChunkedDecoder::AwsChunkedDecoder(Raw raw, bool signed_chunks, bool trailer,
                                     const SigV4Identity* id)
    : raw_(std::move(raw)), signed_(signed_chunks), trailer_(trailer), id_(id), buf_(64 * 1024) {
  if (signed_ && id_ != nullptr) prev_sig_ = id_->signature;
}

AwsChunkedDecoder::~AwsChunkedDecoder() = default;

Result<size_t> AwsChunkedDecoder::Fill() {
  if (pos_ > 0 && pos_ == len_) pos_ = len_ = 0;
  if (len_ == buf_.size() && pos_ > 0) {
    std::copy(buf_.begin() + pos_, buf_.begin() + len_, buf_.begin());
    len_ -= pos_;
    pos_ = 0;
  }
  if (len_ == buf_.size()) return InvalidArgumentError("aws-chunked line too long");
  if (raw_end_) return size_t{0};
  FS_ASSIGN_OR_RETURN(size_t n, raw_(std::span(buf_).subspan(len_)));
  if (n == 0) raw_end_ = true;
  len_ += n;
  return n;
}

Result<std::string> AwsChunkedDecoder::ReadLine() {
  for (;;) {
    std::string_view have(reinterpret_cast<const char*>(buf_.data()) + pos_, len_ - pos_);
    size_t crlf = have.find("\r\n");
    if (crlf != std::string_view::npos) {
      std::string line(have.substr(0, crlf));
      pos_ += crlf + 2;
      return line;
    }
    if (have.size() > kMaxLine) return InvalidArgumentError("aws-chunked line too long");
    FS_ASSIGN_OR_RETURN(size_t n, Fill());
    if (n == 0) return InvalidArgumentError("aws-chunked body ended in the middle of a line");
  }
}

Status AwsChunkedDecoder::StartChunk() {
  FS_ASSIGN_OR_RETURN(std::string line, ReadLine());
  std::string_view l = line;
  size_t semi = l.find(';');
  std::string_view size_hex = l.substr(0, semi);
  if (size_hex.empty() || size_hex.size() > 16 ||
      !std::all_of(size_hex.begin(), size_hex.end(), [](char c) { return std::isxdigit(c); })) {
    return InvalidArgumentError("aws-chunked: bad chunk size '" +
                                std::string(size_hex.substr(0, 32)) + "'");
  }
  chunk_left_ = std::stoull(std::string(size_hex), nullptr, 16);
  if (chunk_left_ > kMaxChunk) return InvalidArgumentError("aws-chunked: chunk larger than 64 MiB");
  chunk_sig_.clear();
  if (semi != std::string_view::npos) {
    std::string_view ext = l.substr(semi + 1);
    if (ext.starts_with("chunk-signature=")) chunk_sig_ = ext.substr(16);
  }
  if (signed_ && chunk_sig_.empty()) {
    return InvalidArgumentError("signature: aws-chunked chunk without a chunk-signature");
  }
  last_chunk_ = chunk_left_ == 0;
  hasher_ = std::make_unique<ChunkHasher>();
  state_ = State::kData;
  return Status::Ok();
}

Status AwsChunkedDecoder::CheckChunkSignature(const std::string& data_hash_hex) {
  if (!signed_) return Status::Ok();
  std::string sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + id_->amz_date + "\n" + id_->scope + "\n" +
                    prev_sig_ + "\n" + kEmptySha256 + "\n" + data_hash_hex;
  std::string want = crypto::ToHex(crypto::HmacSha256(id_->signing_key, sts));
  if (!EqualHex(want, Lower(chunk_sig_))) {
    return InvalidArgumentError("signature of an aws-chunked chunk does not match");
  }
  prev_sig_ = want;
  return Status::Ok();
}

Status AwsChunkedDecoder::EndChunk() {
  FS_RETURN_IF_ERROR(CheckChunkSignature(crypto::ToHex(hasher_->sha.Final())));
  if (!last_chunk_) {
    FS_ASSIGN_OR_RETURN(std::string crlf, ReadLine());
    if (!crlf.empty()) return InvalidArgumentError("aws-chunked: chunk data longer than its size");
    state_ = State::kHeader;
    return Status::Ok();
  }
  if (trailer_) {
    FS_RETURN_IF_ERROR(ReadTrailers());
  } else {
    FS_ASSIGN_OR_RETURN(std::string end, ReadLine());
    if (!end.empty()) return InvalidArgumentError("aws-chunked: data after the last chunk");
  }
  // Nothing may follow.
  if (pos_ != len_) return InvalidArgumentError("aws-chunked: data after the end of the body");
  FS_ASSIGN_OR_RETURN(size_t more, Fill());
  if (more != 0) return InvalidArgumentError("aws-chunked: data after the end of the body");
  state_ = State::kDone;
  return Status::Ok();
}

Status AwsChunkedDecoder::ReadTrailers() {
  std::string canonical;
  std::string signature;
  for (int i = 0;; ++i) {
    if (i > 16) return InvalidArgumentError("aws-chunked: too many trailing headers");
    FS_ASSIGN_OR_RETURN(std::string line, ReadLine());
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos) return InvalidArgumentError("aws-chunked: malformed trailer");
    std::string name = Lower(line.substr(0, colon));
    std::string value = cloud::s3::CanonicalHeaderValue(line.substr(colon + 1));
    if (name == "x-amz-trailer-signature") {
      signature = value;
      continue;
    }
    canonical += name + ":" + value + "\n";
    trailers_[name] = value;
  }
  if (!signed_) return Status::Ok();
  if (signature.empty())
    return InvalidArgumentError("signature: trailer without x-amz-trailer-signature");
  std::string sts = "AWS4-HMAC-SHA256-TRAILER\n" + id_->amz_date + "\n" + id_->scope + "\n" +
                    prev_sig_ + "\n" + crypto::ToHex(crypto::Digest::Sha256(canonical));
  std::string want = crypto::ToHex(crypto::HmacSha256(id_->signing_key, sts));
  if (!EqualHex(want, Lower(signature))) {
    return InvalidArgumentError("signature of the aws-chunked trailer does not match");
  }
  return Status::Ok();
}

Result<size_t> AwsChunkedDecoder::Read(std::span<uint8_t> out) {
  for (;;) {
    if (state_ == State::kDone || out.empty()) return size_t{0};
    if (state_ == State::kHeader) {
      FS_RETURN_IF_ERROR(StartChunk());
      continue;
    }
    if (chunk_left_ == 0) {
      FS_RETURN_IF_ERROR(EndChunk());
      continue;
    }
    if (pos_ == len_) {
      FS_ASSIGN_OR_RETURN(size_t n, Fill());
      if (n == 0) return InvalidArgumentError("aws-chunked body ended inside a chunk");
    }
    size_t n = std::min<uint64_t>({chunk_left_, out.size(), len_ - pos_});
    std::copy(buf_.begin() + pos_, buf_.begin() + pos_ + n, out.begin());
    pos_ += n;
    chunk_left_ -= n;
    if (signed_) hasher_->sha.Update(out.first(n));
    decoded_ += n;
    return n;
  }
}

}  // namespace fieldstack::frontends::s3_api
