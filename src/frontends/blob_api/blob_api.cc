#include "frontends/blob_api/blob_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <random>

#include "crypto/hash.h"
#include "frontends/blob_api/blob_auth.h"
#include "frontends/blob_api/errors.h"

namespace fieldstack::frontends::blob_api {

namespace beast_http = http::beast_http;
using objects::ObjectInfo;
using objects::ObjectMeta;

namespace {

constexpr char kRfc1123[] = "%a, %d %b %Y %H:%M:%S GMT";
constexpr char kDefaultVersion[] = "2021-08-06";
constexpr char kXmlHead[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
constexpr size_t kPieceBytes = 1 << 20;
constexpr size_t kMaxMetadataBytes = 8 * 1024;
// A committed block list longer than this goes to a staged file instead of the object's
// metadata (whose xattr is limited to 64 KiB).
constexpr size_t kMaxInlineBlockList = 32 * 1024;
constexpr char kBlocksKey[] = "blob.blocks";            // "<base64 id>:<size>,..."
constexpr char kBlockListFileKey[] = "blob.blocklist";  // token of a staged list file
constexpr char kIdLenXattr[] = "fieldstack.blob.idlen";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Rfc1123(int64_t ns) { return FormatUtc(ns, kRfc1123); }

std::string Sha256Hex(std::string_view s) { return Hex(crypto::Digest::Sha256(s)); }

std::string Field(const http::RequestHeader& h, std::string_view name) {
  auto it = h.find(boost::beast::string_view(name.data(), name.size()));
  return it == h.end() ? std::string() : std::string(it->value());
}

bool HasField(const http::RequestHeader& h, std::string_view name) {
  return h.find(boost::beast::string_view(name.data(), name.size())) != h.end();
}

// Azure container names: 3-63 of [a-z0-9-], starting with a letter or digit, no "--".
bool ValidContainerName(std::string_view n) {
  if (n.size() < 3 || n.size() > 63 || n.front() == '-' || n.back() == '-') return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
    if (c == '-' && i > 0 && n[i - 1] == '-') return false;
  }
  return true;
}

// Metadata names are C# identifiers.
bool ValidMetaName(std::string_view n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

struct CommittedBlock {
  std::string id;  // raw
  uint64_t size = 0;
};

std::string EncodeBlocks(const std::vector<CommittedBlock>& blocks) {
  std::string out;
  for (const auto& b : blocks) {
    if (!out.empty()) out += ',';
    out += crypto::Base64(b.id) + ":" + std::to_string(b.size);
  }
  return out;
}

std::vector<CommittedBlock> DecodeBlocks(std::string_view text) {
  std::vector<CommittedBlock> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    size_t colon = item.find(':');
    if (colon == std::string_view::npos) return {};
    CommittedBlock b;
    b.id = DecodeBase64Strict(item.substr(0, colon)).value_or("");
    b.size = std::strtoull(std::string(item.substr(colon + 1)).c_str(), nullptr, 10);
    out.push_back(std::move(b));
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string RandomHex(size_t bytes) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string raw(bytes, '\0');
  for (auto& c : raw) c = static_cast<char>(rng());
  return Hex(raw);
}

// A request body as an objects::Source that checks the client's Content-MD5 and
// x-ms-content-crc64 at its end (failing the write, so nothing becomes visible) and bounds its
// size.
class CheckedBody {
 public:
  enum class Failure { kNone, kMd5, kCrc64, kTooLarge, kBody };

  CheckedBody(http::Exchange& ex, std::string md5_raw, std::string crc64_raw, uint64_t limit)
      : ex_(ex), md5_raw_(std::move(md5_raw)), crc64_raw_(std::move(crc64_raw)), limit_(limit) {}

  objects::Source AsSource() {
    return [this](std::span<uint8_t> out) { return Read(out); };
  }
  Failure failure() const { return failure_; }
  uint64_t size() const { return size_; }
  const Status& body_status() const { return body_status_; }

 private:
  Result<size_t> Read(std::span<uint8_t> out) {
    if (done_) return size_t{0};
    auto n = ex_.ReadBody(out);
    if (!n.ok()) {
      failure_ = Failure::kBody;
      body_status_ = n.status();
      return n.status();
    }
    if (*n == 0) {
      done_ = true;
      if (!md5_raw_.empty() && md5_.Final() != md5_raw_) {
        failure_ = Failure::kMd5;
        return InvalidArgumentError("Content-MD5 mismatch");
      }
      if (!crc64_raw_.empty()) {
        auto wire = crypto::Crc64Nvme::ToWire(crc_.Final());
        if (std::string(reinterpret_cast<const char*>(wire.data()), wire.size()) != crc64_raw_) {
          failure_ = Failure::kCrc64;
          return InvalidArgumentError("x-ms-content-crc64 mismatch");
        }
      }
      return size_t{0};
    }
    size_ += *n;
    if (size_ > limit_) {
      failure_ = Failure::kTooLarge;
      return InvalidArgumentError("body too large");
    }
    std::span<const uint8_t> got(out.data(), *n);
    if (!md5_raw_.empty()) md5_.Update(got);
    if (!crc64_raw_.empty()) crc_.Update(got);
    return *n;
  }

  http::Exchange& ex_;
  std::string md5_raw_;
  std::string crc64_raw_;
  uint64_t limit_;
  crypto::Digest md5_{crypto::Digest::Kind::kMd5};
  crypto::Crc64Nvme crc_;
  uint64_t size_ = 0;
  bool done_ = false;
  Failure failure_ = Failure::kNone;
  Status body_status_;
};

}  // namespace

struct BlobApi::Request {
  http::Exchange& ex;
  const http::RequestHeader& h;
  std::string method;
  std::string target;
  std::string account, container, blob;  // decoded
  QueryParams query;
  std::string comp, restype;
  std::string request_id;
  std::string version;
  const objects::AccessKey* key = nullptr;
  std::optional<SasGrant> sas;
  store::ShareInfo share;

  std::string Key() const { return container + "/" + blob; }
  std::string Q(std::string_view name) const { return QueryValue(query, name).value_or(""); }
  bool head() const { return method == "HEAD"; }
  // The staged folder of the uncommitted blocks of this blob.
  std::string BlocksDir() const { return "blocks/" + Sha256Hex(container) + "/" + Sha256Hex(blob); }
  std::string BlockListsDir() const {
    return "blocklists/" + Sha256Hex(container) + "/" + Sha256Hex(blob);
  }
};

namespace {

using Request = BlobApi::Request;

http::Response NewResponse(const Request& r, int status) {
  http::Response res{static_cast<beast_http::status>(status), r.h.version()};
  res.set(beast_http::field::server, "fieldstack-blob");
  res.set("x-ms-request-id", r.request_id);
  res.set("x-ms-version", r.version);
  res.set(beast_http::field::date, Rfc1123(RealClock::Get().NowUnixNanos()));
  std::string client_id = Field(r.h, "x-ms-client-request-id");
  if (!client_id.empty()) res.set("x-ms-client-request-id", client_id);
  std::string connection = Lower(Field(r.h, "Connection"));
  res.keep_alive(r.h.version() >= 11 ? connection.find("close") == std::string::npos
                                     : connection.find("keep-alive") != std::string::npos);
  return res;
}

// Sends `res` with `body`; HEAD responses carry the length but no body.
void Send(Request& r, http::Response res, std::string body = "",
          std::string_view content_type = "") {
  if (!content_type.empty()) res.set(beast_http::field::content_type, std::string(content_type));
  if (r.head()) {
    res.content_length(body.size());
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  (void)r.ex.Respond(std::move(res));
}

void Fail(Request& r, const ApiError& e) {
  if (r.ex.responded()) return;
  http::Response res = NewResponse(r, e.http_status);
  res.set("x-ms-error-code", e.code);
  std::string time = FormatRfc3339(RealClock::Get().NowUnixNanos());
  Send(r, std::move(res), ErrorXml(e, r.request_id, time), "application/xml");
}

void Fail(Request& r, int status, std::string code, std::string message) {
  Fail(r, ApiError{status, std::move(code), std::move(message)});
}

std::string QuotedEtag(const ObjectInfo& info) { return "\"" + info.ETag() + "\""; }

// The MD5 of the whole blob as Content-MD5 shows it, when known.
std::string ContentMd5(const ObjectInfo& info) {
  if (!info.meta_current()) return "";
  if (!info.meta.content_md5.empty()) return info.meta.content_md5;
  const std::string& e = info.meta.etag;
  if (e.size() != 32 || !std::all_of(e.begin(), e.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      })) {
    return "";
  }
  return crypto::Base64(FromHex(e).value_or(""));
}

// Content headers, metadata and copy state of a blob, for Get Blob and Get Blob Properties.
template <typename Head>
void SetBlobHeaders(Head& res, const ObjectInfo& info) {
  const ObjectMeta& m = info.meta;
  res.set(beast_http::field::last_modified, Rfc1123(info.attr.mtime_ns));
  res.set("x-ms-creation-time", Rfc1123(info.attr.ctime_ns));
  res.set(beast_http::field::etag, QuotedEtag(info));
  res.set(beast_http::field::content_type,
          m.content_type.empty() ? "application/octet-stream" : m.content_type);
  if (!m.content_encoding.empty()) res.set(beast_http::field::content_encoding, m.content_encoding);
  if (!m.content_language.empty()) res.set(beast_http::field::content_language, m.content_language);
  if (!m.content_disposition.empty()) {
    res.set(beast_http::field::content_disposition, m.content_disposition);
  }
  if (!m.cache_control.empty()) res.set(beast_http::field::cache_control, m.cache_control);
  res.set(beast_http::field::accept_ranges, "bytes");
  res.set("x-ms-blob-type", "BlockBlob");
  res.set("x-ms-lease-status", "unlocked");
  res.set("x-ms-lease-state", "available");
  res.set("x-ms-server-encrypted", "true");
  for (const auto& [k, v] : m.user) res.set("x-ms-meta-" + k, v);
  auto extra = [&](const char* key) {
    auto it = m.extra.find(key);
    return it == m.extra.end() ? std::string() : it->second;
  };
  if (!extra("blob.copy_id").empty()) {
    res.set("x-ms-copy-id", extra("blob.copy_id"));
    res.set("x-ms-copy-source", extra("blob.copy_source"));
    res.set("x-ms-copy-status", "success");
    res.set("x-ms-copy-progress", extra("blob.copy_progress"));
    res.set("x-ms-copy-completion-time", extra("blob.copy_time"));
  }
}

// Standard and user metadata from Put Blob / Put Block List / Copy Blob headers.
// InvalidArgument naming the header for bad metadata.
Status MetaFromHeaders(const http::RequestHeader& h, bool put_blob, ObjectMeta* meta) {
  meta->content_type = Field(h, "x-ms-blob-content-type");
  if (meta->content_type.empty() && put_blob) meta->content_type = Field(h, "Content-Type");
  if (meta->content_type.empty()) meta->content_type = "application/octet-stream";
  meta->content_encoding = Field(h, "x-ms-blob-content-encoding");
  if (meta->content_encoding.empty() && put_blob)
    meta->content_encoding = Field(h, "Content-Encoding");
  meta->content_language = Field(h, "x-ms-blob-content-language");
  if (meta->content_language.empty() && put_blob)
    meta->content_language = Field(h, "Content-Language");
  meta->content_disposition = Field(h, "x-ms-blob-content-disposition");
  meta->cache_control = Field(h, "x-ms-blob-cache-control");
  if (meta->cache_control.empty() && put_blob) meta->cache_control = Field(h, "Cache-Control");
  meta->content_md5 = Field(h, "x-ms-blob-content-md5");
  if (!meta->content_md5.empty() &&
      DecodeBase64Strict(meta->content_md5).value_or("").size() != 16) {
    return InvalidArgumentError("x-ms-blob-content-md5");
  }
  return Status::Ok();
}

// x-ms-meta-* headers; InvalidArgument for a name that is not an identifier or over 8 KiB.
Result<std::map<std::string, std::string>> UserMeta(const http::RequestHeader& h) {
  std::map<std::string, std::string> out;
  size_t total = 0;
  for (const auto& f : h) {
    std::string name = Lower(std::string(f.name_string()));
    if (!name.starts_with("x-ms-meta-")) continue;
    std::string key = name.substr(10);
    if (!ValidMetaName(key)) return InvalidArgumentError("metadata name '" + key + "'");
    total += key.size() + f.value().size();
    out[key] = std::string(f.value());
  }
  if (total > kMaxMetadataBytes) return ResourceExhaustedError("metadata over 8 KiB");
  return out;
}

// The content headers and user metadata of a write into `meta`; responds 400 and returns
// false when they are invalid.
bool MetaOf(Request& r, bool put_blob, ObjectMeta* meta) {
  Status ms = MetaFromHeaders(r.h, put_blob, meta);
  auto user = UserMeta(r.h);
  if (!ms.ok() || !user.ok()) {
    Fail(r, 400, ms.ok() ? "InvalidMetadata" : "InvalidHeaderValue",
         ms.ok() ? user.status().message() : ms.message());
    return false;
  }
  meta->user = std::move(*user);
  return true;
}

// Evaluates If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since against `info`
// (nullopt: no blob). Responds and returns false when the request must not proceed.
bool CheckConditions(Request& r, const std::optional<ObjectInfo>& info, bool write) {
  std::string if_match = Field(r.h, "If-Match");
  std::string if_none = Field(r.h, "If-None-Match");
  std::string if_mod = Field(r.h, "If-Modified-Since");
  std::string if_unmod = Field(r.h, "If-Unmodified-Since");
  auto matches = [&](const std::string& list) {
    if (!info) return false;
    std::string etag = QuotedEtag(*info);
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      std::string item = list.substr(pos, comma - pos);
      while (!item.empty() && item.front() == ' ') item.erase(0, 1);
      while (!item.empty() && item.back() == ' ') item.pop_back();
      if (item == "*" || item == etag || "\"" + item + "\"" == etag) return true;
      pos = comma + 1;
    }
    return false;
  };
  if (!if_match.empty() && !matches(if_match)) {
    Fail(r, 412, "ConditionNotMet",
         "The condition specified using HTTP conditional header(s) is not met.");
    return false;
  }
  if (!if_none.empty() && info && matches(if_none)) {
    if (write && if_none == "*") {
      Fail(r, 409, "BlobAlreadyExists", "The specified blob already exists.");
    } else if (write) {
      Fail(r, 412, "ConditionNotMet",
           "The condition specified using HTTP conditional header(s) is not met.");
    } else {
      Send(r, NewResponse(r, 304));
    }
    return false;
  }
  int64_t mtime_s = info ? info->attr.mtime_ns / 1'000'000'000 : 0;
  if (!if_mod.empty() && info) {
    int64_t t = ParseUtc(if_mod, kRfc1123);
    if (t != 0 && mtime_s <= t / 1'000'000'000) {
      if (write) {
        Fail(r, 412, "ConditionNotMet",
             "The condition specified using HTTP conditional header(s) is not met.");
      } else {
        Send(r, NewResponse(r, 304));
      }
      return false;
    }
  }
  if (!if_unmod.empty() && info) {
    int64_t t = ParseUtc(if_unmod, kRfc1123);
    if (t != 0 && mtime_s > t / 1'000'000'000) {
      Fail(r, 412, "ConditionNotMet",
           "The condition specified using HTTP conditional header(s) is not met.");
      return false;
    }
  }
  return true;
}

// A source reading `segments` one after another; fails if one is shorter than recorded (its
// file changed since), so a wrong blob is never committed.
struct Segment {
  store::FileHandle* handle;
  uint64_t offset;
  uint64_t size;
};

objects::Source Concatenate(std::vector<Segment> segments) {
  struct State {
    std::vector<Segment> segs;
    size_t index = 0;
    uint64_t done = 0;
  };
  auto st = std::make_shared<State>();
  st->segs = std::move(segments);
  return [st](std::span<uint8_t> out) -> Result<size_t> {
    while (st->index < st->segs.size()) {
      Segment& s = st->segs[st->index];
      if (st->done == s.size) {
        ++st->index;
        st->done = 0;
        continue;
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), s.size - st->done));
      FS_ASSIGN_OR_RETURN(size_t n, s.handle->Read(s.offset + st->done, out.subspan(0, want)));
      if (n == 0) return FailedPreconditionError("a block changed while it was committed");
      st->done += n;
      return n;
    }
    return size_t{0};
  };
}

}  // namespace

BlobApi::BlobApi(objects::Objects& objects, std::vector<objects::AccessKey> keys,
                 BlobOptions options)
    : objects_(objects),
      keys_(std::move(keys)),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &RealClock::Get()) {}

void BlobApi::Handle(http::Exchange& ex) {
  const http::RequestHeader& h = ex.header();
  Request r{ex, h};
  r.method = std::string(h.method_string());
  r.target = std::string(h.target());
  uint64_t n = ++requests_;
  std::string id = RandomHex(12) + Hex(std::string(reinterpret_cast<const char*>(&n), 4));
  r.request_id = id.substr(0, 8) + "-" + id.substr(8, 4) + "-" + id.substr(12, 4) + "-" +
                 id.substr(16, 4) + "-" + id.substr(20, 12);
  r.version = Field(h, "x-ms-version");
  if (r.version.empty()) r.version = kDefaultVersion;

  size_t qpos = r.target.find('?');
  std::string path = r.target.substr(0, qpos);
  auto query = ParseQuery(qpos == std::string::npos ? "" : r.target.substr(qpos + 1));
  if (!query || path.empty() || path[0] != '/') {
    Fail(r, 400, "InvalidUri", "The requested URI does not represent any resource on the server.");
    return;
  }
  r.query = std::move(*query);
  r.comp = r.Q("comp");
  r.restype = r.Q("restype");
  // /<account>/<container>/<blob...>: account and container are single segments; the blob
  // name is the decoded rest.
  std::string_view rest = std::string_view(path).substr(1);
  size_t slash = rest.find('/');
  auto account = UrlDecode(rest.substr(0, slash));
  std::optional<std::string> container = std::string();
  std::optional<std::string> blob = std::string();
  if (slash != std::string_view::npos) {
    rest = rest.substr(slash + 1);
    slash = rest.find('/');
    container = UrlDecode(rest.substr(0, slash));
    if (slash != std::string_view::npos) blob = UrlDecode(rest.substr(slash + 1));
  }
  if (!account || !container || !blob || account->empty()) {
    Fail(r, 400, "InvalidUri", "The requested URI does not represent any resource on the server.");
    return;
  }
  r.account = std::move(*account);
  r.container = std::move(*container);
  r.blob = std::move(*blob);

  if (!Authenticate(r)) return;
  store::Store::SetThreadOrigin(
      store::Origin{true, 0, 0, 0, "blob:" + r.key->user + "@" + ex.peer()});
  auto share = objects_.Bucket(r.account);
  if (!share.ok()) {
    Fail(r, 404, "ResourceNotFound", "The specified account does not exist.");
    return;
  }
  r.share = *share;
  if (!r.container.empty() &&
      (r.container == objects::kStagingDir || r.container == "." || r.container == ".." ||
       r.container.find('\0') != std::string::npos || r.container.size() > store::kMaxNameBytes)) {
    Fail(r, 400, "InvalidResourceName", "The specified resource name contains invalid characters.");
    return;
  }
  if (!r.blob.empty()) {
    Status valid = objects::Objects::ValidKey(r.Key());
    if (!valid.ok()) {
      Fail(r, 400, "InvalidResourceName", "The specified blob name is invalid: " + valid.message());
      return;
    }
  }
  Dispatch(r);
  if (!ex.responded()) Fail(r, 500, "InternalError", "The server encountered an internal error.");
}

bool BlobApi::Authenticate(Request& r) {
  auto denied = [&](std::string why) {
    spdlog::info("blob: {} {} from {} refused: {}", r.method, r.account, r.ex.peer(), why);
    Fail(r, 403, "AuthenticationFailed",
         "Server failed to authenticate the request. Make sure the value of Authorization header "
         "is formed correctly including the signature. " +
             why);
    return false;
  };
  std::string authz = Field(r.h, "Authorization");
  if (!authz.empty()) {
    auto sk = ParseSharedKeyHeader(authz);
    if (!sk) return denied("Only SharedKey authorization is supported.");
    if (sk->account != r.account) return denied("The account in the signature is not the URL's.");
    std::string date = Field(r.h, "x-ms-date");
    if (date.empty()) date = Field(r.h, "Date");
    int64_t t = ParseUtc(date, kRfc1123);
    if (t == 0) return denied("The request has no valid x-ms-date or Date header.");
    int64_t skew_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(options_.max_clock_skew).count();
    if (std::llabs(clock_->NowUnixNanos() - t) > skew_ns) {
      return denied("Request date header too old or too far in the future.");
    }
    SignedRequest sreq{r.method, r.target, {}};
    for (const auto& f : r.h) {
      sreq.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    for (const auto& key : keys_) {
      if (!key.CanRead(r.account) && !key.CanWrite(r.account)) continue;
      std::string raw = DecodeBase64Strict(key.secret).value_or("");
      if (VerifySharedKey(sreq, r.account, raw, sk->signature)) {
        r.key = &key;
        return true;
      }
    }
    return denied("The signature does not match.");
  }
  if (QueryValue(r.query, "sig")) {
    std::string why = "The SAS does not match any key.";
    for (const auto& key : keys_) {
      if (!key.CanRead(r.account) && !key.CanWrite(r.account)) continue;
      std::string raw = DecodeBase64Strict(key.secret).value_or("");
      if (raw.empty()) continue;
      auto grant = VerifySas(r.query, r.account, r.container, r.blob, raw, clock_->NowUnixNanos(),
                             r.ex.secure(), r.ex.peer());
      if (grant.ok()) {
        r.key = &key;
        r.sas = std::move(*grant);
        return true;
      }
      if (grant.status().message() != "SAS signature does not match") {
        why = grant.status().message();
      }
    }
    return denied(why);
  }
  Fail(r, 401, "NoAuthenticationInformation",
       "Server failed to authenticate the request. Anonymous access is not allowed.");
  return false;
}

namespace {

enum class Need { kRead, kList, kWrite, kDelete, kCreate };
enum class Level { kService, kContainer, kObject };

// Whether the authenticated key (and SAS) may do `need` at `level`; responds 403 when not.
bool Authorize(Request& r, Need need, Level level) {
  bool write = need == Need::kWrite || need == Need::kDelete || need == Need::kCreate;
  if (write && !r.key->CanWrite(r.account)) {
    Fail(r, 403, "AuthorizationPermissionMismatch",
         "This request is not authorized to perform this operation using this permission.");
    return false;
  }
  if (!r.key->CanRead(r.account) && !r.key->CanWrite(r.account)) {
    Fail(r, 403, "AuthorizationPermissionMismatch",
         "This request is not authorized to perform this operation using this permission.");
    return false;
  }
  if (!r.sas) return true;
  const SasGrant& g = *r.sas;
  if (g.account_sas) {
    char type = level == Level::kService ? 's' : level == Level::kContainer ? 'c' : 'o';
    if (g.resource_types.find(type) == std::string::npos) {
      Fail(r, 403, "AuthorizationResourceTypeMismatch",
           "This request is not authorized to perform this operation using this resource type.");
      return false;
    }
  } else if (level == Level::kService ||
             (need != Need::kList && need != Need::kRead && level == Level::kContainer)) {
    Fail(r, 403, "AuthorizationResourceTypeMismatch",
         "This request is not authorized to perform this operation using this resource type.");
    return false;
  }
  bool ok = false;
  switch (need) {
    case Need::kRead:
      ok = g.Allows('r');
      break;
    case Need::kList:
      ok = g.Allows('l');
      break;
    case Need::kWrite:
      ok = g.Allows('w');
      break;
    case Need::kDelete:
      ok = g.Allows('d');
      break;
    case Need::kCreate:
      ok = g.Allows('c') || g.Allows('w');
      break;
  }
  if (!ok) {
    Fail(r, 403, "AuthorizationPermissionMismatch",
         "This request is not authorized to perform this operation using this permission.");
  }
  return ok;
}

}  // namespace

void BlobApi::Dispatch(Request& r) {
  const std::string& m = r.method;
  bool get = m == "GET" || m == "HEAD";
  if (r.restype == "account" && r.comp == "properties" && get) {
    if (Authorize(r, Need::kRead, Level::kService)) AccountInfo(r);
    return;
  }
  if (r.container.empty()) {
    if (r.comp == "list" && m == "GET") {
      if (Authorize(r, Need::kList, Level::kService)) ListContainers(r);
    } else if (r.restype == "service" && r.comp == "properties" && get) {
      if (!Authorize(r, Need::kRead, Level::kService)) return;
      Send(r, NewResponse(r, 200),
           std::string(kXmlHead) +
               "<StorageServiceProperties><Logging><Version>1.0</Version><Read>false</Read>"
               "<Write>false</Write><Delete>false</Delete><RetentionPolicy><Enabled>false</Enabled>"
               "</RetentionPolicy></Logging><Cors/></StorageServiceProperties>",
           "application/xml");
    } else {
      Fail(r, 400, "UnsupportedHttpVerb", "The resource doesn't support the specified operation.");
    }
    return;
  }
  if (r.blob.empty()) {
    if (r.restype != "container") {
      Fail(r, 400, "InvalidQueryParameterValue",
           "Value for one of the query parameters specified "
           "in the request URI is invalid: restype.");
      return;
    }
    if (m == "PUT" && r.comp.empty()) {
      if (Authorize(r, Need::kCreate, Level::kContainer)) CreateContainer(r);
    } else if (m == "DELETE" && r.comp.empty()) {
      if (Authorize(r, Need::kDelete, Level::kContainer)) DeleteContainer(r);
    } else if (get && (r.comp.empty() || r.comp == "metadata")) {
      if (Authorize(r, Need::kRead, Level::kContainer)) ContainerProperties(r);
    } else if (m == "GET" && r.comp == "list") {
      if (Authorize(r, Need::kList, Level::kContainer)) ListBlobs(r);
    } else {
      Fail(r, 400, "UnsupportedQueryParameter",
           "This operation on containers is not supported: comp=" + r.comp);
    }
    return;
  }
  if (!r.restype.empty()) {
    Fail(r, 400, "InvalidQueryParameterValue", "restype is not valid on a blob.");
    return;
  }
  if (m == "PUT") {
    if (r.comp.empty()) {
      if (Authorize(r, Need::kWrite, Level::kObject)) {
        if (HasField(r.h, "x-ms-copy-source")) {
          CopyBlob(r);
        } else {
          PutBlob(r);
        }
      }
    } else if (r.comp == "block") {
      if (Authorize(r, Need::kWrite, Level::kObject)) PutBlock(r);
    } else if (r.comp == "blocklist") {
      if (Authorize(r, Need::kWrite, Level::kObject)) PutBlockList(r);
    } else if (r.comp == "metadata") {
      if (Authorize(r, Need::kWrite, Level::kObject)) SetBlobMetadata(r);
    } else if (r.comp == "properties") {
      if (Authorize(r, Need::kWrite, Level::kObject)) SetBlobProperties(r);
    } else {
      Fail(r, 400, "UnsupportedQueryParameter",
           "This blob operation is not supported: comp=" + r.comp);
    }
  } else if (get) {
    if (r.comp.empty() || r.comp == "metadata") {
      if (Authorize(r, Need::kRead, Level::kObject))
        GetBlob(r, m == "HEAD" || r.comp == "metadata");
    } else if (r.comp == "blocklist" && m == "GET") {
      if (Authorize(r, Need::kRead, Level::kObject)) GetBlockList(r);
    } else {
      Fail(r, 400, "UnsupportedQueryParameter",
           "This blob operation is not supported: comp=" + r.comp);
    }
  } else if (m == "DELETE" && r.comp.empty()) {
    if (Authorize(r, Need::kDelete, Level::kObject)) DeleteBlob(r);
  } else {
    Fail(r, 405, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.");
  }
}

// --- Service ---

void BlobApi::AccountInfo(Request& r) {
  http::Response res = NewResponse(r, 200);
  res.set("x-ms-sku-name", "Standard_LRS");
  res.set("x-ms-account-kind", "StorageV2");
  res.set("x-ms-is-hns-enabled", "false");
  Send(r, std::move(res));
}

namespace {

// Lowers `max` to the request's maxresults; responds 400 and returns false for a bad one.
bool MaxResults(Request& r, size_t* max) {
  std::string text = r.Q("maxresults");
  if (text.empty()) return true;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (*end != '\0' || v == 0) {
    Fail(r, 400, "OutOfRangeQueryParameterValue", "maxresults must be 1 to 5000.");
    return false;
  }
  *max = std::min<size_t>(*max, v);
  return true;
}

}  // namespace

void BlobApi::ListContainers(Request& r) {
  std::string prefix = r.Q("prefix"), marker = r.Q("marker");
  size_t max = options_.max_list_results;
  if (!MaxResults(r, &max)) return;
  store::Store& st = objects_.store();
  std::string body = std::string(kXmlHead) + "<EnumerationResults ServiceEndpoint=\"" +
                     XmlEscape((r.ex.secure() ? "https://" : "http://") + Field(r.h, "Host") + "/" +
                               r.account + "/") +
                     "\"><Prefix>" + XmlEscape(prefix) + "</Prefix><Marker>" + XmlEscape(marker) +
                     "</Marker><MaxResults>" + std::to_string(max) + "</MaxResults><Containers>";
  std::string after = marker, next_marker, last;
  size_t count = 0;
  bool more = true;
  while (more && next_marker.empty()) {
    auto page = st.ReadDir(r.share.root, after, 1000);
    if (!page.ok()) {
      Fail(r, ErrorFromStatus(page.status()));
      return;
    }
    if (page->empty()) break;
    after = page->back().name;
    for (const store::Attr& a : *page) {
      if (a.type != store::NodeType::kDirectory || a.name == objects::kStagingDir) continue;
      if (!a.name.starts_with(prefix)) {
        if (a.name > prefix) {
          more = false;
          break;
        }
        continue;
      }
      if (count == max) {
        next_marker = last;  // the marker is exclusive: listing goes on after it
        break;
      }
      ++count;
      last = a.name;
      body += "<Container><Name>" + XmlEscape(a.name) + "</Name><Properties><Last-Modified>" +
              Rfc1123(a.mtime_ns) + "</Last-Modified><Etag>\"0x" + Hex(std::to_string(a.version)) +
              "\"</Etag><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
              "<HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false"
              "</HasLegalHold></Properties>";
      if (r.Q("include").find("metadata") != std::string::npos) body += "<Metadata/>";
      body += "</Container>";
    }
  }
  body +=
      "</Containers><NextMarker>" + XmlEscape(next_marker) + "</NextMarker></EnumerationResults>";
  Send(r, NewResponse(r, 200), std::move(body), "application/xml");
}

// --- Containers ---

namespace {

// The container folder; NotFound (ContainerNotFound) when missing or not a folder.
Result<store::Attr> ContainerDir(store::Store& st, const Request& r) {
  auto a = st.Lookup(r.share.root, r.container);
  if (!a.ok()) return a.status();
  if (a->type != store::NodeType::kDirectory) return NotFoundError("not a folder");
  return *a;
}

bool RequireContainer(store::Store& st, Request& r) {
  auto c = ContainerDir(st, r);
  if (c.ok()) return true;
  Fail(r, ErrorFromStatus(c.status(), "ContainerNotFound"));
  return false;
}

// Deletes everything below folder `dir`, page by page.
Status RemoveBelow(store::Store& st, store::NodeId dir) {
  for (;;) {
    FS_ASSIGN_OR_RETURN(auto page, st.ReadDir(dir, "", 256));
    if (page.empty()) return Status::Ok();
    for (const store::Attr& a : page) {
      if (a.type == store::NodeType::kDirectory) {
        FS_RETURN_IF_ERROR(RemoveBelow(st, a.id));
        FS_RETURN_IF_ERROR(st.Rmdir(dir, a.name));
      } else {
        Status s = st.Unlink(dir, a.name);
        if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
      }
    }
  }
}

}  // namespace

void BlobApi::CreateContainer(Request& r) {
  if (!ValidContainerName(r.container)) {
    Fail(r, 400, "InvalidResourceName", "The specified resource name contains invalid characters.");
    return;
  }
  auto a = objects_.store().Mkdir(r.share.root, r.container, store::NewNode{.mode = 0777});
  if (!a.ok()) {
    if (a.status().code() == StatusCode::kAlreadyExists) {
      Fail(r, 409, "ContainerAlreadyExists", "The specified container already exists.");
    } else {
      Fail(r, ErrorFromStatus(a.status()));
    }
    return;
  }
  http::Response res = NewResponse(r, 201);
  res.set(beast_http::field::etag, "\"0x" + Hex(std::to_string(a->version)) + "\"");
  res.set(beast_http::field::last_modified, Rfc1123(a->mtime_ns));
  Send(r, std::move(res));
}

void BlobApi::DeleteContainer(Request& r) {
  store::Store& st = objects_.store();
  auto c = ContainerDir(st, r);
  if (!c.ok()) {
    Fail(r, ErrorFromStatus(c.status(), "ContainerNotFound"));
    return;
  }
  Status s = RemoveBelow(st, c->id);
  if (s.ok()) s = st.Rmdir(r.share.root, r.container);
  if (!s.ok()) {
    Fail(r, ErrorFromStatus(s, "ContainerNotFound"));
    return;
  }
  for (const char* dir : {"blocks/", "blocklists/"}) {
    Status rs = objects_.RemoveStaged(r.share, dir + Sha256Hex(r.container));
    if (!rs.ok() && rs.code() != StatusCode::kNotFound) {
      spdlog::warn("blob: leftover blocks of container {}: {}", r.container, rs.ToString());
    }
  }
  Send(r, NewResponse(r, 202));
}

void BlobApi::ContainerProperties(Request& r) {
  auto c = ContainerDir(objects_.store(), r);
  if (!c.ok()) {
    Fail(r, ErrorFromStatus(c.status(), "ContainerNotFound"));
    return;
  }
  http::Response res = NewResponse(r, 200);
  res.set(beast_http::field::etag, "\"0x" + Hex(std::to_string(c->version)) + "\"");
  res.set(beast_http::field::last_modified, Rfc1123(c->mtime_ns));
  res.set("x-ms-lease-status", "unlocked");
  res.set("x-ms-lease-state", "available");
  res.set("x-ms-has-immutability-policy", "false");
  res.set("x-ms-has-legal-hold", "false");
  res.set("x-ms-default-encryption-scope", "$account-encryption-key");
  res.set("x-ms-deny-encryption-scope-override", "false");
  Send(r, std::move(res));
}

void BlobApi::ListBlobs(Request& r) {
  store::Store& st = objects_.store();
  if (!RequireContainer(st, r)) return;
  std::string prefix = r.Q("prefix"), delimiter = r.Q("delimiter"), marker = r.Q("marker");
  bool with_meta = r.Q("include").find("metadata") != std::string::npos;
  size_t max = options_.max_list_results;
  if (!MaxResults(r, &max)) return;
  std::string base = r.container + "/";
  auto list =
      objects_.List(r.share, base + prefix, delimiter, marker.empty() ? "" : base + marker, max);
  if (!list.ok()) {
    Fail(r, ErrorFromStatus(list.status(), "ContainerNotFound"));
    return;
  }
  std::string body = std::string(kXmlHead) + "<EnumerationResults ServiceEndpoint=\"" +
                     XmlEscape((r.ex.secure() ? "https://" : "http://") + Field(r.h, "Host") + "/" +
                               r.account + "/") +
                     "\" ContainerName=\"" + XmlEscape(r.container) + "\"><Prefix>" +
                     XmlEscape(prefix) + "</Prefix><Marker>" + XmlEscape(marker) +
                     "</Marker><MaxResults>" + std::to_string(max) + "</MaxResults><Delimiter>" +
                     XmlEscape(delimiter) + "</Delimiter><Blobs>";
  for (const objects::ListEntry& e : list->entries) {
    if (!e.key.starts_with(base)) continue;
    std::string name = e.key.substr(base.size());
    if (e.is_prefix) {
      body += "<BlobPrefix><Name>" + XmlEscape(name) + "</Name></BlobPrefix>";
      continue;
    }
    if (name.empty() || name.back() == '/') continue;  // a folder
    const ObjectInfo& info = e.info;
    const ObjectMeta& m = info.meta;
    body += "<Blob><Name>" + XmlEscape(name) + "</Name><Properties><Creation-Time>" +
            Rfc1123(info.attr.ctime_ns) + "</Creation-Time><Last-Modified>" +
            Rfc1123(info.attr.mtime_ns) + "</Last-Modified><Etag>" + XmlEscape(QuotedEtag(info)) +
            "</Etag><Content-Length>" + std::to_string(info.attr.size) +
            "</Content-Length><Content-Type>" +
            XmlEscape(m.content_type.empty() ? "application/octet-stream" : m.content_type) +
            "</Content-Type><Content-Encoding>" + XmlEscape(m.content_encoding) +
            "</Content-Encoding><Content-Language>" + XmlEscape(m.content_language) +
            "</Content-Language><Content-MD5>" + ContentMd5(info) +
            "</Content-MD5><Content-Disposition>" + XmlEscape(m.content_disposition) +
            "</Content-Disposition><Cache-Control>" + XmlEscape(m.cache_control) +
            "</Cache-Control><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier>"
            "<AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus>"
            "<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted>"
            "</Properties>";
    if (with_meta) {
      body += "<Metadata>";
      for (const auto& [k, v] : m.user) body += "<" + k + ">" + XmlEscape(v) + "</" + k + ">";
      body += "</Metadata>";
    }
    body += "</Blob>";
  }
  std::string next;
  if (list->truncated && list->next_marker.starts_with(base)) {
    next = list->next_marker.substr(base.size());
  }
  body += "</Blobs><NextMarker>" + XmlEscape(next) + "</NextMarker></EnumerationResults>";
  Send(r, NewResponse(r, 200), std::move(body), "application/xml");
}

// --- Blobs ---

namespace {

// The blob's info, nullopt when there is none; false (responded) on other errors.
bool LookupBlob(objects::Objects& objects, Request& r, std::optional<ObjectInfo>* out) {
  auto info = objects.Head(r.share, r.Key());
  if (info.ok()) {
    *out = std::move(*info);
    return true;
  }
  if (info.status().code() == StatusCode::kNotFound) {
    out->reset();
    return true;
  }
  Fail(r, ErrorFromStatus(info.status(), "BlobNotFound"));
  return false;
}

void BlobNotFound(store::Store& st, Request& r) {
  if (!ContainerDir(st, r).ok()) {
    Fail(r, 404, "ContainerNotFound", "The specified container does not exist.");
  } else {
    Fail(r, 404, "BlobNotFound", "The specified blob does not exist.");
  }
}

// The blob the request names, when it exists and the request's conditions hold; otherwise
// responds (404 BlobNotFound, 304/412) and returns false.
bool ExistingBlob(objects::Objects& objects, Request& r, bool write,
                  std::optional<ObjectInfo>* info) {
  if (!LookupBlob(objects, r, info)) return false;
  if (!*info) {
    BlobNotFound(objects.store(), r);
    return false;
  }
  return CheckConditions(r, *info, write);
}

// The client's Content-MD5 and x-ms-content-crc64 as raw bytes; false (responded) when one is
// malformed.
bool TransactionalChecksums(Request& r, std::string* md5, std::string* crc64) {
  std::string m = Field(r.h, "Content-MD5"), c = Field(r.h, "x-ms-content-crc64");
  *md5 = DecodeBase64Strict(m).value_or("");
  *crc64 = DecodeBase64Strict(c).value_or("");
  if ((!m.empty() && md5->size() != 16) || (!c.empty() && crc64->size() != 8)) {
    Fail(r, 400, "InvalidHeaderValue",
         "The value for one of the HTTP headers is not in the correct format: " +
             std::string(m.empty() || md5->size() == 16 ? "x-ms-content-crc64" : "Content-MD5"));
    return false;
  }
  return true;
}

// Checks the request has a usable length; false (responded) when not.
bool CheckLength(Request& r, uint64_t limit) {
  auto cl = r.ex.content_length();
  bool chunked = Lower(Field(r.h, "Transfer-Encoding")).find("chunked") != std::string::npos;
  if (!cl && !chunked) {
    Fail(r, 411, "MissingContentLengthHeader", "Content-Length HTTP header is missing.");
    return false;
  }
  if (cl && *cl > limit) {
    Fail(r, 413, "RequestBodyTooLarge", "The request body is too large.");
    return false;
  }
  return true;
}

// The error for a failed upload through a CheckedBody.
ApiError UploadError(const CheckedBody& body, const Status& s) {
  switch (body.failure()) {
    case CheckedBody::Failure::kMd5:
      return {400, "Md5Mismatch",
              "The MD5 value specified in the request did not match with the MD5 value calculated "
              "by the server."};
    case CheckedBody::Failure::kCrc64:
      return {400, "Crc64Mismatch",
              "The CRC64 value specified in the request did not match with the CRC64 value "
              "calculated by the server."};
    case CheckedBody::Failure::kTooLarge:
      return {413, "RequestBodyTooLarge", "The request body is too large."};
    case CheckedBody::Failure::kBody:
      return {400, "IncompleteBody",
              "The request body is incomplete: " + body.body_status().message()};
    case CheckedBody::Failure::kNone:
      break;
  }
  return ErrorFromStatus(s, "ContainerNotFound");
}

}  // namespace

void BlobApi::PutBlob(Request& r) {
  std::string type = Field(r.h, "x-ms-blob-type");
  if (type.empty()) {
    Fail(r, 400, "MissingRequiredHeader",
         "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type.");
    return;
  }
  if (type != "BlockBlob") {
    Fail(r, 400, "InvalidHeaderValue",
         "The value for one of the HTTP headers is not in the correct format: x-ms-blob-type " +
             type + " is not supported; only BlockBlob is.");
    return;
  }
  store::Store& st = objects_.store();
  std::string md5, crc64;
  if (!TransactionalChecksums(r, &md5, &crc64) || !CheckLength(r, options_.max_put_blob_bytes) ||
      !RequireContainer(st, r)) {
    return;
  }
  std::optional<ObjectInfo> existing;
  if (!LookupBlob(objects_, r, &existing) || !CheckConditions(r, existing, true)) return;
  ObjectMeta meta;
  if (!MetaOf(r, true, &meta)) return;
  CheckedBody body(r.ex, md5, crc64, options_.max_put_blob_bytes);
  auto info = objects_.Put(r.share, r.Key(), body.AsSource(), meta);
  if (!info.ok()) {
    Fail(r, UploadError(body, info.status()));
    return;
  }
  (void)objects_.RemoveStaged(r.share, r.BlocksDir());
  http::Response res = NewResponse(r, 201);
  res.set(beast_http::field::etag, QuotedEtag(*info));
  res.set(beast_http::field::last_modified, Rfc1123(info->attr.mtime_ns));
  std::string content_md5 = ContentMd5(*info);
  if (!content_md5.empty()) res.set("Content-MD5", content_md5);
  if (!crc64.empty()) res.set("x-ms-content-crc64", crypto::Base64(crc64));
  res.set("x-ms-request-server-encrypted", "true");
  Send(r, std::move(res));
}

void BlobApi::PutBlock(Request& r) {
  auto id = DecodeBlockId(r.Q("blockid"));
  if (!id.ok()) {
    Fail(
        r, 400, "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid: blockid (" +
            id.status().message() + ").");
    return;
  }
  store::Store& st = objects_.store();
  std::string md5, crc64;
  if (!TransactionalChecksums(r, &md5, &crc64) || !CheckLength(r, options_.max_block_bytes) ||
      !RequireContainer(st, r)) {
    return;
  }
  // All block ids of a blob have one length (Azure's rule), recorded on the blocks folder.
  std::string dir = r.BlocksDir();
  auto idlen = objects_.GetStagedXattr(r.share, dir, kIdLenXattr);
  if (idlen.ok() && *idlen != std::to_string(id->size())) {
    Fail(r, 400, "InvalidBlobOrBlock",
         "The specified blob or block content is invalid: block ids of a blob must have one "
         "length.");
    return;
  }
  CheckedBody body(r.ex, md5, crc64, options_.max_block_bytes);
  std::string got_md5;
  auto size = objects_.PutStaged(r.share, dir + "/" + Hex(*id), body.AsSource(), &got_md5);
  if (!size.ok()) {  // a block of the same id staged before stays as it was
    Fail(r, UploadError(body, size.status()));
    return;
  }
  if (!idlen.ok()) {
    Status s = objects_.SetStagedXattr(r.share, dir, kIdLenXattr, std::to_string(id->size()));
    if (!s.ok()) spdlog::warn("blob: recording block id length: {}", s.ToString());
  }
  http::Response res = NewResponse(r, 201);
  res.set("Content-MD5", crypto::Base64(got_md5));
  if (!crc64.empty()) res.set("x-ms-content-crc64", crypto::Base64(crc64));
  res.set("x-ms-request-server-encrypted", "true");
  Send(r, std::move(res));
}

namespace {

// The committed block list of `info` (empty when it has none or its metadata is stale).
Result<std::vector<CommittedBlock>> CommittedBlocksOf(objects::Objects& objects, const Request& r,
                                                      const ObjectInfo& info) {
  if (!info.meta_current()) return std::vector<CommittedBlock>{};
  auto it = info.meta.extra.find(kBlocksKey);
  if (it != info.meta.extra.end()) return DecodeBlocks(it->second);
  it = info.meta.extra.find(kBlockListFileKey);
  if (it == info.meta.extra.end()) return std::vector<CommittedBlock>{};
  auto h = objects.OpenStaged(r.share, r.BlockListsDir() + "/" + it->second);
  if (!h.ok()) {
    if (h.status().code() == StatusCode::kNotFound) return std::vector<CommittedBlock>{};
    return h.status();
  }
  std::string text;
  std::vector<uint8_t> buf(kPieceBytes);
  for (uint64_t off = 0;;) {
    FS_ASSIGN_OR_RETURN(size_t n, (*h)->Read(off, buf));
    if (n == 0) break;
    text.append(reinterpret_cast<const char*>(buf.data()), n);
    off += n;
  }
  return DecodeBlocks(text);
}

}  // namespace

void BlobApi::PutBlockList(Request& r) {
  store::Store& st = objects_.store();
  std::string md5, crc64;
  if (!TransactionalChecksums(r, &md5, &crc64) || !RequireContainer(st, r)) return;
  auto xml = r.ex.ReadWholeBody(kMaxBlockListBytes);
  if (!xml.ok()) {
    Fail(r, 400, "InvalidXmlDocument",
         "XML specified is not syntactically valid: " + xml.status().message());
    return;
  }
  if (!md5.empty() && crypto::Digest::Md5(*xml) != md5) {
    Fail(r, 400, "Md5Mismatch",
         "The MD5 value specified in the request did not match with the MD5 value calculated by "
         "the server.");
    return;
  }
  auto refs = ParseBlockList(*xml);
  if (!refs.ok()) {
    if (refs.status().message().starts_with("xml:")) {
      Fail(r, 400, "InvalidXmlDocument",
           "XML specified is not syntactically valid. " + refs.status().message());
    } else {
      Fail(r, 400, "InvalidBlockList",
           "The specified block list is invalid. " + refs.status().message());
    }
    return;
  }
  std::optional<ObjectInfo> existing;
  if (!LookupBlob(objects_, r, &existing) || !CheckConditions(r, existing, true)) return;
  ObjectMeta meta;
  if (!MetaOf(r, false, &meta)) return;

  // Resolve every entry to a staged block or a range of the blob as committed now.
  std::vector<CommittedBlock> committed;
  std::vector<uint64_t> committed_offset;
  std::unique_ptr<store::FileHandle> old_handle;
  if (existing) {
    auto c = CommittedBlocksOf(objects_, r, *existing);
    if (!c.ok()) {
      Fail(r, ErrorFromStatus(c.status()));
      return;
    }
    committed = std::move(*c);
    uint64_t off = 0;
    for (const auto& b : committed) {
      committed_offset.push_back(off);
      off += b.size;
    }
  }
  std::string dir = r.BlocksDir();
  std::vector<std::unique_ptr<store::FileHandle>> handles;
  std::vector<Segment> segments;
  std::vector<CommittedBlock> new_list;
  std::map<std::string, size_t> staged_index;  // hex id -> handles index
  for (const BlockRef& ref : *refs) {
    std::string hex = Hex(ref.id);
    bool found = false;
    if (ref.from != BlockRef::From::kCommitted) {
      auto hit = staged_index.find(hex);
      if (hit != staged_index.end()) {
        Segment s = segments[hit->second];  // a copy: push_back may move the vector
        segments.push_back(s);
        new_list.push_back({ref.id, s.size});
        found = true;
      } else {
        auto a = objects_.StatStaged(r.share, dir + "/" + hex);
        if (a.ok()) {
          auto h = objects_.OpenStaged(r.share, dir + "/" + hex);
          if (!h.ok()) {
            Fail(r, ErrorFromStatus(h.status()));
            return;
          }
          handles.push_back(std::move(*h));
          staged_index[hex] = segments.size();
          segments.push_back({handles.back().get(), 0, a->size});
          new_list.push_back({ref.id, a->size});
          found = true;
        } else if (a.status().code() != StatusCode::kNotFound) {
          Fail(r, ErrorFromStatus(a.status()));
          return;
        }
      }
    }
    if (!found && ref.from != BlockRef::From::kUncommitted) {
      for (size_t i = 0; i < committed.size(); ++i) {
        if (committed[i].id != ref.id) continue;
        if (!old_handle) {
          auto h = objects_.Open(*existing);
          if (!h.ok()) {
            Fail(r, ErrorFromStatus(h.status(), "BlobNotFound"));
            return;
          }
          old_handle = std::move(*h);
        }
        segments.push_back({old_handle.get(), committed_offset[i], committed[i].size});
        new_list.push_back(committed[i]);
        found = true;
        break;
      }
    }
    if (!found) {
      Fail(r, 400, "InvalidBlockList",
           "The specified block list is invalid: block " + crypto::Base64(ref.id) +
               " is not among the blob's blocks.");
      return;
    }
  }

  // The committed list goes with the metadata, or to a staged file when it is long.
  std::string encoded = EncodeBlocks(new_list);
  std::string list_token;
  if (encoded.size() <= kMaxInlineBlockList) {
    meta.extra[kBlocksKey] = encoded;
  } else {
    list_token = RandomHex(16);
    std::string rel = r.BlockListsDir() + "/" + list_token;
    size_t pos = 0;
    auto s = objects_.PutStaged(r.share, rel, [&](std::span<uint8_t> out) -> Result<size_t> {
      size_t n = std::min(out.size(), encoded.size() - pos);
      std::memcpy(out.data(), encoded.data() + pos, n);
      pos += n;
      return n;
    });
    if (!s.ok()) {
      Fail(r, ErrorFromStatus(s.status()));
      return;
    }
    meta.extra[kBlockListFileKey] = list_token;
  }
  auto info = objects_.Put(r.share, r.Key(), Concatenate(std::move(segments)), meta);
  handles.clear();
  old_handle.reset();
  if (!info.ok()) {
    if (!list_token.empty())
      (void)objects_.RemoveStaged(r.share, r.BlockListsDir() + "/" + list_token);
    Fail(r, ErrorFromStatus(info.status(), "ContainerNotFound"));
    return;
  }
  // Uncommitted blocks and older lists are discarded once the new list is committed.
  (void)objects_.RemoveStaged(r.share, dir);
  auto lists = objects_.ListStaged(r.share, r.BlockListsDir());
  if (lists.ok()) {
    for (const store::Attr& a : *lists) {
      if (a.name != list_token)
        (void)objects_.RemoveStaged(r.share, r.BlockListsDir() + "/" + a.name);
    }
  }
  http::Response res = NewResponse(r, 201);
  res.set(beast_http::field::etag, QuotedEtag(*info));
  res.set(beast_http::field::last_modified, Rfc1123(info->attr.mtime_ns));
  res.set("x-ms-request-server-encrypted", "true");
  Send(r, std::move(res));
}

void BlobApi::GetBlockList(Request& r) {
  std::string type = r.Q("blocklisttype");
  if (type.empty()) type = "committed";
  type = Lower(type);
  if (type != "committed" && type != "uncommitted" && type != "all") {
    Fail(r, 400, "InvalidQueryParameterValue",
         "Value for one of the query parameters specified in the request URI is invalid: "
         "blocklisttype.");
    return;
  }
  std::optional<ObjectInfo> existing;
  if (!LookupBlob(objects_, r, &existing)) return;
  std::vector<store::Attr> staged;
  auto s = objects_.ListStaged(r.share, r.BlocksDir());
  if (s.ok()) {
    staged = std::move(*s);
  } else if (s.status().code() != StatusCode::kNotFound) {
    Fail(r, ErrorFromStatus(s.status()));
    return;
  }
  if (!existing && staged.empty()) {
    BlobNotFound(objects_.store(), r);
    return;
  }
  std::string body = std::string(kXmlHead) + "<BlockList>";
  if (type != "uncommitted") {
    body += "<CommittedBlocks>";
    if (existing) {
      auto c = CommittedBlocksOf(objects_, r, *existing);
      if (!c.ok()) {
        Fail(r, ErrorFromStatus(c.status()));
        return;
      }
      for (const auto& b : *c) {
        body += "<Block><Name>" + crypto::Base64(b.id) + "</Name><Size>" + std::to_string(b.size) +
                "</Size></Block>";
      }
    }
    body += "</CommittedBlocks>";
  }
  if (type != "committed") {
    body += "<UncommittedBlocks>";
    for (const store::Attr& a : staged) {
      auto raw = FromHex(a.name);
      if (a.type != store::NodeType::kFile || !raw) continue;
      body += "<Block><Name>" + crypto::Base64(*raw) + "</Name><Size>" + std::to_string(a.size) +
              "</Size></Block>";
    }
    body += "</UncommittedBlocks>";
  }
  body += "</BlockList>";
  http::Response res = NewResponse(r, 200);
  if (existing) {
    res.set(beast_http::field::etag, QuotedEtag(*existing));
    res.set(beast_http::field::last_modified, Rfc1123(existing->attr.mtime_ns));
    res.set("x-ms-blob-content-length", std::to_string(existing->attr.size));
  }
  Send(r, std::move(res), std::move(body), "application/xml");
}

void BlobApi::GetBlob(Request& r, bool headers_only) {
  std::optional<ObjectInfo> info;
  if (!ExistingBlob(objects_, r, false, &info)) return;
  if (r.comp == "metadata") {
    http::Response res = NewResponse(r, 200);
    res.set(beast_http::field::etag, QuotedEtag(*info));
    res.set(beast_http::field::last_modified, Rfc1123(info->attr.mtime_ns));
    for (const auto& [k, v] : info->meta.user) res.set("x-ms-meta-" + k, v);
    Send(r, std::move(res));
    return;
  }
  uint64_t size = info->attr.size;
  std::string content_md5 = ContentMd5(*info);
  if (headers_only) {
    http::Response res = NewResponse(r, 200);
    SetBlobHeaders(res, *info);
    if (!content_md5.empty()) res.set("Content-MD5", content_md5);
    res.set("x-ms-access-tier", "Hot");
    res.set("x-ms-access-tier-inferred", "true");
    res.content_length(size);
    (void)r.ex.Respond(std::move(res));
    return;
  }
  // Range: x-ms-range wins over Range; "bytes=a-b", "bytes=a-" or "bytes=-n".
  std::string range = Field(r.h, "x-ms-range");
  if (range.empty()) range = Field(r.h, "Range");
  uint64_t first = 0, last = size == 0 ? 0 : size - 1;
  bool partial = false;
  if (!range.empty()) {
    auto bad = [&] {
      Fail(r, 416, "InvalidRange",
           "The range specified is invalid for the current size of the resource.");
    };
    if (!range.starts_with("bytes=") || range.find(',') != std::string::npos) {
      Fail(r, 400, "InvalidHeaderValue",
           "The value for one of the HTTP headers is not in the correct format: Range.");
      return;
    }
    std::string spec = range.substr(6);
    size_t dash = spec.find('-');
    std::string a = spec.substr(0, dash),
                b = dash == std::string::npos ? "" : spec.substr(dash + 1);
    auto num = [](const std::string& s, uint64_t* v) {
      if (s.empty() || s.size() > 19 ||
          !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return false;
      }
      *v = std::stoull(s);
      return true;
    };
    uint64_t av = 0, bv = 0;
    if (dash == std::string::npos || (a.empty() && b.empty()) || (!a.empty() && !num(a, &av)) ||
        (!b.empty() && !num(b, &bv))) {
      Fail(r, 400, "InvalidHeaderValue",
           "The value for one of the HTTP headers is not in the correct format: Range.");
      return;
    }
    if (a.empty()) {  // the last bv bytes
      if (bv == 0 || size == 0) return bad();
      first = size > bv ? size - bv : 0;
      last = size - 1;
    } else {
      if (!b.empty() && bv < av) {
        Fail(r, 400, "InvalidHeaderValue",
             "The value for one of the HTTP headers is not in the correct format: Range.");
        return;
      }
      if (av >= size) return bad();
      first = av;
      last = b.empty() ? size - 1 : std::min(bv, size - 1);
    }
    partial = true;
  }
  uint64_t length = size == 0 ? 0 : last - first + 1;
  auto h = objects_.Open(*info);
  if (!h.ok()) {
    Fail(r, ErrorFromStatus(h.status(), "BlobNotFound"));
    return;
  }
  std::string range_md5;
  std::string buffered;
  if (Lower(Field(r.h, "x-ms-range-get-content-md5")) == "true") {
    if (!partial || length > 4 * 1024 * 1024) {
      Fail(r, 400, "OutOfRangeInput", "x-ms-range-get-content-md5 needs a range of at most 4 MiB.");
      return;
    }
    buffered.resize(length);
    auto n = (*h)->Read(first, {reinterpret_cast<uint8_t*>(buffered.data()), length});
    if (!n.ok() || *n != length) {
      Fail(r, ErrorFromStatus(n.ok() ? InternalError("short read") : n.status()));
      return;
    }
    range_md5 = crypto::Base64(crypto::Digest::Md5(buffered));
  }
  http::ResponseHeader head;
  head.result(partial ? beast_http::status::partial_content : beast_http::status::ok);
  head.set(beast_http::field::server, "fieldstack-blob");
  head.set("x-ms-request-id", r.request_id);
  head.set("x-ms-version", r.version);
  head.set(beast_http::field::date, Rfc1123(RealClock::Get().NowUnixNanos()));
  std::string client_id = Field(r.h, "x-ms-client-request-id");
  if (!client_id.empty()) head.set("x-ms-client-request-id", client_id);
  SetBlobHeaders(head, *info);
  if (partial) {
    head.set(
        beast_http::field::content_range,
        "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size));
    if (!content_md5.empty()) head.set("x-ms-blob-content-md5", content_md5);
    if (!range_md5.empty()) head.set("Content-MD5", range_md5);
  } else if (!content_md5.empty()) {
    head.set("Content-MD5", content_md5);
  }
  if (buffered.empty() && length > 0) {
    // Bring the first block in before the status goes out: a blob whose data is in the cloud
    // and cannot be fetched now (offline) gets 503, not a cut body.
    uint8_t probe;
    auto n = (*h)->Read(first, {&probe, 1});
    if (!n.ok()) return Fail(r, ErrorFromStatus(n.status()));
  }
  if (!r.ex.BeginResponse(head, length).ok()) return;
  if (!buffered.empty()) {
    (void)r.ex.WriteBody({reinterpret_cast<const uint8_t*>(buffered.data()), buffered.size()});
    return;
  }
  objects::Source src = objects::ReadFrom(**h, first, length);
  std::vector<uint8_t> buf(kPieceBytes);
  for (uint64_t sent = 0; sent < length;) {
    auto n = src(buf);
    if (!n.ok() || *n == 0) {
      spdlog::warn("blob: reading {}/{} failed after {} bytes: {}", r.account, r.Key(), sent,
                   n.ok() ? "short file" : n.status().ToString());
      return;  // the connection closes with the body incomplete
    }
    if (!r.ex.WriteBody({buf.data(), *n}).ok()) return;
    sent += *n;
  }
}

void BlobApi::DeleteBlob(Request& r) {
  store::Store& st = objects_.store();
  std::optional<ObjectInfo> info;
  if (!ExistingBlob(objects_, r, true, &info)) return;
  // Unlink, then remove folders of the name left empty, up to but not including the container.
  Status s = st.Unlink(info->attr.parent, info->attr.name);
  if (!s.ok()) {
    Fail(r, ErrorFromStatus(s, "BlobNotFound"));
    return;
  }
  auto container = ContainerDir(st, r);
  store::NodeId dir = info->attr.parent;
  while (container.ok() && dir != container->id && dir != r.share.root) {
    auto a = st.GetAttr(dir);
    if (!a.ok() || !st.Rmdir(a->parent, a->name).ok()) break;
    dir = a->parent;
  }
  (void)objects_.RemoveStaged(r.share, r.BlocksDir());
  (void)objects_.RemoveStaged(r.share, r.BlockListsDir());
  http::Response res = NewResponse(r, 202);
  res.set("x-ms-delete-type-permanent", "true");
  Send(r, std::move(res));
}

void BlobApi::SetBlobMetadata(Request& r) {
  std::optional<ObjectInfo> info;
  if (!ExistingBlob(objects_, r, true, &info)) return;
  auto user = UserMeta(r.h);
  if (!user.ok()) {
    Fail(r, 400, "InvalidMetadata", user.status().message());
    return;
  }
  ObjectMeta meta = info->meta;
  meta.user = std::move(*user);
  Status s = objects_.SetMeta(*info, meta);
  if (!s.ok()) {
    Fail(r, ErrorFromStatus(s, "BlobNotFound"));
    return;
  }
  auto now = objects_.Head(r.share, r.Key());
  const ObjectInfo& shown = now.ok() ? *now : *info;
  http::Response res = NewResponse(r, 200);
  res.set(beast_http::field::etag, QuotedEtag(shown));
  res.set(beast_http::field::last_modified, Rfc1123(shown.attr.mtime_ns));
  res.set("x-ms-request-server-encrypted", "true");
  Send(r, std::move(res));
}

void BlobApi::SetBlobProperties(Request& r) {
  std::optional<ObjectInfo> info;
  if (!ExistingBlob(objects_, r, true, &info)) return;
  // As Azure does, content headers not given are cleared.
  ObjectMeta meta = info->meta;
  ObjectMeta fresh;
  Status ms = MetaFromHeaders(r.h, false, &fresh);
  if (!ms.ok()) {
    Fail(r, 400, "InvalidHeaderValue", ms.message());
    return;
  }
  meta.content_type = fresh.content_type;
  meta.content_encoding = fresh.content_encoding;
  meta.content_language = fresh.content_language;
  meta.content_disposition = fresh.content_disposition;
  meta.cache_control = fresh.cache_control;
  meta.content_md5 = fresh.content_md5;
  Status s = objects_.SetMeta(*info, meta);
  if (!s.ok()) {
    Fail(r, ErrorFromStatus(s, "BlobNotFound"));
    return;
  }
  http::Response res = NewResponse(r, 200);
  res.set(beast_http::field::etag, QuotedEtag(*info));
  res.set(beast_http::field::last_modified, Rfc1123(info->attr.mtime_ns));
  Send(r, std::move(res));
}

void BlobApi::CopyBlob(Request& r) {
  // x-ms-copy-source: a URL of a blob on this box, http(s)://<host>/<account>/<container>/<blob>,
  // authorized by the request's Shared Key or by a SAS of its own.
  std::string source = Field(r.h, "x-ms-copy-source");
  auto cannot = [&](int status, std::string why) {
    Fail(r, status, "CannotVerifyCopySource", why);
  };
  size_t scheme = source.find("://");
  if (scheme == std::string::npos) return cannot(400, "The copy source is not a URL.");
  size_t path_at = source.find('/', scheme + 3);
  std::string authority = source.substr(
      scheme + 3, path_at == std::string::npos ? std::string::npos : path_at - scheme - 3);
  if (Lower(authority) != Lower(Field(r.h, "Host"))) {
    return cannot(400, "The copy source must be a blob on this box (" + Field(r.h, "Host") + ").");
  }
  std::string target = path_at == std::string::npos ? "/" : source.substr(path_at);
  size_t q = target.find('?');
  std::string path = target.substr(0, q);
  auto query = ParseQuery(q == std::string::npos ? "" : target.substr(q + 1));
  std::vector<std::optional<std::string>> parts;
  std::string_view rest = std::string_view(path).substr(1);
  for (int i = 0; i < 2; ++i) {
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return cannot(400, "The copy source is not a blob URL.");
    parts.push_back(UrlDecode(rest.substr(0, slash)));
    rest = rest.substr(slash + 1);
  }
  parts.push_back(UrlDecode(rest));
  if (!query || !parts[0] || !parts[1] || !parts[2])
    return cannot(400, "The copy source URL is malformed.");
  std::string src_account = *parts[0], src_container = *parts[1], src_blob = *parts[2];
  std::string src_key = src_container + "/" + src_blob;
  if (!objects::Objects::ValidKey(src_key).ok() || src_container == objects::kStagingDir) {
    return cannot(400, "The copy source names no valid blob.");
  }
  bool allowed = false;
  if (QueryValue(*query, "sig")) {
    for (const auto& key : keys_) {
      if (!key.CanRead(src_account)) continue;
      auto g = VerifySas(*query, src_account, src_container, src_blob,
                         DecodeBase64Strict(key.secret).value_or(""), clock_->NowUnixNanos(),
                         r.ex.secure(), r.ex.peer());
      if (g.ok() && g->Allows('r') &&
          (!g->account_sas || g->resource_types.find('o') != std::string::npos)) {
        allowed = true;
        break;
      }
    }
  } else {
    allowed = !r.sas && r.key->CanRead(src_account);
  }
  if (!allowed) return cannot(403, "This request is not authorized to read the copy source.");
  auto src_share = objects_.Bucket(src_account);
  if (!src_share.ok()) return cannot(404, "The copy source account does not exist.");
  auto src = objects_.Head(*src_share, src_key);
  if (!src.ok()) return cannot(404, "The specified copy source blob does not exist.");

  if (!RequireContainer(objects_.store(), r)) return;
  std::optional<ObjectInfo> existing;
  if (!LookupBlob(objects_, r, &existing) || !CheckConditions(r, existing, true)) return;
  ObjectMeta meta = src->meta_current() ? src->meta : ObjectMeta{};
  meta.etag.clear();
  meta.data_gen = 0;
  meta.extra.erase(kBlockListFileKey);
  if (!src->meta_current()) meta.extra.clear();
  auto user = UserMeta(r.h);
  if (!user.ok()) {
    Fail(r, 400, "InvalidMetadata", user.status().message());
    return;
  }
  if (!user->empty()) meta.user = std::move(*user);
  std::string copy_id = RandomHex(4) + "-" + RandomHex(2) + "-" + RandomHex(2) + "-" +
                        RandomHex(2) + "-" + RandomHex(6);
  std::string time = Rfc1123(clock_->NowUnixNanos());
  meta.extra["blob.copy_id"] = copy_id;
  meta.extra["blob.copy_source"] = source.substr(0, source.find('?'));
  meta.extra["blob.copy_progress"] =
      std::to_string(src->attr.size) + "/" + std::to_string(src->attr.size);
  meta.extra["blob.copy_time"] = time;
  auto h = objects_.Open(*src);
  if (!h.ok()) return cannot(404, "The copy source could not be read: " + h.status().message());
  auto info = objects_.Put(r.share, r.Key(), objects::ReadFrom(**h, 0, src->attr.size), meta);
  h->reset();
  if (!info.ok()) {
    Fail(r, ErrorFromStatus(info.status(), "ContainerNotFound"));
    return;
  }
  (void)objects_.RemoveStaged(r.share, r.BlocksDir());
  http::Response res = NewResponse(r, 202);
  res.set(beast_http::field::etag, QuotedEtag(*info));
  res.set(beast_http::field::last_modified, Rfc1123(info->attr.mtime_ns));
  res.set("x-ms-copy-id", copy_id);
  res.set("x-ms-copy-status", "success");
  Send(r, std::move(res));
}

}  // namespace fieldstack::frontends::blob_api
