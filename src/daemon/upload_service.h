#pragma once

// UploadService: the cloud side of the daemon. One ObjectStore per cloud share with a target;
// a thread that runs the Uploader; the cache (Evictor as the Store's CacheHooks, with the
// Recaller behind it); the Refresher, on demand and by each share's refresh_ttl_s.
//
// Thread safety: Refresh, RunOnce (without background) and the accessors may be called from
// any thread; Start and the destructor from one. A new settings document means a new service:
// the daemon destroys the old one first (it detaches the cache hooks), then starts another.

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloud/object_store.h"
#include "common/metrics.h"
#include "common/status.h"
#include "daemon/config.h"
#include "store/store.h"
#include "sync/copy_log.h"
#include "sync/evictor.h"
#include "sync/recall.h"
#include "sync/refresher.h"
#include "sync/uploader.h"

namespace fieldstack::daemon {

// The ObjectStore a share's target names (creating the container or bucket when it can).
Result<std::unique_ptr<cloud::ObjectStore>> MakeTarget(const ShareConfig& share);
sync::CachePolicy PolicyFrom(const CacheConfig& c);

class UploadService {
 public:
  // With `background`, a thread runs the uploader until the service is destroyed; without,
  // the caller drives it with RunOnce (fieldstack drain).
  static Result<std::unique_ptr<UploadService>> Start(store::Store& st, const Config& c,
                                                      Metrics& metrics, bool background = true);
  ~UploadService();

  bool HasTarget(uint32_t share) const { return targets_.count(share) > 0; }
  // The target of a share, or nullptr.
  cloud::ObjectStore* TargetOf(uint32_t share) const;
  int64_t BudgetSpentUntil() { return uploader_ ? uploader_->BudgetSpentUntil() : 0; }
  Result<sync::Uploader::Pass> RunOnce();
  // Refreshes share `share` (folders `paths`, or all of it) now.
  Result<sync::Refresher::Pass> Refresh(const std::string& share,
                                        const std::vector<std::string>& paths);

 private:
  UploadService(store::Store& st, std::string log_dir);
  void Loop();
  void RefreshLoop();

  struct Ttl {
    std::string share;
    uint32_t ttl_s = 0;
    int64_t last_ns = 0;
  };

  store::Store& store_;
  sync::CopyLog log_;
  std::map<uint32_t, std::unique_ptr<cloud::ObjectStore>> targets_;
  std::unique_ptr<sync::Recaller> recaller_;
  std::unique_ptr<sync::Evictor> evictor_;
  std::unique_ptr<sync::Refresher> refresher_;
  std::map<uint32_t, Ttl> ttl_;
  std::thread ttl_thread_;
  std::set<uint32_t> mirror_;  // shares whose policy is "mirror"
  std::unique_ptr<sync::Uploader> uploader_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace fieldstack::daemon
