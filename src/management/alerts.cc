#include "management/alerts.h"

// Design. All state lives in Impl under one mutex (`mu`): every alert instance of the history
// by seq (active ones included), and an index of the active ones by (id, subject). Each change
// is applied in memory, appended to alerts.log as one JSON line, logged and, when a webhook is
// configured, handed to the webhook queue, all while `mu` is held so that the log and the
// webhook see changes in the order they happened.
//
// alerts.log rotates (platform::AppendToRotatingLog, keeping alerts.log.1 and .2). Open replays
// the files oldest first. So that an alert raised long ago is not lost when the line that
// raised it rotates away, the active alerts are written again ("active" lines) at the start of
// each new file.
//
// The webhook has one thread of its own fed by a bounded queue (kQueueLimit; past it the oldest
// body is dropped and counted failed). Each body is tried up to kWebhookTries times with waits
// of base, 2x base, 4x base ... in between; the waits and a transfer in flight end as soon as
// the destructor asks (a condition variable and curl's progress callback see the stop flag).
//
// Lock order: mu before webhook_mu.

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "common/mutex.h"
#include "platform/file.h"

namespace fieldstack::management {
namespace {

constexpr char kLogName[] = "alerts.log";
constexpr int kLogKeep = 2;                 // alerts.log.1 and alerts.log.2
constexpr size_t kQueueLimit = 1000;        // webhook bodies waiting
constexpr int kWebhookTries = 5;            // waits of 1, 2, 4, 8 times the base between them
constexpr long kWebhookTimeoutMs = 10'000;  // one whole POST
constexpr size_t kHistoryLimit = 10'000;    // cleared alerts kept in memory

const std::vector<AlertDefinition>& Catalogue() {
  static const std::vector<AlertDefinition> catalogue = {
      {"cloud.unreachable", "cloud", Severity::kCritical,
       "The cloud storage account does not answer",
       "Check the uplink and DNS, then run Diagnostics; uploads resume by themselves when the "
       "storage account answers. Files not on the box cannot be opened meanwhile."},
      {"cloud.auth_failed", "cloud", Severity::kCritical, "The cloud refuses the box's credentials",
       "Check that the account key, SAS token or S3 key named in the share's target (key_file, "
       "sas_file, secret_file) has not expired or been rotated; put the current one in that "
       "file and run Diagnostics. Uploads of the share stay paused until the cloud accepts it."},
      {"capacity.volume_low", "capacity", Severity::kWarning,
       "The data volume is running out of free space",
       "Check that uploads are moving (files not yet uploaded cannot be evicted), then lower "
       "[cache] high_watermark / low_watermark or free space on the volume that holds data_dir."},
      {"capacity.cache_full", "capacity", Severity::kCritical,
       "The cache is at its hard cap: writes wait, then fail",
       "Writers get ENOSPC / 507 until space is freed. Fix what stops uploads (see the cloud.* "
       "and upload.* alerts), pause bulk copies to the box, and remove pinned globs that are not "
       "needed so the evictor can free space; add disk if it recurs."},
      {"upload.failures", "upload", Severity::kWarning, "Files of a share fail to upload",
       "Open the share's errors.log; its code says why (docs/error-codes.md). Fix the cause "
       "(name, size, quota, conflict) and copy the file again; retryable errors retry by "
       "themselves."},
      {"upload.budget_spent", "upload", Severity::kInfo,
       "The upload data budget is spent: uploads are paused",
       "Nothing to do if expected: uploads resume at the next day or month (box time). To send "
       "more now, raise [upload] daily_budget / monthly_budget and restart the daemon."},
      {"certificate.expiring", "certificate", Severity::kWarning,
       "The box's TLS certificate expires soon",
       "Put a renewed certificate and key at [tls] cert_file / key_file and restart the daemon "
       "before the date in the detail. A self-signed one: delete <data_dir>/tls/box.crt and "
       "box.key and restart to make a new one (clients must trust it again)."},
      {"certificate.expired", "certificate", Severity::kCritical,
       "The box's TLS certificate has expired",
       "Clients refuse HTTPS connections to the S3, Blob and management endpoints. Put a "
       "renewed certificate and key at [tls] cert_file / key_file and restart the daemon (a "
       "self-signed one: delete <data_dir>/tls/box.crt and box.key and restart)."},
      {"security.login_lockout", "security", Severity::kWarning,
       "An account is locked out after repeated failed logins",
       "Ask the user (the subject) whether the attempts were theirs. If not, block the client "
       "address in the detail at the firewall and change the account's password. The lockout "
       "ends by itself."},
      {"hardware.disk_errors", "hardware", Severity::kCritical, "The data disk reports I/O errors",
       "Check the kernel log (dmesg) and the disk's SMART data (smartctl -a); plan to replace "
       "the disk. Keep the box connected so files not yet uploaded reach the cloud first."},
      {"hardware.clock_skew", "hardware", Severity::kWarning,
       "The box's clock is off from the real time",
       "Enable time sync (timedatectl set-ntp true) and allow NTP (UDP 123) out through the "
       "firewall. Cloud services refuse signed requests when the clock is off by more than about "
       "15 minutes."},
      {"hardware.memory_low", "hardware", Severity::kWarning, "The box is low on memory",
       "Check what else runs on the box (top), lower [upload] transfers and the number of "
       "clients at once; add memory if it recurs. The kernel may stop the daemon when memory "
       "runs out."},
      {"service.smb_down", "service", Severity::kCritical, "The SMB service is down",
       "SMB clients cannot reach their shares. Check the daemon log for smbd errors and that "
       "[smb] port is free (ss -ltnp), then restart the daemon."},
      {"service.nfs_down", "service", Severity::kCritical, "The NFS service is down",
       "NFS clients cannot reach their exports. Check the daemon log for NFS server errors and "
       "that [nfs] port and rpcbind (port 111) are free (ss -ltnp), then restart the daemon."},
      {"compute.pipeline_failed", "compute", Severity::kWarning, "A compute pipeline failed",
       "Open the pipeline's runs and dead letters (fieldstack pipeline dead-letters NAME), fix "
       "the input, module or declaration the error names, then retry the dead letters; the "
       "pipeline goes on with new inputs meanwhile."},
      {"compute.pipeline_alert", "compute", Severity::kWarning,
       "A compute pipeline raised an alert",
       "A pipeline's alert sink matched a record (the subject names the pipeline, the detail "
       "is its message). Act on what it reports; acknowledge the alert when handled."},
  };
  return catalogue;
}

std::optional<Severity> ParseSeverity(std::string_view s) {
  for (Severity v : {Severity::kInfo, Severity::kWarning, Severity::kCritical}) {
    if (SeverityName(v) == s) return v;
  }
  return std::nullopt;
}

// The JSON form of a change, used for alerts.log lines and webhook bodies (docs/alerts.md).
nlohmann::json ToJson(std::string_view event, const Alert& a, int64_t now_ns) {
  return {
      {"event", event},
      {"time", FormatRfc3339(now_ns)},
      {"seq", a.seq},
      {"id", a.id},
      {"category", a.category},
      {"severity", SeverityName(a.severity)},
      {"title", a.title},
      {"action", a.action},
      {"subject", a.subject},
      {"detail", a.detail},
      {"raised_unix", a.raised_unix},
      {"updated_unix", a.updated_unix},
      {"cleared_unix", a.cleared_unix},
      {"count", a.count},
      {"acknowledged", a.acknowledged},
      {"acknowledged_by", a.acknowledged_by},
  };
}

// One line of alerts.log; nullopt when it is not a well-formed change.
std::optional<std::pair<std::string, Alert>> ParseLine(const std::string& line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  try {
    Alert a;
    std::string event = j.at("event").get<std::string>();
    a.seq = j.at("seq").get<uint64_t>();
    a.id = j.at("id").get<std::string>();
    a.category = j.value("category", "");
    auto severity = ParseSeverity(j.value("severity", ""));
    if (!severity) return std::nullopt;
    a.severity = *severity;
    a.title = j.value("title", "");
    a.action = j.value("action", "");
    a.subject = j.value("subject", "");
    a.detail = j.value("detail", "");
    a.raised_unix = j.value("raised_unix", int64_t{0});
    a.updated_unix = j.value("updated_unix", int64_t{0});
    a.cleared_unix = j.value("cleared_unix", int64_t{0});
    a.count = j.value("count", uint64_t{1});
    a.acknowledged = j.value("acknowledged", false);
    a.acknowledged_by = j.value("acknowledged_by", "");
    if (a.seq == 0 || a.id.empty()) return std::nullopt;
    return std::make_pair(std::move(event), std::move(a));
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a field of the wrong type
  }
}

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t DiscardBody(char*, size_t size, size_t n, void*) { return size * n; }

int AbortWhenStopping(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(stop)->load() ? 1 : 0;
}

}  // namespace

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kCritical:
      return "critical";
  }
  return "info";
}

const std::vector<AlertDefinition>& AlertCatalogue() { return Catalogue(); }

const AlertDefinition* FindAlert(std::string_view id) {
  for (const AlertDefinition& d : Catalogue()) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

struct Alerts::Impl {
  Impl(AlertsOptions o, const Clock& c)
      : options(std::move(o)), clock(c), log_path(options.dir + "/" + kLogName) {}

  int64_t NowUnix() const { return clock.NowUnixNanos() / 1'000'000'000; }

  // Replays one file of the log; a missing file is fine.
  void Replay(const std::string& path) REQUIRES(mu);
  void Apply(const std::string& event, Alert a) REQUIRES(mu);
  // Writes, logs and posts one change.
  void Record(std::string_view event, const Alert& a) REQUIRES(mu);
  void Append(const std::string& line) REQUIRES(mu);
  void TrimHistory() REQUIRES(mu);

  void Enqueue(std::string body) EXCLUDES(webhook_mu);
  void WebhookLoop() EXCLUDES(webhook_mu);
  // Tries `body` until it is delivered or the tries run out; false when stopped meanwhile.
  bool Deliver(void* curl, const std::string& body) EXCLUDES(webhook_mu);
  Status Post(void* curl, const std::string& body);

  const AlertsOptions options;
  const Clock& clock;
  const std::string log_path;

  mutable Mutex mu;
  std::map<uint64_t, Alert> history GUARDED_BY(mu);  // by seq, active ones included
  // Invariant: every seq here is in `history`, not cleared.
  std::map<std::pair<std::string, std::string>, uint64_t> active GUARDED_BY(mu);
  uint64_t next_seq GUARDED_BY(mu) = 1;

  Mutex webhook_mu;
  CondVar webhook_cv;
  std::deque<std::string> queue GUARDED_BY(webhook_mu);
  bool stopping GUARDED_BY(webhook_mu) = false;
  std::atomic<bool> stop_flag{false};  // `stopping`, for curl's progress callback
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> failed{0};
  std::thread webhook_thread;
};

void Alerts::Impl::Replay(const std::string& path) {
  if (!platform::PathExists(path)) return;
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) {
    spdlog::warn("alerts: cannot read {}: {}", path, text.status().ToString());
    return;
  }
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    auto change = ParseLine(line);
    if (!change) {
      spdlog::warn("alerts: {} line {} is not a valid alert record; skipped", path, line_no);
      continue;
    }
    Apply(change->first, std::move(change->second));
  }
}

void Alerts::Impl::Apply(const std::string& event, Alert a) {
  if (const AlertDefinition* def = FindAlert(a.id)) {  // the text of this version
    a.category = std::string(def->category);
    a.severity = def->severity;
    a.title = std::string(def->title);
    a.action = std::string(def->action);
  }
  next_seq = std::max(next_seq, a.seq + 1);
  auto key = std::make_pair(a.id, a.subject);
  if (event == "clear") {
    if (a.cleared_unix == 0) a.cleared_unix = a.updated_unix;
    auto it = active.find(key);
    if (it != active.end() && it->second == a.seq) active.erase(it);
    history[a.seq] = std::move(a);
  } else if (event == "raise" || event == "update" || event == "ack" || event == "active") {
    auto it = active.find(key);
    if (it != active.end() && it->second != a.seq) {
      // A newer raise of the same alert without a clear between (a lost line): the older one
      // ends here.
      Alert& older = history.at(it->second);
      if (older.cleared_unix == 0) older.cleared_unix = a.raised_unix;
    }
    if (a.cleared_unix == 0) {
      active[key] = a.seq;
    } else if (it != active.end() && it->second == a.seq) {
      active.erase(it);
    }
    history[a.seq] = std::move(a);
  } else {
    spdlog::warn("alerts: unknown event '{}' in {}; skipped", event, log_path);
  }
}

void Alerts::Impl::TrimHistory() {
  for (auto it = history.begin(); history.size() > kHistoryLimit && it != history.end();) {
    if (it->second.cleared_unix != 0) {
      it = history.erase(it);
    } else {
      ++it;
    }
  }
}

void Alerts::Impl::Append(const std::string& line) {
  Status s = platform::AppendToRotatingLog(log_path, line, options.log_max_bytes, kLogKeep);
  if (!s.ok()) spdlog::error("alerts: cannot write {}: {}", log_path, s.ToString());
}

void Alerts::Impl::Record(std::string_view event, const Alert& a) {
  int64_t now_ns = clock.NowUnixNanos();
  struct stat st;
  if (!active.empty() && ::stat(log_path.c_str(), &st) == 0 &&
      static_cast<uint64_t>(st.st_size) >= options.log_max_bytes) {
    // The next append starts a new file: it opens with what is active.
    for (const auto& [key, seq] : active) {
      Append(ToJson("active", history.at(seq), now_ns).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
  }
  std::string body =
      ToJson(event, a, now_ns).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Append(body + "\n");

  const std::string where = a.subject.empty() ? "" : " [" + a.subject + "]";
  if (event == "raise" || event == "update") {
    auto level = a.severity == Severity::kCritical  ? spdlog::level::err
                 : a.severity == Severity::kWarning ? spdlog::level::warn
                                                    : spdlog::level::info;
    spdlog::log(level, "alert {} {}{}: {}{}{} (seq {}, count {})",
                event == "raise" ? "raised" : "repeated", a.id, where, a.title,
                a.detail.empty() ? "" : ": ", a.detail, a.seq, a.count);
  } else if (event == "clear") {
    spdlog::info("alert cleared {}{} (seq {})", a.id, where, a.seq);
  } else {
    spdlog::info("alert acknowledged {}{} by '{}' (seq {})", a.id, where, a.acknowledged_by, a.seq);
  }
  if (!options.webhook.empty()) Enqueue(std::move(body));
}

void Alerts::Impl::Enqueue(std::string body) {
  size_t dropped = 0;
  {
    MutexLock l(webhook_mu);
    while (queue.size() >= kQueueLimit) {
      queue.pop_front();
      ++dropped;
    }
    queue.push_back(std::move(body));
  }
  webhook_cv.notify_all();
  if (dropped > 0) {
    failed += dropped;
    spdlog::warn("alerts: webhook queue full ({} waiting); dropped the oldest post", kQueueLimit);
  }
}

Status Alerts::Impl::Post(void* curl, const std::string& body) {
  CURL* h = static_cast<CURL*>(curl);
  if (h == nullptr) return InternalError("curl_easy_init failed");
  curl_easy_reset(h);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, options.webhook.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "fieldstack-alerts");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, kWebhookTimeoutMs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, AbortWhenStopping);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &stop_flag);
  if (!options.webhook_ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, options.webhook_ca_file.c_str());
  }
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) return UnavailableError(std::string("POST: ") + curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) return UnavailableError("POST: HTTP " + std::to_string(code));
  return Status::Ok();
}

bool Alerts::Impl::Deliver(void* curl, const std::string& body) {
  Status last;
  for (int attempt = 0; attempt < kWebhookTries; ++attempt) {
    if (attempt > 0) {
      auto wait =
          std::chrono::milliseconds(int64_t{options.webhook_retry_base_ms} << (attempt - 1));
      MutexLock l(webhook_mu);
      if (webhook_cv.wait_for(webhook_mu, wait, [&]() REQUIRES(webhook_mu) { return stopping; })) {
        return false;
      }
    }
    last = Post(curl, body);
    if (last.ok()) {
      ++delivered;
      return true;
    }
    if (stop_flag.load()) return false;
  }
  ++failed;
  spdlog::warn("alerts: webhook post failed after {} tries: {}", kWebhookTries, last.ToString());
  return true;
}

void Alerts::Impl::WebhookLoop() {
  CURL* curl = curl_easy_init();  // kept: the connection stays open between posts
  for (;;) {
    std::string body;
    {
      MutexLock l(webhook_mu);
      webhook_cv.wait(webhook_mu,
                      [&]() REQUIRES(webhook_mu) { return stopping || !queue.empty(); });
      if (stopping) break;
      body = std::move(queue.front());
      queue.pop_front();
    }
    if (!Deliver(curl, body)) break;
  }
  if (curl != nullptr) curl_easy_cleanup(curl);
}

Result<std::unique_ptr<Alerts>> Alerts::Open(AlertsOptions options, const Clock& clock) {
  if (options.dir.empty()) return InvalidArgumentError("alerts: no directory");
  if (!options.webhook.empty() && options.webhook.rfind("http://", 0) != 0 &&
      options.webhook.rfind("https://", 0) != 0) {
    return InvalidArgumentError("alerts: the webhook must be an http:// or https:// URL");
  }
  if (options.webhook_retry_base_ms < 0) {
    return InvalidArgumentError("alerts: webhook_retry_base_ms must not be negative");
  }
  FS_RETURN_IF_ERROR(platform::MakeDirs(options.dir));
  auto impl = std::make_unique<Impl>(std::move(options), clock);
  {
    MutexLock l(impl->mu);
    for (int i = kLogKeep; i >= 1; --i) impl->Replay(impl->log_path + "." + std::to_string(i));
    impl->Replay(impl->log_path);
    impl->TrimHistory();
    if (!impl->active.empty()) {
      spdlog::info("alerts: {} active alert(s) from {}", impl->active.size(), impl->log_path);
    }
  }
  if (!impl->options.webhook.empty()) {
    CurlGlobalInit();
    Impl* p = impl.get();
    impl->webhook_thread = std::thread([p] { p->WebhookLoop(); });
  }
  return std::unique_ptr<Alerts>(new Alerts(std::move(impl)));
}

Alerts::Alerts(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Alerts::~Alerts() {
  {
    MutexLock l(impl_->webhook_mu);
    impl_->stopping = true;
    impl_->stop_flag = true;
  }
  impl_->webhook_cv.notify_all();
  if (impl_->webhook_thread.joinable()) impl_->webhook_thread.join();
}

Status Alerts::Raise(std::string_view id, const std::string& subject, const std::string& detail) {
  const AlertDefinition* def = FindAlert(id);
  if (def == nullptr) return InvalidArgumentError("unknown alert id '" + std::string(id) + "'");
  Impl& m = *impl_;
  int64_t now = m.NowUnix();
  MutexLock l(m.mu);
  auto key = std::make_pair(std::string(id), subject);
  if (auto it = m.active.find(key); it != m.active.end()) {
    Alert& a = m.history.at(it->second);
    a.detail = detail;
    a.updated_unix = now;
    ++a.count;
    m.Record("update", a);
    return Status::Ok();
  }
  Alert a;
  a.seq = m.next_seq++;
  a.id = std::string(def->id);
  a.category = std::string(def->category);
  a.severity = def->severity;
  a.title = std::string(def->title);
  a.action = std::string(def->action);
  a.subject = subject;
  a.detail = detail;
  a.raised_unix = now;
  a.updated_unix = now;
  m.active[key] = a.seq;
  const Alert& stored = m.history[a.seq] = std::move(a);
  m.Record("raise", stored);
  m.TrimHistory();
  return Status::Ok();
}

void Alerts::Clear(std::string_view id, const std::string& subject) {
  Impl& m = *impl_;
  int64_t now = m.NowUnix();
  MutexLock l(m.mu);
  auto it = m.active.find(std::make_pair(std::string(id), subject));
  if (it == m.active.end()) return;
  Alert& a = m.history.at(it->second);
  a.cleared_unix = now;
  m.active.erase(it);
  m.Record("clear", a);
}

Status Alerts::Acknowledge(uint64_t seq, const std::string& by) {
  Impl& m = *impl_;
  MutexLock l(m.mu);
  auto it = m.history.find(seq);
  if (it == m.history.end() || it->second.cleared_unix != 0) {
    return NotFoundError("no active alert with seq " + std::to_string(seq));
  }
  it->second.acknowledged = true;
  it->second.acknowledged_by = by;
  m.Record("ack", it->second);
  return Status::Ok();
}

std::vector<Alert> Alerts::Active() const {
  const Impl& m = *impl_;
  MutexLock l(m.mu);
  std::vector<Alert> out;
  out.reserve(m.active.size());
  for (const auto& [key, seq] : m.active) out.push_back(m.history.at(seq));
  std::sort(out.begin(), out.end(), [](const Alert& a, const Alert& b) { return a.seq > b.seq; });
  return out;
}

std::vector<Alert> Alerts::History(size_t limit, uint64_t before) const {
  const Impl& m = *impl_;
  MutexLock l(m.mu);
  std::vector<Alert> out;
  auto it = before == 0 ? m.history.end() : m.history.lower_bound(before);
  while (out.size() < limit && it != m.history.begin()) {
    --it;
    out.push_back(it->second);
  }
  return out;
}

bool Alerts::IsActive(std::string_view id, const std::string& subject) const {
  const Impl& m = *impl_;
  MutexLock l(m.mu);
  return m.active.count(std::make_pair(std::string(id), subject)) != 0;
}

uint64_t Alerts::webhook_delivered() const { return impl_->delivered.load(); }
uint64_t Alerts::webhook_failed() const { return impl_->failed.load(); }

}  // namespace fieldstack::management
