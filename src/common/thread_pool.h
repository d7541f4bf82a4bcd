#pragma once

// ThreadPool: a fixed set of worker threads for CPU-bound work that a caller splits and waits
// for (sealing many chunks of one large write on every core). Not for blocking I/O waits.
//
// Thread safety: ParallelFor may be called from many threads at once; tasks of different
// calls interleave on the workers.

#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace fieldstack {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();

  // Runs fn(0) .. fn(n-1), on the workers and on the calling thread, and returns when all
  // have finished.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

  // A process-wide pool with one worker per core.
  static ThreadPool& Shared();

 private:
  struct Job;
  void Work();

  Mutex mu_;
  CondVar cv_;
  std::vector<Job*> jobs_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace fieldstack
