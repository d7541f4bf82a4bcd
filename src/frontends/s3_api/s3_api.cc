#include "frontends/s3_api/s3_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <thread>

#include "cloud/http_client.h"
#include "crypto/chunk_codec.h"
#include "crypto/hash.h"
#include "crypto/key_store.h"
#include "frontends/s3_api/s3_auth.h"
#include "frontends/s3_api/s3_xml.h"

namespace fieldstack::frontends::s3_api {

namespace bh = boost::beast::http;
using objects::ObjectInfo;
using objects::ObjectMeta;

namespace {

constexpr uint64_t kMaxPutBytes = 5ull << 30;
constexpr uint64_t kMinPartBytes = 5ull << 20;
constexpr int kMaxParts = 10000;
constexpr size_t kMaxXmlBytes = 2 << 20;
constexpr size_t kMaxUserMetaBytes = 2048;
constexpr char kUploadXattr[] = "fieldstack.upload";
constexpr char kPartXattr[] = "fieldstack.part";
constexpr const char* kChecksumNames[] = {"crc32", "crc32c", "crc64nvme", "sha1", "sha256"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string RandomHex(size_t bytes) {
  std::vector<uint8_t> raw(bytes);
  (void)crypto::RandomBytes(raw);
  return crypto::ToHex({reinterpret_cast<const char*>(raw.data()), raw.size()});
}

std::string HttpDate(int64_t ns) { return FormatUtc(ns, "%a, %d %b %Y %H:%M:%S GMT"); }
std::string IsoDate(int64_t ns) { return FormatRfc3339(ns); }

std::string Quote(std::string_view etag) { return "\"" + std::string(etag) + "\""; }
std::string Unquote(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.starts_with("W/")) s.remove_prefix(2);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

// Whether an If-Match / If-None-Match list names `etag` ("*" names any).
bool EtagListHas(std::string_view list, const std::string& etag) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string e = Unquote(list.substr(0, comma));
    if (e == "*" || e == etag) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool ValidBucketName(std::string_view n) {
  if (n.size() < 3 || n.size() > 63) return false;
  for (char c : n) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return false;
    }
  }
  return std::isalnum(static_cast<unsigned char>(n.front())) &&
         std::isalnum(static_cast<unsigned char>(n.back()));
}

// The S3 error for a Store or object-layer status.
S3Error FromStatus(const Status& s, std::string_view key) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return {404, "NoSuchKey", "The specified key does not exist."};
    case StatusCode::kInvalidArgument:
      if (s.message().starts_with("signature")) {
        return {403, "SignatureDoesNotMatch", s.message()};
      }
      if (s.message().starts_with("aws-chunked") ||
          s.message().starts_with("malformed request body")) {
        return {400, "IncompleteBody", s.message()};
      }
      if (s.message().find("longer than 1024") != std::string::npos) {
        return {400, "KeyTooLongError", "Your key is too long."};
      }
      return {400, "InvalidArgument", s.message()};
    case StatusCode::kFailedPrecondition:
      return {409, "InvalidRequest", s.message()};
    case StatusCode::kAlreadyExists:
      return {409, "InvalidRequest", s.message()};
    case StatusCode::kNoSpace:
      return {507, "InsufficientStorage", "the box is out of space: " + s.message()};
    case StatusCode::kUnavailable:
      if (s.message().find("recall") != std::string::npos ||
          s.message().find("in the cloud only") != std::string::npos) {
        return {503, "ServiceUnavailable",
                "the object's data is in the cloud and cannot be fetched now: " + s.message()};
      }
      return {400, "IncompleteBody", s.message()};
    case StatusCode::kPermissionDenied:
      return {403, "AccessDenied", s.message()};
    default:
      spdlog::error("s3: {}: {}", key, s.ToString());
      return {500, "InternalError", "We encountered an internal error. Please try again."};
  }
}

bool beast_chunked(http::Exchange& ex) {
  return ex.header()[bh::field::transfer_encoding].find("chunked") !=
         boost::beast::string_view::npos;
}

// Raw bytes of hex text; empty when it is not hex.
std::string HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), ::isxdigit)) return "";
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

Result<std::string> ReadXmlBody(http::Exchange& ex, const SigV4Identity& id, bool checksums,
                                S3Error* err);

// Checksums a PUT asks for (x-amz-checksum-*, x-amz-sdk-checksum-algorithm, or declared
// trailers), computed while the body streams.
struct Checksums {
  std::map<std::string, std::unique_ptr<crypto::Checksum>> sums;
  std::map<std::string, std::string> expected;  // base64 values sent in headers
  std::unique_ptr<crypto::Digest> sha256;       // for a signed (hex) payload hash
  void Update(std::span<const uint8_t> d) {
    for (auto& [n, c] : sums) c->Update(d);
    if (sha256) sha256->Update(d);
  }
};

}  // namespace

struct S3Api::Call {
  http::Exchange& ex;
  std::string request_id;
  std::string path;  // decoded
  std::string raw_path;
  std::string query_raw;
  std::map<std::string, std::string> query;
  SigV4Identity id;
  std::string bucket_name;
  std::string key;
  std::optional<store::ShareInfo> bucket;
  std::string root;  // the bucket's folder in the share ("" or "path/")
  int64_t now = 0;

  // The key in the share.
  std::string Full() const { return root + key; }

  std::string Header(bh::field f) const { return std::string(ex.header()[f]); }
  std::string Header(std::string_view name) const {
    return std::string(ex.header()[boost::beast::string_view(name.data(), name.size())]);
  }
  bool Has(std::string_view q) const { return query.count(std::string(q)) != 0; }
  std::string Q(std::string_view q) const {
    auto it = query.find(std::string(q));
    return it == query.end() ? "" : it->second;
  }

  http::Response Base(bh::status status) const {
    http::Response res{status, 11};
    res.set(bh::field::server, "fieldstack");
    res.set("x-amz-request-id", request_id);
    res.set(bh::field::date, HttpDate(now));
    return res;
  }
  void Xml(bh::status status, std::string body,
           std::initializer_list<std::pair<std::string, std::string>> headers = {}) {
    http::Response res = Base(status);
    res.set(bh::field::content_type, "application/xml");
    for (auto& [k, v] : headers) res.set(k, v);
    res.body() = std::move(body);
    res.prepare_payload();
    (void)ex.Respond(std::move(res));
  }
  void Empty(bh::status status,
             std::initializer_list<std::pair<std::string, std::string>> headers = {}) {
    http::Response res = Base(status);
    for (auto& [k, v] : headers) res.set(k, v);
    if (status != bh::status::no_content && status != bh::status::not_modified) {
      res.prepare_payload();
    }
    (void)ex.Respond(std::move(res));
  }
  void Error(const S3Error& e) {
    if (ex.responded()) return;
    http::Response res = Base(static_cast<bh::status>(e.http));
    if (ex.header().method() != bh::verb::head) {
      res.set(bh::field::content_type, "application/xml");
      XmlWriter x;
      x.Open("Error");
      x.Leaf("Code", e.code);
      x.Leaf("Message", e.message);
      if (!bucket_name.empty()) x.Leaf("BucketName", bucket_name);
      if (!key.empty()) x.Leaf("Key", key);
      x.Leaf("Resource", path);
      x.Leaf("RequestId", request_id);
      x.Close("Error");
      res.body() = x.Done();
    }
    res.prepare_payload();
    (void)ex.Respond(std::move(res));
  }
  void Error(int http, std::string code, std::string message) {
    Error({http, std::move(code), std::move(message)});
  }
  void Status(const fieldstack::Status& s) { Error(FromStatus(s, key)); }
};

S3Api::S3Api(objects::Objects& objects, std::vector<objects::AccessKey> keys, S3Options options)
    : objects_(objects),
      keys_(std::move(keys)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &RealClock::Get()) {}

void S3Api::Handle(http::Exchange& ex) {
  Call c{ex, RandomHex(8)};
  c.now = clock_->NowUnixNanos();
  std::string target(ex.header().target());
  size_t q = target.find('?');
  c.raw_path = target.substr(0, q);
  c.query_raw = q == std::string::npos ? "" : target.substr(q + 1);
  c.path = cloud::UrlDecode(c.raw_path);
  c.query = ParseQuery(c.query_raw);
  if (c.raw_path.empty() || c.raw_path.front() != '/') {
    return c.Error(400, "InvalidURI", "Couldn't parse the specified URI.");
  }
  // Bucket and key from the path.
  std::string_view rest = std::string_view(c.path).substr(1);
  size_t slash = rest.find('/');
  c.bucket_name = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) c.key = std::string(rest.substr(slash + 1));

  SigV4Request sr;
  sr.method = std::string(ex.header().method_string());
  sr.path = c.raw_path;
  sr.query = c.query_raw;
  for (const auto& f : ex.header()) {
    sr.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  S3Error err;
  if (!VerifySigV4(sr, keys_, c.now, &c.id, &err)) return c.Error(err);
  store::Store::SetThreadOrigin({true, 0, 0, 0, "s3:" + c.id.key->user + "@" + ex.peer()});
  try {
    Dispatch(c);
  } catch (const std::exception& e) {
    spdlog::error("s3: {} {} threw: {}", sr.method, c.path, e.what());
    c.Error(500, "InternalError", "We encountered an internal error. Please try again.");
  }
}

Result<std::pair<store::ShareInfo, std::string>> S3Api::ResolveBucket(const std::string& name) {
  auto mapped = options_.buckets.find(name);
  if (mapped != options_.buckets.end()) {
    FS_ASSIGN_OR_RETURN(store::ShareInfo share, objects_.Bucket(mapped->second.share));
    return std::make_pair(share, mapped->second.path + "/");
  }
  FS_ASSIGN_OR_RETURN(store::ShareInfo share, objects_.Bucket(name));
  return std::make_pair(share, std::string());
}

void S3Api::Dispatch(Call& c) {
  if (c.bucket_name.empty()) {
    if (c.ex.header().method() == bh::verb::get) return ListBuckets(c);
    return c.Error(405, "MethodNotAllowed",
                   "The specified method is not allowed against this resource.");
  }
  if (!ValidBucketName(c.bucket_name) && c.bucket_name != "default") {
    return c.Error(400, "InvalidBucketName", "The specified bucket is not valid.");
  }
  auto share = ResolveBucket(c.bucket_name);
  if (share.ok()) {
    c.bucket = share->first;
    c.root = share->second;
  }
  bool create = c.key.empty() && c.ex.header().method() == bh::verb::put && c.query.empty();
  if (!c.bucket && !create) {
    if (share.status().code() != StatusCode::kNotFound) return c.Status(share.status());
    return c.Error(404, "NoSuchBucket", "The specified bucket does not exist");
  }
  if (c.key.empty()) return BucketOp(c);
  return ObjectOp(c);
}

void S3Api::ListBuckets(Call& c) {
  auto shares = objects_.store().ListShares();
  if (!shares.ok()) return c.Status(shares.status());
  XmlWriter x;
  x.Open("ListAllMyBucketsResult", kS3Namespace);
  x.Open("Owner");
  x.Leaf("ID", c.id.key->user);
  x.Leaf("DisplayName", c.id.key->user);
  x.Close("Owner");
  x.Open("Buckets");
  for (const store::ShareInfo& s : *shares) {
    if (!c.id.key->CanRead(s.name)) continue;
    auto root = objects_.store().GetAttr(s.root);
    x.Open("Bucket");
    x.Leaf("Name", s.name);
    x.Leaf("CreationDate", IsoDate(root.ok() ? root->ctime_ns : 0));
    x.Close("Bucket");
  }
  for (const auto& [name, m] : options_.buckets) {
    if (!c.id.key->CanRead(name)) continue;
    x.Open("Bucket");
    x.Leaf("Name", name);
    x.Leaf("CreationDate", IsoDate(0));
    x.Close("Bucket");
  }
  x.Close("Buckets");
  x.Close("ListAllMyBucketsResult");
  c.Xml(bh::status::ok, x.Done());
}

void S3Api::BucketOp(Call& c) {
  bh::verb m = c.ex.header().method();
  bool read = m == bh::verb::get || m == bh::verb::head;
  if (m == bh::verb::put && !c.bucket) return CreateBucket(c);
  if (read ? !c.id.key->CanRead(c.bucket_name) : !c.id.key->CanWrite(c.bucket_name)) {
    return c.Error(403, "AccessDenied", "Access Denied");
  }
  if (m == bh::verb::head)
    return c.Empty(bh::status::ok, {{"x-amz-bucket-region", options_.region}});
  if (m == bh::verb::get) {
    if (c.Has("location")) {
      XmlWriter x;
      x.Raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
      x.Raw("<LocationConstraint xmlns=\"" + std::string(kS3Namespace) + "\">" +
            (options_.region == "us-east-1" ? "" : XmlEscape(options_.region)) +
            "</LocationConstraint>");
      return c.Xml(bh::status::ok, x.Done());
    }
    if (c.Has("versioning")) {
      return c.Xml(bh::status::ok,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"" +
                       std::string(kS3Namespace) + "\"/>");
    }
    if (c.Has("uploads")) return ListUploads(c);
    if (c.Has("versions")) return ListVersions(c);
    for (const char* sub : {"acl",
                            "policy",
                            "cors",
                            "lifecycle",
                            "tagging",
                            "website",
                            "encryption",
                            "replication",
                            "notification",
                            "logging",
                            "object-lock",
                            "ownershipControls",
                            "publicAccessBlock",
                            "accelerate",
                            "requestPayment",
                            "analytics",
                            "inventory",
                            "metrics",
                            "intelligent-tiering",
                            "policyStatus"}) {
      if (c.Has(sub)) {
        return c.Error(501, "NotImplemented",
                       std::string("the bucket subresource '") + sub + "' is not supported");
      }
    }
    return ListObjects(c, c.Q("list-type") == "2" ? 2 : 1);
  }
  if (m == bh::verb::post && c.Has("delete")) return DeleteObjects(c);
  if (m == bh::verb::put) {
    // The bucket exists: S3 in us-east-1 answers 200 to its owner; elsewhere 409.
    return c.Error(
        409, "BucketAlreadyOwnedByYou",
        "Your previous request to create the named bucket succeeded and you already own it.");
  }
  if (m == bh::verb::delete_) {
    return c.Error(403, "AccessDenied",
                   "buckets are the box's shares; remove a share from the box's settings");
  }
  c.Error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

void S3Api::CreateBucket(Call& c) {
  if (!options_.create_buckets || !c.id.key->CanWrite("*")) {
    return c.Error(403, "AccessDenied",
                   "buckets are the box's shares; creating them needs objects.create_buckets and a "
                   "key that may write every bucket");
  }
  if (!ValidBucketName(c.bucket_name)) {
    return c.Error(400, "InvalidBucketName", "The specified bucket is not valid.");
  }
  S3Error err;
  auto body = ReadXmlBody(c.ex, c.id, true, &err);  // an optional CreateBucketConfiguration
  if (!body.ok()) return c.Error(err);
  auto made = objects_.store().CreateShare(c.bucket_name, store::ShareKind::kLocal);
  if (made.status().code() == StatusCode::kAlreadyExists) {
    return c.Error(409, "BucketAlreadyOwnedByYou", "You already own this bucket.");
  }
  if (!made.ok()) return c.Status(made.status());
  c.Empty(bh::status::ok, {{"Location", "/" + c.bucket_name}});
}

namespace {

// A listing of the bucket's keys (without its folder prefix).
Result<objects::ListResult> ListIn(objects::Objects& o, const S3Api::Call& c,
                                   const std::string& prefix, const std::string& delimiter,
                                   const std::string& marker, size_t max) {
  FS_ASSIGN_OR_RETURN(objects::ListResult r, o.List(*c.bucket, c.root + prefix, delimiter,
                                                    marker.empty() ? "" : c.root + marker, max));
  if (c.root.empty()) return r;
  for (objects::ListEntry& e : r.entries) e.key.erase(0, c.root.size());
  if (!r.next_marker.empty()) r.next_marker.erase(0, c.root.size());
  return r;
}

void WriteOwner(XmlWriter& x, const std::string& user) {
  x.Open("Owner");
  x.Leaf("ID", user);
  x.Leaf("DisplayName", user);
  x.Close("Owner");
}

template <class Encode>
void WriteCommonPrefixes(XmlWriter& x, const objects::ListResult& list, const Encode& enc) {
  for (const objects::ListEntry& e : list.entries) {
    if (!e.is_prefix) continue;
    x.Open("CommonPrefixes");
    x.Leaf("Prefix", enc(e.key));
    x.Close("CommonPrefixes");
  }
}

// max-keys of a listing (1000 at most, the default); -1 when it is not a number.
int MaxKeys(const S3Api::Call& c) {
  if (!c.Has("max-keys")) return 1000;
  const std::string& mk = c.Q("max-keys");
  if (mk.empty() || mk.size() > 9 || !std::all_of(mk.begin(), mk.end(), ::isdigit)) return -1;
  return std::min(1000, std::stoi(mk));
}

}  // namespace

void S3Api::ListObjects(Call& c, int version) {
  std::string prefix = c.Q("prefix");
  std::string delimiter = c.Q("delimiter");
  bool url = c.Q("encoding-type") == "url";
  int max = MaxKeys(c);
  if (max < 0) return c.Error(400, "InvalidArgument", "max-keys must be a non-negative integer");
  std::string marker;
  std::string token;
  if (version == 2) {
    token = c.Q("continuation-token");
    if (c.Has("continuation-token")) {
      marker = crypto::Base64Decode(token);
      if (marker.empty()) {
        return c.Error(400, "InvalidArgument", "The continuation token provided is incorrect");
      }
    } else {
      marker = c.Q("start-after");
    }
  } else {
    marker = c.Q("marker");
  }
  auto list = ListIn(objects_, c, prefix, delimiter, marker, static_cast<size_t>(max));
  if (!list.ok()) return c.Status(list.status());
  auto enc = [&](const std::string& s) { return url ? cloud::UrlEncodePath(s) : s; };
  XmlWriter x;
  x.Open("ListBucketResult", kS3Namespace);
  x.Leaf("Name", c.bucket_name);
  x.Leaf("Prefix", enc(prefix));
  if (version == 2) {
    if (c.Has("start-after")) x.Leaf("StartAfter", enc(c.Q("start-after")));
    if (c.Has("continuation-token")) x.Leaf("ContinuationToken", token);
    x.Leaf("KeyCount", std::to_string(list->entries.size()));
  } else {
    x.Leaf("Marker", enc(marker));
  }
  x.Leaf("MaxKeys", std::to_string(max));
  if (!delimiter.empty()) x.Leaf("Delimiter", enc(delimiter));
  if (url) x.Leaf("EncodingType", "url");
  x.Leaf("IsTruncated", list->truncated ? "true" : "false");
  if (list->truncated) {
    if (version == 2) {
      x.Leaf("NextContinuationToken", crypto::Base64(list->next_marker));
    } else if (!delimiter.empty()) {
      x.Leaf("NextMarker", enc(list->next_marker));
    }
  }
  for (const objects::ListEntry& e : list->entries) {
    if (e.is_prefix) continue;
    x.Open("Contents");
    x.Leaf("Key", enc(e.key));
    x.Leaf("LastModified", IsoDate(e.info.attr.mtime_ns));
    x.Leaf("ETag", Quote(e.info.ETag()));
    x.Leaf("Size", std::to_string(e.info.attr.size));
    if (version == 1 || c.Q("fetch-owner") == "true") {
      WriteOwner(x, c.id.key->user);
    }
    x.Leaf("StorageClass", "STANDARD");
    x.Close("Contents");
  }
  WriteCommonPrefixes(x, *list, enc);
  x.Close("ListBucketResult");
  c.Xml(bh::status::ok, x.Done());
}

void S3Api::ListVersions(Call& c) {
  std::string prefix = c.Q("prefix");
  std::string delimiter = c.Q("delimiter");
  std::string marker = c.Q("key-marker");
  bool url = c.Q("encoding-type") == "url";
  int max = MaxKeys(c);
  if (max < 0) return c.Error(400, "InvalidArgument", "max-keys must be a non-negative integer");
  auto list = ListIn(objects_, c, prefix, delimiter, marker, static_cast<size_t>(max));
  if (!list.ok()) return c.Status(list.status());
  auto enc = [&](const std::string& s) { return url ? cloud::UrlEncodePath(s) : s; };
  XmlWriter x;
  x.Open("ListVersionsResult", kS3Namespace);
  x.Leaf("Name", c.bucket_name);
  x.Leaf("Prefix", enc(prefix));
  x.Leaf("KeyMarker", enc(marker));
  x.Leaf("VersionIdMarker", c.Q("version-id-marker"));
  x.Leaf("MaxKeys", std::to_string(max));
  if (!delimiter.empty()) x.Leaf("Delimiter", enc(delimiter));
  if (url) x.Leaf("EncodingType", "url");
  x.Leaf("IsTruncated", list->truncated ? "true" : "false");
  if (list->truncated) {
    x.Leaf("NextKeyMarker", enc(list->next_marker));
    x.Leaf("NextVersionIdMarker", "null");
  }
  for (const objects::ListEntry& e : list->entries) {
    if (e.is_prefix) continue;
    x.Open("Version");
    x.Leaf("Key", enc(e.key));
    x.Leaf("VersionId", "null");
    x.Leaf("IsLatest", "true");
    x.Leaf("LastModified", IsoDate(e.info.attr.mtime_ns));
    x.Leaf("ETag", Quote(e.info.ETag()));
    x.Leaf("Size", std::to_string(e.info.attr.size));
    WriteOwner(x, c.id.key->user);
    x.Leaf("StorageClass", "STANDARD");
    x.Close("Version");
  }
  WriteCommonPrefixes(x, *list, enc);
  x.Close("ListVersionsResult");
  c.Xml(bh::status::ok, x.Done());
}

namespace {

// Reads a small XML request body, checking the signed payload hash, Content-MD5 and (with
// `checksums`: on CompleteMultipartUpload they describe the object) x-amz-checksum-*.
Result<std::string> ReadXmlBody(http::Exchange& ex, const SigV4Identity& id, bool checksums,
                                S3Error* err) {
  auto body = ex.ReadWholeBody(kMaxXmlBytes);
  if (!body.ok()) {
    *err = {400, "MalformedXML", body.status().message()};
    return body.status();
  }
  const std::string& ph = id.payload_hash;
  if (ph.size() == 64 && crypto::ToHex(crypto::Digest::Sha256(*body)) != Lower(ph)) {
    *err = {400, "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed."};
    return InvalidArgumentError("sha256");
  }
  if (ph.starts_with("STREAMING-")) {
    *err = {400, "InvalidRequest", "aws-chunked bodies are only for object data"};
    return InvalidArgumentError("chunked");
  }
  std::string md5 = std::string(ex.header()["Content-MD5"]);
  if (!md5.empty() && crypto::Base64(crypto::Digest::Md5(*body)) != md5) {
    *err = {400, "BadDigest", "The Content-MD5 you specified did not match what we received."};
    return InvalidArgumentError("md5");
  }
  for (const char* name : kChecksumNames) {
    std::string want = std::string(ex.header()[std::string("x-amz-checksum-") + name]);
    if (want.empty() || !checksums) continue;
    auto sum = crypto::Checksum::Make(name);
    sum->Update({reinterpret_cast<const uint8_t*>(body->data()), body->size()});
    if (crypto::Base64(sum->Final()) != want) {
      *err = {400, "BadDigest",
              std::string("The ") + Upper(name) +
                  " you specified did not match the calculated checksum."};
      return InvalidArgumentError("checksum");
    }
  }
  return body;
}

}  // namespace

void S3Api::DeleteObjects(Call& c) {
  S3Error err;
  auto body = ReadXmlBody(c.ex, c.id, /*checksums=*/true, &err);
  if (!body.ok()) return c.Error(err);
  std::vector<std::string> keys;
  bool quiet = false;
  if (!ParseDeleteRequest(*body, &keys, &quiet, &err)) return c.Error(err);
  XmlWriter x;
  x.Open("DeleteResult", kS3Namespace);
  for (const std::string& key : keys) {
    Status s = objects_.Delete(*c.bucket, c.root + key, c.root);
    if (s.ok() || s.code() == StatusCode::kNotFound || s.code() == StatusCode::kInvalidArgument) {
      if (quiet) continue;
      x.Open("Deleted");
      x.Leaf("Key", key);
      x.Close("Deleted");
      continue;
    }
    S3Error e = FromStatus(s, key);
    x.Open("Error");
    x.Leaf("Key", key);
    x.Leaf("Code", e.code);
    x.Leaf("Message", e.message);
    x.Close("Error");
  }
  x.Close("DeleteResult");
  c.Xml(bh::status::ok, x.Done());
}

void S3Api::ObjectOp(Call& c) {
  bh::verb m = c.ex.header().method();
  bool read = m == bh::verb::get || m == bh::verb::head;
  if (read ? !c.id.key->CanRead(c.bucket_name) : !c.id.key->CanWrite(c.bucket_name)) {
    return c.Error(403, "AccessDenied", "Access Denied");
  }
  if (Status v = objects::Objects::ValidKey(c.Full()); !v.ok()) {
    if (v.message().find("longer than") != std::string::npos) {
      return c.Error(400, "KeyTooLongError", "Your key is too long.");
    }
    return c.Error(400, "InvalidArgument", "Invalid object key: " + v.message());
  }
  for (const char* sub : {"acl", "tagging", "legal-hold", "retention", "torrent", "restore",
                          "select", "attributes"}) {
    if (c.Has(sub)) {
      return c.Error(501, "NotImplemented",
                     std::string("the object subresource '") + sub + "' is not supported");
    }
  }
  switch (m) {
    case bh::verb::put:
      if (c.Has("uploadId")) return UploadPart(c);
      if (!c.Header("x-amz-copy-source").empty()) return CopyObject(c);
      return PutObject(c);
    case bh::verb::get:
      if (c.Has("uploadId")) return ListParts(c);
      return GetObject(c, false);
    case bh::verb::head:
      return GetObject(c, true);
    case bh::verb::delete_: {
      if (c.Has("uploadId")) return AbortUpload(c);
      Status s = objects_.Delete(*c.bucket, c.Full(), c.root);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return c.Status(s);
      return c.Empty(bh::status::no_content);
    }
    case bh::verb::post:
      if (c.Has("uploads")) return CreateUpload(c);
      if (c.Has("uploadId")) return CompleteUpload(c);
      return c.Error(405, "MethodNotAllowed",
                     "The specified method is not allowed against this resource.");
    default:
      return c.Error(405, "MethodNotAllowed",
                     "The specified method is not allowed against this resource.");
  }
}

namespace {

// Object metadata from request headers; sets `err` for metadata over 2 KB.
ObjectMeta MetaFromHeaders(const http::RequestHeader& h, S3Error* err) {
  ObjectMeta m;
  m.content_type = std::string(h[bh::field::content_type]);
  std::string enc = std::string(h[bh::field::content_encoding]);
  // "aws-chunked" is how the body was sent, not how the object is encoded.
  std::string kept;
  for (size_t pos = 0; pos <= enc.size();) {
    size_t comma = std::min(enc.find(',', pos), enc.size());
    std::string part = enc.substr(pos, comma - pos);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty() && part != "aws-chunked") kept += (kept.empty() ? "" : ",") + part;
    pos = comma + 1;
  }
  m.content_encoding = kept;
  m.content_disposition = std::string(h[bh::field::content_disposition]);
  m.content_language = std::string(h[bh::field::content_language]);
  m.cache_control = std::string(h[bh::field::cache_control]);
  size_t bytes = 0;
  for (const auto& f : h) {
    std::string name = Lower(std::string(f.name_string()));
    if (!name.starts_with("x-amz-meta-")) continue;
    std::string k = name.substr(11);
    bytes += k.size() + f.value().size();
    m.user[k] = std::string(f.value());
  }
  if (bytes > kMaxUserMetaBytes) {
    *err = {400, "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size (2 KB)."};
  }
  return m;
}

void AddMetaHeaders(http::ResponseHeader& h, const ObjectInfo& info) {
  const ObjectMeta& m = info.meta;
  h.set(bh::field::content_type, m.content_type.empty() ? "binary/octet-stream" : m.content_type);
  if (!m.content_encoding.empty()) h.set(bh::field::content_encoding, m.content_encoding);
  if (!m.content_disposition.empty()) h.set(bh::field::content_disposition, m.content_disposition);
  if (!m.content_language.empty()) h.set(bh::field::content_language, m.content_language);
  if (!m.cache_control.empty()) h.set(bh::field::cache_control, m.cache_control);
  for (const auto& [k, v] : m.user) h.set("x-amz-meta-" + k, v);
}

}  // namespace

// The body of a PUT as the client sent it: plain, or aws-chunked in any of its forms, with the
// checksums it asks for computed on the way.
struct BodyReader {
  http::Exchange& ex;
  std::unique_ptr<AwsChunkedDecoder> chunked;
  Checksums sums;
  std::string sha256_hex;  // a signed payload's hash, checked at the end
  std::optional<uint64_t> decoded_length;
  std::vector<std::string> trailer_names;
  uint64_t bytes = 0;

  Result<size_t> Read(std::span<uint8_t> out) {
    Result<size_t> n = chunked ? chunked->Read(out) : ex.ReadBody(out);
    if (!n.ok()) return n;
    sums.Update(out.first(*n));
    bytes += *n;
    if (bytes > kMaxPutBytes) {
      return InvalidArgumentError("too large: a single upload holds at most 5 GiB");
    }
    return n;
  }
};

namespace {

// Sets up `r` for the request; false with `err` for a body form we cannot take.
bool StartBody(http::Exchange& ex, const SigV4Identity& id, BodyReader* r, S3Error* err) {
  const auto& h = ex.header();
  const std::string& ph = id.payload_hash;
  std::string trailer = Lower(std::string(h["x-amz-trailer"]));
  if (ph.starts_with("STREAMING-")) {
    bool signed_chunks, with_trailer;
    if (ph == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
      signed_chunks = true;
      with_trailer = false;
    } else if (ph == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") {
      signed_chunks = true;
      with_trailer = true;
    } else if (ph == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
      signed_chunks = false;
      with_trailer = true;
    } else {
      *err = {501, "NotImplemented", "the payload signing method " + ph + " is not supported"};
      return false;
    }
    std::string dl = std::string(h["x-amz-decoded-content-length"]);
    if (dl.empty() || dl.size() > 19 || !std::all_of(dl.begin(), dl.end(), ::isdigit)) {
      *err = {411, "MissingContentLength", "aws-chunked bodies need x-amz-decoded-content-length"};
      return false;
    }
    r->decoded_length = std::stoull(dl);
    r->chunked = std::make_unique<AwsChunkedDecoder>(
        [&ex](std::span<uint8_t> out) { return ex.ReadBody(out); }, signed_chunks, with_trailer,
        &id);
    if (with_trailer && !trailer.empty()) {
      for (size_t pos = 0; pos <= trailer.size();) {
        size_t comma = std::min(trailer.find(',', pos), trailer.size());
        std::string name = trailer.substr(pos, comma - pos);
        while (!name.empty() && name.front() == ' ') name.erase(0, 1);
        while (!name.empty() && name.back() == ' ') name.pop_back();
        if (!name.empty()) r->trailer_names.push_back(name);
        pos = comma + 1;
      }
    }
  } else if (ph != "UNSIGNED-PAYLOAD") {
    if (ph.size() != 64 || !std::all_of(ph.begin(), ph.end(), ::isxdigit)) {
      *err = {400, "InvalidArgument",
              "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
              "STREAMING-... or the SHA-256 of the payload"};
      return false;
    }
    r->sha256_hex = Lower(ph);
    r->sums.sha256 = std::make_unique<crypto::Digest>(crypto::Digest::Kind::kSha256);
  }
  if (!r->chunked && !ex.content_length() && !beast_chunked(ex)) {
    *err = {411, "MissingContentLength", "You must provide the Content-Length HTTP header."};
    return false;
  }
  // Checksums: sent in headers, or promised as trailers, or asked for by algorithm.
  for (const char* name : kChecksumNames) {
    std::string hname = std::string("x-amz-checksum-") + name;
    std::string v = std::string(h[hname]);
    bool trailing = std::find(r->trailer_names.begin(), r->trailer_names.end(), hname) !=
                    r->trailer_names.end();
    if (!v.empty()) r->sums.expected[name] = v;
    if (!v.empty() || trailing) r->sums.sums[name] = crypto::Checksum::Make(name);
  }
  std::string algo = Lower(std::string(h["x-amz-sdk-checksum-algorithm"]));
  if (!algo.empty()) {
    auto sum = crypto::Checksum::Make(algo);
    if (!sum) {
      *err = {400, "InvalidRequest", "unsupported checksum algorithm " + algo};
      return false;
    }
    if (!r->sums.sums.count(algo)) r->sums.sums[algo] = std::move(sum);
  }
  for (const std::string& t : r->trailer_names) {
    if (!t.starts_with("x-amz-checksum-") || !crypto::Checksum::Make(t.substr(15))) {
      *err = {400, "InvalidRequest", "unsupported trailer " + t};
      return false;
    }
  }
  return true;
}

// Verifies what was received against what the client declared; fills the checksums of `meta`.
Status FinishBody(http::Exchange& ex, BodyReader& r, const std::string& md5_raw, uint64_t size,
                  ObjectMeta* meta, S3Error* err) {
  if (r.decoded_length && *r.decoded_length != size) {
    *err = {400, "IncompleteBody",
            "You did not provide the number of bytes specified by the "
            "x-amz-decoded-content-length HTTP header"};
    return InvalidArgumentError("length");
  }
  std::string md5 = std::string(ex.header()["Content-MD5"]);
  if (!md5.empty()) {
    if (crypto::Base64Decode(md5).size() != 16) {
      *err = {400, "InvalidDigest", "The Content-MD5 you specified is not valid."};
      return InvalidArgumentError("md5");
    }
    if (crypto::Base64(md5_raw) != md5) {
      *err = {400, "BadDigest", "The Content-MD5 you specified did not match what we received."};
      return InvalidArgumentError("md5");
    }
  }
  if (!r.sha256_hex.empty() && crypto::ToHex(r.sums.sha256->Final()) != r.sha256_hex) {
    *err = {400, "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed."};
    return InvalidArgumentError("sha256");
  }
  std::map<std::string, std::string> expected = r.sums.expected;
  if (r.chunked) {
    for (const std::string& t : r.trailer_names) {
      auto it = r.chunked->trailers().find(t);
      if (it == r.chunked->trailers().end()) {
        *err = {400, "IncompleteBody",
                "the trailer " + t + " promised in x-amz-trailer is missing"};
        return InvalidArgumentError("trailer");
      }
      expected[t.substr(15)] = it->second;
    }
  }
  for (auto& [name, sum] : r.sums.sums) {
    std::string got = crypto::Base64(sum->Final());
    auto it = expected.find(name);
    if (it != expected.end() && it->second != got) {
      *err = {400, "BadDigest",
              "The " + Upper(name) + " you specified did not match the calculated checksum."};
      return InvalidArgumentError("checksum");
    }
    if (meta != nullptr) meta->checksums[name] = got;
  }
  return Status::Ok();
}

}  // namespace

void S3Api::PutObject(Call& c) {
  S3Error err;
  ObjectMeta meta = MetaFromHeaders(c.ex.header(), &err);
  if (err.set()) return c.Error(err);
  if (c.ex.content_length() && *c.ex.content_length() > kMaxPutBytes + (64ull << 20)) {
    return c.Error(400, "EntityTooLarge",
                   "Your proposed upload exceeds the maximum allowed object size (5 GiB); use a "
                   "multipart upload.");
  }
  std::string if_none = c.Header(bh::field::if_none_match);
  std::string if_match = c.Header(bh::field::if_match);
  if (!if_none.empty() || !if_match.empty()) {
    auto have = objects_.Head(*c.bucket, c.Full());
    if (!if_none.empty() && have.ok() && EtagListHas(if_none, have->ETag())) {
      return c.Error(412, "PreconditionFailed",
                     "At least one of the pre-conditions you specified did not hold");
    }
    if (!if_match.empty() && (!have.ok() || !EtagListHas(if_match, have->ETag()))) {
      if (!have.ok()) return c.Error(404, "NoSuchKey", "The specified key does not exist.");
      return c.Error(412, "PreconditionFailed",
                     "At least one of the pre-conditions you specified did not hold");
    }
  }
  BodyReader r{c.ex};
  if (!StartBody(c.ex, c.id, &r, &err)) return c.Error(err);
  // "If-None-Match: *" holds atomically (the rename refuses an existing key); If-Match is
  // checked again once the body is in, just before the object replaces the old one.
  bool no_replace = if_none == "*";
  auto info = objects_.Put(
      *c.bucket, c.Full(), [&r](std::span<uint8_t> out) { return r.Read(out); }, meta,
      [&](const std::string& md5, uint64_t size, ObjectMeta* m) {
        FS_RETURN_IF_ERROR(FinishBody(c.ex, r, md5, size, m, &err));
        if (!if_match.empty()) {
          auto now = objects_.Head(*c.bucket, c.Full());
          if (!now.ok() || !EtagListHas(if_match, now->ETag())) {
            err = {412, "PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold"};
            return FailedPreconditionError("if-match");
          }
        }
        return Status::Ok();
      },
      no_replace);
  if (!info.ok()) {
    if (err.set()) return c.Error(err);
    if (no_replace && info.status().code() == StatusCode::kAlreadyExists) {
      return c.Error(412, "PreconditionFailed",
                     "At least one of the pre-conditions you specified did not hold");
    }
    if (info.status().message().starts_with("too large")) {
      return c.Error(400, "EntityTooLarge",
                     "Your proposed upload exceeds the maximum allowed object size.");
    }
    return c.Status(info.status());
  }
  http::Response res = c.Base(bh::status::ok);
  res.set(bh::field::etag, Quote(info->ETag()));
  for (const auto& [name, v] : info->meta.checksums) res.set("x-amz-checksum-" + name, v);
  res.prepare_payload();
  (void)c.ex.Respond(std::move(res));
}

std::optional<ObjectInfo> S3Api::CopySource(Call& c, store::ShareInfo* share) {
  std::string src = cloud::UrlDecode(c.Header("x-amz-copy-source"));
  size_t qm = src.find("?versionId=");
  if (qm != std::string::npos) {
    if (src.substr(qm + 11) != "null") {
      c.Error(404, "NoSuchVersion", "The specified version does not exist.");
      return std::nullopt;
    }
    src.resize(qm);
  }
  if (!src.empty() && src.front() == '/') src.erase(0, 1);
  size_t slash = src.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == src.size()) {
    c.Error(400, "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
    return std::nullopt;
  }
  std::string bucket = src.substr(0, slash);
  if (!c.id.key->CanRead(bucket)) {
    c.Error(403, "AccessDenied", "Access Denied");
    return std::nullopt;
  }
  auto resolved = ResolveBucket(bucket);
  if (!resolved.ok()) {
    c.Error(404, "NoSuchBucket", "The specified bucket does not exist");
    return std::nullopt;
  }
  *share = resolved->first;
  auto from = objects_.Head(*share, resolved->second + src.substr(slash + 1));
  if (!from.ok()) {
    c.Error(404, "NoSuchKey", "The specified key does not exist.");
    return std::nullopt;
  }
  return *from;
}

void S3Api::CopyObject(Call& c) {
  store::ShareInfo src_share;
  auto from = CopySource(c, &src_share);
  if (!from) return;
  std::string im = c.Header("x-amz-copy-source-if-match");
  if (!im.empty() && !EtagListHas(im, from->ETag())) {
    return c.Error(412, "PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold");
  }
  std::string inm = c.Header("x-amz-copy-source-if-none-match");
  if (!inm.empty() && EtagListHas(inm, from->ETag())) {
    return c.Error(412, "PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold");
  }
  bool replace = c.Header("x-amz-metadata-directive") == "REPLACE";
  S3Error err;
  ObjectMeta meta = replace ? MetaFromHeaders(c.ex.header(), &err) : from->meta;
  if (err.set()) return c.Error(err);
  auto result = [&](const ObjectInfo& info) {
    XmlWriter x;
    x.Open("CopyObjectResult", kS3Namespace);
    x.Leaf("LastModified", IsoDate(info.attr.mtime_ns));
    x.Leaf("ETag", Quote(info.ETag()));
    x.Close("CopyObjectResult");
    c.Xml(bh::status::ok, x.Done());
  };
  if (src_share.id == c.bucket->id && from->key == c.Full()) {
    if (!replace) {
      return c.Error(400, "InvalidRequest",
                     "This copy request is illegal because it is trying to copy an object to "
                     "itself without changing the object's metadata.");
    }
    if (Status s = objects_.SetMeta(*from, meta); !s.ok()) return c.Status(s);
    auto now = objects_.Head(*c.bucket, c.Full());
    if (!now.ok()) return c.Status(now.status());
    return result(*now);
  }
  auto h = objects_.Open(*from);
  if (!h.ok()) return c.Status(h.status());
  meta.etag.clear();
  meta.data_gen = 0;
  auto checksums = meta.checksums;
  meta.checksums.clear();
  std::map<std::string, std::unique_ptr<crypto::Checksum>> sums;
  for (const auto& [name, v] : checksums) sums[name] = crypto::Checksum::Make(name);
  objects::Source body = objects::ReadFrom(**h, 0, from->attr.size);
  auto info = objects_.Put(
      *c.bucket, c.Full(),
      [&](std::span<uint8_t> out) -> Result<size_t> {
        FS_ASSIGN_OR_RETURN(size_t n, body(out));
        for (auto& [name, s] : sums) {
          if (s) s->Update(out.first(n));
        }
        return n;
      },
      meta,
      [&](const std::string&, uint64_t, ObjectMeta* m) {
        for (auto& [name, s] : sums) {
          if (s) m->checksums[name] = crypto::Base64(s->Final());
        }
        return Status::Ok();
      });
  if (!info.ok()) return c.Status(info.status());
  result(*info);
}

namespace {

struct Range {
  uint64_t first = 0;
  uint64_t length = 0;
  bool partial = false;
};

// false: unsatisfiable (416). A malformed or multi-range header is ignored, as S3 does.
bool ParseRange(std::string_view h, uint64_t size, Range* r) {
  r->first = 0;
  r->length = size;
  r->partial = false;
  if (!h.starts_with("bytes=") || h.find(',') != std::string_view::npos) return true;
  std::string_view spec = h.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return true;
  std::string a(spec.substr(0, dash)), b(spec.substr(dash + 1));
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 20 && std::all_of(s.begin(), s.end(), ::isdigit);
  };
  if (a.empty()) {
    if (!digits(b)) return true;
    uint64_t n = std::stoull(b);
    if (n == 0 || size == 0) return false;
    n = std::min(n, size);
    *r = {size - n, n, true};
    return true;
  }
  if (!digits(a) || (!b.empty() && !digits(b))) return true;
  uint64_t first = std::stoull(a);
  if (first >= size) return false;
  uint64_t last = b.empty() ? size - 1 : std::min<uint64_t>(std::stoull(b), size - 1);
  if (last < first) return true;
  *r = {first, last - first + 1, true};
  return true;
}

}  // namespace

void S3Api::GetObject(Call& c, bool head) {
  auto info = objects_.Head(*c.bucket, c.Full());
  if (!info.ok()) {
    if (info.status().code() == StatusCode::kNotFound) {
      return c.Error(404, "NoSuchKey", "The specified key does not exist.");
    }
    return c.Status(info.status());
  }
  std::string etag = info->ETag();
  int64_t mtime_s = info->attr.mtime_ns / 1'000'000'000;
  std::string im = c.Header(bh::field::if_match);
  std::string inm = c.Header(bh::field::if_none_match);
  std::string ims = c.Header(bh::field::if_modified_since);
  std::string ius = c.Header(bh::field::if_unmodified_since);
  auto date_of = [](const std::string& s) {
    return ParseUtc(s, "%a, %d %b %Y %H:%M:%S GMT") / 1'000'000'000;
  };
  if (!im.empty() && !EtagListHas(im, etag)) {
    return c.Error(412, "PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold");
  }
  if (im.empty() && !ius.empty() && date_of(ius) != 0 && mtime_s > date_of(ius)) {
    return c.Error(412, "PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold");
  }
  bool not_modified = (!inm.empty() && EtagListHas(inm, etag)) ||
                      (inm.empty() && !ims.empty() && date_of(ims) != 0 && mtime_s <= date_of(ims));
  if (not_modified) {
    return c.Empty(bh::status::not_modified,
                   {{"ETag", Quote(etag)}, {"Last-Modified", HttpDate(info->attr.mtime_ns)}});
  }
  Range range;
  if (!ParseRange(c.Header(bh::field::range), info->attr.size, &range)) {
    http::Response res = c.Base(bh::status::range_not_satisfiable);
    res.set(bh::field::content_range, "bytes */" + std::to_string(info->attr.size));
    if (!head) {
      res.set(bh::field::content_type, "application/xml");
      XmlWriter x;
      x.Open("Error");
      x.Leaf("Code", "InvalidRange");
      x.Leaf("Message", "The requested range is not satisfiable");
      x.Leaf("RangeRequested", c.Header(bh::field::range));
      x.Leaf("ActualObjectSize", std::to_string(info->attr.size));
      x.Leaf("RequestId", c.request_id);
      x.Close("Error");
      res.body() = x.Done();
    }
    res.prepare_payload();
    (void)c.ex.Respond(std::move(res));
    return;
  }
  http::ResponseHeader h;
  h.result(range.partial ? bh::status::partial_content : bh::status::ok);
  h.set(bh::field::server, "fieldstack");
  h.set("x-amz-request-id", c.request_id);
  h.set(bh::field::date, HttpDate(c.now));
  h.set(bh::field::etag, Quote(etag));
  h.set(bh::field::last_modified, HttpDate(info->attr.mtime_ns));
  h.set(bh::field::accept_ranges, "bytes");
  AddMetaHeaders(h, *info);
  for (const char* over : {"content-type", "content-disposition", "content-encoding",
                           "content-language", "cache-control", "expires"}) {
    std::string q = std::string("response-") + over;
    if (c.Has(q)) h.set(over, c.Q(q));
  }
  if (range.partial) {
    h.set(bh::field::content_range, fmt::format("bytes {}-{}/{}", range.first,
                                                range.first + range.length - 1, info->attr.size));
  } else if (c.Header("x-amz-checksum-mode") == "ENABLED" && info->meta_current()) {
    for (const auto& [name, v] : info->meta.checksums) h.set("x-amz-checksum-" + name, v);
  }
  if (head || info->attr.type != store::NodeType::kFile) {  // a folder marker has no data
    (void)c.ex.BeginResponse(h, info->attr.type == store::NodeType::kFile ? range.length : 0);
    return;
  }
  auto fh = objects_.Open(*info);
  if (!fh.ok()) return c.Status(fh.status());
  std::vector<uint8_t> buf(1 << 20);
  uint64_t off = range.first, left = range.length;
  // The first piece is read before the status goes out, so a file whose data must come back
  // from the cloud and cannot (offline) gets a proper error rather than a cut body.
  Result<size_t> first = size_t{0};
  if (left > 0) {
    first = (*fh)->Read(off, std::span(buf).first(std::min<uint64_t>(buf.size(), left)));
    if (!first.ok()) return c.Status(first.status());
  }
  if (!c.ex.BeginResponse(h, range.length).ok()) return;
  bool have_first = left > 0;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), left));
    auto n = have_first ? first : (*fh)->Read(off, std::span(buf).first(want));
    have_first = false;
    if (!n.ok() || *n == 0) {
      spdlog::warn("s3: read of {}/{} failed mid-response: {}", c.bucket_name, c.key,
                   n.ok() ? "object shrank" : n.status().ToString());
      return;  // the connection closes with the body short: the client sees the failure
    }
    if (!c.ex.WriteBody(std::span(buf).first(*n)).ok()) return;
    off += *n;
    left -= *n;
  }
}

// --- Multipart ---

namespace {

std::string UploadDir(const std::string& id) { return "uploads/" + id; }
std::string PartPath(const std::string& id, int n) {
  return fmt::format("uploads/{}/{:05d}", id, n);
}

bool ValidUploadId(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), ::isxdigit);
}

}  // namespace

void S3Api::CreateUpload(Call& c) {
  S3Error err;
  ObjectMeta meta = MetaFromHeaders(c.ex.header(), &err);
  if (err.set()) return c.Error(err);
  std::string algo = Lower(c.Header("x-amz-checksum-algorithm"));
  if (!algo.empty() && !crypto::Checksum::Make(algo)) {
    return c.Error(400, "InvalidRequest", "unsupported checksum algorithm " + algo);
  }
  std::string id = RandomHex(16);
  nlohmann::json j;
  j["key"] = c.Full();
  j["meta"] = meta.ToJson();
  j["initiated"] = c.now;
  j["user"] = c.id.key->user;
  j["algorithm"] = algo;
  Status s = objects_.SetStagedXattr(*c.bucket, UploadDir(id), kUploadXattr, j.dump());
  if (!s.ok()) return c.Status(s);
  XmlWriter x;
  x.Open("InitiateMultipartUploadResult", kS3Namespace);
  x.Leaf("Bucket", c.bucket_name);
  x.Leaf("Key", c.key);
  x.Leaf("UploadId", id);
  x.Close("InitiateMultipartUploadResult");
  if (algo.empty()) return c.Xml(bh::status::ok, x.Done());
  c.Xml(bh::status::ok, x.Done(), {{"x-amz-checksum-algorithm", Upper(algo)}});
}

namespace {

// The upload's record, or NoSuchUpload in `err`.
std::optional<nlohmann::json> LoadUpload(objects::Objects& o, const store::ShareInfo& b,
                                         const std::string& id, const std::string& key,
                                         S3Error* err) {
  if (ValidUploadId(id)) {
    auto x = o.GetStagedXattr(b, UploadDir(id), kUploadXattr);
    if (x.ok()) {
      auto j = nlohmann::json::parse(*x, nullptr, false);
      if (j.is_object() && j.value("key", "") == key) return j;
    }
  }
  *err = {404, "NoSuchUpload",
          "The specified upload does not exist. The upload ID may be invalid, or the upload may "
          "have been aborted or completed."};
  return std::nullopt;
}

}  // namespace

void S3Api::UploadPart(Call& c) {
  std::string id = c.Q("uploadId");
  std::string pn = c.Q("partNumber");
  if (pn.empty() || pn.size() > 5 || !std::all_of(pn.begin(), pn.end(), ::isdigit) ||
      std::stoi(pn) < 1 || std::stoi(pn) > kMaxParts) {
    return c.Error(400, "InvalidArgument",
                   "Part number must be an integer between 1 and 10000, inclusive");
  }
  int part = std::stoi(pn);
  S3Error err;
  auto up = LoadUpload(objects_, *c.bucket, id, c.Full(), &err);
  if (!up) return c.Error(err);
  std::string md5;
  uint64_t size = 0;
  ObjectMeta sums;
  std::string copy_source = c.Header("x-amz-copy-source");
  // The part is verified and tagged with its ETag before it replaces an earlier upload of the
  // same part, and only into an upload that still exists.
  auto stage = [&](const objects::Source& source, BodyReader* r) -> Status {
    objects::StageOptions so;
    so.make_dirs = false;
    so.verify = [&](const std::string& got_md5, uint64_t got_size, store::NodeId node) {
      if (r != nullptr) FS_RETURN_IF_ERROR(FinishBody(c.ex, *r, got_md5, got_size, &sums, &err));
      nlohmann::json pj;
      pj["etag"] = crypto::ToHex(got_md5);
      pj["sums"] = sums.checksums;
      pj["time"] = c.now;
      return objects_.store().SetXattr(node, kPartXattr, pj.dump());
    };
    auto n = objects_.PutStaged(*c.bucket, PartPath(id, part), source, &md5, so);
    if (!n.ok()) return n.status();
    size = *n;
    return Status::Ok();
  };
  auto failed = [&](const Status& s) {
    if (err.set()) return c.Error(err);
    if (s.code() == StatusCode::kNotFound) {
      return c.Error(404, "NoSuchUpload", "The specified upload does not exist.");
    }
    if (s.message().starts_with("too large")) {
      return c.Error(400, "EntityTooLarge", "A part holds at most 5 GiB.");
    }
    return c.Status(s);
  };
  if (!copy_source.empty()) {
    // UploadPartCopy: a range of another object.
    store::ShareInfo src_share;
    auto from = CopySource(c, &src_share);
    if (!from) return;
    Range r;
    std::string rh = c.Header("x-amz-copy-source-range");
    if (!ParseRange(rh, from->attr.size, &r) || (!rh.empty() && !r.partial)) {
      return c.Error(
          400, "InvalidArgument",
          "The x-amz-copy-source-range value must be of the form bytes=first-last where first and "
          "last are the zero-based offsets of the first and last bytes to copy");
    }
    auto h = objects_.Open(*from);
    if (!h.ok()) return c.Status(h.status());
    if (Status s = stage(objects::ReadFrom(**h, r.first, r.length), nullptr); !s.ok()) {
      return failed(s);
    }
  } else {
    BodyReader r{c.ex};
    if (!StartBody(c.ex, c.id, &r, &err)) return c.Error(err);
    Status s = stage([&r](std::span<uint8_t> out) { return r.Read(out); }, &r);
    if (!s.ok()) return failed(s);
  }
  if (!copy_source.empty()) {
    XmlWriter x;
    x.Open("CopyPartResult", kS3Namespace);
    x.Leaf("LastModified", IsoDate(c.now));
    x.Leaf("ETag", Quote(crypto::ToHex(md5)));
    x.Close("CopyPartResult");
    return c.Xml(bh::status::ok, x.Done());
  }
  http::Response res = c.Base(bh::status::ok);
  res.set(bh::field::etag, Quote(crypto::ToHex(md5)));
  for (const auto& [name, v] : sums.checksums) res.set("x-amz-checksum-" + name, v);
  res.prepare_payload();
  (void)c.ex.Respond(std::move(res));
}

void S3Api::CompleteUpload(Call& c) {
  std::string id = c.Q("uploadId");
  S3Error err;
  auto body = ReadXmlBody(c.ex, c.id, /*checksums=*/false, &err);
  if (!body.ok()) return c.Error(err);
  std::vector<CompletedPart> parts;
  if (!ParseCompleteRequest(*body, &parts, &err)) return c.Error(err);
  auto result = [&](const ObjectInfo& info) {
    XmlWriter x;
    x.Open("CompleteMultipartUploadResult", kS3Namespace);
    x.Leaf("Location", "/" + c.bucket_name + "/" + c.key);
    x.Leaf("Bucket", c.bucket_name);
    x.Leaf("Key", c.key);
    x.Leaf("ETag", Quote(info.ETag()));
    for (const auto& [name, v] : info.meta.checksums) x.Leaf("Checksum" + Upper(name), v);
    x.Close("CompleteMultipartUploadResult");
    c.Xml(bh::status::ok, x.Done());
  };
  auto up = LoadUpload(objects_, *c.bucket, id, c.Full(), &err);
  if (!up && !parts.empty()) {
    // A retry of a Complete whose answer was lost: the object made of these parts is there.
    std::string md5s;
    for (const CompletedPart& p : parts) md5s += HexDecode(Unquote(p.etag));
    std::string want =
        crypto::ToHex(crypto::Digest::Md5(md5s)) + "-" + std::to_string(parts.size());
    auto have = objects_.Head(*c.bucket, c.Full());
    if (have.ok() && have->meta_current() && have->meta.etag == want) return result(*have);
  }
  if (!up) return c.Error(err);
  if (parts.empty()) return c.Error(400, "MalformedXML", "You must specify at least one part");
  std::string algo = up->value("algorithm", "");
  struct Have {
    store::Attr attr;
    std::string md5_hex;
    std::map<std::string, std::string> sums;
  };
  std::vector<Have> have;
  int last = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const CompletedPart& p = parts[i];
    if (p.number <= last) {
      return c.Error(400, "InvalidPartOrder",
                     "The list of parts was not in ascending order. The parts list must be "
                     "specified in order by part number.");
    }
    last = p.number;
    auto st = objects_.StatStaged(*c.bucket, PartPath(id, p.number));
    auto x =
        st.ok() ? objects_.store().GetXattr(st->id, kPartXattr) : Result<std::string>(st.status());
    if (!x.ok()) {
      return c.Error(400, "InvalidPart",
                     fmt::format("One or more of the specified parts could not be found (part {}).",
                                 p.number));
    }
    auto pj = nlohmann::json::parse(*x, nullptr, false);
    Have h{*st, pj.value("etag", ""), {}};
    if (pj.contains("sums") && pj["sums"].is_object()) {
      h.sums = pj["sums"].get<std::map<std::string, std::string>>();
    }
    if (Unquote(p.etag) != h.md5_hex) {
      return c.Error(
          400, "InvalidPart",
          fmt::format("One or more of the specified parts could not be found or the specified "
                      "entity tag might not have matched the part's entity tag (part {}).",
                      p.number));
    }
    for (const auto& [name, v] : p.checksums) {
      auto it = h.sums.find(name);
      if (it != h.sums.end() && it->second != v) {
        return c.Error(400, "InvalidPart",
                       fmt::format("The {} of part {} does not match the part uploaded.",
                                   Upper(name), p.number));
      }
    }
    if (i + 1 < parts.size() && h.attr.size < kMinPartBytes) {
      return c.Error(400, "EntityTooSmall",
                     "Your proposed upload is smaller than the minimum allowed object size (5 MiB "
                     "for every part but the last).");
    }
    have.push_back(std::move(h));
  }
  // The multipart ETag: MD5 of the parts' MD5s, and "-<parts>"; the composite checksum alike.
  std::string md5s;
  std::string sums_raw;
  bool composite = !algo.empty();
  for (const Have& h : have) {
    md5s += HexDecode(h.md5_hex);
    auto it = h.sums.find(algo);
    if (it == h.sums.end()) {
      composite = false;
    } else {
      sums_raw += crypto::Base64Decode(it->second);
    }
  }
  ObjectMeta meta = ObjectMeta::FromJson(up->value("meta", "{}"));
  meta.etag = crypto::ToHex(crypto::Digest::Md5(md5s)) + "-" + std::to_string(have.size());
  if (composite) {
    auto sum = crypto::Checksum::Make(algo);
    sum->Update({reinterpret_cast<const uint8_t*>(sums_raw.data()), sums_raw.size()});
    meta.checksums[algo] = crypto::Base64(sum->Final()) + "-" + std::to_string(have.size());
  }
  size_t index = 0;
  std::unique_ptr<store::FileHandle> current;
  uint64_t offset = 0;
  auto source = [&](std::span<uint8_t> out) -> Result<size_t> {
    for (;;) {
      if (index == have.size()) return size_t{0};
      if (!current) {
        FS_ASSIGN_OR_RETURN(current, objects_.store().OpenFile(have[index].attr.id, false));
        offset = 0;
      }
      FS_ASSIGN_OR_RETURN(size_t n, current->Read(offset, out));
      if (n > 0) {
        offset += n;
        return n;
      }
      current.reset();
      ++index;
    }
  };
  // Assembling copies every part, which for a large object takes longer than clients wait for
  // an answer. As S3 does, answer 200 at once, send a space every few seconds, then the result
  // or an <Error> (SDKs read the body of a 200 Complete for that).
  uint64_t total = 0;
  for (const Have& h : have) total += h.attr.size;
  bool stream = total >= options_.stream_complete_bytes;
  if (stream) {
    http::ResponseHeader h;
    h.result(bh::status::ok);
    h.set(bh::field::server, "fieldstack");
    h.set("x-amz-request-id", c.request_id);
    h.set(bh::field::date, HttpDate(c.now));
    h.set(bh::field::content_type, "application/xml");
    if (!c.ex.BeginResponse(h, http::Exchange::kUntilClose).ok()) return;
    std::string decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    (void)c.ex.WriteBody({reinterpret_cast<const uint8_t*>(decl.data()), decl.size()});
  }
  std::optional<Result<ObjectInfo>> info;
  {
    std::mutex mu;
    std::condition_variable cv;
    store::Origin origin{true, 0, 0, 0, "s3:" + c.id.key->user + "@" + c.ex.peer()};
    std::thread worker([&] {
      store::Store::SetThreadOrigin(origin);
      auto r = objects_.Put(*c.bucket, c.Full(), source, meta);
      current.reset();
      std::lock_guard l(mu);
      info = std::move(r);
      cv.notify_all();
    });
    std::unique_lock l(mu);
    while (!info) {
      if (cv.wait_for(l, std::chrono::seconds(5), [&] { return info.has_value(); })) break;
      if (stream) {
        l.unlock();
        (void)c.ex.WriteBody({reinterpret_cast<const uint8_t*>(" "), 1});
        l.lock();
      }
    }
    l.unlock();
    worker.join();
  }
  if (info->ok()) {
    if (Status s = objects_.RemoveStaged(*c.bucket, UploadDir(id)); !s.ok()) {
      spdlog::warn("s3: cannot remove the parts of upload {}: {}", id, s.ToString());
    }
  }
  if (!stream) {
    if (!info->ok()) return c.Status(info->status());
    return result(**info);
  }
  XmlWriter x(/*declaration=*/false);
  if (info->ok()) {
    x.Open("CompleteMultipartUploadResult", kS3Namespace);
    x.Leaf("Location", "/" + c.bucket_name + "/" + c.key);
    x.Leaf("Bucket", c.bucket_name);
    x.Leaf("Key", c.key);
    x.Leaf("ETag", Quote((*info)->ETag()));
    for (const auto& [name, v] : (*info)->meta.checksums) x.Leaf("Checksum" + Upper(name), v);
    x.Close("CompleteMultipartUploadResult");
  } else {
    S3Error e = FromStatus(info->status(), c.key);
    x.Open("Error");
    x.Leaf("Code", e.code);
    x.Leaf("Message", e.message);
    x.Leaf("RequestId", c.request_id);
    x.Close("Error");
  }
  std::string tail = x.Done();
  (void)c.ex.WriteBody({reinterpret_cast<const uint8_t*>(tail.data()), tail.size()});
}

void S3Api::AbortUpload(Call& c) {
  S3Error err;
  std::string id = c.Q("uploadId");
  if (!LoadUpload(objects_, *c.bucket, id, c.Full(), &err)) return c.Error(err);
  if (Status s = objects_.RemoveStaged(*c.bucket, UploadDir(id)); !s.ok()) return c.Status(s);
  c.Empty(bh::status::no_content);
}

void S3Api::ListParts(Call& c) {
  S3Error err;
  std::string id = c.Q("uploadId");
  auto up = LoadUpload(objects_, *c.bucket, id, c.Full(), &err);
  if (!up) return c.Error(err);
  int marker = 0;
  std::string pm = c.Q("part-number-marker");
  if (!pm.empty() && pm.size() < 6 && std::all_of(pm.begin(), pm.end(), ::isdigit))
    marker = std::stoi(pm);
  size_t max = 1000;
  std::string mp = c.Q("max-parts");
  if (!mp.empty() && mp.size() < 6 && std::all_of(mp.begin(), mp.end(), ::isdigit)) {
    max = std::min<size_t>(1000, std::stoul(mp));
  }
  auto list = objects_.ListStaged(*c.bucket, UploadDir(id));
  if (!list.ok()) return c.Status(list.status());
  XmlWriter x;
  x.Open("ListPartsResult", kS3Namespace);
  x.Leaf("Bucket", c.bucket_name);
  x.Leaf("Key", c.key);
  x.Leaf("UploadId", id);
  x.Leaf("PartNumberMarker", std::to_string(marker));
  x.Leaf("MaxParts", std::to_string(max));
  std::string body;
  size_t n = 0;
  bool truncated = false;
  int next = marker;
  XmlWriter parts(/*declaration=*/false);
  for (const store::Attr& a : *list) {
    if (a.name.size() != 5 || !std::all_of(a.name.begin(), a.name.end(), ::isdigit)) continue;
    int num = std::stoi(a.name);
    if (num <= marker) continue;
    if (n == max) {
      truncated = true;
      break;
    }
    auto px = objects_.store().GetXattr(a.id, kPartXattr);
    if (!px.ok()) continue;  // still being written
    auto pj = nlohmann::json::parse(*px, nullptr, false);
    parts.Open("Part");
    parts.Leaf("PartNumber", std::to_string(num));
    parts.Leaf("LastModified", IsoDate(a.mtime_ns));
    parts.Leaf("ETag", Quote(pj.value("etag", "")));
    parts.Leaf("Size", std::to_string(a.size));
    if (pj.contains("sums") && pj["sums"].is_object()) {
      for (auto& [name, v] : pj["sums"].items())
        parts.Leaf("Checksum" + Upper(name), v.get<std::string>());
    }
    parts.Close("Part");
    next = num;
    ++n;
  }
  x.Leaf("NextPartNumberMarker", std::to_string(next));
  x.Leaf("IsTruncated", truncated ? "true" : "false");
  x.Raw(parts.Done());
  x.Open("Initiator");
  x.Leaf("ID", up->value("user", ""));
  x.Leaf("DisplayName", up->value("user", ""));
  x.Close("Initiator");
  x.Leaf("StorageClass", "STANDARD");
  x.Close("ListPartsResult");
  c.Xml(bh::status::ok, x.Done());
}

void S3Api::ListUploads(Call& c) {
  std::string prefix = c.Q("prefix");
  auto list = objects_.ListStaged(*c.bucket, "uploads");
  std::vector<std::pair<std::string, std::pair<std::string, int64_t>>> uploads;  // key, id, time
  if (list.ok()) {
    for (const store::Attr& a : *list) {
      auto x = objects_.store().GetXattr(a.id, kUploadXattr);
      if (!x.ok()) continue;
      auto j = nlohmann::json::parse(*x, nullptr, false);
      if (!j.is_object()) continue;
      std::string key = j.value("key", "");
      if (!key.starts_with(c.root + prefix)) continue;
      uploads.push_back({key.substr(c.root.size()), {a.name, j.value("initiated", int64_t{0})}});
    }
  } else if (list.status().code() != StatusCode::kNotFound) {
    return c.Status(list.status());
  }
  std::sort(uploads.begin(), uploads.end());
  XmlWriter x;
  x.Open("ListMultipartUploadsResult", kS3Namespace);
  x.Leaf("Bucket", c.bucket_name);
  x.Leaf("KeyMarker", c.Q("key-marker"));
  x.Leaf("UploadIdMarker", c.Q("upload-id-marker"));
  x.Leaf("Prefix", prefix);
  x.Leaf("MaxUploads", "1000");
  x.Leaf("IsTruncated", "false");
  for (const auto& [key, u] : uploads) {
    x.Open("Upload");
    x.Leaf("Key", key);
    x.Leaf("UploadId", u.first);
    x.Leaf("Initiated", IsoDate(u.second));
    x.Leaf("StorageClass", "STANDARD");
    x.Close("Upload");
  }
  x.Close("ListMultipartUploadsResult");
  c.Xml(bh::status::ok, x.Done());
}

}  // namespace fieldstack::frontends::s3_api
