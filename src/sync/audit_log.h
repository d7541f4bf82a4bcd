#pragma once

// The audit log: one JSON line for every change in every share — create, mkdir, symlink,
// write (data committed: a write-then-close, a truncate), setattr, rename, unlink, rmdir and
// xattr — from every front end, read from the Store's event log with its own durable cursor
// ("audit"), so nothing is missed across a crash (at-least-once: after a crash the lines of
// the last batch may repeat; "seq" tells them apart).
//
// Each line: time (of the change), seq, op, share, path, old_path (renames), version, and where
// the front end knew the caller: uid, gid, pid, process, via ("smb", "nfs" or "local": a program
// on the box using the mount), user, and client (the SMB client's address; NFS clients are
// not known: ganesha calls the mount on their behalf, with their squashed uid).
// SMB users and client addresses come from the sessions file smbd appends to at each connection
// ("PID USER ADDRESS" lines; see SmbServer::sessions_path).
//
// Rotates at max_bytes into audit.log.1 ... audit.log.<keep>.
//
// Thread safety: RunOnce from one thread at a time; Start runs it on a thread of its own.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "store/store.h"

namespace fieldstack::sync {

struct AuditOptions {
  std::string path;          // e.g. <data_dir>/logs/audit.log
  std::string smb_sessions;  // SmbServer::sessions_path() ("" when SMB is off)
  uint64_t max_bytes = 64ull << 20;
  int keep = 5;
};

class AuditLog {
 public:
  static constexpr char kCursor[] = "audit";

  AuditLog(store::Store& store, AuditOptions options, Clock& clock);
  ~AuditLog();  // stops the thread after writing what is committed

  // Writes the lines of up to `max_events` new events, then moves the cursor past them.
  // Returns how many were written.
  Result<size_t> RunOnce(size_t max_events = 1000);
  // Runs RunOnce every `period_ms` on a thread.
  void Start(int period_ms = 200);

 private:
  struct SmbSession {
    std::string user;
    std::string client;
  };
  std::string ShareName(uint32_t id);
  SmbSession SmbSessionOf(pid_t pid);

  store::Store& store_;
  AuditOptions options_;
  Clock& clock_;
  std::map<uint32_t, std::string> shares_;
  std::map<pid_t, SmbSession> smb_sessions_;  // from the sessions file
  uint64_t smb_sessions_bytes_ = 0;           // its size when last read
  std::atomic<bool> stopping_{false};
  Mutex mu_;
  CondVar cv_;
  std::thread thread_;
};

}  // namespace fieldstack::sync
