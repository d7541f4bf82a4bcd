#pragma once

// ThreadPool: a fixed set of worker threads for CPU-bound work that a caller splits and waits
// for (sealing many chunks of one large write on every core), or for tasks handed over with
// Submit. The shared pool is not for blocking I/O waits; a component that blocks on the network
// (the uploader) has a pool of its own.
//
// Thread safety: ParallelFor may be called from many threads at once; tasks of different
// calls interleave on the workers.

#include <deque>
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

  // Runs `task` on a worker, soon; on the caller, now, when the pool has no threads. The
  // caller waits for it by its own means. Pending tasks still run when the pool is destroyed.
  void Submit(std::function<void()> task);

  // A process-wide pool with one worker per core.
  static ThreadPool& Shared();

 private:
  struct Job;
  void Work();

  Mutex mu_;
  CondVar cv_;
  std::vector<Job*> jobs_ GUARDED_BY(mu_);
  std::deque<std::function<void()>> tasks_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace fieldstack
