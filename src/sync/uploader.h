#pragma once

// Uploader: drains the Store's upload queue into the cloud (DESIGN.md section 3, dirty ->
// clean). Each pass
//   1. moves its durable event cursor and queues the files of cloud shares whose data was
//      committed (Store::EnqueueUploads: one transaction, so nothing is lost or doubled by a
//      crash);
//   2. takes up to `batch` due items (the queue stays in the db: a backlog of millions costs
//      no memory) and uploads each with a FileUploader to `<path inside the share>` in the
//      share's ObjectStore;
//   3. records the result: clean (with the object's key and etag), failed (permanent error,
//      conflict, or too many attempts; the error is kept on the file), or a retry time with
//      exponential backoff and jitter, keeping a multi-part upload's progress for resuming.
//
// Conditional writes: the first upload of a file requires that the key not exist; later
// uploads require the etag we wrote last. An object changed in the cloud is therefore never
// overwritten: the file is marked failed with a conflict.
// Renames and deletes follow the share's policy. A renamed file (or every file below a renamed
// directory) is uploaded again under its new key; the object under the old key, like the object
// of a deleted file, is then released (Store::DueReleased). `keep` (the default, as Azure Stack
// Edge does) leaves released objects in the cloud, and a new file under the same key may
// replace them. `mirror` deletes them, each only if unchanged in the cloud (If-Match on the
// etag we wrote): an object someone else changed is kept and the conflict logged.
// Up to `transfers` files go up at once, and a large file sends up to `transfers` parts at once.
//
// Thread safety: RunOnce from one thread at a time. Time comes from the injected Clock.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <random>

#include "cloud/object_store.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/thread_pool.h"
#include "store/store.h"
#include "sync/bandwidth.h"
#include "sync/budget.h"
#include "sync/copy_log.h"
#include "sync/file_uploader.h"
#include "sync/object_meta.h"

namespace fieldstack::sync {

class Uploader {
 public:
  struct Options {
    uint64_t part_size_bytes = 8 << 20;
    size_t batch = 64;  // queue items per pass
    size_t events_per_pass = 10000;
    uint32_t max_attempts = 12;  // then the file is marked failed
    std::chrono::milliseconds backoff_base{500};
    std::chrono::milliseconds backoff_max{std::chrono::minutes(5)};
    uint64_t seed = 1;           // jitter
    BandwidthSchedule schedule;  // upload rates by time of week; default unlimited
    // How the uploader waits for the bandwidth budget; tests move a FakeClock instead.
    std::function<void(std::chrono::nanoseconds)> sleep;
    size_t transfers = 4;  // files (and parts of one file) in flight at once
    // True for shares whose rename/delete policy is `mirror` (unset: all `keep`).
    std::function<bool(uint32_t share_id)> mirror;
    // Daily and monthly caps for metered links (none by default).
    BudgetLimits budget;
    // User metadata per object, names and values together (S3 allows 2 KiB): the file's
    // times, owner, mode and as many of its xattrs as fit (object_meta.h).
    size_t meta_budget_bytes = 2048;
  };
  // The ObjectStore of a share, or nullptr when the share has no cloud target (its files wait).
  using Targets = std::function<cloud::ObjectStore*(uint32_t share_id)>;

  struct Pass {
    size_t queued = 0;  // files queued or advanced to a newer version
    size_t uploaded = 0;
    size_t changed = 0;  // skipped: a newer version is committed
    size_t conflicts = 0;
    size_t retried = 0;  // failed for now; tried again later
    size_t failed = 0;   // given up (permanent error or too many attempts)
    size_t deleted = 0;  // released objects deleted (mirror)
    size_t paused = 0;   // files that wait for the next budget period
  };

  // `log` (per-share copy logs) and `metrics` are optional.
  Uploader(store::Store& store, Targets targets, Clock& clock, Options options,
           CopyLog* log = nullptr, Metrics* metrics = nullptr);

  Result<Pass> RunOnce();
  // The Unix time (ns) until which the data budget is spent, or 0.
  int64_t BudgetSpentUntil() {
    MutexLock l(budget_mu_);
    return budget_resume_ns_ > clock_.NowUnixNanos() ? budget_resume_ns_ : 0;
  }

  static constexpr char kConsumer[] = "uploader";

  // Asks a RunOnce in progress to stop soon: waits of the bandwidth schedule (a paused window,
  // the token bucket) end at once with Unavailable, so the files in flight are retried later.
  // Any thread.
  void Stop() { stopping_ = true; }

 private:
  enum class Outcome { kSkipped, kUploaded, kChanged, kConflict, kRetried, kFailed, kPaused };
  Result<Outcome> UploadOne(store::UploadItem& item, const std::string& share_name, int64_t now);
  // Deletes due released objects of `mirror` shares.
  Status DeleteReleased(const std::map<uint32_t, std::string>& share_names, int64_t now,
                        Pass& pass);
  // Aborts multi-part uploads of versions no longer wanted (Store::AbandonedUploads).
  Status AbortAbandoned();
  // The object metadata of file `attr`: object_meta.h's, and the owner mark.
  Result<cloud::ObjectMeta> MetaOf(const store::Attr& attr);
  static Result<std::string> OwnedEtag(cloud::ObjectStore& target, const std::string& key,
                                       const std::string& node);
  std::string EncodeUploadId(const std::string& id) const;
  std::chrono::nanoseconds Backoff(uint32_t attempts);
  // Takes `bytes` from the data budget (ResourceExhausted when spent), then blocks until they
  // fit the current upload rate (waiting out a paused window).
  Status Pace(uint64_t bytes);
  // Records that the budget is spent until `resume_at_ns` (log, gauge), once per period.
  void BudgetSpent(const Status& why, int64_t resume_at_ns);
  std::optional<uint64_t> CurrentRate() const;
  void Log(CopyRecord r);

  store::Store& store_;
  Targets targets_;
  Clock& clock_;
  Options options_;
  Mutex rng_mu_;
  std::mt19937_64 rng_ GUARDED_BY(rng_mu_);
  CopyLog* log_;
  ThreadPool pool_;       // files in parallel (with the calling thread)
  ThreadPool part_pool_;  // parts of large files; never waits on pool_'s work
  DataBudget budget_;
  Mutex budget_mu_;
  int64_t budget_resume_ns_ GUARDED_BY(budget_mu_) = 0;  // budget spent until then
  prometheus::Gauge* budget_spent_ = nullptr;
  prometheus::Gauge* rate_ = nullptr;
  std::atomic<uint64_t> sent_bytes_{0};  // handed to the network (Pace)
  std::atomic<bool> stopping_{false};
  Mutex bucket_mu_;
  TokenBucket bucket_ GUARDED_BY(bucket_mu_);
  prometheus::Counter* files_uploaded_ = nullptr;
  prometheus::Counter* bytes_uploaded_ = nullptr;
  prometheus::Counter* failures_ = nullptr;
  prometheus::Gauge* pending_ = nullptr;
};

}  // namespace fieldstack::sync
