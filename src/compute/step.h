#pragma once

// Steps: the stages of a pipeline's chain (docs/compute.md). A step takes records one at a
// time and passes zero or more records on to the next stage (an Emitter). Steps stream: state
// is bounded by what the step needs (dedupe's key set, aggregate's open windows), never by
// the input's size.
//
// Steps are made from their declaration, a JSON object whose "type" names the step, by
// MakeStep (step_factory.cc); each factory checks every field and refuses unknown ones with
// InvalidArgument naming the field ("steps[2].columns: ..." is added by the caller).
//
// Durability (continuous MQTT pipelines): the engine feeds records in buffer order, each with
// Record::seq set. A step with state across records reports the oldest seq it still needs
// (OldestNeededSeq) and can save a small checkpoint (SaveState) that the engine stores with
// its cursor; after a crash the engine restores it (RestoreState) and replays the buffered
// records from the oldest needed seq, suppressing outputs it already committed. Replay must be
// deterministic: the same records in the same order give the same outputs.
//
// Thread safety: none; one run uses a step at a time.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "compute/record.h"

namespace fieldstack::compute {

class Emitter {
 public:
  virtual ~Emitter() = default;
  // Takes `rec` (it may be changed or moved from). An error stops the run.
  virtual Status Emit(Record& rec) = 0;
};

class Step {
 public:
  virtual ~Step() = default;
  // Processes one record. InvalidArgument for a record the step cannot process (message names
  // the field), which fails the run.
  virtual Status Push(Record& rec, Emitter& out) = 0;
  // End of input (a file's end, a batch's end): emits what is held (open windows).
  virtual Status Finish(Emitter& out) {
    (void)out;
    return Status::Ok();
  }
  // Wall-clock time passes with no input (continuous pipelines): windows whose end plus the
  // lateness bound is before `now_ns` (event time is compared with wall-clock time) may close.
  virtual Status Tick(int64_t now_ns, Emitter& out) {
    (void)now_ns;
    (void)out;
    return Status::Ok();
  }
  // The smallest Record::seq whose record still contributes to held state; UINT64_MAX when the
  // step holds nothing.
  virtual uint64_t OldestNeededSeq() const { return UINT64_MAX; }
  // A small JSON checkpoint (e.g. the aggregate's watermark); null when stateless.
  virtual nlohmann::json SaveState() const { return nullptr; }
  virtual Status RestoreState(const nlohmann::json& state) {
    (void)state;
    return Status::Ok();
  }
};

// Keys and secrets the steps need, given by the engine (not part of the declaration, so that
// they never appear in pipeline documents or logs).
struct StepContext {
  // The key of redact's "hash" action (HMAC-SHA256). Empty: redact refuses "hash".
  std::string hash_key;
  // Wall-clock "now" for expressions that ask for it (injected for tests).
  int64_t now_ns = 0;
};

// Makes a step from its declaration ({"type": "filter", ...}). InvalidArgument naming the
// field on any error, including an unknown "type".
Result<std::unique_ptr<Step>> MakeStep(const nlohmann::json& decl, const StepContext& ctx);

}  // namespace fieldstack::compute
