#pragma once

// Alerts: what needs an admin's attention, from a catalogue with stable ids, a severity and a
// recommended action (docs/alerts.md lists it). An alert is raised for a subject (a storage
// account, a share, a user name, a peer address, "" for the box) and stays active until it is
// cleared; raising an active alert again only updates its detail and count. An active alert
// can be acknowledged (it stays active, marked as seen).
//
// Every raise, clear and acknowledge is:
//  - one JSON line appended to <dir>/alerts.log (rotated, kept for the history, read back at
//    Open so active alerts survive a restart);
//  - one log line (warn for warning, error for critical, info for info and clears);
//  - POSTed as JSON to the webhook when one is configured, from a background thread, with
//    retries (1 s, 2 s, 4 s ... up to 5 tries); a failing webhook never blocks Raise.
//
// Thread safety: every method may be called from any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace fieldstack::management {

enum class Severity { kInfo, kWarning, kCritical };
std::string_view SeverityName(Severity s);  // "info", "warning", "critical"

struct AlertDefinition {
  std::string_view id;        // stable, e.g. "cloud.unreachable"
  std::string_view category;  // "cloud", "capacity", "upload", "certificate", "security",
                              // "hardware", "service", "compute"
  Severity severity;
  std::string_view title;
  std::string_view action;  // what the admin should do
};

// The catalogue. Ids:
//  cloud.unreachable, cloud.auth_failed, capacity.volume_low, capacity.cache_full,
//  upload.failures, upload.budget_spent, certificate.expiring, certificate.expired,
//  security.login_lockout, hardware.disk_errors, hardware.clock_skew, hardware.memory_low,
//  service.smb_down, service.nfs_down, compute.pipeline_failed, compute.pipeline_alert.
const std::vector<AlertDefinition>& AlertCatalogue();
const AlertDefinition* FindAlert(std::string_view id);

struct Alert {
  uint64_t seq = 0;  // unique per raise (a new raise after a clear gets a new seq)
  std::string id;
  std::string category;
  Severity severity = Severity::kInfo;
  std::string title;
  std::string action;
  std::string subject;
  std::string detail;
  int64_t raised_unix = 0;
  int64_t updated_unix = 0;
  int64_t cleared_unix = 0;  // 0: active
  uint64_t count = 1;        // raises while active
  bool acknowledged = false;
  std::string acknowledged_by;
};

struct AlertsOptions {
  std::string dir;      // alerts.log lives here
  std::string webhook;  // http(s) URL; empty: none
  std::string webhook_ca_file;  // CA bundle for an https webhook; empty: the system's
  uint64_t log_max_bytes = 16 << 20;
  int webhook_retry_base_ms = 1000;  // waits between tries: base, 2x, 4x, 8x (tests shorten it)
};

class Alerts {
 public:
  static Result<std::unique_ptr<Alerts>> Open(AlertsOptions options, const Clock& clock);
  ~Alerts();  // stops the webhook thread (undelivered posts are dropped, they are in the log)

  // InvalidArgument for an id not in the catalogue.
  Status Raise(std::string_view id, const std::string& subject, const std::string& detail);
  // No-op when not active.
  void Clear(std::string_view id, const std::string& subject);
  // NotFound for an unknown or cleared seq.
  Status Acknowledge(uint64_t seq, const std::string& by);

  std::vector<Alert> Active() const;
  // Newest first: raised and cleared alerts of the history (this run and the log), at most
  // `limit`, with seq < `before` when non-zero.
  std::vector<Alert> History(size_t limit, uint64_t before = 0) const;
  bool IsActive(std::string_view id, const std::string& subject) const;

  // Webhook posts delivered and failed (after all retries), for tests and metrics.
  uint64_t webhook_delivered() const;
  uint64_t webhook_failed() const;

 private:
  struct Impl;
  explicit Alerts(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldstack::management
