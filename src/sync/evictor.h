#pragma once

// Evictor: the box's cache policy (DESIGN.md section 3, clean -> stub). It keeps the data of
// cloud shares on the box within limits by dropping the local data of clean files (uploaded and
// verified), least recently used first; the files stay in every listing as stubs and are
// recalled on read (store::Store::EnsureResident, through Fetch here, to the Recaller).
//
// Limits, per box and per share (CachePolicy), each in bytes or in percent of the data volume:
//  - high and low watermarks: above the high one, a pass evicts until the low one holds;
//  - an age: files not used for that long are evicted whatever the watermarks;
//  - a hard cap: writers (and recalls) that would pass it wait (Admit) while the Evictor frees
//    room (back-pressure: FUSE replies, so SMB and NFS writes, are delayed, not refused); when
//    nothing can be evicted for `backpressure_timeout` (everything dirty, the link down), they
//    get NoSpace (ENOSPC, S3 507, Blob 507) and an alert is logged. Nothing written is lost:
//    a refused write was never acknowledged.
//  - pinned globs: matching files always stay resident (and a refresh brings them in whole).
// Dirty, pinned and open files are never evicted (the Store refuses open and changed ones).
//
// "Resident" is what the Store counts: committed file sizes of a share, less its stubs, plus
// what open files grew by and have not committed yet, measured at each pass, plus the bytes
// admitted since (so the cap can be passed by at most one write in flight per writer). Use times
// are the Store's own (open and commit), flushed to its db at each pass.
//
// Thread safety: Admit, Fetch and Pinned may be called from any thread; RunOnce from one at a
// time (Start runs it on a background thread).

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "store/store.h"
#include "sync/recall.h"

namespace fieldstack::sync {

// An amount of bytes, fixed or a share of the data volume's size.
struct CacheSize {
  std::optional<uint64_t> bytes;
  std::optional<double> percent;  // 0 to 100
  bool set() const { return bytes.has_value() || percent.has_value(); }
  // nullopt when unset.
  std::optional<uint64_t> Resolve(uint64_t volume_bytes) const;
  // "500GiB", "20%", "1048576" (bytes), "1.5 TB"; InvalidArgument naming the problem.
  static Result<CacheSize> Parse(std::string_view text);
};

struct CachePolicy {
  CacheSize high;  // evict above this ...
  CacheSize low;   // ... down to this (default: high less 10 % of it)
  CacheSize cap;   // never above this (back-pressure)
  std::optional<std::chrono::seconds> max_age;
  std::vector<std::string> pinned;  // globs on share-relative paths ('*' stays in a folder, '**'
                                    // crosses folders)
};

// True when `path` matches glob `pattern` ('*' and '?' within one path component, '**' any
// number of components, "dir/" a folder and everything below it).
bool GlobMatch(std::string_view pattern, std::string_view path);

class Evictor : public store::CacheHooks {
 public:
  struct Options {
    CachePolicy box;
    std::map<uint32_t, CachePolicy> shares;  // by share id
    std::chrono::milliseconds interval{5000};
    std::chrono::milliseconds backpressure_timeout{30000};
    size_t batch = 256;  // files evicted per commit
  };
  struct Pass {
    size_t evicted = 0;
    uint64_t evicted_bytes = 0;
    size_t skipped_pinned = 0;
  };

  // `recaller` (may be null: no recall) and `metrics` (optional) outlive the Evictor.
  Evictor(store::Store& store, Clock& clock, Options options, Recaller* recaller,
          Metrics* metrics = nullptr);
  ~Evictor() override;

  // One pass over every share: flush use times, apply age, watermarks and caps.
  Result<Pass> RunOnce();
  // Runs RunOnce every `interval` (sooner when writers wait for room) until destroyed.
  void Start();

  Status Admit(uint32_t share_id, uint64_t bytes) override;
  Status Fetch(uint32_t share_id, const store::CloudCopy& copy, uint64_t offset,
               std::span<uint8_t> out) override;
  Status Confirm(uint32_t share_id, const store::CloudCopy& copy) override;
  bool Pinned(uint32_t share_id, std::string_view path) override;

 private:
  struct Usage {
    uint64_t resident = 0;  // at the last pass
    uint64_t admitted = 0;  // since the last pass
  };
  const CachePolicy* PolicyOf(uint32_t share_id) const;
  // Evicts clean files of `shares`, oldest use first (merged across them), until `bytes` are
  // freed or nothing is left; only files last used before `used_before_ns` when set.
  Result<uint64_t> EvictOldest(const std::vector<uint32_t>& shares, uint64_t bytes,
                               std::optional<int64_t> used_before_ns, Pass& pass);
  void Loop();

  store::Store& store_;
  Clock& clock_;
  Options options_;
  Recaller* recaller_;
  Mutex mu_;
  CondVar cv_;  // pass done (waiting writers), or a pass wanted (the loop)
  std::map<uint32_t, Usage> usage_ GUARDED_BY(mu_);
  uint64_t volume_bytes_ GUARDED_BY(mu_) = 0;
  uint64_t passes_ GUARDED_BY(mu_) = 0;
  bool pass_wanted_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  int waiting_ GUARDED_BY(mu_) = 0;  // writers held back now
  // A writer waited the whole timeout: later ones are refused at once until a pass frees room.
  bool full_ GUARDED_BY(mu_) = false;
  uint64_t last_total_ GUARDED_BY(mu_) = 0;  // resident bytes at the last pass
  std::thread thread_;
  prometheus::Family<prometheus::Gauge>* resident_ = nullptr;
  prometheus::Family<prometheus::Gauge>* stubs_ = nullptr;
  prometheus::Gauge* backpressure_ = nullptr;
};

}  // namespace fieldstack::sync
