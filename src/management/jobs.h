#pragma once

// Jobs: long operations of the management API (refresh, drain, diagnostics, support package)
// run in the background with progress, a status and cancel. A job is a function given a
// JobContext; it reports progress and checks cancelled() between steps. Finished jobs are
// kept (the newest 100) with their result or error and any file they made (a support
// package), which the API serves until the job is forgotten.
//
// Thread safety: every method may be called from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace fieldstack::management {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view JobStateName(JobState s);  // "queued", "running", "succeeded", ...

class JobContext {
 public:
  virtual ~JobContext() = default;
  // fraction in [0, 1]; message says what is being done.
  virtual void Progress(double fraction, const std::string& message) = 0;
  virtual bool cancelled() const = 0;
  // Sets the job's result (a JSON text) and, optionally, a file it made.
  virtual void SetResult(std::string json) = 0;
  virtual void SetFile(std::string path, std::string download_name) = 0;
};

struct JobInfo {
  std::string id;    // "job-" + 12 hex chars
  std::string kind;  // "refresh", "support-package", ...
  std::string created_by;
  JobState state = JobState::kQueued;
  double progress = 0;
  std::string message;
  std::string error;   // when failed
  std::string result;  // JSON text, "" when none
  std::string file;    // path of the file made, "" when none
  std::string download_name;
  int64_t created_unix = 0;
  int64_t started_unix = 0;
  int64_t finished_unix = 0;
};

class Jobs {
 public:
  // At most `concurrency` jobs run at once; the others wait (queued).
  explicit Jobs(const Clock& clock, int concurrency = 2);
  ~Jobs();  // cancels what runs and waits for it

  // Starts `fn`; a non-ok Status returned by fn fails the job (a cancelled job whose fn
  // returns is "cancelled" whatever it returns).
  std::string Start(std::string kind, std::string created_by,
                    std::function<Status(JobContext&)> fn);
  Result<JobInfo> Get(const std::string& id) const;  // NotFound
  std::vector<JobInfo> List() const;                 // newest first
  // Asks the job to stop; FailedPrecondition when it has finished, NotFound.
  Status Cancel(const std::string& id);
  // Waits until the job finishes or `timeout_ms` passes; the info at that time.
  Result<JobInfo> Wait(const std::string& id, int64_t timeout_ms) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldstack::management
