#pragma once

// Mutex with Clang thread-safety annotations (-Wthread-safety under clang; no-ops under g++).
// Guard shared state with GUARDED_BY(mu_) and document lock order where two classes lock.

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define FS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) FS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY FS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) FS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) FS_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) FS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) FS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) FS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) FS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS FS_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace fieldstack {

class CAPABILITY("mutex") Mutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // For std::condition_variable_any and std::unique_lock.
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() RELEASE() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// Condition variable usable with Mutex: `cv.wait(mu, pred)` while holding mu.
using CondVar = std::condition_variable_any;

}  // namespace fieldstack
