#pragma once

// Engine: runs the box's pipelines durably, at least once (docs/compute.md, DESIGN.md
// "Events are the only coupling").
//
// State lives in its own SQLite db (<dir>/compute.db, WAL, synchronous=FULL; one writer, the
// store's Committer):
//  - work: one row per thing to process. File pipelines get a row per file (key "file:<node>")
//    from the Store's event log: the event scanner reads events after its cursor and upserts
//    rows and moves the cursor in one transaction, so no event is lost or processed twice
//    across a crash. A newer version of a file replaces the pending one (and waits settle_ms
//    from its last write, so a file still being copied is not processed half way). Schedule
//    pipelines get a row per firing ("cron:<unix s>"; missed firings while the box was off
//    become one run).
//  - A worker runs a row: reads the input's committed version, streams it through the steps,
//    and writes each file sink's output into the target share under a staging name, then
//    renames it into place (so a cloud share uploads only whole outputs). The row is deleted
//    only after every output is committed. A crash before that repeats the run, and the
//    outputs, named by the input version, are replaced rather than duplicated.
//  - Failures retry with exponential backoff (retry.*); after max_attempts the row becomes a
//    dead letter (state 1) with its error, listed by DeadLetters, until retried or discarded.
//  - messages: MQTT messages for each MQTT pipeline whose filters match, inserted and committed
//    before OnMessage returns (the MQTT client acknowledges after that). A stream runner per
//    MQTT pipeline feeds them in order through the steps. At a checkpoint (a file sink's roll
//    closes by records, bytes or age; at once when idle without a file sink) one transaction
//    records the cursor, the steps' saved state, the oldest message they still need, and every
//    output gathered since the last checkpoint in the outbox; then the outbox is delivered
//    (files written under names that never repeat, "{batch}" = "<n>-<first seq>-<last seq>",
//    messages sent) and emptied. After a crash the runner first delivers what the outbox holds
//    (a file written again replaces itself), restores the state and replays the messages the
//    steps still need with their outputs suppressed: nothing is lost or duplicated in file
//    outputs. MQTT, webhook and alert sinks are at least once (a crash between sending and
//    emptying the outbox sends again).
//  - runs: one row per run (or checkpoint) with duration, rows in and out, result, error and
//    the module's stderr; the newest 1000 per pipeline are kept.
//
// Threads: the event scanner and scheduler (one thread), `workers` worker threads, one stream
// runner per MQTT pipeline. Pipelines may be replaced at any time (SetPipelines); a removed
// pipeline's rows stay in the db and resume if it comes back.
//
// Thread safety: all public methods may be called from any thread. Lock order: Engine::mu_,
// then a stream runner's mu.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "compute/infer_step.h"
#include "compute/pipeline.h"
#include "store/store.h"

namespace fieldstack::store {
class Db;
class Committer;
class ReadPool;
}  // namespace fieldstack::store

namespace fieldstack::compute {

class ModuleRunner;

// Where the engine's MQTT sink publishes (the box's MQTT client). Unavailable when it cannot
// now (the run is retried).
class MessagePublisher {
 public:
  virtual ~MessagePublisher() = default;
  virtual Status Publish(const std::string& topic, const std::string& payload, bool retain) = 0;
};

// Webhook sink: POSTs a JSON body; an error (transport or non-2xx) fails the run (retried).
class WebhookClient {
 public:
  virtual ~WebhookClient() = default;
  virtual Status Post(const std::string& url, const std::string& json_body) = 0;
};

// Alert sink and failure alerts (the daemon maps these to its alert catalogue).
class AlertRaiser {
 public:
  virtual ~AlertRaiser() = default;
  // An alert sink matched a record.
  virtual void PipelineAlert(const std::string& pipeline, const std::string& message) = 0;
  // A work item became a dead letter (failed: true), or the pipeline has none left (false).
  virtual void PipelineFailed(const std::string& pipeline, const std::string& error,
                              bool failed) = 0;
};

struct EngineOptions {
  std::string dir;  // compute.db, tmp/ (module runs), modules/ (stored modules)
  store::Store* store = nullptr;
  Clock* clock = nullptr;                 // defaults to RealClock
  Metrics* metrics = nullptr;             // optional
  ModuleRunner* modules = nullptr;        // optional: module steps fail without one
  MessagePublisher* publisher = nullptr;  // optional: mqtt sinks fail without one
  WebhookClient* webhooks = nullptr;      // optional: webhook sinks fail without one
  AlertRaiser* alerts = nullptr;          // optional
  std::string hash_key;                   // redact's keyed-hash key (the box's secret)
  InferenceContext inference;             // models and sessions; infer steps fail without them
  int workers = 2;
  int64_t poll_ms = 200;   // event scan and scheduler period
  int64_t tick_ms = 1000;  // stream runners' idle tick
};

struct RunInfo {
  int64_t id = 0;
  std::string pipeline;
  std::string item;  // "file:<path>@v<version>", "cron:<time>", "messages:<first>-<last>"
  int64_t started_ns = 0;
  int64_t duration_ms = 0;
  uint64_t rows_in = 0;
  uint64_t rows_out = 0;
  std::string result;  // ok | failed | dead | skipped
  std::string error;
  std::string log;  // module stderr and notes (last 16 KiB)
};

struct DeadLetter {
  int64_t id = 0;
  std::string pipeline;
  std::string item;
  int attempts = 0;
  std::string error;
  int64_t failed_ns = 0;
};

struct PipelineStatus {
  std::string name;
  bool enabled = true;
  uint64_t pending = 0;      // work rows waiting (or running)
  uint64_t dead = 0;         // dead letters
  uint64_t buffered = 0;     // MQTT messages not yet past a checkpoint
  uint64_t runs_ok = 0;      // since start
  uint64_t runs_failed = 0;  // since start
  uint64_t rows_in = 0;      // since start
  uint64_t rows_out = 0;     // since start
  int64_t last_run_ns = 0;
  std::string last_error;
};

class Engine {
 public:
  // Opens (creating) the engine's db in options.dir and cleans up what a crash left (temporary
  // module directories, staging outputs). Threads start with Start.
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  ~Engine();  // Stop()

  // Replaces the set of pipelines (checked declarations). Stream runners of removed or changed
  // MQTT pipelines stop (their buffered messages stay) and new ones start.
  Status SetPipelines(std::vector<PipelineDecl> pipelines);
  Status Start();
  void Stop();

  // The union of the MQTT pipelines' topic filters (what the box's client subscribes to).
  std::vector<std::string> Topics();
  // Durably buffers an MQTT message for every enabled MQTT pipeline whose filter matches;
  // returns once committed (the client then acknowledges it). OK when none matches.
  Status OnMessage(const std::string& topic, std::string_view payload);

  // Queues a run of a schedule pipeline now (or reprocesses a file pipeline's dead letters).
  Status RunNow(const std::string& pipeline);
  Result<std::vector<RunInfo>> Runs(const std::string& pipeline, int64_t before_id, size_t limit);
  Result<std::vector<DeadLetter>> DeadLetters(const std::string& pipeline, size_t limit);
  // NotFound when no such dead letter (of that pipeline).
  Status RetryDead(const std::string& pipeline, int64_t id);
  Status DiscardDead(const std::string& pipeline, int64_t id);
  Result<PipelineStatus> GetStatus(const std::string& pipeline);

  // Tests: returns when no work is due or running and every stream has checkpointed all
  // buffered messages, or DeadlineExceeded-like Unavailable after `timeout_ms`.
  Status WaitIdle(int64_t timeout_ms);

  // The directory stored modules live in (module steps name a file there).
  std::string modules_dir() const;

  struct Impl;  // public so that engine.cc's helpers can name it

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldstack::compute
