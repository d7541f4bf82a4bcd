#include "cloud/azure_blob/azure_blob_store.h"

#include <algorithm>
#include <ctime>
#include <pugixml.hpp>
#include <thread>

#include "crypto/hash.h"
#include "crypto/key_store.h"

namespace fieldstack::cloud::azure_blob {
namespace {

constexpr char kApiVersion[] = "2021-08-06";

using crypto::Base64Decode;
using crypto::HmacSha256;

constexpr char kRfc1123[] = "%a, %d %b %Y %H:%M:%S GMT";

constexpr uint64_t kPageBytes = 512;
constexpr uint64_t kMaxPutPageBytes = 4 << 20;
constexpr char kStagingPrefix[] = ".fieldstack-staging/";
constexpr char kPageUploadPrefix[] = "page-";

// A page blob upload's id is "page-<part size>-<random>"; it is assembled under StagingKey.
bool IsPageUpload(const Upload& up) { return up.id.starts_with(kPageUploadPrefix); }
uint64_t PagePartSize(const Upload& up) {
  return std::strtoull(up.id.c_str() + sizeof(kPageUploadPrefix) - 1, nullptr, 10);
}
std::string StagingKey(const Upload& up) { return kStagingPrefix + up.id; }

Status CheckPageAligned(std::string_view key, uint64_t bytes, const char* what) {
  if (bytes % kPageBytes == 0) return Status::Ok();
  return InvalidArgumentError("page blob '" + std::string(key) + "': " + what + " of " +
                              std::to_string(bytes) +
                              " bytes is not a multiple of 512 (page blobs hold whole 512-byte "
                              "pages; pad the image or leave it out of page_blob_suffixes)");
}

std::string BlockId(const Upload& up, uint32_t number) {
  char part[16];
  std::snprintf(part, sizeof part, "-%05u", number);
  return crypto::Base64(up.id + part);
}

// The service's error code and message (header and XML body).
std::pair<std::string, std::string> ErrorOf(const HttpResponse& r) {
  std::string code = r.Header("x-ms-error-code"), message;
  pugi::xml_document doc;
  if (doc.load_string(r.body.c_str())) {
    if (code.empty()) code = doc.child("Error").child_value("Code");
    message = doc.child("Error").child_value("Message");
  }
  return {code, message};
}

// Bytes damaged on the way: Azure says Md5Mismatch / Crc64Mismatch; Azurite says
// InvalidOperation "Provided contentMD5 doesn't match" or a body size mismatch.
bool IsChecksumError(const std::string& code, const std::string& message) {
  return code == "Md5Mismatch" || code == "Crc64Mismatch" ||
         (code == "InvalidOperation" && (message.find("MD5") != std::string::npos ||
                                         message.find("mismatches") != std::string::npos));
}

void AddConditions(std::vector<std::pair<std::string, std::string>>& h, const Precondition& p) {
  if (p.if_match) h.emplace_back("If-Match", *p.if_match);
  if (p.if_none_match_any) h.emplace_back("If-None-Match", "*");
}

void AddMeta(std::vector<std::pair<std::string, std::string>>& h, const ObjectMeta& meta) {
  for (const auto& [k, v] : meta) h.emplace_back("x-ms-meta-" + k, v);
}

ObjectInfo InfoFrom(std::string_view key, const HttpResponse& r) {
  ObjectInfo info;
  info.key = key;
  info.etag = r.Header("etag");
  info.content_md5 = Base64Decode(r.Header("content-md5"));
  info.mtime_ns = ParseUtc(r.Header("last-modified"), kRfc1123);
  std::string len = r.Header("content-length");
  info.size = len.empty() ? 0 : std::stoull(len);
  for (const auto& [name, value] : r.headers) {
    if (name.starts_with("x-ms-meta-")) info.meta[name.substr(10)] = value;
  }
  return info;
}

}  // namespace

Result<std::unique_ptr<AzureBlobStore>> AzureBlobStore::Open(AzureConfig config, Clock& clock) {
  if (config.endpoint.empty() || config.container.empty()) {
    return InvalidArgumentError("azure: endpoint and container are required");
  }
  if (config.sas.empty() && (config.account.empty() || config.key_base64.empty())) {
    return InvalidArgumentError("azure: give an account and key, or a SAS");
  }
  while (!config.endpoint.empty() && config.endpoint.back() == '/') config.endpoint.pop_back();
  std::string key = Base64Decode(config.key_base64);
  if (config.sas.empty() && key.empty()) return InvalidArgumentError("azure: key is not base64");
  return std::unique_ptr<AzureBlobStore>(new AzureBlobStore(std::move(config), clock, key));
}

std::string AzureBlobStore::StringToSign(const HttpRequest& req, const std::string& account) {
  auto header = [&](std::string_view name) {
    for (const auto& [k, v] : req.headers) {
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        return v;
      }
    }
    return std::string();
  };
  std::string length = req.body.empty() ? "" : std::to_string(req.body.size());
  std::string s = req.method + "\n" + header("Content-Encoding") + "\n" +
                  header("Content-Language") + "\n" + length + "\n" + header("Content-MD5") + "\n" +
                  header("Content-Type") + "\n" + "\n" + header("If-Modified-Since") + "\n" +
                  header("If-Match") + "\n" + header("If-None-Match") + "\n" +
                  header("If-Unmodified-Since") + "\n" + header("Range") + "\n";
  std::vector<std::pair<std::string, std::string>> ms;
  for (const auto& [k, v] : req.headers) {
    std::string lower = k;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.starts_with("x-ms-")) ms.emplace_back(lower, v);
  }
  std::sort(ms.begin(), ms.end());
  for (const auto& [k, v] : ms) s += k + ":" + v + "\n";
  // Canonicalized resource: /account + URL path, then the query parameters, sorted.
  size_t scheme = req.url.find("://");
  size_t path_at = req.url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string path_and_query = path_at == std::string::npos ? "/" : req.url.substr(path_at);
  size_t q = path_and_query.find('?');
  s += "/" + account + path_and_query.substr(0, q);
  if (q != std::string::npos) {
    std::vector<std::pair<std::string, std::string>> params;
    std::string query = path_and_query.substr(q + 1);
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      if (amp == std::string::npos) amp = query.size();
      std::string kv = query.substr(pos, amp - pos);
      size_t eq = kv.find('=');
      std::string k = UrlDecode(kv.substr(0, eq));
      for (char& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!k.empty())
        params.emplace_back(k, eq == std::string::npos ? "" : UrlDecode(kv.substr(eq + 1)));
      pos = amp + 1;
    }
    std::sort(params.begin(), params.end());
    for (const auto& [k, v] : params) s += "\n" + k + ":" + v;
  }
  return s;
}

std::string AzureBlobStore::BlobUrl(std::string_view key, std::string_view query) const {
  std::string url = config_.endpoint + "/" + config_.container;
  if (!key.empty()) url += "/" + UrlEncodePath(key);
  if (!query.empty()) url += "?" + std::string(query);
  return url;
}

Result<HttpResponse> AzureBlobStore::Call(HttpRequest req, std::string_view what) {
  req.headers.emplace_back("x-ms-date", FormatUtc(clock_.NowUnixNanos(), kRfc1123));
  req.headers.emplace_back("x-ms-version", kApiVersion);
  if (!config_.sas.empty()) {
    req.url += (req.url.find('?') == std::string::npos ? "?" : "&") + config_.sas;
  } else {
    std::string sig = crypto::Base64(HmacSha256(key_, StringToSign(req, config_.account)));
    req.headers.emplace_back("Authorization", "SharedKey " + config_.account + ":" + sig);
  }
  FS_ASSIGN_OR_RETURN(HttpResponse r, http_.Send(req));
  if (r.status >= 200 && r.status < 300) return r;
  auto [code, detail] = ErrorOf(r);
  std::string msg = "azure " + std::string(what) + ": HTTP " + std::to_string(r.status) +
                    (code.empty() ? "" : " " + code) + (detail.empty() ? "" : ": " + detail);
  switch (r.status) {
    case 404:
      return NotFoundError(msg);
    case 412:
      return FailedPreconditionError(msg);
    case 409:
      if (code == "ContainerAlreadyExists") return AlreadyExistsError(msg);
      return FailedPreconditionError(msg);
    case 401:
    case 403:
      return UnauthenticatedError(msg);
    case 400:
      if (IsChecksumError(code, detail)) return CorruptionError(msg);
      return InvalidArgumentError(msg);
    case 408:
    case 429:
      return UnavailableError(msg);
    default:
      if (r.status >= 500) return UnavailableError(msg);
      return InternalError(msg);
  }
}

Status AzureBlobStore::CreateContainer() {
  return Call({"PUT", BlobUrl("", "restype=container"), {}, {}}, "create container").status();
}

Result<ObjectInfo> AzureBlobStore::Put(std::string_view key, std::span<const uint8_t> data,
                                       const PutOptions& options) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  if (IsPageBlob(key)) {
    if (options.content_md5 && crypto::Digest::Md5({reinterpret_cast<const char*>(data.data()),
                                                    data.size()}) != *options.content_md5) {
      return CorruptionError("page blob '" + std::string(key) + "': bytes do not match their MD5");
    }
    FS_ASSIGN_OR_RETURN(Upload up, BeginUpload(key, {.meta = options.meta, .size = data.size()}));
    Status wrote = WritePages(StagingKey(up), 0, data);
    if (!wrote.ok()) {
      (void)AbortUpload(up);
      return wrote;
    }
    auto info = CommitPageBlob(up, {options.meta, options.precondition, options.content_md5});
    if (!info.ok()) (void)AbortUpload(up);
    return info;
  }
  HttpRequest req{"PUT", BlobUrl(key), {{"x-ms-blob-type", "BlockBlob"}}, data};
  if (options.content_md5)
    req.headers.emplace_back("Content-MD5", crypto::Base64(*options.content_md5));
  AddMeta(req.headers, options.meta);
  AddConditions(req.headers, options.precondition);
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call(std::move(req), "put blob"));
  ObjectInfo info = InfoFrom(key, r);
  info.size = data.size();
  info.meta = options.meta;
  return info;
}

Result<Upload> AzureBlobStore::BeginUpload(std::string_view key, const UploadPlan& plan) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  uint8_t r[8];
  FS_RETURN_IF_ERROR(crypto::RandomBytes(r));
  std::string id = crypto::ToHex({reinterpret_cast<char*>(r), sizeof r});
  if (!IsPageBlob(key)) return Upload{std::string(key), id};
  FS_RETURN_IF_ERROR(CheckPageAligned(key, plan.size, "a size"));
  uint64_t part = plan.part_size == 0 ? plan.size : plan.part_size;
  FS_RETURN_IF_ERROR(CheckPageAligned(key, part, "a part size"));
  Upload up{std::string(key), kPageUploadPrefix + std::to_string(part) + "-" + id};
  HttpRequest req{
      "PUT",
      BlobUrl(StagingKey(up)),
      {{"x-ms-blob-type", "PageBlob"}, {"x-ms-blob-content-length", std::to_string(plan.size)}},
      {}};
  FS_RETURN_IF_ERROR(Call(std::move(req), "create page blob").status());
  return up;
}

bool AzureBlobStore::IsPageBlob(std::string_view key) const {
  for (const std::string& suffix : config_.page_blob_suffixes) {
    if (key.size() >= suffix.size() &&
        std::equal(suffix.begin(), suffix.end(), key.end() - suffix.size(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return true;
    }
  }
  return false;
}

Status AzureBlobStore::WritePages(const std::string& blob, uint64_t offset,
                                  std::span<const uint8_t> data) {
  // Runs of non-zero pages, at most 4 MiB each, in order; zero pages are already zero. The
  // last page is always written: ListParts takes it as the mark that the part is complete.
  auto zero = [&](size_t at) {
    if (at + kPageBytes >= data.size()) return false;
    size_t end = std::min<size_t>(at + kPageBytes, data.size());
    return std::all_of(data.begin() + at, data.begin() + end, [](uint8_t b) { return b == 0; });
  };
  size_t at = 0;
  while (at < data.size()) {
    if (zero(at)) {
      at += kPageBytes;
      continue;
    }
    size_t end = at;
    while (end < data.size() && end - at < kMaxPutPageBytes && !zero(end)) end += kPageBytes;
    end = std::min(end, data.size());
    std::span<const uint8_t> run = data.subspan(at, end - at);
    uint64_t first = offset + at;
    HttpRequest req{
        "PUT",
        BlobUrl(blob, "comp=page"),
        {{"x-ms-page-write", "update"},
         {"x-ms-range",
          "bytes=" + std::to_string(first) + "-" + std::to_string(first + run.size() - 1)},
         {"Content-MD5", crypto::Base64(crypto::Digest::Md5(
                             {reinterpret_cast<const char*>(run.data()), run.size()}))}},
        run};
    FS_RETURN_IF_ERROR(Call(std::move(req), "put page").status());
    at = end;
  }
  return Status::Ok();
}

Result<ObjectInfo> AzureBlobStore::CommitPageBlob(const Upload& upload,
                                                  const CommitOptions& options) {
  std::string staging = StagingKey(upload);
  if (options.content_md5) {
    HttpRequest props{"PUT",
                      BlobUrl(staging, "comp=properties"),
                      {{"x-ms-blob-content-md5", crypto::Base64(*options.content_md5)}},
                      {}};
    FS_RETURN_IF_ERROR(Call(std::move(props), "set blob properties").status());
  }
  std::string source = BlobUrl(staging);
  if (!config_.sas.empty()) source += "?" + config_.sas;
  HttpRequest copy{"PUT", BlobUrl(upload.key), {{"x-ms-copy-source", source}}, {}};
  AddMeta(copy.headers, options.meta);
  AddConditions(copy.headers, options.precondition);
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call(std::move(copy), "copy blob"));
  // Copies inside one account normally finish at once; otherwise wait for it.
  std::string state = r.Header("x-ms-copy-status");
  for (int i = 0; state == "pending" && i < 6000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    FS_ASSIGN_OR_RETURN(HttpResponse h,
                        Call({"HEAD", BlobUrl(upload.key), {}, {}}, "get properties"));
    state = h.Header("x-ms-copy-status");
  }
  if (state != "success" && !state.empty()) {
    return UnavailableError("azure copy blob of page blob '" + upload.key + "': copy " + state);
  }
  (void)AbortUpload(upload);  // the staging blob; a leftover only costs space
  return Head(upload.key);
}

Status AzureBlobStore::PutPart(const Upload& upload, uint32_t number, std::span<const uint8_t> data,
                               const std::optional<std::string>& content_md5) {
  FS_RETURN_IF_ERROR(ValidatePartNumber(number));
  if (IsPageUpload(upload)) {
    FS_RETURN_IF_ERROR(CheckPageAligned(upload.key, data.size(), "a part"));
    if (content_md5 && crypto::Digest::Md5({reinterpret_cast<const char*>(data.data()),
                                            data.size()}) != *content_md5) {
      return CorruptionError("page blob '" + upload.key + "': part " + std::to_string(number) +
                             " does not match its MD5");
    }
    return WritePages(StagingKey(upload), uint64_t{number - 1} * PagePartSize(upload), data);
  }
  HttpRequest req{"PUT",
                  BlobUrl(upload.key, "comp=block&blockid=" + UrlEncode(BlockId(upload, number))),
                  {},
                  data};
  if (content_md5) req.headers.emplace_back("Content-MD5", crypto::Base64(*content_md5));
  return Call(std::move(req), "put block").status();
}

Result<std::vector<PartInfo>> AzureBlobStore::ListParts(const Upload& upload) {
  if (IsPageUpload(upload)) {
    // A part is stored when its last page is: WritePages writes a part's pages in order and
    // its last page always.
    FS_ASSIGN_OR_RETURN(
        HttpResponse r,
        Call({"GET", BlobUrl(StagingKey(upload), "comp=pagelist"), {}, {}}, "get page ranges"));
    uint64_t size = std::strtoull(r.Header("x-ms-blob-content-length").c_str(), nullptr, 10);
    uint64_t part = PagePartSize(upload);
    pugi::xml_document doc;
    if (!doc.load_string(r.body.c_str())) return UnavailableError("azure: bad page list XML");
    std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [start, end)
    for (auto pr : doc.child("PageList").children("PageRange")) {
      uint64_t a = std::stoull(pr.child_value("Start")), b = std::stoull(pr.child_value("End")) + 1;
      if (!ranges.empty() && ranges.back().second == a) {
        ranges.back().second = b;
      } else {
        ranges.emplace_back(a, b);
      }
    }
    std::vector<PartInfo> out;
    for (uint64_t n = 1; part > 0 && (n - 1) * part < size; ++n) {
      uint64_t a = (n - 1) * part, b = std::min(size, n * part);
      for (const auto& [ra, rb] : ranges) {
        if (b > a && ra <= b - 1 && b <= rb) out.push_back({static_cast<uint32_t>(n), b - a});
      }
    }
    return out;
  }
  auto r = Call({"GET", BlobUrl(upload.key, "comp=blocklist&blocklisttype=uncommitted"), {}, {}},
                "get block list");
  std::vector<PartInfo> out;
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) return out;  // no blocks yet
    return r.status();
  }
  pugi::xml_document doc;
  if (!doc.load_string(r->body.c_str())) return UnavailableError("azure: bad block list XML");
  for (auto b : doc.child("BlockList").child("UncommittedBlocks").children("Block")) {
    std::string name = Base64Decode(b.child_value("Name"));
    if (!name.starts_with(upload.id + "-")) continue;
    out.push_back({static_cast<uint32_t>(std::stoul(name.substr(upload.id.size() + 1))),
                   std::stoull(b.child_value("Size"))});
  }
  std::sort(out.begin(), out.end(),
            [](const PartInfo& a, const PartInfo& b) { return a.number < b.number; });
  return out;
}

Result<ObjectInfo> AzureBlobStore::CommitUpload(const Upload& upload,
                                                const std::vector<uint32_t>& parts,
                                                const CommitOptions& options) {
  const ObjectMeta& meta = options.meta;
  const Precondition& precondition = options.precondition;
  FS_RETURN_IF_ERROR(ValidatePartList(parts));
  if (IsPageUpload(upload)) return CommitPageBlob(upload, options);
  std::string xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
  for (uint32_t n : parts) {
    xml += "<Uncommitted>" + BlockId(upload, n) + "</Uncommitted>";
  }
  xml += "</BlockList>";
  HttpRequest req{"PUT",
                  BlobUrl(upload.key, "comp=blocklist"),
                  {{"Content-Type", "application/xml"}},
                  {reinterpret_cast<const uint8_t*>(xml.data()), xml.size()}};
  AddMeta(req.headers, meta);
  AddConditions(req.headers, precondition);
  if (options.content_md5) {
    req.headers.emplace_back("x-ms-blob-content-md5", crypto::Base64(*options.content_md5));
  }
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call(std::move(req), "put block list"));
  (void)r;
  return Head(upload.key);
}

Status AzureBlobStore::AbortUpload(const Upload& upload) {
  if (!IsPageUpload(upload)) return Status::Ok();
  Status s = Call({"DELETE", BlobUrl(StagingKey(upload)), {}, {}}, "delete staging blob").status();
  return s.code() == StatusCode::kNotFound ? Status::Ok() : s;
}

Result<ObjectInfo> AzureBlobStore::Head(std::string_view key) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call({"HEAD", BlobUrl(key), {}, {}}, "get properties"));
  return InfoFrom(key, r);
}

Result<std::string> AzureBlobStore::Get(std::string_view key, uint64_t offset, uint64_t length) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  if (length == 0) return std::string();
  HttpRequest req{"GET", BlobUrl(key), {}, {}};
  req.headers.emplace_back(
      "x-ms-range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
  auto r = Call(std::move(req), "get blob");
  if (!r.ok() && r.status().message().find("HTTP 416") != std::string::npos) {
    return std::string();  // the range starts past the end
  }
  if (!r.ok()) return r.status();
  return std::move(r->body);
}

Status AzureBlobStore::Delete(std::string_view key, const Precondition& precondition) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  HttpRequest req{"DELETE", BlobUrl(key), {}, {}};
  AddConditions(req.headers, precondition);
  return Call(std::move(req), "delete blob").status();
}

Result<ListPage> AzureBlobStore::List(std::string_view prefix, std::string_view token,
                                      size_t limit) {
  std::string query = "restype=container&comp=list&include=metadata&maxresults=" +
                      std::to_string(std::max<size_t>(limit, 1));
  if (!prefix.empty()) query += "&prefix=" + UrlEncode(prefix);
  if (!token.empty()) query += "&marker=" + UrlEncode(token);
  FS_ASSIGN_OR_RETURN(HttpResponse r, Call({"GET", BlobUrl("", query), {}, {}}, "list blobs"));
  pugi::xml_document doc;
  if (!doc.load_string(r.body.c_str())) return UnavailableError("azure: bad list XML");
  ListPage page;
  auto root = doc.child("EnumerationResults");
  for (auto b : root.child("Blobs").children("Blob")) {
    ObjectInfo info;
    info.key = b.child_value("Name");
    if (info.key.starts_with(kStagingPrefix)) continue;  // page blobs being assembled
    auto p = b.child("Properties");
    info.size = std::stoull(p.child_value("Content-Length"));
    // A listing gives the bare etag, the headers of Put and Head the quoted one: one form, so
    // a listed object compares equal to the one a Put returned (refresh: "unchanged").
    info.etag = p.child_value("Etag");
    if (!info.etag.starts_with('"')) info.etag = '"' + info.etag + '"';
    info.content_md5 = Base64Decode(p.child_value("Content-MD5"));
    info.mtime_ns = ParseUtc(p.child_value("Last-Modified"), kRfc1123);
    for (auto m : b.child("Metadata").children()) info.meta[m.name()] = m.child_value();
    page.objects.push_back(std::move(info));
  }
  page.next_token = root.child_value("NextMarker");
  return page;
}

}  // namespace fieldstack::cloud::azure_blob
