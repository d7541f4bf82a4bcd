#include "management/jobs.h"

// Design. `concurrency` worker threads take jobs from a FIFO queue. Every job's JobInfo is
// guarded by the one mutex of Impl; a job's cancel flag is an atomic so that a running job can
// poll it without the lock. A job that is cancelled while queued leaves the queue at once and
// never runs. Finished jobs are remembered in the order they finished; past kKeepFinished the
// oldest is forgotten (Get answers NotFound; its file, if any, stays on disk for its owner to
// clean up). One condition variable wakes both idle workers and Wait callers.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "common/mutex.h"

namespace fieldstack::management {
namespace {

constexpr size_t kKeepFinished = 100;

bool Finished(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

}  // namespace

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "queued";
}

struct Jobs::Impl {
  struct Job {
    uint64_t order = 0;  // creation order, for List
    std::function<Status(JobContext&)> fn;
    std::atomic<bool> cancel{false};
    JobInfo info;  // guarded by Impl::mu
  };

  class Context final : public JobContext {
   public:
    Context(Impl& impl, Job& job) : impl_(impl), job_(job) {}
    void Progress(double fraction, const std::string& message) override {
      MutexLock l(impl_.mu);
      job_.info.progress = std::clamp(fraction, 0.0, 1.0);
      job_.info.message = message;
    }
    bool cancelled() const override { return job_.cancel.load(); }
    void SetResult(std::string json) override {
      MutexLock l(impl_.mu);
      job_.info.result = std::move(json);
    }
    void SetFile(std::string path, std::string download_name) override {
      MutexLock l(impl_.mu);
      job_.info.file = std::move(path);
      job_.info.download_name = std::move(download_name);
    }

   private:
    Impl& impl_;
    Job& job_;
  };

  explicit Impl(const Clock& c) : clock(c) {}

  int64_t NowUnix() const { return clock.NowUnixNanos() / 1'000'000'000; }
  void Work() EXCLUDES(mu);
  // Marks `job` finished in `state` and forgets the oldest finished jobs past the limit.
  void Finish(const std::shared_ptr<Job>& job, JobState state) REQUIRES(mu);
  std::string NewId() REQUIRES(mu);

  const Clock& clock;
  Mutex mu;
  CondVar cv;  // the queue, a job's state or `stopping` changed
  std::map<std::string, std::shared_ptr<Job>> jobs GUARDED_BY(mu);
  std::deque<std::shared_ptr<Job>> queue GUARDED_BY(mu);
  std::deque<std::string> finished GUARDED_BY(mu);  // ids, oldest first
  uint64_t next_order GUARDED_BY(mu) = 0;
  std::mt19937_64 rng GUARDED_BY(mu){std::random_device{}()};
  bool stopping GUARDED_BY(mu) = false;
  std::vector<std::thread> workers;
};

std::string Jobs::Impl::NewId() {
  static constexpr char kHex[] = "0123456789abcdef";
  for (;;) {
    std::string id = "job-";
    uint64_t r = rng();
    for (int i = 0; i < 12; ++i) id += kHex[(r >> (4 * i)) & 0xf];
    if (jobs.count(id) == 0) return id;
  }
}

void Jobs::Impl::Finish(const std::shared_ptr<Job>& job, JobState state) {
  job->info.state = state;
  job->info.finished_unix = NowUnix();
  if (state == JobState::kSucceeded) job->info.progress = 1;
  finished.push_back(job->info.id);
  while (finished.size() > kKeepFinished) {
    jobs.erase(finished.front());
    finished.pop_front();
  }
  cv.notify_all();
}

void Jobs::Impl::Work() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      MutexLock l(mu);
      cv.wait(mu, [&]() REQUIRES(mu) { return stopping || !queue.empty(); });
      if (stopping) return;
      job = std::move(queue.front());
      queue.pop_front();
      job->info.state = JobState::kRunning;
      job->info.started_unix = NowUnix();
      cv.notify_all();
    }
    Context ctx(*this, *job);
    Status result;
    try {
      result = job->fn(ctx);
    } catch (const std::exception& e) {
      result = InternalError(std::string("the job threw: ") + e.what());
    } catch (...) {
      result = InternalError("the job threw");
    }
    job->fn = nullptr;  // what it captured goes now, not when the job is forgotten
    MutexLock l(mu);
    JobState state = job->cancel.load() ? JobState::kCancelled
                     : result.ok()      ? JobState::kSucceeded
                                        : JobState::kFailed;
    if (state == JobState::kFailed) {
      job->info.error = result.message();
      spdlog::warn("job {} ({}) failed: {}", job->info.id, job->info.kind, result.ToString());
    }
    Finish(job, state);
  }
}

Jobs::Jobs(const Clock& clock, int concurrency) : impl_(std::make_unique<Impl>(clock)) {
  for (int i = 0; i < std::max(1, concurrency); ++i) {
    impl_->workers.emplace_back([m = impl_.get()] { m->Work(); });
  }
}

Jobs::~Jobs() {
  {
    MutexLock l(impl_->mu);
    impl_->stopping = true;
    for (auto& [id, job] : impl_->jobs) job->cancel = true;
    while (!impl_->queue.empty()) {
      auto job = std::move(impl_->queue.front());
      impl_->queue.pop_front();
      impl_->Finish(job, JobState::kCancelled);
    }
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

std::string Jobs::Start(std::string kind, std::string created_by,
                        std::function<Status(JobContext&)> fn) {
  auto job = std::make_shared<Impl::Job>();
  job->fn = std::move(fn);
  MutexLock l(impl_->mu);
  job->order = impl_->next_order++;
  job->info.id = impl_->NewId();
  job->info.kind = std::move(kind);
  job->info.created_by = std::move(created_by);
  job->info.created_unix = impl_->NowUnix();
  impl_->jobs[job->info.id] = job;
  impl_->queue.push_back(job);
  impl_->cv.notify_all();
  return job->info.id;
}

Result<JobInfo> Jobs::Get(const std::string& id) const {
  MutexLock l(impl_->mu);
  auto it = impl_->jobs.find(id);
  if (it == impl_->jobs.end()) return NotFoundError("no job '" + id + "'");
  return it->second->info;
}

std::vector<JobInfo> Jobs::List() const {
  MutexLock l(impl_->mu);
  std::vector<const Impl::Job*> all;
  all.reserve(impl_->jobs.size());
  for (const auto& [id, job] : impl_->jobs) all.push_back(job.get());
  std::sort(all.begin(), all.end(),
            [](const Impl::Job* a, const Impl::Job* b) { return a->order > b->order; });
  std::vector<JobInfo> out;
  out.reserve(all.size());
  for (const Impl::Job* job : all) out.push_back(job->info);
  return out;
}

Status Jobs::Cancel(const std::string& id) {
  MutexLock l(impl_->mu);
  auto it = impl_->jobs.find(id);
  if (it == impl_->jobs.end()) return NotFoundError("no job '" + id + "'");
  std::shared_ptr<Impl::Job> job = it->second;
  if (Finished(job->info.state)) {
    return FailedPreconditionError("job '" + id + "' has finished (" +
                                   std::string(JobStateName(job->info.state)) + ")");
  }
  job->cancel = true;
  if (job->info.state == JobState::kQueued) {
    auto& q = impl_->queue;
    q.erase(std::remove(q.begin(), q.end(), job), q.end());
    job->fn = nullptr;
    impl_->Finish(job, JobState::kCancelled);
  }
  return Status::Ok();
}

Result<JobInfo> Jobs::Wait(const std::string& id, int64_t timeout_ms) const {
  Impl& m = *impl_;
  MutexLock l(m.mu);
  auto it = m.jobs.find(id);
  if (it == m.jobs.end()) return NotFoundError("no job '" + id + "'");
  std::shared_ptr<Impl::Job> job = it->second;  // stays valid if the job is forgotten meanwhile
  m.cv.wait_for(m.mu, std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms)),
                [&]() REQUIRES(m.mu) { return Finished(job->info.state); });
  return job->info;
}

}  // namespace fieldstack::management
