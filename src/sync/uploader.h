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
// Renames and deletes are not propagated (the `keep` policy, as Azure Stack Edge does): the
// cloud keeps what it had; a renamed file is uploaded under its new name.
//
// Thread safety: RunOnce from one thread at a time. Time comes from the injected Clock.

#include <chrono>
#include <functional>
#include <random>

#include "cloud/object_store.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "store/store.h"
#include "sync/bandwidth.h"
#include "sync/copy_log.h"
#include "sync/file_uploader.h"

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
  };

  // `log` (per-share copy logs) and `metrics` are optional.
  Uploader(store::Store& store, Targets targets, Clock& clock, Options options,
           CopyLog* log = nullptr, Metrics* metrics = nullptr);

  Result<Pass> RunOnce();

  static constexpr char kConsumer[] = "uploader";

 private:
  std::chrono::nanoseconds Backoff(uint32_t attempts);
  // Blocks until `bytes` fit the current upload rate (waiting out a paused window).
  void Pace(uint64_t bytes);
  std::optional<uint64_t> CurrentRate() const;
  void Log(CopyRecord r);

  store::Store& store_;
  Targets targets_;
  Clock& clock_;
  Options options_;
  std::mt19937_64 rng_;
  CopyLog* log_;
  TokenBucket bucket_;
  prometheus::Counter* files_uploaded_ = nullptr;
  prometheus::Counter* bytes_uploaded_ = nullptr;
  prometheus::Counter* failures_ = nullptr;
  prometheus::Gauge* pending_ = nullptr;
};

}  // namespace fieldstack::sync
