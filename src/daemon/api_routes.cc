#include "daemon/api_routes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "crypto/certificate.h"
#include "crypto/chunk_codec.h"
#include "crypto/hash.h"
#include "management/support_package.h"
#include "platform/file.h"
#include "store/names.h"
#include "sync/bandwidth.h"
#include "sync/evictor.h"
#include "sync/uploader.h"

namespace fieldstack::daemon {
namespace {

using management::Access;
using management::ApiRequest;
using management::ApiResponse;
using management::CheckBody;
using management::Field;
using management::FieldType;
using management::Verb;
using nlohmann::json;

// JSON text; invalid UTF-8 (cloud error messages) becomes U+FFFD instead of throwing.
std::string JsonText(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

int64_t NowUnix() { return RealClock::Get().NowUnixNanos() / 1'000'000'000; }

std::string Iso(int64_t unix) { return FormatUtc(unix * 1'000'000'000, "%Y-%m-%dT%H:%M:%SZ"); }

// Random bytes as text from `alphabet`.
std::string RandomText(size_t n, std::string_view alphabet) {
  std::vector<uint8_t> raw(n);
  (void)crypto::RandomBytes(raw);
  std::string out;
  for (uint8_t b : raw) out += alphabet[b % alphabet.size()];
  return out;
}

std::string Str(const json& body, const char* key, const std::string& fallback = "") {
  return body.contains(key) && body[key].is_string() ? body[key].get<std::string>() : fallback;
}

std::vector<std::string> Strs(const json& body, const char* key) {
  std::vector<std::string> out;
  if (body.contains(key) && body[key].is_array()) {
    for (const auto& e : body[key]) out.push_back(e.get<std::string>());
  }
  return out;
}

// A name that becomes an SMB share, an NFS export, a bucket or a file name: 1 to `max` of
// letters, digits, '.', '_' and '-', starting with a letter or digit.
Status ValidIdentifier(const std::string& field, const std::string& v, size_t max) {
  bool ok =
      !v.empty() && v.size() <= max && std::isalnum(static_cast<unsigned char>(v[0])) &&
      v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
          std::string::npos;
  if (ok) return Status::Ok();
  return InvalidArgumentError("field '" + field + "' must be 1 to " + std::to_string(max) +
                              " letters, digits, '.', '_' or '-', starting with a letter or digit");
}

// An Azure container (3-63 of a-z 0-9 -) or S3 bucket name (also '.'), starting and ending
// with a letter or digit.
Status ValidContainer(const std::string& field, const std::string& v, bool dots) {
  std::string allowed =
      dots ? "abcdefghijklmnopqrstuvwxyz0123456789-." : "abcdefghijklmnopqrstuvwxyz0123456789-";
  bool ok = v.size() >= 3 && v.size() <= 63 && v.find_first_not_of(allowed) == std::string::npos &&
            std::isalnum(static_cast<unsigned char>(v.front())) &&
            std::isalnum(static_cast<unsigned char>(v.back())) &&
            v.find("--") == std::string::npos && v.find("..") == std::string::npos;
  if (ok) return Status::Ok();
  return InvalidArgumentError("field '" + field + "' must be " +
                              (dots ? std::string("an S3 bucket name (3-63 of a-z 0-9 . -)")
                                    : std::string("an Azure container name (3-63 of a-z 0-9 -)")));
}

// An NFS client: "*", an IPv4 or IPv6 address, or a CIDR prefix of one.
Status ValidNfsClient(const std::string& v) {
  if (v == "*") return Status::Ok();
  std::string addr = v.substr(0, v.find('/'));
  unsigned char buf[16];
  bool v4 = inet_pton(AF_INET, addr.c_str(), buf) == 1;
  bool v6 = !v4 && inet_pton(AF_INET6, addr.c_str(), buf) == 1;
  bool ok = v4 || v6;
  if (ok && addr.size() < v.size()) {
    std::string bits = v.substr(addr.size() + 1);
    ok = !bits.empty() && bits.size() <= 3 &&
         bits.find_first_not_of("0123456789") == std::string::npos &&
         std::stoi(bits) <= (v4 ? 32 : 128);
  }
  if (ok) return Status::Ok();
  return InvalidArgumentError("field 'nfs_clients': '" + v.substr(0, 64) +
                              "' is not \"*\", an address or a CIDR prefix like 10.0.0.0/24");
}

// A pinned glob: share-relative, without '.' or '..' parts.
Status ValidGlob(const std::string& v) {
  bool ok = !v.empty() && v[0] != '/' && v.find("//") == std::string::npos;
  for (size_t pos = 0; ok && pos <= v.size();) {
    size_t slash = std::min(v.find('/', pos), v.size());
    std::string seg = v.substr(pos, slash - pos);
    ok = seg != "." && seg != "..";
    pos = slash + 1;
  }
  if (ok) return Status::Ok();
  return InvalidArgumentError("field 'pinned': '" + v.substr(0, 64) +
                              "' must be a share-relative glob without '.' or '..' parts");
}

// ---- shares ----

json CacheJson(const CacheConfig& c) {
  return {{"high_watermark", c.high_watermark},
          {"low_watermark", c.low_watermark},
          {"hard_cap", c.hard_cap},
          {"max_age_days", c.max_age_days},
          {"pinned", c.pinned}};
}

const std::vector<Field>& CacheFields() {
  static const std::vector<Field> f = {{"high_watermark", FieldType::kString, false, 32},
                                       {"low_watermark", FieldType::kString, false, 32},
                                       {"hard_cap", FieldType::kString, false, 32},
                                       {"max_age_days", FieldType::kInt, false, 0, 0, 36500},
                                       {"pinned", FieldType::kStringArray, false, 100}};
  return f;
}

Status ApplyCache(const json& body, CacheConfig& c) {
  FS_RETURN_IF_ERROR(CheckBody(body, CacheFields()).WithContext("cache"));
  for (auto [key, field] : {std::pair{"high_watermark", &c.high_watermark},
                            {"low_watermark", &c.low_watermark},
                            {"hard_cap", &c.hard_cap}}) {
    if (!body.contains(key)) continue;
    *field = body[key].get<std::string>();
    if (!field->empty()) {
      auto size = sync::CacheSize::Parse(*field);
      if (!size.ok()) {
        return InvalidArgumentError("field '" + std::string(key) + "': " + size.status().message());
      }
    }
  }
  if (body.contains("max_age_days")) c.max_age_days = body["max_age_days"].get<uint32_t>();
  if (body.contains("pinned")) {
    for (const std::string& g : Strs(body, "pinned")) FS_RETURN_IF_ERROR(ValidGlob(g));
    c.pinned = Strs(body, "pinned");
  }
  return Status::Ok();
}

// The box's cache settings: CacheJson and the box-only timings.
json CacheSettingsJson(const Config& c) {
  json j = CacheJson(c.cache);
  j["interval_s"] = c.cache_interval_s;
  j["backpressure_timeout_s"] = c.backpressure_timeout_s;
  j["recall_timeout_s"] = c.recall_timeout_s;
  return j;
}

// The schedule and budgets, and the rates in force now ("current"; null: unlimited).
json BandwidthJson(const Config& c) {
  auto opt = [](const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); };
  sync::Rates now;
  if (!c.upload_bandwidth.empty()) {
    if (auto sched = sync::BandwidthSchedule::ParseTimetable(c.upload_bandwidth); sched.ok()) {
      now = sched->At(RealClock::Get().NowUnixNanos());
    }
  }
  return {{"timetable", c.upload_bandwidth},
          {"daily_budget_bytes", opt(c.upload_daily_budget)},
          {"monthly_budget_bytes", opt(c.upload_monthly_budget)},
          {"transfers", c.upload_transfers},
          {"current",
           {{"up_bytes_per_s", opt(now.up_bytes_per_s)},
            {"down_bytes_per_s", opt(now.down_bytes_per_s)}}}};
}

std::vector<Field> ShareFields(bool create) {
  std::vector<Field> f = {{"storage_account", FieldType::kString, false, 64},
                          {"container", FieldType::kString, false, 63},
                          {"bucket", FieldType::kString, false, 63},
                          {"policy", FieldType::kString, false, 16},
                          {"page_blob_suffixes", FieldType::kStringArray, false, 16},
                          {"smb", FieldType::kBool},
                          {"smb_encrypt", FieldType::kString, false, 16},
                          {"nfs", FieldType::kBool},
                          {"nfs_clients", FieldType::kStringArray, false, 64},
                          {"nfs_read_only", FieldType::kBool},
                          {"nfs_squash", FieldType::kString, false, 16},
                          {"refresh_ttl_s", FieldType::kInt, false, 0, 0, 365 * 86400},
                          {"cache", FieldType::kObject}};
  if (create) {
    f.push_back({"name", FieldType::kString, true, 255});
    f.push_back({"kind", FieldType::kString, false, 8});
  }
  return f;
}

Status ApplyShare(const json& body, ShareConfig& s) {
  if (body.contains("storage_account")) {
    std::string acct = body["storage_account"].get<std::string>();
    if (acct.empty()) {
      s.target = TargetConfig{};
    } else {
      s.target.storage_account = acct;
      // The account fills these when the settings are checked.
      s.target.type = s.target.endpoint = s.target.account = s.target.key_file = "";
      s.target.sas_file = s.target.region = s.target.credentials_file = s.target.path = "";
    }
  }
  if (body.contains("container")) {
    s.target.container = body["container"].get<std::string>();
    FS_RETURN_IF_ERROR(ValidContainer("container", s.target.container, false));
  }
  if (body.contains("bucket")) {
    s.target.bucket = body["bucket"].get<std::string>();
    FS_RETURN_IF_ERROR(ValidContainer("bucket", s.target.bucket, true));
  }
  if (body.contains("policy")) s.target.policy = body["policy"].get<std::string>();
  if (body.contains("page_blob_suffixes")) {
    s.target.page_blob_suffixes = Strs(body, "page_blob_suffixes");
  }
  if (body.contains("smb")) s.smb = body["smb"].get<bool>();
  if (body.contains("smb_encrypt")) s.smb_encrypt = body["smb_encrypt"].get<std::string>();
  if (body.contains("nfs")) s.nfs = body["nfs"].get<bool>();
  if (body.contains("nfs_clients")) {
    for (const std::string& c : Strs(body, "nfs_clients")) FS_RETURN_IF_ERROR(ValidNfsClient(c));
    s.nfs_clients = Strs(body, "nfs_clients");
  }
  if (body.contains("nfs_read_only")) s.nfs_read_only = body["nfs_read_only"].get<bool>();
  if (body.contains("nfs_squash")) s.nfs_squash = body["nfs_squash"].get<std::string>();
  if (body.contains("refresh_ttl_s")) s.refresh_ttl_s = body["refresh_ttl_s"].get<uint32_t>();
  if (body.contains("cache")) FS_RETURN_IF_ERROR(ApplyCache(body["cache"], s.cache));
  if (s.target.storage_account.empty() && s.target.type.empty() &&
      (!s.target.container.empty() || !s.target.bucket.empty())) {
    return InvalidArgumentError("field 'container'/'bucket' needs 'storage_account'");
  }
  return Status::Ok();
}

json ShareJson(ApiContext& ctx, const ShareConfig& s) {
  json j = {{"name", s.name},
            {"kind", std::string(store::ShareKindName(s.kind))},
            {"smb", s.smb},
            {"smb_encrypt", s.smb_encrypt},
            {"nfs", s.nfs},
            {"nfs_clients", s.nfs_clients},
            {"nfs_read_only", s.nfs_read_only},
            {"nfs_squash", s.nfs_squash},
            {"refresh_ttl_s", s.refresh_ttl_s},
            {"cache", CacheJson(s.cache)}};
  const TargetConfig& t = s.target;
  if (!t.type.empty()) {
    j["target"] = {{"storage_account", t.storage_account},
                   {"type", t.type},
                   {"endpoint", t.type == "localfs" ? t.path : t.endpoint},
                   {"container", t.type == "s3" ? t.bucket : t.container},
                   {"policy", t.policy},
                   {"page_blob_suffixes", t.page_blob_suffixes}};
  } else {
    j["target"] = nullptr;
  }
  store::Store& st = ctx.box.store();
  json status = {{"used_bytes", 0}, {"files_pending", 0}, {"resident_bytes", 0},
                 {"stub_bytes", 0}, {"stub_files", 0},    {"state", "healthy"}};
  if (auto info = st.GetShare(s.name); info.ok()) {
    status["used_bytes"] = info->used_bytes;
    if (auto pending = st.PendingUploadsByShare(); pending.ok()) {
      auto it = pending->find(info->id);
      status["files_pending"] = it == pending->end() ? 0 : it->second;
    }
    if (auto cache = st.GetCacheUsage(info->id); cache.ok()) {
      status["resident_bytes"] = cache->resident_bytes;
      status["stub_bytes"] = cache->stub_bytes;
      status["stub_files"] = cache->stub_files;
    }
  }
  if (s.kind == store::ShareKind::kCloud && t.type.empty()) status["state"] = "no_target";
  if (ctx.alerts.IsActive("cloud.unreachable",
                          t.storage_account.empty() ? s.name : t.storage_account)) {
    status["state"] = "cloud_unreachable";
  }
  j["status"] = status;
  return j;
}

// ---- storage accounts ----

json AccountJson(const StorageAccountConfig& a) {
  return {{"name", a.name},
          {"type", a.type},
          {"endpoint", a.endpoint},
          {"account", a.account},
          {"region", a.region},
          {"addressing", a.addressing},
          {"path", a.path},
          {"has_key", !a.key_file.empty()},
          {"has_sas", !a.sas_file.empty()},
          {"has_credentials", !a.credentials_file.empty()}};
}

std::vector<Field> AccountFields(bool create) {
  std::vector<Field> f = {{"endpoint", FieldType::kString, false, 512},
                          {"account", FieldType::kString, false, 64},
                          {"key", FieldType::kString, false, 512},
                          {"sas", FieldType::kString, false, 4096},
                          {"region", FieldType::kString, false, 64},
                          {"access_key_id", FieldType::kString, false, 256},
                          {"secret_access_key", FieldType::kString, false, 256},
                          {"session_token", FieldType::kString, false, 4096},
                          {"addressing", FieldType::kString, false, 16},
                          {"path", FieldType::kString, false, 1024}};
  if (create) {
    f.push_back({"name", FieldType::kString, true, 64});
    f.push_back({"type", FieldType::kString, true, 16});
  }
  return f;
}

// Secret files an account change wrote and replaced: the replaced ones are removed when the
// change is applied, the written ones when it is refused.
struct SecretChange {
  std::string secrets_dir;
  std::vector<std::string> written, replaced;
  void Replace(std::string& field, std::string path) {
    if (!field.empty()) replaced.push_back(field);
    if (!path.empty()) written.push_back(path);
    field = std::move(path);
  }
  void Commit() {
    for (const auto& f : replaced) {
      if (f.starts_with(secrets_dir + "/")) (void)platform::RemoveFile(f);
    }
  }
  void Abort() {
    for (const auto& f : written) (void)platform::RemoveFile(f);
  }
};

Status ApplyAccount(ApiContext& ctx, const json& body, StorageAccountConfig& a, SecretChange& ch) {
  for (auto [key, field] : {std::pair{"endpoint", &a.endpoint},
                            {"account", &a.account},
                            {"region", &a.region},
                            {"addressing", &a.addressing},
                            {"path", &a.path}}) {
    if (body.contains(key)) *field = body[key].get<std::string>();
  }
  if (body.contains("account") && !a.account.empty() &&
      (a.account.size() < 3 || a.account.size() > 24 ||
       a.account.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos)) {
    return InvalidArgumentError("field 'account' must be an Azure account name (3-24 of a-z 0-9)");
  }
  if (body.contains("region") && !a.region.empty() &&
      (a.region.size() > 32 ||
       a.region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)) {
    return InvalidArgumentError("field 'region' must be a region name like eu-west-1");
  }
  if (body.contains("path")) {
    struct stat st {};
    if (a.path.empty() || a.path[0] != '/' || a.path.find("/../") != std::string::npos ||
        a.path.ends_with("/..") || ::stat(a.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return InvalidArgumentError("field 'path' must be the absolute path of an existing folder");
    }
  }
  if (!a.endpoint.empty() && !a.endpoint.starts_with("http://") &&
      !a.endpoint.starts_with("https://")) {
    return InvalidArgumentError("field 'endpoint' must be an http:// or https:// URL");
  }
  if (a.addressing != "path" && a.addressing != "virtual") {
    return InvalidArgumentError("field 'addressing' must be \"path\" or \"virtual\"");
  }
  if (body.contains("key")) {
    std::string key = body["key"].get<std::string>();
    if (!key.empty() && crypto::Base64Decode(key).empty()) {
      return InvalidArgumentError("field 'key' must be the base64 account key");
    }
    std::string path;
    if (!key.empty()) {
      FS_ASSIGN_OR_RETURN(path, ctx.box.SaveSecret("account-" + a.name, key));
    }
    ch.Replace(a.key_file, path);
  }
  if (body.contains("sas")) {
    std::string sas = body["sas"].get<std::string>();
    if (sas.starts_with("?")) sas.erase(0, 1);
    if (!sas.empty() && sas.find("sig=") == std::string::npos) {
      return InvalidArgumentError("field 'sas' must be a SAS token (it has no sig=)");
    }
    std::string path;
    if (!sas.empty()) {
      FS_ASSIGN_OR_RETURN(path, ctx.box.SaveSecret("account-" + a.name, sas));
    }
    ch.Replace(a.sas_file, path);
  }
  if (body.contains("access_key_id") || body.contains("secret_access_key")) {
    std::string id = Str(body, "access_key_id"), secret = Str(body, "secret_access_key");
    if (id.empty() || secret.empty()) {
      return InvalidArgumentError("fields 'access_key_id' and 'secret_access_key' go together");
    }
    std::string text = id + "\n" + secret;
    if (body.contains("session_token")) text += "\n" + Str(body, "session_token");
    FS_ASSIGN_OR_RETURN(std::string path, ctx.box.SaveSecret("account-" + a.name, text));
    ch.Replace(a.credentials_file, path);
  }
  if (a.type == "azure" &&
      (a.endpoint.empty() || (a.sas_file.empty() && (a.account.empty() || a.key_file.empty())))) {
    return InvalidArgumentError(
        "an azure account needs 'endpoint' and 'account' with 'key', or "
        "'sas'");
  }
  if (a.type == "s3" && (a.endpoint.empty() || a.credentials_file.empty())) {
    return InvalidArgumentError(
        "an s3 account needs 'endpoint', 'access_key_id' and 'secret_access_key'");
  }
  if (a.type == "localfs" && a.path.empty()) {
    return InvalidArgumentError("a localfs account needs 'path'");
  }
  return Status::Ok();
}

// ---- logs ----

// The JSON lines of `path` and its rotated files (.1 .. .3), newest first, that `keep` accepts:
// the first `offset` matches are skipped, then up to `limit` go to `out`. Files are read from
// their end in 1 MiB pieces, so memory stays small whatever their size.
void ReadLogLines(const std::string& path, const std::function<bool(const json&)>& keep,
                  size_t offset, size_t limit, json& out, size_t& matched) {
  constexpr size_t kChunk = 1 << 20;
  auto take = [&](std::string_view line) {
    if (line.empty()) return;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !keep(j)) return;
    if (matched++ < offset) return;
    out.push_back(std::move(j));
  };
  for (int i = 0; i <= 3 && out.size() < limit; ++i) {
    std::string p = i == 0 ? path : path + "." + std::to_string(i);
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    off_t pos = ::lseek(fd, 0, SEEK_END);
    std::string carry;  // the start of the line the previous piece began in
    while (pos > 0 && out.size() < limit) {
      size_t n = static_cast<size_t>(std::min<off_t>(pos, kChunk));
      pos -= static_cast<off_t>(n);
      std::string data(n, '\0');
      if (::pread(fd, data.data(), n, pos) != static_cast<ssize_t>(n)) break;
      data += carry;
      size_t first_nl = data.find('\n');
      if (pos > 0 && first_nl == std::string::npos) {
        carry = data.size() > 4 * kChunk ? std::string() : std::move(data);  // a giant line
        continue;
      }
      size_t begin = pos > 0 ? first_nl + 1 : 0;
      carry = pos > 0 ? data.substr(0, first_nl) : std::string();
      size_t end = data.size();
      while (end > begin && out.size() < limit) {
        size_t nl = data.rfind('\n', end - 1);
        size_t start = (nl == std::string::npos || nl < begin) ? begin : nl + 1;
        take(std::string_view(data).substr(start, end - start));
        if (start == begin) break;
        end = start - 1;
      }
    }
    ::close(fd);
  }
}

// ---- users and keys ----

json UserJson(const management::UserInfo& u) {
  return {{"name", u.name},
          {"role", std::string(management::RoleName(u.role))},
          {"created", Iso(u.created_unix)},
          {"password_changed", Iso(u.password_changed_unix)}};
}

json TokenJson(const management::ApiTokenInfo& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"user", t.user},
          {"role", std::string(management::RoleName(t.role))},
          {"created", Iso(t.created_unix)},
          {"expires", t.expires_unix == 0 ? json(nullptr) : json(Iso(t.expires_unix))}};
}

json AccessKeyJson(const AccessKeyConfig& k) {
  return {{"id", k.id}, {"user", k.user}, {"read", k.read}, {"write", k.write}};
}

Status CheckShareRights(const Config& c, const std::vector<std::string>& shares) {
  for (const std::string& s : shares) {
    if (s == "*") continue;
    bool found = false;
    for (const auto& sh : c.shares) found = found || sh.name == s;
    for (const auto& b : c.buckets) found = found || b.name == s;
    if (!found) return InvalidArgumentError("no share or bucket named '" + s + "'");
  }
  return Status::Ok();
}

// ---- device ----

json Interfaces() {
  json out = json::array();
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  std::map<std::string, json> by_name;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    json& j = by_name[a->ifa_name];
    if (j.is_null()) {
      j = {{"name", a->ifa_name},
           {"up", (a->ifa_flags & IFF_UP) != 0},
           {"addresses", json::array()}};
    }
    if (a->ifa_addr == nullptr) continue;
    int family = a->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    char host[NI_MAXHOST] = {};
    socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (getnameinfo(a->ifa_addr, len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) == 0) {
      j["addresses"].push_back(host);
    }
  }
  freeifaddrs(list);
  for (auto& [name, j] : by_name) out.push_back(j);
  return out;
}

std::string HostName() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// Sum of the samples of metric `name` in Prometheus text.
double MetricSum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || !line.starts_with(name)) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    try {
      sum += std::stod(line.substr(sp + 1));
    } catch (...) {
    }
  }
  return sum;
}

}  // namespace

std::vector<std::string> KnownSecrets(const Config& c) {
  std::vector<std::string> out;
  auto add_file = [&](const std::string& path) {
    if (path.empty()) return;
    auto text = platform::ReadFileToString(path);
    if (!text.ok()) return;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) out.push_back(line);
    }
  };
  if (auto files = platform::ListDir(c.data_dir + "/secrets"); files.ok()) {
    for (const auto& f : *files) add_file(c.data_dir + "/secrets/" + f);
  }
  for (const auto& a : c.storage_accounts) {
    add_file(a.key_file);
    add_file(a.sas_file);
    add_file(a.credentials_file);
  }
  for (const auto& s : c.shares) {
    add_file(s.target.key_file);
    add_file(s.target.sas_file);
    add_file(s.target.credentials_file);
  }
  for (const auto& k : c.access_keys) add_file(k.secret_file);
  for (const auto& u : c.smb_users) add_file(u.password_file);
  add_file(c.passphrase_file);
  if (!c.alerts_webhook.empty()) out.push_back(c.alerts_webhook);
  // The master key file: only the key itself ("key <hex>"), not its other lines.
  if (auto text =
          platform::ReadFileToString(c.key_file.empty() ? c.data_dir + "/master.key" : c.key_file);
      text.ok()) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("key ") && line.size() > 4) out.push_back(line.substr(4));
    }
  }
  return out;
}

std::vector<management::Check> BoxChecks(ApiContext& ctx) {
  Config c = ctx.box.config();
  std::vector<management::Check> checks = {
      management::DiskSpaceCheck(c.data_dir),
      management::DiskHealthCheck(c.data_dir),
      management::MemoryCheck(),
      management::CertificateCheck(ctx.certificate.cert, RealClock::Get()),
  };
  std::vector<std::string> hosts;
  for (const auto& a : c.storage_accounts) {
    if (a.endpoint.empty()) continue;
    std::string host = a.endpoint.substr(a.endpoint.find("://") + 3);
    host = host.substr(0, host.find_first_of(":/"));
    if (!host.empty()) hosts.push_back(host);
  }
  if (!hosts.empty()) checks.push_back(management::DnsCheck(hosts));
  for (const auto& a : c.storage_accounts) {
    if (!a.endpoint.empty()) {
      checks.push_back(management::TimeSkewCheck(a.endpoint, RealClock::Get()));
      checks.back().id = "time.skew." + a.name;
      checks.back().name = "Clock against storage account '" + a.name + "'";
    }
  }
  // Reachability and auth of each cloud share's target.
  for (const auto& s : c.shares) {
    if (s.target.type.empty()) continue;
    std::string subject = s.target.storage_account.empty() ? s.name : s.target.storage_account;
    checks.push_back(
        {"cloud.reach." + s.name, "Cloud target of share '" + s.name + "' (" + subject + ")",
         [&ctx, name = s.name]() {
           management::CheckResult r;
           auto info = ctx.box.store().GetShare(name);
           Status s = info.status();
           if (info.ok()) {
             s = ctx.box.WithUploads([&](UploadService* u) -> Status {
               cloud::ObjectStore* t = u ? u->TargetOf(info->id) : nullptr;
               if (t == nullptr) return UnavailableError("no upload target is running");
               return t->List("", "", 1).status();
             });
           }
           if (s.ok()) {
             r.detail = "listed the container or bucket";
           } else if (s.code() == StatusCode::kUnauthenticated ||
                      s.code() == StatusCode::kPermissionDenied) {
             r.status = management::CheckStatus::kFail;
             r.detail = s.ToString();
             r.advice =
                 "The storage account refused the credentials: update the key, SAS or "
                 "S3 keys of the storage account (they may have been rotated or expired).";
           } else {
             r.status = management::CheckStatus::kFail;
             r.detail = s.ToString();
             r.advice =
                 "Check the uplink, DNS and the endpoint URL; files wait on the box and "
                 "upload when the account answers.";
           }
           return r;
         }});
  }
  if (c.smb_enabled && c.smb_port != 0) {
    checks.push_back(management::TcpCheck(
        "service.smb", "SMB server (smbd)",
        c.smb_address == "0.0.0.0" ? "127.0.0.1" : c.smb_address, c.smb_port,
        "smbd does not accept connections: see the error log; restart the daemon."));
  }
  if (c.nfs_enabled && c.nfs_port != 0) {
    checks.push_back(management::TcpCheck(
        "service.nfs", "NFS server (ganesha)",
        c.nfs_address == "0.0.0.0" ? "127.0.0.1" : c.nfs_address, c.nfs_port,
        "ganesha does not accept connections: see the error log; restart the daemon."));
  }
  return checks;
}

// Raises an alert unless it is already active (a health pass repeats every interval: only
// changes should reach the log and the webhook).
static void RaiseOnce(management::Alerts& alerts, std::string_view id, const std::string& subject,
                      const std::string& detail) {
  if (!alerts.IsActive(id, subject)) (void)alerts.Raise(id, subject, detail);
}

// Raises `id` when `r` failed, clears it when it passed (warnings change nothing).
static void AlertOnCheck(management::Alerts& alerts, std::string_view id,
                         const std::string& subject, const management::CheckResult& r) {
  if (r.status == management::CheckStatus::kFail) {
    RaiseOnce(alerts, id, subject, r.detail);
  } else if (r.status == management::CheckStatus::kPass) {
    alerts.Clear(id, subject);
  }
}

void CheckHealth(ApiContext& ctx, HealthState& state) {
  Config c = ctx.box.config();
  // Sign-in lockouts last 15 minutes; their alerts clear after that.
  for (const auto& a : ctx.alerts.Active()) {
    if (a.id == "security.login_lockout" && a.updated_unix + 15 * 60 < NowUnix()) {
      ctx.alerts.Clear(a.id, a.subject);
    }
  }
  bool thorough = state.passes++ % 10 == 0;
  // Upload failures since the last pass, and the data budget.
  std::string metrics = ctx.metrics_text();
  double failures = MetricSum(metrics, "fieldstack_upload_failures_total");
  if (state.upload_failures >= 0 && failures > state.upload_failures) {
    RaiseOnce(ctx.alerts, "upload.failures", "",
              std::to_string(static_cast<int64_t>(failures - state.upload_failures)) +
                  " failed upload attempts since the last check; see the errors log");
  } else if (state.upload_failures >= 0) {
    ctx.alerts.Clear("upload.failures", "");
  }
  state.upload_failures = failures;
  int64_t budget_until =
      ctx.box.WithUploads([](UploadService* u) { return u ? u->BudgetSpentUntil() : 0; });
  if (budget_until != 0) {
    RaiseOnce(ctx.alerts, "upload.budget_spent", "",
              "uploads wait until " + FormatUtc(budget_until, "%Y-%m-%d %H:%M UTC"));
  } else {
    ctx.alerts.Clear("upload.budget_spent", "");
  }
  AlertOnCheck(ctx.alerts, "hardware.memory_low", "", management::MemoryCheck().run());
  if (c.smb_enabled && c.smb_port != 0) {
    auto check = management::TcpCheck("service.smb", "smbd",
                                      c.smb_address == "0.0.0.0" ? "127.0.0.1" : c.smb_address,
                                      c.smb_port, "");
    AlertOnCheck(ctx.alerts, "service.smb_down", "", check.run());
  }
  if (c.nfs_enabled && c.nfs_port != 0) {
    auto check = management::TcpCheck("service.nfs", "ganesha",
                                      c.nfs_address == "0.0.0.0" ? "127.0.0.1" : c.nfs_address,
                                      c.nfs_port, "");
    AlertOnCheck(ctx.alerts, "service.nfs_down", "", check.run());
  }
  if (thorough) {
    AlertOnCheck(ctx.alerts, "hardware.disk_errors", c.data_dir,
                 management::DiskHealthCheck(c.data_dir).run());
    for (const auto& a : c.storage_accounts) {
      if (a.endpoint.empty()) continue;
      AlertOnCheck(ctx.alerts, "hardware.clock_skew", a.name,
                   management::TimeSkewCheck(a.endpoint, RealClock::Get()).run());
    }
  }
  // Capacity.
  if (auto u = ctx.box.store().GetUsage(); u.ok() && u->volume_total_bytes > 0) {
    double free = static_cast<double>(u->volume_free_bytes) / u->volume_total_bytes;
    if (free < 0.05) {
      RaiseOnce(ctx.alerts, "capacity.volume_low", "",
                "free space " + std::to_string(u->volume_free_bytes >> 20) + " MiB (" +
                    std::to_string(static_cast<int>(free * 100)) + " %)");
    } else if (free > 0.07) {
      ctx.alerts.Clear("capacity.volume_low", "");
    }
  }
  // Certificate.
  if (auto pem = platform::ReadFileToString(ctx.certificate.cert); pem.ok()) {
    if (auto info = crypto::DescribeCertificate(*pem); info.ok()) {
      int64_t left = info->not_after_unix - NowUnix();
      if (left <= 0) {
        RaiseOnce(ctx.alerts, "certificate.expired", "box", "expired " + Iso(info->not_after_unix));
      } else if (left < 30 * 86400) {
        RaiseOnce(ctx.alerts, "certificate.expiring", "box",
                  "expires " + Iso(info->not_after_unix));
      } else {
        ctx.alerts.Clear("certificate.expired", "box");
        ctx.alerts.Clear("certificate.expiring", "box");
      }
    }
  }
  // Each cloud target.
  for (const auto& s : c.shares) {
    if (s.target.type.empty()) continue;
    std::string subject = s.target.storage_account.empty() ? s.name : s.target.storage_account;
    auto info = ctx.box.store().GetShare(s.name);
    if (!info.ok()) continue;
    Status st = ctx.box.WithUploads([&](UploadService* u) -> Status {
      cloud::ObjectStore* t = u ? u->TargetOf(info->id) : nullptr;
      return t == nullptr ? Status::Ok() : t->List("", "", 1).status();
    });
    if (st.ok()) {
      ctx.alerts.Clear("cloud.unreachable", subject);
      ctx.alerts.Clear("cloud.auth_failed", subject);
    } else if (st.code() == StatusCode::kUnauthenticated ||
               st.code() == StatusCode::kPermissionDenied) {
      RaiseOnce(ctx.alerts, "cloud.auth_failed", subject, st.ToString());
    } else {
      RaiseOnce(ctx.alerts, "cloud.unreachable", subject, st.ToString());
    }
  }
}

void SampleHistory(ApiContext& ctx) {
  std::string text = ctx.metrics_text();
  uint64_t pending = 0;
  if (auto p = ctx.box.store().PendingUploads(); p.ok()) pending = *p;
  ctx.history.Sample(
      NowUnix(), static_cast<uint64_t>(MetricSum(text, "fieldstack_upload_bytes_total")),
      static_cast<uint64_t>(MetricSum(text, "fieldstack_recall_bytes_total")), pending);
}

void RegisterRoutes(ApiContext& ctx) {
  management::ManagementApi& api = ctx.api;
  ApiContext* cx = &ctx;

  // ---- health and metrics ----
  api.Add(Verb::get, "/healthz", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    auto usage = cx->box.store().GetUsage();
    json j = {
        {"version", cx->version},
        {"uptime_s", (RealClock::Get().MonotonicNanos() - cx->started_mono_ns) / 1'000'000'000}};
    if (!usage.ok()) {
      j["status"] = "unavailable";
      j["error"] = usage.status().ToString();
      return ApiResponse::Json(j, 503);
    }
    j["status"] = "ok";
    j["used_bytes"] = usage->used_bytes;
    j["volume_free_bytes"] = usage->volume_free_bytes;
    return ApiResponse::Json(j);
  });
  api.Add(Verb::get, "/metrics", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    ApiResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.text = cx->metrics_text();
    return r;
  });

  // Every route with the role it needs (the OpenAPI conformance test compares them with
  // api/openapi.yaml).
  api.Add(Verb::get, "/api/v1/routes", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    json out = json::array();
    for (const auto& r : cx->api.Routes()) {
      const char* role = r.access == Access::kPublic     ? "public"
                         : r.access == Access::kReader   ? "reader"
                         : r.access == Access::kOperator ? "operator"
                                                         : "admin";
      out.push_back({{"method", std::string(boost::beast::http::to_string(r.method))},
                     {"path", r.pattern},
                     {"role", role}});
    }
    return ApiResponse::Json({{"routes", out}});
  });

  // ---- first start, sign-in ----
  // Changes at every start: the UI tells that a restarted box is back, and a new one.
  std::string boot_id = RandomText(16, "0123456789abcdef");
  api.Add(Verb::get, "/api/v1/setup", Access::kPublic,
          [cx, boot_id](ApiRequest&) -> Result<ApiResponse> {
            return ApiResponse::Json({{"needed", cx->auth.NeedsSetup()}, {"boot_id", boot_id}});
          });
  api.Add(
      Verb::post, "/api/v1/setup", Access::kPublic, [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"setup_code", FieldType::kString, true, 64},
                                                {"user", FieldType::kString, true, 32},
                                                {"password", FieldType::kString, true, 256}}));
        FS_RETURN_IF_ERROR(cx->auth.SetupAdmin(Str(req.body, "setup_code"), Str(req.body, "user"),
                                               Str(req.body, "password"), req.peer));
        spdlog::info("api: admin '{}' set up from {}", Str(req.body, "user"), req.peer);
        return ApiResponse::Json({{"name", Str(req.body, "user")}, {"role", "admin"}}, 201);
      });
  api.Add(
      Verb::post, "/api/v1/login", Access::kPublic, [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"user", FieldType::kString, true, 64},
                                                {"password", FieldType::kString, true, 256}}));
        if (cx->auth.NeedsSetup()) {
          return FailedPreconditionError(
              "the box has no admin yet: set the admin password first (POST /api/v1/setup "
              "with the setup code printed on the console)");
        }
        FS_ASSIGN_OR_RETURN(auto session, cx->auth.Login(Str(req.body, "user"),
                                                         Str(req.body, "password"), req.peer));
        return ApiResponse::Json({{"token", session.token},
                                  {"expires", Iso(session.expires_unix)},
                                  {"user", session.user.name},
                                  {"role", std::string(management::RoleName(session.user.role))}});
      });
  api.Add(Verb::post, "/api/v1/logout", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            if (req.principal && !req.principal->api_token) cx->auth.Logout(req.bearer);
            return ApiResponse::NoContent();
          });
  api.Add(Verb::get, "/api/v1/me", Access::kReader, [](ApiRequest& req) -> Result<ApiResponse> {
    return ApiResponse::Json({{"user", req.principal->user},
                              {"role", std::string(management::RoleName(req.principal->role))},
                              {"api_token", req.principal->api_token}});
  });
  api.Add(
      Verb::put, "/api/v1/me/password", Access::kReader,
      [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"old_password", FieldType::kString, true, 256},
                                                {"new_password", FieldType::kString, true, 256}}));
        if (!cx->auth.CheckPassword(req.principal->user, Str(req.body, "old_password"))) {
          return InvalidArgumentError("field 'old_password' is not your current password");
        }
        FS_RETURN_IF_ERROR(
            cx->auth.SetPassword(req.principal->user, Str(req.body, "new_password")));
        return ApiResponse::NoContent();
      });

  // ---- users ----
  api.Add(Verb::get, "/api/v1/users", Access::kAdmin, [cx](ApiRequest&) -> Result<ApiResponse> {
    FS_ASSIGN_OR_RETURN(auto users, cx->auth.ListUsers());
    json out = json::array();
    for (const auto& u : users) out.push_back(UserJson(u));
    return ApiResponse::Json({{"users", out}});
  });
  api.Add(
      Verb::post, "/api/v1/users", Access::kAdmin, [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"name", FieldType::kString, true, 32},
                                                {"role", FieldType::kString, true, 16},
                                                {"password", FieldType::kString, true, 256}}));
        FS_ASSIGN_OR_RETURN(auto role, management::ParseRole(Str(req.body, "role")));
        FS_ASSIGN_OR_RETURN(
            auto u, cx->auth.CreateUser(Str(req.body, "name"), role, Str(req.body, "password")));
        return ApiResponse::Json(UserJson(u), 201);
      });
  api.Add(Verb::get, "/api/v1/users/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(auto u, cx->auth.GetUser(req.params["name"]));
            return ApiResponse::Json(UserJson(u));
          });
  api.Add(Verb::patch, "/api/v1/users/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, {{"role", FieldType::kString, false, 16},
                                                    {"password", FieldType::kString, false, 256}}));
            const std::string& name = req.params["name"];
            FS_RETURN_IF_ERROR(cx->auth.GetUser(name).status());
            std::optional<management::Role> role;
            if (req.body.contains("role")) {
              FS_ASSIGN_OR_RETURN(role, management::ParseRole(Str(req.body, "role")));
            }
            if (req.body.contains("password")) {
              FS_RETURN_IF_ERROR(cx->auth.SetPassword(name, Str(req.body, "password")));
            }
            if (role) FS_RETURN_IF_ERROR(cx->auth.SetRole(name, *role));
            FS_ASSIGN_OR_RETURN(auto u, cx->auth.GetUser(name));
            return ApiResponse::Json(UserJson(u));
          });
  api.Add(Verb::delete_, "/api/v1/users/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(cx->auth.DeleteUser(req.params["name"]));
            return ApiResponse::NoContent();
          });

  // ---- API tokens (for scripts) ----
  api.Add(
      Verb::get, "/api/v1/tokens", Access::kReader, [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_ASSIGN_OR_RETURN(auto tokens, cx->auth.ListApiTokens());
        json out = json::array();
        for (const auto& t : tokens) {
          if (req.principal->role == management::Role::kAdmin || t.user == req.principal->user) {
            out.push_back(TokenJson(t));
          }
        }
        return ApiResponse::Json({{"tokens", out}});
      });
  api.Add(
      Verb::post, "/api/v1/tokens", Access::kReader, [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"name", FieldType::kString, true, 64},
                                                {"role", FieldType::kString, false, 16},
                                                {"expires_in_s", FieldType::kInt, false, 0, 60,
                                                 int64_t{10} * 365 * 86400}}));
        if (req.principal->api_token) {
          return PermissionDeniedError(
              "API tokens are made from a signed-in session, not from another token");
        }
        management::Role role = req.principal->role;
        if (req.body.contains("role")) {
          FS_ASSIGN_OR_RETURN(role, management::ParseRole(Str(req.body, "role")));
        }
        if (static_cast<int>(role) > static_cast<int>(req.principal->role)) {
          return PermissionDeniedError("a token cannot have a higher role than its session");
        }
        int64_t expires = req.body.contains("expires_in_s")
                              ? NowUnix() + req.body["expires_in_s"].get<int64_t>()
                              : 0;
        FS_ASSIGN_OR_RETURN(auto t, cx->auth.CreateApiToken(req.principal->user,
                                                            Str(req.body, "name"), role, expires));
        json j = TokenJson(t.info);
        j["token"] = t.token;
        return ApiResponse::Json(j, 201);
      });
  api.Add(
      Verb::delete_, "/api/v1/tokens/{id}", Access::kReader,
      [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_ASSIGN_OR_RETURN(auto tokens, cx->auth.ListApiTokens());
        for (const auto& t : tokens) {
          if (t.id != req.params["id"]) continue;
          if (t.user != req.principal->user && req.principal->role != management::Role::kAdmin) {
            return PermissionDeniedError("only an admin revokes other users' tokens");
          }
          FS_RETURN_IF_ERROR(cx->auth.RevokeApiToken(t.id));
          return ApiResponse::NoContent();
        }
        return NotFoundError("no token '" + req.params["id"] + "'");
      });

  // ---- access keys (S3 and Blob) ----
  api.Add(Verb::get, "/api/v1/access-keys", Access::kAdmin,
          [cx](ApiRequest&) -> Result<ApiResponse> {
            json out = json::array();
            for (const auto& k : cx->box.config().access_keys) out.push_back(AccessKeyJson(k));
            return ApiResponse::Json({{"access_keys", out}});
          });
  api.Add(
      Verb::post, "/api/v1/access-keys", Access::kAdmin,
      [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"user", FieldType::kString, true, 64},
                                                {"read", FieldType::kStringArray, false, 256},
                                                {"write", FieldType::kStringArray, false, 256}}));
        FS_RETURN_IF_ERROR(ValidIdentifier("user", Str(req.body, "user"), 32));
        AccessKeyConfig k;
        k.user = Str(req.body, "user");
        k.id = "FS" + RandomText(18, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
        std::vector<uint8_t> raw(30);
        FS_RETURN_IF_ERROR(crypto::RandomBytes(raw));
        std::string secret = crypto::Base64(std::string(raw.begin(), raw.end()));
        k.read = Strs(req.body, "read");
        k.write = Strs(req.body, "write");
        FS_RETURN_IF_ERROR(CheckShareRights(cx->box.config(), k.read));
        FS_RETURN_IF_ERROR(CheckShareRights(cx->box.config(), k.write));
        FS_ASSIGN_OR_RETURN(k.secret_file, cx->box.SaveSecret("key-" + k.id, secret));
        Status s = cx->box.Update([&](Config& c) {
          c.access_keys.push_back(k);
          return Status::Ok();
        });
        if (!s.ok()) {
          (void)platform::RemoveFile(k.secret_file);
          return s;
        }
        json j = AccessKeyJson(k);
        j["secret"] = secret;
        return ApiResponse::Json(j, 201);
      });
  api.Add(
      Verb::patch, "/api/v1/access-keys/{id}", Access::kAdmin,
      [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"read", FieldType::kStringArray, false, 256},
                                                {"write", FieldType::kStringArray, false, 256}}));
        FS_RETURN_IF_ERROR(CheckShareRights(cx->box.config(), Strs(req.body, "read")));
        FS_RETURN_IF_ERROR(CheckShareRights(cx->box.config(), Strs(req.body, "write")));
        AccessKeyConfig out;
        FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
          for (auto& k : c.access_keys) {
            if (k.id != req.params["id"]) continue;
            if (req.body.contains("read")) k.read = Strs(req.body, "read");
            if (req.body.contains("write")) k.write = Strs(req.body, "write");
            out = k;
            return Status::Ok();
          }
          return NotFoundError("no access key '" + req.params["id"] + "'");
        }));
        return ApiResponse::Json(AccessKeyJson(out));
      });
  api.Add(Verb::delete_, "/api/v1/access-keys/{id}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            std::string file;
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
              for (auto it = c.access_keys.begin(); it != c.access_keys.end(); ++it) {
                if (it->id != req.params["id"]) continue;
                file = it->secret_file;
                c.access_keys.erase(it);
                return Status::Ok();
              }
              return NotFoundError("no access key '" + req.params["id"] + "'");
            }));
            if (file.starts_with(cx->box.config().data_dir + "/secrets/")) {
              (void)platform::RemoveFile(file);
            }
            return ApiResponse::NoContent();
          });

  // ---- storage accounts ----
  api.Add(Verb::get, "/api/v1/storage-accounts", Access::kReader,
          [cx](ApiRequest&) -> Result<ApiResponse> {
            json out = json::array();
            for (const auto& a : cx->box.config().storage_accounts) {
              json j = AccountJson(a);
              j["reachable"] = !cx->alerts.IsActive("cloud.unreachable", a.name) &&
                               !cx->alerts.IsActive("cloud.auth_failed", a.name);
              out.push_back(j);
            }
            return ApiResponse::Json({{"storage_accounts", out}});
          });
  api.Add(Verb::get, "/api/v1/storage-accounts/{name}", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            for (const auto& a : cx->box.config().storage_accounts) {
              if (a.name != req.params["name"]) continue;
              json j = AccountJson(a);
              j["reachable"] = !cx->alerts.IsActive("cloud.unreachable", a.name) &&
                               !cx->alerts.IsActive("cloud.auth_failed", a.name);
              return ApiResponse::Json(j);
            }
            return NotFoundError("no storage account '" + req.params["name"] + "'");
          });
  api.Add(Verb::post, "/api/v1/storage-accounts", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, AccountFields(true)));
            StorageAccountConfig a;
            a.name = Str(req.body, "name");
            a.type = Str(req.body, "type");
            FS_RETURN_IF_ERROR(ValidIdentifier("name", a.name, 63));
            if (a.type != "azure" && a.type != "s3" && a.type != "localfs") {
              return InvalidArgumentError("field 'type' must be \"azure\", \"s3\" or \"localfs\"");
            }
            for (const auto& have : cx->box.config().storage_accounts) {
              if (have.name == a.name) {
                return AlreadyExistsError("storage account '" + a.name + "' exists");
              }
            }
            SecretChange ch{cx->box.config().data_dir + "/secrets", {}, {}};
            Status applied = ApplyAccount(*cx, req.body, a, ch);
            if (applied.ok()) {
              applied = cx->box.Update([&](Config& c) {
                c.storage_accounts.push_back(a);
                return Status::Ok();
              });
            }
            if (!applied.ok()) {
              ch.Abort();
              return applied;
            }
            ch.Commit();
            return ApiResponse::Json(AccountJson(a), 201);
          });
  api.Add(Verb::patch, "/api/v1/storage-accounts/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, AccountFields(false)));
            StorageAccountConfig out;
            SecretChange ch{cx->box.config().data_dir + "/secrets", {}, {}};
            Status applied = cx->box.Update([&](Config& c) -> Status {
              for (auto& a : c.storage_accounts) {
                if (a.name != req.params["name"]) continue;
                FS_RETURN_IF_ERROR(ApplyAccount(*cx, req.body, a, ch));
                out = a;
                return Status::Ok();
              }
              return NotFoundError("no storage account '" + req.params["name"] + "'");
            });
            if (!applied.ok()) {
              ch.Abort();
              return applied;
            }
            ch.Commit();
            return ApiResponse::Json(AccountJson(out));
          });
  api.Add(Verb::delete_, "/api/v1/storage-accounts/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            const std::string& name = req.params["name"];
            StorageAccountConfig removed;
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
              for (const auto& s : c.shares) {
                if (s.target.storage_account == name) {
                  return FailedPreconditionError("share '" + s.name +
                                                 "' uploads to this account; change it first");
                }
              }
              auto it = std::find_if(c.storage_accounts.begin(), c.storage_accounts.end(),
                                     [&](const auto& a) { return a.name == name; });
              if (it == c.storage_accounts.end()) {
                return NotFoundError("no storage account '" + name + "'");
              }
              removed = *it;
              c.storage_accounts.erase(it);
              return Status::Ok();
            }));
            SecretChange gone{cx->box.config().data_dir + "/secrets", {}, {}};
            gone.replaced = {removed.key_file, removed.sas_file, removed.credentials_file};
            gone.Commit();
            return ApiResponse::NoContent();
          });

  RegisterComputeRoutes(ctx);

  // ---- shares ----
  api.Add(Verb::get, "/api/v1/shares", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    json out = json::array();
    for (const auto& s : cx->box.config().shares) out.push_back(ShareJson(*cx, s));
    return ApiResponse::Json({{"shares", out}});
  });
  api.Add(Verb::get, "/api/v1/shares/{name}", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            for (const auto& s : cx->box.config().shares) {
              if (s.name == req.params["name"]) return ApiResponse::Json(ShareJson(*cx, s));
            }
            return NotFoundError("no share '" + req.params["name"] + "'");
          });
  api.Add(Verb::post, "/api/v1/shares", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, ShareFields(true)));
            ShareConfig s;
            s.name = Str(req.body, "name");
            FS_RETURN_IF_ERROR(ValidIdentifier("name", s.name, 63));
            FS_RETURN_IF_ERROR(store::ValidateName(s.name).WithContext("field 'name'"));
            std::string kind =
                Str(req.body, "kind", req.body.contains("storage_account") ? "cloud" : "local");
            if (kind != "local" && kind != "cloud") {
              return InvalidArgumentError("field 'kind' must be \"local\" or \"cloud\"");
            }
            s.kind = kind == "cloud" ? store::ShareKind::kCloud : store::ShareKind::kLocal;
            // Exported over NFS only to the clients named (none named: not exported).
            if (!req.body.contains("nfs")) s.nfs = req.body.contains("nfs_clients");
            FS_RETURN_IF_ERROR(ApplyShare(req.body, s));
            if (auto have = cx->box.store().GetShare(s.name); have.ok()) {
              bool configured = false;
              for (const auto& c : cx->box.config().shares) configured |= c.name == s.name;
              if (configured || have->kind != s.kind) {
                return AlreadyExistsError("share '" + s.name + "' exists");
              }
            }
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
              for (const auto& have : c.shares) {
                if (have.name == s.name) return AlreadyExistsError("share '" + s.name + "' exists");
              }
              for (const auto& b : c.buckets) {
                if (b.name == s.name) {
                  return AlreadyExistsError("'" + s.name + "' is the name of a bucket");
                }
              }
              c.shares.push_back(s);
              return Status::Ok();
            }));
            for (const auto& have : cx->box.config().shares) {
              if (have.name == s.name) return ApiResponse::Json(ShareJson(*cx, have), 201);
            }
            return InternalError("the share vanished");
          });
  api.Add(Verb::patch, "/api/v1/shares/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, ShareFields(false)));
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
              for (auto& s : c.shares) {
                if (s.name != req.params["name"]) continue;
                if (s.kind != store::ShareKind::kCloud &&
                    (req.body.contains("storage_account") || req.body.contains("cache") ||
                     req.body.contains("refresh_ttl_s"))) {
                  return InvalidArgumentError(
                      "a local share has no cloud target, cache policy or refresh");
                }
                return ApplyShare(req.body, s);
              }
              return NotFoundError("no share '" + req.params["name"] + "'");
            }));
            for (const auto& s : cx->box.config().shares) {
              if (s.name == req.params["name"]) return ApiResponse::Json(ShareJson(*cx, s));
            }
            return InternalError("the share vanished");
          });
  api.Add(Verb::delete_, "/api/v1/shares/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(bool force, req.QueryBool("force", false));
            FS_RETURN_IF_ERROR(cx->box.DeleteShare(req.params["name"], force));
            return ApiResponse::NoContent();
          });
  api.Add(Verb::post, "/api/v1/shares/{name}/refresh", Access::kOperator,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            json body = req.body.is_null() ? json::object() : req.body;
            FS_RETURN_IF_ERROR(CheckBody(body, {{"paths", FieldType::kStringArray, false, 100}}));
            std::string name = req.params["name"];
            FS_ASSIGN_OR_RETURN(auto info, cx->box.store().GetShare(name));
            if (info.kind != store::ShareKind::kCloud) {
              return FailedPreconditionError("share '" + name + "' is local: nothing to refresh");
            }
            std::vector<std::string> paths = Strs(body, "paths");
            for (const std::string& p : paths) {
              FS_RETURN_IF_ERROR(
                  store::SplitPath(p).status().WithContext("field 'paths': '" + p + "'"));
            }
            std::string id = cx->jobs.Start(
                "refresh", req.principal->user,
                [cx, name, paths](management::JobContext& job) -> Status {
                  job.Progress(0, "listing the cloud");
                  auto pass =
                      cx->box.WithUploads([&](UploadService* u) -> Result<sync::Refresher::Pass> {
                        if (u == nullptr) return UnavailableError("the upload service is down");
                        return u->Refresh(name, paths);
                      });
                  if (!pass.ok()) return pass.status();
                  json j = {{"listed", pass->listed},       {"added", pass->added},
                            {"changed", pass->changed},     {"deleted", pass->deleted},
                            {"kept", pass->kept},           {"conflicts", pass->conflicts},
                            {"unchanged", pass->unchanged}, {"skipped", pass->skipped},
                            {"failed", pass->failed},       {"duration_ms", pass->duration_ms}};
                  job.SetResult(JsonText(j));
                  job.Progress(1, "done");
                  return Status::Ok();
                });
            FS_ASSIGN_OR_RETURN(auto info2, cx->jobs.Get(id));
            (void)info2;
            return ApiResponse::Json({{"job", id}}, 202);
          });
  // Waits until every file waiting for upload is uploaded (before the box is packed up).
  api.Add(
      Verb::post, "/api/v1/drain", Access::kOperator, [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
        std::string id = cx->jobs.Start(
            "drain", req.principal->user, [cx](management::JobContext& job) -> Status {
              store::Store& st = cx->box.store();
              FS_RETURN_IF_ERROR(st.EnqueueUploads(sync::Uploader::kConsumer, 100000).status());
              FS_ASSIGN_OR_RETURN(uint64_t first, st.PendingUploads());
              for (;;) {
                // Writes committed but not yet queued count too: queue them first.
                FS_RETURN_IF_ERROR(st.EnqueueUploads(sync::Uploader::kConsumer, 100000).status());
                FS_ASSIGN_OR_RETURN(auto by_share, st.PendingUploadsByShare());
                uint64_t pending = 0, stuck = 0;
                for (auto& [share, n] : by_share) {
                  pending += n;
                  bool target = cx->box.WithUploads(
                      [&](UploadService* u) { return u != nullptr && u->HasTarget(share); });
                  if (!target) stuck += n;
                }
                job.Progress(first == 0 ? 1.0
                                        : 1.0 - static_cast<double>(std::min(pending, first)) /
                                                    static_cast<double>(first),
                             std::to_string(pending) + " files wait for upload");
                if (pending == 0) break;
                if (stuck == pending) {
                  return FailedPreconditionError(
                      std::to_string(stuck) +
                      " files wait for shares without a storage account to upload to");
                }
                if (job.cancelled()) return Status::Ok();
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
              }
              job.SetResult(JsonText(json{{"uploaded", first}}));
              return Status::Ok();
            });
        return ApiResponse::Json({{"job", id}}, 202);
      });
  api.Add(Verb::get, "/api/v1/shares/{name}/file", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            std::string path = req.Query("path");
            if (path.empty()) return InvalidArgumentError("query parameter 'path' is required");
            FS_ASSIGN_OR_RETURN(auto attr, cx->box.store().Resolve(req.params["name"], path));
            FS_ASSIGN_OR_RETURN(std::string state, cx->box.store().CacheStateOf(attr.id));
            return ApiResponse::Json({{"path", path}, {"state", state}, {"size", attr.size}});
          });

  // ---- bandwidth, budgets, cache, device ----
  api.Add(Verb::get, "/api/v1/bandwidth", Access::kReader,
          [cx](ApiRequest&) -> Result<ApiResponse> {
            return ApiResponse::Json(BandwidthJson(cx->box.config()));
          });
  api.Add(
      Verb::put, "/api/v1/bandwidth", Access::kAdmin, [cx](ApiRequest& req) -> Result<ApiResponse> {
        FS_RETURN_IF_ERROR(CheckBody(req.body, {{"timetable", FieldType::kString, false, 4096},
                                                {"daily_budget", FieldType::kString, false, 32},
                                                {"monthly_budget", FieldType::kString, false, 32},
                                                {"transfers", FieldType::kInt, false, 0, 1, 64}}));
        std::string timetable = Str(req.body, "timetable");
        if (!timetable.empty()) {
          auto parsed = sync::BandwidthSchedule::ParseTimetable(timetable);
          if (!parsed.ok()) {
            return InvalidArgumentError("field 'timetable': " + parsed.status().message());
          }
        }
        FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
          if (req.body.contains("timetable")) c.upload_bandwidth = timetable;
          for (auto [key, out] : {std::pair{"daily_budget", &c.upload_daily_budget},
                                  {"monthly_budget", &c.upload_monthly_budget}}) {
            if (!req.body.contains(key)) continue;
            std::string text = Str(req.body, key);
            if (text.empty()) {
              *out = std::nullopt;
              continue;
            }
            auto size = sync::ParseRate(text);
            if (!size.ok()) {
              return InvalidArgumentError(
                  "field '" + std::string(key) +
                  "' is not a size like \"10G\": " + size.status().message());
            }
            *out = *size;
          }
          if (req.body.contains("transfers")) {
            c.upload_transfers = req.body["transfers"].get<uint32_t>();
          }
          return Status::Ok();
        }));
        return ApiResponse::Json(BandwidthJson(cx->box.config()));
      });
  api.Add(Verb::get, "/api/v1/cache", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    return ApiResponse::Json(CacheSettingsJson(cx->box.config()));
  });
  api.Add(Verb::put, "/api/v1/cache", Access::kAdmin, [cx](ApiRequest& req) -> Result<ApiResponse> {
    std::vector<Field> fields = CacheFields();
    fields.push_back({"interval_s", FieldType::kInt, false, 0, 1, 86400});
    fields.push_back({"backpressure_timeout_s", FieldType::kInt, false, 0, 1, 86400});
    fields.push_back({"recall_timeout_s", FieldType::kInt, false, 0, 1, 86400});
    FS_RETURN_IF_ERROR(CheckBody(req.body, fields));
    FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
      json cache = json::object();
      for (const auto& f : CacheFields()) {
        if (req.body.contains(f.name)) cache[f.name] = req.body[f.name];
      }
      FS_RETURN_IF_ERROR(ApplyCache(cache, c.cache));
      for (auto [key, out] : {std::pair{"interval_s", &c.cache_interval_s},
                              {"backpressure_timeout_s", &c.backpressure_timeout_s},
                              {"recall_timeout_s", &c.recall_timeout_s}}) {
        if (req.body.contains(key)) *out = req.body[key].get<uint32_t>();
      }
      return Status::Ok();
    }));
    return ApiResponse::Json(CacheSettingsJson(cx->box.config()));
  });
  auto device_json = [cx]() {
    Config c = cx->box.config();
    json cap = json::object();
    if (auto u = cx->box.store().GetUsage(); u.ok()) {
      cap = {{"volume_total_bytes", u->volume_total_bytes},
             {"volume_free_bytes", u->volume_free_bytes},
             {"used_bytes", u->used_bytes}};
      uint64_t resident = 0, stubs = 0;
      if (auto shares = cx->box.store().ListShares(); shares.ok()) {
        for (const auto& sh : *shares) {
          if (auto cu = cx->box.store().GetCacheUsage(sh.id); cu.ok()) {
            resident += cu->resident_bytes;
            stubs += cu->stub_bytes;
          }
        }
      }
      cap["resident_bytes"] = resident;
      cap["stub_bytes"] = stubs;
    }
    json endpoints = {{"api", (cx->api.secure() ? "https://" : "http://") + c.http_address + ":" +
                                  std::to_string(cx->api.port())}};
    cx->box.WithEndpoints([&](ObjectEndpoints* e) {
      std::string scheme = c.allow_http ? "http://" : "https://";
      if (e && e->s3_port()) {
        endpoints["s3"] = scheme + c.s3.address + ":" + std::to_string(e->s3_port());
      }
      if (e && e->blob_port()) {
        endpoints["blob"] = scheme + c.blob.address + ":" + std::to_string(e->blob_port());
      }
      return 0;
    });
    if (c.smb_enabled) endpoints["smb"] = c.smb_address + ":" + std::to_string(c.smb_port);
    if (c.nfs_enabled) endpoints["nfs"] = c.nfs_address + ":" + std::to_string(c.nfs_port);
    int64_t now = NowUnix();
    return json{
        {"name", c.device_name.empty() ? HostName() : c.device_name},
        {"hostname", HostName()},
        {"version", cx->version},
        {"time", Iso(now)},
        {"time_unix", now},
        {"uptime_s", (RealClock::Get().MonotonicNanos() - cx->started_mono_ns) / 1'000'000'000},
        {"host_power", c.host_power},
        {"network", Interfaces()},
        {"capacity", cap},
        {"endpoints", endpoints}};
  };
  api.Add(Verb::get, "/api/v1/device", Access::kReader,
          [device_json](ApiRequest&) -> Result<ApiResponse> {
            return ApiResponse::Json(device_json());
          });
  api.Add(Verb::patch, "/api/v1/device", Access::kAdmin,
          [cx, device_json](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, {{"name", FieldType::kString, false, 63},
                                                    {"host_power", FieldType::kBool}}));
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) {
              if (req.body.contains("name")) c.device_name = Str(req.body, "name");
              if (req.body.contains("host_power"))
                c.host_power = req.body["host_power"].get<bool>();
              return Status::Ok();
            }));
            return ApiResponse::Json(device_json());
          });

  // ---- encryption ----
  api.Add(Verb::get, "/api/v1/encryption", Access::kReader,
          [cx](ApiRequest&) -> Result<ApiResponse> {
            Config c = cx->box.config();
            return ApiResponse::Json({{"enabled", c.encryption},
                                      {"master_key_id", cx->box.store().master_key_id()},
                                      {"passphrase", !c.passphrase_file.empty()}});
          });
  api.Add(Verb::post, "/api/v1/encryption/rotate", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            if (!cx->box.config().encryption) {
              return FailedPreconditionError("encryption is off on this box");
            }
            FS_ASSIGN_OR_RETURN(uint32_t id, cx->box.store().RotateMasterKey());
            spdlog::info("api: master key rotated by '{}'; new key id {}", req.principal->user, id);
            return ApiResponse::Json({{"master_key_id", id}});
          });
  api.Add(
      Verb::get, "/api/v1/encryption/recovery-key", Access::kAdmin,
      [cx](ApiRequest& req) -> Result<ApiResponse> {
        Config c = cx->box.config();
        if (!c.encryption) return FailedPreconditionError("encryption is off on this box");
        if (!c.passphrase_file.empty()) {
          return FailedPreconditionError(
              "the master key comes from the passphrase: the passphrase is the recovery key");
        }
        spdlog::warn("api: recovery key downloaded by '{}' from {}", req.principal->user, req.peer);
        ApiResponse r;
        r.file_path = c.key_file.empty() ? c.data_dir + "/master.key" : c.key_file;
        r.audit = true;
        r.download_name = "fieldstack-" + (c.device_name.empty() ? HostName() : c.device_name) +
                          "-master-key-" + std::to_string(cx->box.store().master_key_id()) + ".key";
        return r;
      });

  // ---- logs ----
  api.Add(
      Verb::get, "/api/v1/logs/{kind}", Access::kReader,
      [cx](ApiRequest& req) -> Result<ApiResponse> {
        std::string kind = req.params["kind"];
        static const std::set<std::string> kKinds = {"copy", "refresh", "errors", "audit", "api"};
        if (!kKinds.count(kind)) {
          return NotFoundError("no log '" + kind + "' (copy, refresh, errors, audit or api)");
        }
        if (kind == "api" && req.principal->role != management::Role::kAdmin) {
          return PermissionDeniedError("the API audit log needs the admin role");
        }
        std::string format = req.Query("format", "json");
        if (format != "json" && format != "jsonl") {
          return InvalidArgumentError("query parameter 'format' must be json or jsonl");
        }
        FS_ASSIGN_OR_RETURN(int64_t limit,
                            req.QueryInt("limit", 100, 1, format == "jsonl" ? 100000 : 1000));
        FS_ASSIGN_OR_RETURN(int64_t offset, req.QueryInt("offset", 0, 0, 1'000'000));
        std::string share = req.Query("share"), result = req.Query("result"),
                    prefix = req.Query("path");
        Config c = cx->box.config();
        std::vector<std::pair<std::string, std::string>> files;  // path, share
        std::string logs = c.data_dir + "/logs";
        if (kind == "audit") {
          files.push_back({logs + "/audit.log", ""});
        } else if (kind == "api") {
          files.push_back({logs + "/api-audit.log", ""});
        } else {
          std::string file = kind == "copy" ? "upload.log" : kind + ".log";
          for (const auto& s : c.shares) {
            if (share.empty() || s.name == share)
              files.push_back({logs + "/" + s.name + "/" + file, s.name});
          }
          if (!share.empty() && files.empty()) return NotFoundError("no share '" + share + "'");
        }
        auto keep = [&](const json& j) {
          if (!share.empty() && j.contains("share") && j["share"] != share) return false;
          if (!result.empty() && (!j.contains("result") || j["result"] != result)) {
            return false;
          }
          if (!prefix.empty()) {
            if (!j.contains("path") || !j["path"].is_string()) return false;
            if (!j["path"].get<std::string>().starts_with(prefix)) return false;
          }
          return true;
        };
        json out = json::array();
        size_t matched = 0;
        // Several shares: newest first within each file, files in share order.
        for (const auto& [f, share_name] : files) {
          size_t before = out.size();
          ReadLogLines(f, keep, static_cast<size_t>(offset), static_cast<size_t>(limit), out,
                       matched);
          if (share_name.empty()) continue;
          for (size_t i = before; i < out.size(); ++i) {
            if (!out[i].contains("share")) out[i]["share"] = share_name;
          }
        }
        if (format == "jsonl") {  // a download of what the filters matched
          ApiResponse r;
          r.content_type = "application/x-ndjson";
          for (const auto& e : out) r.text += JsonText(e) + "\n";
          r.headers.push_back(
              {"Content-Disposition", "attachment; filename=\"fieldstack-" + kind + ".log\""});
          return r;
        }
        return ApiResponse::Json(
            {{"entries", out},
             {"next_offset",
              out.size() == static_cast<size_t>(limit) ? json(offset + limit) : json(nullptr)}});
      });

  // ---- alerts ----
  auto alert_json = [](const management::Alert& a) {
    return json{{"seq", a.seq},
                {"id", a.id},
                {"category", a.category},
                {"severity", std::string(management::SeverityName(a.severity))},
                {"title", a.title},
                {"action", a.action},
                {"subject", a.subject},
                {"detail", a.detail},
                {"raised", Iso(a.raised_unix)},
                {"updated", Iso(a.updated_unix)},
                {"cleared", a.cleared_unix == 0 ? json(nullptr) : json(Iso(a.cleared_unix))},
                {"count", a.count},
                {"acknowledged", a.acknowledged},
                {"acknowledged_by", a.acknowledged_by}};
  };
  api.Add(Verb::get, "/api/v1/alerts", Access::kReader,
          [cx, alert_json](ApiRequest& req) -> Result<ApiResponse> {
            std::string state = req.Query("state", "active");
            FS_ASSIGN_OR_RETURN(int64_t limit, req.QueryInt("limit", 100, 1, 1000));
            FS_ASSIGN_OR_RETURN(int64_t before, req.QueryInt("before", 0, 0, INT64_MAX));
            std::vector<management::Alert> list;
            if (state == "active") {
              list = cx->alerts.Active();
            } else if (state == "all") {
              list = cx->alerts.History(static_cast<size_t>(limit), static_cast<uint64_t>(before));
            } else {
              return InvalidArgumentError("query parameter 'state' must be active or all");
            }
            json out = json::array();
            for (const auto& a : list) out.push_back(alert_json(a));
            return ApiResponse::Json({{"alerts", out}});
          });
  api.Add(Verb::get, "/api/v1/alerts/catalogue", Access::kReader,
          [](ApiRequest&) -> Result<ApiResponse> {
            json out = json::array();
            for (const auto& d : management::AlertCatalogue()) {
              out.push_back({{"id", d.id},
                             {"category", d.category},
                             {"severity", std::string(management::SeverityName(d.severity))},
                             {"title", d.title},
                             {"action", d.action}});
            }
            return ApiResponse::Json({{"alerts", out}});
          });
  api.Add(Verb::post, "/api/v1/alerts/{seq}/ack", Access::kOperator,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            const std::string& seq = req.params["seq"];
            if (seq.empty() || seq.size() > 19 ||
                seq.find_first_not_of("0123456789") != std::string::npos) {
              return InvalidArgumentError("the alert number must be a positive integer");
            }
            FS_RETURN_IF_ERROR(cx->alerts.Acknowledge(std::stoull(seq), req.principal->user));
            return ApiResponse::NoContent();
          });
  api.Add(Verb::get, "/api/v1/alerts/settings", Access::kAdmin,
          [cx](ApiRequest&) -> Result<ApiResponse> {
            return ApiResponse::Json({{"webhook", cx->box.config().alerts_webhook}});
          });
  api.Add(Verb::put, "/api/v1/alerts/settings", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, {{"webhook", FieldType::kString, true, 2048}}));
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) {
              c.alerts_webhook = Str(req.body, "webhook");
              return Status::Ok();
            }));
            return ApiResponse::Json({{"webhook", cx->box.config().alerts_webhook},
                                      {"note", "the webhook takes effect at the next start"}});
          });

  // ---- jobs ----
  auto job_json = [](const management::JobInfo& j) {
    json r = j.result.empty() ? json(nullptr) : json::parse(j.result, nullptr, false);
    if (r.is_discarded()) r = nullptr;
    return json{{"id", j.id},
                {"kind", j.kind},
                {"created_by", j.created_by},
                {"state", std::string(management::JobStateName(j.state))},
                {"progress", j.progress},
                {"message", j.message},
                {"error", j.error},
                {"result", r},
                {"download", !j.file.empty()},
                {"created", Iso(j.created_unix)},
                {"started", j.started_unix ? json(Iso(j.started_unix)) : json(nullptr)},
                {"finished", j.finished_unix ? json(Iso(j.finished_unix)) : json(nullptr)}};
  };
  api.Add(Verb::get, "/api/v1/jobs", Access::kReader,
          [cx, job_json](ApiRequest&) -> Result<ApiResponse> {
            json out = json::array();
            for (const auto& j : cx->jobs.List()) out.push_back(job_json(j));
            return ApiResponse::Json({{"jobs", out}});
          });
  api.Add(Verb::get, "/api/v1/jobs/{id}", Access::kReader,
          [cx, job_json](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(auto j, cx->jobs.Get(req.params["id"]));
            return ApiResponse::Json(job_json(j));
          });
  api.Add(Verb::post, "/api/v1/jobs/{id}/cancel", Access::kOperator,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            FS_RETURN_IF_ERROR(cx->jobs.Cancel(req.params["id"]));
            return ApiResponse::Json({{"id", req.params["id"]}, {"cancelling", true}}, 202);
          });
  api.Add(Verb::get, "/api/v1/jobs/{id}/download", Access::kOperator,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(auto j, cx->jobs.Get(req.params["id"]));
            if (j.state != management::JobState::kSucceeded || j.file.empty()) {
              return FailedPreconditionError("job '" + j.id + "' has no file (state " +
                                             std::string(management::JobStateName(j.state)) + ")");
            }
            ApiResponse r;
            r.file_path = j.file;
            r.download_name = j.download_name;
            r.content_type = "application/zstd";
            return r;
          });

  // ---- diagnostics and support ----
  auto diagnostics = [cx](management::JobContext& job) -> Result<json> {
    auto results = management::RunChecks(
        BoxChecks(*cx),
        [&](size_t i, size_t n) {
          job.Progress(static_cast<double>(i) / std::max<size_t>(n, 1),
                       "check " + std::to_string(i) + " of " + std::to_string(n));
        },
        [&] { return job.cancelled(); });
    json out = json::array();
    for (const auto& r : results) {
      out.push_back({{"id", r.id},
                     {"name", r.name},
                     {"status", std::string(management::CheckStatusName(r.status))},
                     {"detail", r.detail},
                     {"advice", r.advice},
                     {"duration_ms", r.duration_ms}});
    }
    return json{{"checks", out}};
  };
  api.Add(Verb::post, "/api/v1/diagnostics", Access::kOperator,
          [cx, diagnostics](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            std::string id = cx->jobs.Start("diagnostics", req.principal->user,
                                            [diagnostics](management::JobContext& job) -> Status {
                                              FS_ASSIGN_OR_RETURN(json r, diagnostics(job));
                                              job.SetResult(JsonText(r));
                                              job.Progress(1, "done");
                                              return Status::Ok();
                                            });
            return ApiResponse::Json({{"job", id}}, 202);
          });
  api.Add(Verb::post, "/api/v1/support-package", Access::kOperator,
          [cx, diagnostics](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            std::string id = cx->jobs.Start(
                "support-package", req.principal->user,
                [cx, diagnostics](management::JobContext& job) -> Status {
                  Config c = cx->box.config();
                  management::SupportPackageInput in;
                  in.now_unix = NowUnix();
                  job.Progress(0.05, "running diagnostics");
                  FS_ASSIGN_OR_RETURN(json diag, diagnostics(job));
                  in.diagnostics_json = diag.dump(2);
                  in.versions_json =
                      json{{"fieldstack", cx->version},
                           {"device", c.device_name.empty() ? HostName() : c.device_name}}
                          .dump(2);
                  in.metrics_text = cx->metrics_text();
                  std::string config_text;
                  if (!cx->config_path.empty()) {
                    auto t = platform::ReadFileToString(cx->config_path);
                    if (t.ok()) config_text += "# " + cx->config_path + "\n" + *t + "\n";
                  }
                  config_text += "# settings changed through the API\n" + ManagedSettingsToml(c);
                  in.config_text = config_text;
                  in.log_dirs.push_back(c.data_dir + "/logs");
                  for (const auto& s : c.shares)
                    in.log_dirs.push_back(c.data_dir + "/logs/" + s.name);
                  in.secrets = KnownSecrets(c);
                  job.Progress(0.5, "packing logs");
                  std::string dir = c.data_dir + "/support";
                  FS_RETURN_IF_ERROR(platform::MakeDirs(dir, 0700));
                  // Keep the newest four packages made before: they share the volume with the data.
                  if (auto names = platform::ListDir(dir); names.ok()) {
                    std::vector<std::string> packages;
                    for (const auto& n : *names) {
                      if (n.starts_with("fieldstack-support-") && n.ends_with(".tar.zst")) {
                        packages.push_back(n);
                      }
                    }
                    std::sort(packages.begin(), packages.end());
                    for (size_t i = 0; i + 4 < packages.size(); ++i) {
                      (void)platform::RemoveFile(dir + "/" + packages[i]);
                    }
                  }
                  std::string name = "fieldstack-support-" +
                                     FormatUtc(in.now_unix * 1'000'000'000, "%Y%m%d-%H%M%S") +
                                     ".tar.zst";
                  FS_RETURN_IF_ERROR(management::WriteSupportPackage(
                      in, dir + "/" + name, [&] { return job.cancelled(); }));
                  job.SetFile(dir + "/" + name, name);
                  job.SetResult(JsonText(json{{"file", name}}));
                  job.Progress(1, "done");
                  return Status::Ok();
                });
            return ApiResponse::Json({{"job", id}}, 202);
          });

  // ---- certificates ----
  auto cert_json = [cx]() -> Result<json> {
    FS_ASSIGN_OR_RETURN(std::string pem, platform::ReadFileToString(cx->certificate.cert));
    FS_ASSIGN_OR_RETURN(auto info, crypto::DescribeCertificate(pem));
    return json{{"subject", info.subject},
                {"issuer", info.issuer},
                {"names", info.names},
                {"not_before", Iso(info.not_before_unix)},
                {"not_after", Iso(info.not_after_unix)},
                {"sha256_fingerprint", info.sha256_fingerprint},
                {"self_signed", info.self_signed},
                {"key_type", info.key_type},
                {"in_use_by", json::array({"api", "ui", "s3", "blob"})}};
  };
  api.Add(Verb::get, "/api/v1/certificates", Access::kReader,
          [cert_json](ApiRequest&) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(json j, cert_json());
            return ApiResponse::Json(j);
          });
  auto install = [cx, cert_json](const crypto::CertificateBundle& b) -> Result<ApiResponse> {
    // Replace the files crash-safely, keeping the old pair to put back if a server refuses the
    // new one.
    std::string cert = cx->certificate.cert, key = cx->certificate.key;
    auto old_cert = platform::ReadFileToString(cert);
    auto old_key = platform::ReadFileToString(key);
    FS_RETURN_IF_ERROR(InstallCertificateFiles(cx->certificate, b.chain_pem, b.key_pem));
    Status s = cx->api.ReloadCertificate();
    if (s.ok() || s.code() == StatusCode::kFailedPrecondition) {
      s = cx->box.WithEndpoints(
          [](ObjectEndpoints* e) { return e ? e->ReloadCertificate() : Status::Ok(); });
    }
    if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) {
      if (old_cert.ok() && old_key.ok()) {
        (void)InstallCertificateFiles(cx->certificate, *old_cert, *old_key);
        (void)cx->api.ReloadCertificate();
      }
      return s;
    }
    spdlog::info("api: box certificate replaced: {} (until {})", b.leaf.subject,
                 Iso(b.leaf.not_after_unix));
    FS_ASSIGN_OR_RETURN(json j, cert_json());
    return ApiResponse::Json(j);
  };
  api.Add(Verb::put, "/api/v1/certificates", Access::kAdmin,
          [install](ApiRequest& req) -> Result<ApiResponse> {
            if (!req.body.is_object())
              return InvalidArgumentError("the body must be a JSON object");
            for (auto& [k, v] : req.body.items()) {
              if (k != "cert_pem" && k != "key_pem" && k != "chain_pem" && k != "pfx_base64" &&
                  k != "pfx_password") {
                return InvalidArgumentError("unknown field '" + k.substr(0, 64) +
                                            "' (known: cert_pem, key_pem, chain_pem, pfx_base64, "
                                            "pfx_password)");
              }
            }
            for (const char* f : {"cert_pem", "key_pem", "chain_pem", "pfx_base64"}) {
              FS_RETURN_IF_ERROR(management::CheckText(req.body, f, 512 * 1024, false));
            }
            FS_RETURN_IF_ERROR(
                CheckBody(json{{"pfx_password", req.body.value("pfx_password", json(""))}},
                          {{"pfx_password", FieldType::kString, false, 256}}));
            Result<crypto::CertificateBundle> b = InvalidArgumentError(
                "give cert_pem and key_pem (and optionally chain_pem), or pfx_base64");
            if (req.body.contains("pfx_base64")) {
              std::string text = Str(req.body, "pfx_base64");
              text.erase(std::remove_if(text.begin(), text.end(), ::isspace), text.end());
              std::string der = crypto::Base64Decode(text);
              if (der.empty()) return InvalidArgumentError("field 'pfx_base64' is not base64");
              b = crypto::BundleFromPfx(der, Str(req.body, "pfx_password"), NowUnix());
            } else if (req.body.contains("cert_pem") && req.body.contains("key_pem")) {
              b = crypto::BundleFromPem(Str(req.body, "cert_pem"), Str(req.body, "key_pem"),
                                        Str(req.body, "chain_pem"), NowUnix());
            }
            if (!b.ok()) return b.status();
            return install(*b);
          });
  api.Add(Verb::post, "/api/v1/certificates/regenerate", Access::kAdmin,
          [cx, install](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            // A fresh self-signed certificate for the box's names, made aside then installed.
            std::string dir = cx->box.config().data_dir + "/tls";
            std::string cert = dir + "/new.crt", key = dir + "/new.key";
            (void)platform::RemoveFile(cert);
            (void)platform::RemoveFile(key);
            FS_RETURN_IF_ERROR(crypto::EnsureSelfSignedCertificate(
                cert, key, BoxCertificateNames(cx->box.config())));
            FS_ASSIGN_OR_RETURN(std::string cert_pem, platform::ReadFileToString(cert));
            FS_ASSIGN_OR_RETURN(std::string key_pem, platform::ReadFileToString(key));
            (void)platform::RemoveFile(cert);
            (void)platform::RemoveFile(key);
            FS_ASSIGN_OR_RETURN(auto b, crypto::BundleFromPem(cert_pem, key_pem, "", NowUnix()));
            return install(b);
          });

  // ---- metrics summary, power ----
  api.Add(Verb::get, "/api/v1/metrics/summary", Access::kReader,
          [cx](ApiRequest&) -> Result<ApiResponse> {
            std::string text = cx->metrics_text();
            uint64_t pending = 0;
            if (auto p = cx->box.store().PendingUploads(); p.ok()) pending = *p;
            json oldest = nullptr;
            if (auto o = cx->box.store().OldestPendingUploadNs(); o.ok() && *o > 0) {
              oldest = std::max<int64_t>(0, (RealClock::Get().NowUnixNanos() - *o) / 1'000'000'000);
            }
            return ApiResponse::Json(
                {{"uploaded_files", MetricSum(text, "fieldstack_upload_files_total")},
                 {"uploaded_bytes", MetricSum(text, "fieldstack_upload_bytes_total")},
                 {"upload_failures", MetricSum(text, "fieldstack_upload_failures_total")},
                 {"upload_rate_bytes_per_second",
                  MetricSum(text, "fieldstack_upload_rate_bytes_per_second")},
                 {"pending_files", pending},
                 {"oldest_pending_age_s", oldest},
                 {"recalled_bytes", MetricSum(text, "fieldstack_recall_bytes_total")},
                 {"evictions", MetricSum(text, "fieldstack_cache_evictions_total")},
                 {"cache_backpressure", MetricSum(text, "fieldstack_cache_backpressure")},
                 {"store_bytes_written", MetricSum(text, "fieldstack_store_bytes_written_total")},
                 {"store_bytes_read", MetricSum(text, "fieldstack_store_bytes_read_total")}});
          });
  api.Add(Verb::get, "/api/v1/metrics/history", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            std::string window = req.Query("window", "hour");
            if (window != "hour" && window != "day") {
              return InvalidArgumentError("query parameter 'window' must be hour or day");
            }
            json points = json::array();
            for (const auto& p : cx->history.Points(window)) {
              points.push_back({{"time", Iso(p.unix_s)},
                                {"upload_bytes_per_s", p.upload_bytes_per_s},
                                {"download_bytes_per_s", p.download_bytes_per_s},
                                {"pending_files", p.pending_files}});
            }
            return ApiResponse::Json(
                {{"window", window},
                 {"step_s", window == "hour" ? management::MetricsHistory::kHourStep
                                             : management::MetricsHistory::kDayStep},
                 {"points", points}});
          });
  api.Add(Verb::post, "/api/v1/power", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(CheckBody(req.body, {{"action", FieldType::kString, true, 16},
                                                    {"scope", FieldType::kString, false, 16}}));
            std::string action = Str(req.body, "action"), scope = Str(req.body, "scope", "daemon");
            if (action != "restart" && action != "shutdown") {
              return InvalidArgumentError("field 'action' must be \"restart\" or \"shutdown\"");
            }
            if (scope != "daemon" && scope != "host") {
              return InvalidArgumentError("field 'scope' must be \"daemon\" or \"host\"");
            }
            if (scope == "host" && !cx->box.config().host_power) {
              return FailedPreconditionError(
                  "the box may not restart or power off the host; set [device] host_power = true");
            }
            spdlog::warn("api: {} of the {} asked by '{}' from {}", action, scope,
                         req.principal->user, req.peer);
            cx->power(action == "restart", scope == "host");
            return ApiResponse::Json({{"action", action}, {"scope", scope}}, 202);
          });
}

}  // namespace fieldstack::daemon
