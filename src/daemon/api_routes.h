#pragma once

// The routes of the management API (api/openapi.yaml) over the running box: device, shares,
// users and keys, storage accounts, bandwidth, cache, encryption, logs, alerts, jobs,
// diagnostics, support package, certificates, power and metrics. The frame (auth, roles,
// body checks, errors) is management::ManagementApi; this file maps routes to the Box.
//
// Thread safety: handlers run concurrently; everything they touch is thread-safe.

#include <functional>
#include <string>
#include <vector>

#include "daemon/box.h"
#include "management/alerts.h"
#include "management/api.h"
#include "management/auth.h"
#include "management/diagnostics.h"
#include "management/history.h"
#include "management/jobs.h"

namespace fieldstack::daemon {

struct ApiContext {
  Box& box;
  management::Auth& auth;
  management::Alerts& alerts;
  management::Jobs& jobs;
  management::ManagementApi& api;
  management::MetricsHistory& history;
  std::string version;
  std::string config_path;  // empty: embedded defaults
  int64_t started_mono_ns = 0;
  CertificateFiles certificate;
  // Metrics text at this moment (refreshes the Store's gauges first).
  std::function<std::string()> metrics_text;
  // Stops the daemon after the current responses: restart re-executes it; host asks the host
  // to reboot or power off.
  std::function<void(bool restart, bool host)> power;
};

void RegisterRoutes(ApiContext& ctx);
// The compute routes (compute_routes.cc); RegisterRoutes calls it.
void RegisterComputeRoutes(ApiContext& ctx);

// The diagnostics the box runs (management's own checks and the daemon's: each storage
// account's reachability and auth, smbd and ganesha).
std::vector<management::Check> BoxChecks(ApiContext& ctx);

// Every secret value the box holds (account keys, SAS, S3 keys, access-key secrets, SMB
// passwords, the master key and passphrase), for redaction.
std::vector<std::string> KnownSecrets(const Config& c);

// What CheckHealth remembers between passes.
struct HealthState {
  double upload_failures = -1;  // the failure counter at the last pass; -1 before the first
  uint64_t passes = 0;
};

// Raises and clears the alerts the box can see by itself: each storage account reachable and
// accepting its credentials, free space, the certificate's expiry, new upload failures, the
// data budget, memory, smbd and ganesha, the data volume's health and the clock (the last two
// every 10th pass). One pass; the daemon runs it every [alerts] health_interval_s.
void CheckHealth(ApiContext& ctx, HealthState& state);

// Adds a point of the throughput history (bytes uploaded and recalled, files waiting).
void SampleHistory(ApiContext& ctx);

}  // namespace fieldstack::daemon
