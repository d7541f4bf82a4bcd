#include "common/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace fieldstack {

struct ThreadPool::Job {
  const std::function<void(size_t)>* fn;
  size_t n;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  Mutex mu;
  CondVar cv;
  int workers GUARDED_BY(mu) = 0;  // workers that hold a pointer to this job

  void RunSome() {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      (*fn)(i);
      done.fetch_add(1);
    }
  }
};

ThreadPool::ThreadPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

ThreadPool::~ThreadPool() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

ThreadPool& ThreadPool::Shared() {
  static ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return pool;
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1 || threads_.empty()) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  {
    MutexLock l(mu_);
    jobs_.push_back(&job);
  }
  cv_.notify_all();
  job.RunSome();
  {
    MutexLock l(mu_);
    jobs_.erase(std::remove(jobs_.begin(), jobs_.end(), &job), jobs_.end());
  }
  // No worker can pick the job up any more; wait for those that did.
  MutexLock l(job.mu);
  job.cv.wait(job.mu, [&] { return job.workers == 0 && job.done.load() == n; });
}

void ThreadPool::Submit(std::function<void()> task) {
  if (threads_.empty()) {
    task();
    return;
  }
  {
    MutexLock l(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::Work() {
  for (;;) {
    Job* job = nullptr;
    std::function<void()> task;
    {
      MutexLock l(mu_);
      // Jobs' item counters move without mu_, so "is there work" and "which job" must be one
      // look: a job seen with items left may have none a moment later.
      for (;;) {
        if (!tasks_.empty()) {
          task = std::move(tasks_.front());
          tasks_.pop_front();
          break;
        }
        if (stopping_) return;
        for (Job* j : jobs_) {
          if (j->next.load() < j->n) {
            job = j;
            break;
          }
        }
        if (job != nullptr) break;
        cv_.wait(mu_);
      }
      if (job != nullptr) {
        MutexLock jl(job->mu);  // lock order: mu_, then a job's mu
        ++job->workers;
      }
    }
    if (task) {
      task();
      continue;
    }
    job->RunSome();
    MutexLock l(job->mu);
    --job->workers;
    job->cv.notify_all();
  }
}

}  // namespace fieldstack
