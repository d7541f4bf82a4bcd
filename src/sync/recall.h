#pragma once

// Recaller reads byte ranges of cloud objects back for the Store's recall of evicted files
// (DESIGN.md section 3, stub -> recalling -> clean). It implements the contract of
// store::CacheHooks::Fetch; the Evictor forwards that hook here.
//
// It never hands out bytes it has not checked, by the strongest means the CloudCopy allows:
//   1. Part MD5s (objects this box uploaded): every part overlapping the range is fetched
//      whole and compared with the MD5 it was sent with. The Store asks for one part per call,
//      so that is one Get and one copy.
//   2. The whole object's MD5 (no part MD5s; objects up to whole_object_max_bytes): the object
//      is fetched whole and checked. The last verified object is kept (one entry), and
//      concurrent callers of the same object share one fetch, so recalling it block by block
//      fetches it once.
//   3. Otherwise (large objects written by others): only the etag. The object must still
//      report the recorded etag and size (Head, cached for etag_check_ttl), and every Get must
//      return exactly the bytes asked for. This is weaker: the object can be replaced between
//      the Head and the Get (ObjectStore::Get has no If-Match), and nothing checks the bytes
//      themselves beyond the transport's own checksums.
// A check that fails twice is Corruption, unless the object now has another etag or size:
// then it changed in the cloud (FailedPrecondition), as when it is shorter or gone.
//
// Unavailable errors are retried with exponential backoff (jittered) until `timeout` after the
// call began; then the call fails with Unavailable naming the last error. Downloads are paced
// by the schedule's download rate (one token bucket for all callers); a paused window (rate 0)
// waits, within the same timeout.
//
// Memory: the part or object being checked per caller (at most part_size, or
// whole_object_max_bytes), plus one cached object of at most whole_object_max_bytes.
// Thread safety: Fetch may be called concurrently from any number of threads.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>

#include "cloud/object_store.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "store/types.h"
#include "sync/bandwidth.h"

namespace fieldstack::sync {

class Recaller {
 public:
  struct Options {
    BandwidthSchedule schedule;  // download rates; default unlimited
    // How long one Fetch keeps retrying an unreachable cloud.
    std::chrono::milliseconds timeout{60000};
    std::chrono::milliseconds backoff_base{250};
    std::chrono::milliseconds backoff_max{std::chrono::seconds(10)};
    uint64_t seed = 1;  // jitter
    // How the recaller waits (backoff, bandwidth); tests move a FakeClock instead.
    std::function<void(std::chrono::nanoseconds)> sleep;
    // Objects without part MD5s up to this size are fetched whole to check their MD5.
    uint64_t whole_object_max_bytes = 64ull << 20;
    // How long a Head that confirmed an etag stands for later ranges of the object.
    std::chrono::milliseconds etag_check_ttl{10000};
    size_t etag_cache_entries = 4096;
  };
  // The ObjectStore of a share, or nullptr when the share has no cloud target.
  using Targets = std::function<cloud::ObjectStore*(uint32_t share_id)>;

  // `metrics` is optional.
  Recaller(Targets targets, Clock& clock, Options options, Metrics* metrics = nullptr);

  // Fills `out` with bytes [offset, offset + out.size()) of `copy` from share `share_id`'s
  // cloud target, checked as above. Errors: InvalidArgument when the range is past the end of
  // the object or the CloudCopy is inconsistent (its part MD5s do not cover its size, or it has
  // neither a checksum nor an etag); Unavailable when the share has no cloud target or the
  // cloud is not reachable within the timeout; Corruption when the bytes fail their check
  // twice; FailedPrecondition when the object changed in the cloud (another etag or size, or
  // gone); others from the ObjectStore (PermissionDenied, ...) as they are. `out` may hold
  // partial data after an error.
  Status Fetch(uint32_t share_id, const store::CloudCopy& copy, uint64_t offset,
               std::span<uint8_t> out);
  // Ok if the object still is `copy` (Head: same etag and size): the end of a recall whose
  // blocks were checked by etag only, so that no block came from a newer object.
  // FailedPrecondition when it changed or is gone.
  Status Confirm(uint32_t share_id, const store::CloudCopy& copy);

 private:
  // One shared fetch of a whole object (method 2).
  struct Flight {
    bool done = false;
    Status status;
    std::shared_ptr<const std::string> data;
  };
  struct EtagCheck {
    std::string etag;
    uint64_t size = 0;
    int64_t checked_ns = 0;
  };

  Status FetchParts(cloud::ObjectStore& target, const store::CloudCopy& copy, uint64_t offset,
                    std::span<uint8_t> out, int64_t deadline);
  Status FetchWhole(uint32_t share_id, cloud::ObjectStore& target, const store::CloudCopy& copy,
                    uint64_t offset, std::span<uint8_t> out, int64_t deadline);
  Status FetchByEtag(uint32_t share_id, cloud::ObjectStore& target, const store::CloudCopy& copy,
                     uint64_t offset, std::span<uint8_t> out, int64_t deadline);
  // Bytes [offset, offset + length) whose MD5 is `md5`; a mismatch is tried once more.
  Result<std::string> GetChecked(cloud::ObjectStore& target, const store::CloudCopy& copy,
                                 uint64_t offset, uint64_t length, const std::string& md5,
                                 int64_t deadline);
  // Exactly bytes [offset, offset + length), retrying Unavailable until `deadline`.
  Result<std::string> GetRange(cloud::ObjectStore& target, const store::CloudCopy& copy,
                               uint64_t offset, uint64_t length, int64_t deadline);
  // Whether the object still has the copy's size and etag (false: changed or gone). Not
  // retried.
  Result<bool> Unchanged(cloud::ObjectStore& target, const store::CloudCopy& copy);
  // Calls `op` until it returns other than Unavailable or `deadline` passes.
  template <typename T>
  Result<T> Retry(const store::CloudCopy& copy, int64_t deadline,
                  const std::function<Result<T>()>& op);
  // Waits until `bytes` fit the download rate; Unavailable when downloads stay paused past
  // `deadline`.
  Status Pace(uint64_t bytes, int64_t deadline);
  std::chrono::nanoseconds Backoff(uint32_t attempt);
  Status Failed(const char* reason, Status s);

  Targets targets_;
  Clock& clock_;
  Options options_;
  TokenBucket bucket_;  // thread-safe itself
  Mutex mu_;
  std::mt19937_64 rng_ GUARDED_BY(mu_);
  CondVar flight_done_;
  // Keyed by share, key, etag, size and MD5, so another version never matches.
  std::map<std::string, std::shared_ptr<Flight>> flights_ GUARDED_BY(mu_);
  std::string last_whole_id_ GUARDED_BY(mu_);
  std::shared_ptr<const std::string> last_whole_ GUARDED_BY(mu_);
  std::map<std::pair<uint32_t, std::string>, EtagCheck> etag_checks_ GUARDED_BY(mu_);
  prometheus::Counter* bytes_ = nullptr;
  prometheus::Family<prometheus::Counter>* failures_ = nullptr;
};

}  // namespace fieldstack::sync
