#include "sync/audit_log.h"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

#include "platform/file.h"

namespace fieldstack::sync {
namespace {

std::string UserName(uint32_t uid) {
  passwd pw;
  passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

}  // namespace

AuditLog::AuditLog(store::Store& store, AuditOptions options, Clock& clock)
    : store_(store), options_(std::move(options)), clock_(clock) {}

AuditLog::~AuditLog() {
  if (!thread_.joinable()) return;
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void AuditLog::Start(int period_ms) {
  thread_ = std::thread([this, period_ms] {
    for (;;) {
      auto n = RunOnce();
      if (!n.ok()) spdlog::error("audit: {}", n.status().ToString());
      if (n.ok() && *n > 0) continue;  // more may be waiting
      MutexLock l(mu_);
      if (stopping_) break;
      cv_.wait_for(mu_, std::chrono::milliseconds(period_ms), [&] { return stopping_.load(); });
    }
    // What was committed before the stop, in the usual batches.
    for (auto n = RunOnce(); n.ok() && *n > 0; n = RunOnce()) {
    }
  });
}

std::string AuditLog::ShareName(uint32_t id) {
  auto it = shares_.find(id);
  if (it != shares_.end()) return it->second;
  if (auto shares = store_.ListShares(); shares.ok()) {
    for (const auto& s : *shares) shares_[s.id] = s.name;
  }
  it = shares_.find(id);
  return it != shares_.end() ? it->second : std::to_string(id);
}

// The user and client of an smbd session process, from the sessions file, read again whenever
// it has grown (a new connection; when a pid is reused, its latest line wins).
AuditLog::SmbSession AuditLog::SmbSessionOf(pid_t pid) {
  if (!options_.smb_sessions.empty()) {
    struct stat st;
    if (::stat(options_.smb_sessions.c_str(), &st) == 0 &&
        static_cast<uint64_t>(st.st_size) != smb_sessions_bytes_) {
      if (auto text = platform::ReadFileToString(options_.smb_sessions); text.ok()) {
        smb_sessions_bytes_ = text->size();
        std::istringstream in(*text);
        pid_t p;
        SmbSession s;
        while (in >> p >> s.user >> s.client) smb_sessions_[p] = s;
      }
    }
  }
  auto it = smb_sessions_.find(pid);
  return it != smb_sessions_.end() ? it->second : SmbSession{};
}

Result<size_t> AuditLog::RunOnce(size_t max_events) {
  FS_ASSIGN_OR_RETURN(uint64_t after, store_.GetCursor(kCursor));
  FS_ASSIGN_OR_RETURN(auto events, store_.ReadEvents(after, max_events));
  if (events.empty()) return size_t{0};
  std::string lines;
  for (const store::Event& e : events) {
    nlohmann::json j = {{"time", FormatRfc3339(e.time_ns)},
                        {"seq", e.seq},
                        {"op", std::string(store::EventKindName(e.kind))},
                        {"share", ShareName(e.share_id)},
                        {"path", e.path}};
    if (e.kind == store::EventKind::kRename) j["old_path"] = e.old_path;
    j["version"] = e.version;
    if (e.origin.known) {
      const store::Origin& o = e.origin;
      j["uid"] = o.uid;
      j["gid"] = o.gid;
      j["pid"] = o.pid;
      if (!o.process.empty()) j["process"] = o.process;
      std::string user = UserName(o.uid);
      if (o.process == "smbd") {
        j["via"] = "smb";
        SmbSession s = SmbSessionOf(o.pid);
        if (!s.user.empty()) user = s.user;
        if (!s.client.empty()) j["client"] = s.client;
      } else if (o.process == "ganesha.nfsd") {
        j["via"] = "nfs";
      } else {
        j["via"] = "local";
      }
      j["user"] = user;
    }
    lines += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  FS_RETURN_IF_ERROR(platform::MakeDirs(platform::DirName(options_.path)));
  FS_RETURN_IF_ERROR(
      platform::AppendToRotatingLog(options_.path, lines, options_.max_bytes, options_.keep));
  FS_RETURN_IF_ERROR(store_.SetCursor(kCursor, events.back().seq));
  return events.size();
}

}  // namespace fieldstack::sync
