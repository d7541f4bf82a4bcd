#pragma once

// Diagnostics: checks of the box with pass, warn or fail and advice on what to do. The checks
// that need no daemon state are built here; the daemon adds its own (cloud reachability and
// auth per storage account, smbd and ganesha health) as Check functions.
//
// Thread safety: the functions are thread-safe; one Check runs on one thread at a time.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace fieldstack::management {

enum class CheckStatus { kPass, kWarn, kFail };
std::string_view CheckStatusName(CheckStatus s);  // "pass", "warn", "fail"

struct CheckResult {
  std::string id;     // stable, e.g. "disk.space", "cloud.reach.<account>"
  std::string name;   // "Free space on the data volume"
  CheckStatus status = CheckStatus::kPass;
  std::string detail;  // what was found, with numbers
  std::string advice;  // what to do; empty on pass
  int64_t duration_ms = 0;
};

struct Check {
  std::string id;
  std::string name;
  std::function<CheckResult()> run;  // fills status, detail, advice (id, name, duration are set
                                     // by RunChecks)
};

// Runs the checks in order; `progress(i, n)` after each; stops early (the rest are not
// run, not reported) when `cancelled()` turns true.
std::vector<CheckResult> RunChecks(const std::vector<Check>& checks,
                                   const std::function<void(size_t, size_t)>& progress = {},
                                   const std::function<bool()>& cancelled = {});

// Free space and inodes of the volume holding `dir`: warn under 15 % (or 10 GiB), fail under
// 5 % (or 1 GiB).
Check DiskSpaceCheck(const std::string& dir);
// Writes, fsyncs, reads back and removes a 1 MiB probe file in `dir`; fails on any error or a
// mismatch, warns when the fsync took over 2 s; also reports the kernel's I/O error count for
// the device when /sys shows it.
Check DiskHealthCheck(const std::string& dir);
// Resolves each host name (IP addresses pass at once); fails naming the ones that do not.
Check DnsCheck(const std::vector<std::string>& hosts);
// MemAvailable from /proc/meminfo: warn under 10 %, fail under 3 %.
Check MemoryCheck();
// A PEM certificate file: fail if unreadable, expired or not yet valid; warn within 30 days
// of expiry.
Check CertificateCheck(const std::string& cert_file, const Clock& clock);
// Compares the clock with the Date header of an HTTP(S) HEAD to `url` (TLS not verified: only
// the time is read): warn past 60 s, fail past 5 min (signed requests to clouds fail at 15).
// Warn (not fail) when the URL cannot be reached.
Check TimeSkewCheck(const std::string& url, const Clock& clock);
// Connects to host:port: pass when it accepts, fail otherwise (for smbd, ganesha).
Check TcpCheck(std::string id, std::string name, std::string host, uint16_t port,
               std::string advice);

}  // namespace fieldstack::management
