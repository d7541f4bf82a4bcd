#pragma once

// Batching across requests: a Session that merges runs arriving at the same time (from
// several pipeline workers) into one run of a larger batch, when the model takes a dynamic
// batch dimension. A run waits at most `max_latency_ms` for others to join; a batch holds at
// most `max_batch` requests. Each request must have batch size 1 and the same shapes; others
// (and models with a fixed batch) run alone. Outputs are split back along the batch dimension.
//
// The first request of a batch leads it: it waits for company, runs the batch and hands each
// request its outputs; no extra thread is needed.
//
// Thread safety: Run may be called from any thread (that is the point).

#include <cstdint>
#include <memory>

#include "compute/inference/inference.h"

namespace fieldstack::compute::inference {

struct BatchOptions {
  size_t max_batch = 8;
  int64_t max_latency_ms = 5;
};

std::shared_ptr<Session> MakeBatchingSession(std::shared_ptr<Session> inner, BatchOptions options);

}  // namespace fieldstack::compute::inference
