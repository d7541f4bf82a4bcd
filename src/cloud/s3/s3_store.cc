#include "cloud/s3/s3_store.h"

#include <algorithm>
#include <ctime>
#include <pugixml.hpp>

#include "crypto/hash.h"
#include "crypto/key_store.h"

namespace fieldstack::cloud::s3 {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The raw MD5 an ETag stands for, when it is a plain MD5 (single-part, not KMS).
std::string Md5OfEtag(const std::string& etag) {
  std::string hex = Unquote(etag);
  if (hex.size() != 32) return {};
  std::string raw;
  for (size_t i = 0; i < 32; i += 2) {
    int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    raw.push_back(static_cast<char>(hi * 16 + lo));
  }
  return raw;
}

bool ValidBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return false;
    }
  }
  return std::isalnum(static_cast<unsigned char>(b.front())) &&
         std::isalnum(static_cast<unsigned char>(b.back()));
}

std::pair<std::string, std::string> ErrorOf(const std::string& body) {
  pugi::xml_document doc;
  if (!doc.load_string(body.c_str())) return {};
  return {doc.child("Error").child_value("Code"), doc.child("Error").child_value("Message")};
}

// If-Match carries the bare etag: Ceph RGW compares the header text with its unquoted etag.
void AddConditions(std::vector<std::pair<std::string, std::string>>& h, const Precondition& p) {
  if (p.if_match) h.emplace_back("If-Match", Unquote(*p.if_match));
  if (p.if_none_match_any) h.emplace_back("If-None-Match", "*");
}

// Metadata names travel with '-' for '_' (Ceph RGW turns '_' into '-' in header names), and
// come back with '_': names are lower-case letters, digits and '_' (ObjectMeta).
void AddMeta(std::vector<std::pair<std::string, std::string>>& h, const ObjectMeta& meta) {
  for (const auto& [k, v] : meta) {
    std::string name = k;
    std::replace(name.begin(), name.end(), '_', '-');
    h.emplace_back("x-amz-meta-" + name, v);
  }
}

// Whether the object `head` (nullptr: none) meets `pre`; for requests on which a service may
// ignore the conditional headers.
Status Satisfies(const ObjectInfo* head, const Precondition& pre, std::string_view key,
                 std::string_view what) {
  if (pre.if_none_match_any && head != nullptr) {
    return FailedPreconditionError("s3 " + std::string(what) + ": '" + std::string(key) +
                                   "' exists");
  }
  if (pre.if_match && (head == nullptr || Unquote(head->etag) != Unquote(*pre.if_match))) {
    return FailedPreconditionError("s3 " + std::string(what) + ": '" + std::string(key) +
                                   "' changed");
  }
  return Status::Ok();
}

ObjectInfo InfoFrom(std::string_view key, const HttpResponse& r) {
  ObjectInfo info;
  info.key = key;
  info.etag = r.Header("etag");
  // With KMS or customer keys the ETag is not the MD5 of the bytes.
  std::string sse = r.Header("x-amz-server-side-encryption");
  if (!sse.starts_with("aws:kms") &&
      r.Header("x-amz-server-side-encryption-customer-algorithm").empty()) {
    info.content_md5 = Md5OfEtag(info.etag);
  }
  info.mtime_ns = ParseUtc(r.Header("last-modified"), "%a, %d %b %Y %H:%M:%S GMT");
  std::string len = r.Header("content-length");
  info.size = len.empty() ? 0 : std::stoull(len);
  for (const auto& [name, value] : r.headers) {
    if (name.starts_with("x-amz-meta-")) {
      std::string k = name.substr(11);
      std::replace(k.begin(), k.end(), '-', '_');
      info.meta[k] = value;
    }
  }
  return info;
}

}  // namespace

Result<std::unique_ptr<S3Store>> S3Store::Open(S3Config config, Clock& clock) {
  if (config.endpoint.empty() || config.bucket.empty()) {
    return InvalidArgumentError("s3: endpoint and bucket are required");
  }
  if (!config.endpoint.starts_with("http://") && !config.endpoint.starts_with("https://")) {
    return InvalidArgumentError("s3: endpoint '" + config.endpoint +
                                "' must start with http:// or https://");
  }
  if (config.credentials.access_key.empty() || config.credentials.secret_key.empty()) {
    return InvalidArgumentError("s3: an access key and a secret key are required");
  }
  if (!ValidBucket(config.bucket)) {
    return InvalidArgumentError("s3: '" + config.bucket +
                                "' is not a valid bucket name (3-63 of a-z 0-9 . -)");
  }
  if (config.virtual_hosted && config.bucket.find('.') != std::string::npos &&
      config.endpoint.starts_with("https://")) {
    return InvalidArgumentError("s3: a bucket name with '.' needs path style over https");
  }
  if (config.region.empty()) config.region = "us-east-1";
  while (config.endpoint.back() == '/') config.endpoint.pop_back();
  auto s = std::unique_ptr<S3Store>(new S3Store(std::move(config), clock));
  s->sign_payload_ = s->config_.endpoint.starts_with("http://");
  return s;
}

std::string S3Store::Url(std::string_view key, std::string_view query) const {
  std::string url;
  if (config_.virtual_hosted) {
    size_t host_at = config_.endpoint.find("://") + 3;
    url = config_.endpoint.substr(0, host_at) + config_.bucket + "." +
          config_.endpoint.substr(host_at) + "/";
  } else {
    url = config_.endpoint + "/" + config_.bucket + (key.empty() ? "" : "/");
  }
  url += UrlEncodePath(key);
  if (!query.empty()) url += "?" + std::string(query);
  return url;
}

std::string S3Store::Presign(std::string_view method, std::string_view key,
                             int64_t expires_s) const {
  return PresignUrl(method, Url(key), config_.credentials, config_.region, clock_.NowUnixNanos(),
                    expires_s);
}

Result<HttpResponse> S3Store::Call(HttpRequest req, std::string_view what) {
  std::string hash = kUnsignedPayload;
  if (sign_payload_) {
    crypto::Digest d(crypto::Digest::Kind::kSha256);
    d.Update(req.body);
    hash = crypto::ToHex(d.Final());
  }
  SignRequest(req, config_.credentials, config_.region, clock_.NowUnixNanos(), hash);
  FS_ASSIGN_OR_RETURN(HttpResponse r, http_.Send(req));
  // Only CompleteMultipartUpload can fail after "200 OK", with an error document; any other
  // 2xx body is data (an object may well be an XML <Error> document).
  bool completing = req.method == "POST" && req.url.find("uploadId=") != std::string::npos;
  if (r.status >= 200 && r.status < 300 && !completing) return r;
  auto [code, detail] = ErrorOf(r.body);
  if (r.status >= 200 && r.status < 300 && code.empty()) return r;
  if (r.status == 304) return FailedPreconditionError("s3 " + std::string(what) + ": not modified");
  std::string msg = "s3 " + std::string(what) + ": HTTP " + std::to_string(r.status) +
                    (code.empty() ? "" : " " + code) + (detail.empty() ? "" : ": " + detail);
  if (code == "NoSuchBucket") {
    return NotFoundError(msg + " (bucket '" + config_.bucket + "' is missing)");
  }
  if (code == "BadDigest" || code == "InvalidDigest" || code == "XAmzContentSHA256Mismatch") {
    return CorruptionError(msg);
  }
  if (code == "RequestTimeout" || code == "SlowDown" || code == "InternalError" ||
      code == "ServiceUnavailable" || code == "ConditionalRequestConflict") {
    return UnavailableError(msg);
  }
  if (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists") {
    return AlreadyExistsError(msg);
  }
  switch (r.status) {
    case 404:
      return NotFoundError(msg);
    case 409:
    case 412:
      return FailedPreconditionError(msg);
    case 401:
    case 403:
      return UnauthenticatedError(msg);
    case 400:
      return InvalidArgumentError(msg);
    case 408:
    case 429:
      return UnavailableError(msg);
    default:
      if (r.status >= 500 || r.status < 300) return UnavailableError(msg);
      return InternalError(msg);
  }
}

Status S3Store::CreateBucket() {
  std::string body;
  if (config_.region != "us-east-1") {
    body =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" +
        config_.region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  return Call({"PUT", Url(""), {}, Bytes(body)}, "create bucket").status();
}

Result<ObjectInfo> S3Store::Put(std::string_view key, std::span<const uint8_t> data,
                                const PutOptions& options) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  HttpRequest req{"PUT", Url(key), {}, data};
  if (options.content_md5) {
    req.headers.emplace_back("Content-MD5", crypto::Base64(*options.content_md5));
  }
  AddMeta(req.headers, options.meta);
  AddConditions(req.headers, options.precondition);
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call(std::move(req), "put object"));
  ObjectInfo info = InfoFrom(key, r);
  info.size = data.size();
  info.meta = options.meta;
  info.mtime_ns = clock_.NowUnixNanos();
  return info;
}

Result<Upload> S3Store::BeginUpload(std::string_view key, const UploadPlan& plan) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  HttpRequest req{"POST", Url(key, "uploads="), {}, {}};
  AddMeta(req.headers, plan.meta);
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call(std::move(req), "create multipart upload"));
  pugi::xml_document doc;
  doc.load_string(r.body.c_str());
  std::string id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
  if (id.empty()) return UnavailableError("s3 create multipart upload: no UploadId in the answer");
  return Upload{std::string(key), id};
}

Status S3Store::PutPart(const Upload& upload, uint32_t number, std::span<const uint8_t> data,
                        const std::optional<std::string>& content_md5) {
  FS_RETURN_IF_ERROR(ValidatePartNumber(number));
  HttpRequest req{
      "PUT",
      Url(upload.key, "partNumber=" + std::to_string(number) + "&uploadId=" + UrlEncode(upload.id)),
      {},
      data};
  if (content_md5) req.headers.emplace_back("Content-MD5", crypto::Base64(*content_md5));
  return Call(std::move(req), "upload part").status();
}

Result<std::vector<S3Store::Part>> S3Store::Parts(const Upload& upload) {
  std::vector<Part> out;
  std::string marker;
  for (;;) {
    std::string query = "max-parts=1000&uploadId=" + UrlEncode(upload.id);
    if (!marker.empty()) query += "&part-number-marker=" + marker;
    FS_ASSIGN_OR_RETURN(HttpResponse r,
                        Call({"GET", Url(upload.key, query), {}, {}}, "list parts"));
    pugi::xml_document doc;
    if (!doc.load_string(r.body.c_str())) return UnavailableError("s3: bad ListParts XML");
    auto root = doc.child("ListPartsResult");
    for (auto p : root.children("Part")) {
      out.push_back({static_cast<uint32_t>(std::stoul(p.child_value("PartNumber"))),
                     std::stoull(p.child_value("Size")), p.child_value("ETag")});
    }
    if (std::string(root.child_value("IsTruncated")) != "true") break;
    std::string next = root.child_value("NextPartNumberMarker");
    if (next.empty() || next == marker) break;
    marker = next;
  }
  std::sort(out.begin(), out.end(),
            [](const Part& a, const Part& b) { return a.number < b.number; });
  return out;
}

Result<std::vector<PartInfo>> S3Store::ListParts(const Upload& upload) {
  FS_ASSIGN_OR_RETURN(auto parts, Parts(upload));
  std::vector<PartInfo> out;
  for (const auto& p : parts) out.push_back({p.number, p.size});
  return out;
}

Result<ObjectInfo> S3Store::CommitUpload(const Upload& upload, const std::vector<uint32_t>& parts,
                                         const CommitOptions& options) {
  FS_RETURN_IF_ERROR(ValidatePartList(parts));
  FS_ASSIGN_OR_RETURN(auto stored, Parts(upload));
  std::string xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  size_t i = 0;
  for (uint32_t n : parts) {
    while (i < stored.size() && stored[i].number < n) ++i;
    if (i == stored.size() || stored[i].number != n) {
      return InvalidArgumentError("s3 complete multipart upload: part " + std::to_string(n) +
                                  " of '" + upload.key + "' was never stored");
    }
    xml += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>" + stored[i].etag +
           "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  // Not every service honours conditions on completion (Ceph RGW 16 ignores them): check
  // first, and send them too for those that do (AWS). Between the check and the completion,
  // a write by someone else could still be replaced; see docs/s3-test-server.md.
  if (options.precondition.if_none_match_any || options.precondition.if_match) {
    auto head = Head(upload.key);
    if (!head.ok() && head.status().code() != StatusCode::kNotFound) return head.status();
    FS_RETURN_IF_ERROR(Satisfies(head.ok() ? &*head : nullptr, options.precondition, upload.key,
                                 "complete multipart upload"));
  }
  HttpRequest req{"POST",
                  Url(upload.key, "uploadId=" + UrlEncode(upload.id)),
                  {{"Content-Type", "application/xml"}},
                  Bytes(xml)};
  AddConditions(req.headers, options.precondition);
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call(std::move(req), "complete multipart upload"));
  (void)r;
  return Head(upload.key);
}

Status S3Store::AbortUpload(const Upload& upload) {
  Status s = Call({"DELETE", Url(upload.key, "uploadId=" + UrlEncode(upload.id)), {}, {}},
                  "abort multipart upload")
                 .status();
  if (s.code() == StatusCode::kNotFound) return Status::Ok();
  return s;
}

Result<ObjectInfo> S3Store::Head(std::string_view key) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call({"HEAD", Url(key), {}, {}}, "head object"));
  return InfoFrom(key, r);
}

Result<std::string> S3Store::Get(std::string_view key, uint64_t offset, uint64_t length) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  if (length == 0) {
    FS_RETURN_IF_ERROR(Head(key).status());
    return std::string();
  }
  HttpRequest req{"GET", Url(key), {}, {}};
  req.headers.emplace_back(
      "Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
  auto r = Call(std::move(req), "get object");
  if (!r.ok() && r.status().message().find("HTTP 416") != std::string::npos) {
    return std::string();  // the range starts past the end
  }
  if (!r.ok()) return r.status();
  return std::move(r->body);
}

Status S3Store::Delete(std::string_view key, const Precondition& precondition) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  // DeleteObject answers 204 for a missing key, and not every service honours If-Match on
  // it: look first.
  FS_ASSIGN_OR_RETURN(ObjectInfo head, Head(key));
  FS_RETURN_IF_ERROR(Satisfies(&head, precondition, key, "delete object"));
  HttpRequest req{"DELETE", Url(key), {}, {}};
  AddConditions(req.headers, precondition);
  return Call(std::move(req), "delete object").status();
}

Result<ListPage> S3Store::List(std::string_view prefix, std::string_view token, size_t limit) {
  std::string query = "list-type=2&max-keys=" + std::to_string(std::clamp<size_t>(limit, 1, 1000));
  if (!prefix.empty()) query += "&prefix=" + UrlEncode(prefix);
  if (!token.empty()) query += "&continuation-token=" + UrlEncode(token);
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call({"GET", Url("", query), {}, {}}, "list objects"));
  pugi::xml_document doc;
  if (!doc.load_string(r.body.c_str())) return UnavailableError("s3: bad list XML");
  ListPage page;
  auto root = doc.child("ListBucketResult");
  for (auto c : root.children("Contents")) {
    ObjectInfo info;
    info.key = c.child_value("Key");
    info.size = std::stoull(c.child_value("Size"));
    info.etag = c.child_value("ETag");
    info.content_md5 = Md5OfEtag(info.etag);
    info.mtime_ns = ParseUtc(c.child_value("LastModified"), "%Y-%m-%dT%H:%M:%S");
    page.objects.push_back(std::move(info));
  }
  if (std::string(root.child_value("IsTruncated")) == "true") {
    page.next_token = root.child_value("NextContinuationToken");
  }
  return page;
}

}  // namespace fieldstack::cloud::s3
