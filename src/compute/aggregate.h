#pragma once

// aggregate: grouped metrics over event-time windows (docs/compute.md, step "aggregate").
//
// Without "time" the whole input is one window, emitted at Finish (no window columns). With
// "time", windows of size_s are aligned to the epoch and start every hop_s (tumbling when
// hop_s == size_s; hopping otherwise, a record then falls in size_s/hop_s windows).
//
// Event time: the watermark is the largest event time seen minus lateness_s. A window
// [start, end) closes, and is emitted, once the watermark reaches its end, or at Tick(now)
// once end + lateness <= now (wall clock), or at Finish. A window that closed never opens
// again: a record whose every window has closed is late, dropped and counted
// (late_records()). Windows are emitted in order of start; within a window, groups in the
// order they were first seen.
//
// Output records: window_start, window_end (ISO 8601, FormatTimestamp) when "time" is given,
// then the group_by columns (their first-seen values, original text kept), then the metrics:
// count (int), sum (int when every value was an int and the sum fits, else float), avg
// (float), min/max (the original values; numbers compare numerically, strings bytewise, and
// across types null < bool < number < string), pNN (float, linear interpolation between
// closest ranks like numpy's default). Nulls are ignored by every metric but a count without
// a column; a metric over no values is null (count: 0). A value that is not a number (or a
// string that reads whole as one) for sum/avg/pNN is InvalidArgument naming the column and the
// value; so is a time that does not parse.
//
// Group keys are hashed from the typed values (an int and a float of the same value are the
// same key) and compared with Value equality, so a record costs no allocation unless it opens
// a group.
//
// Memory: O(1) per (window, group) for count/sum/avg/min/max; percentiles keep every value of
// their column per (window, group) (8 bytes each; metrics over the same column share them), so
// their memory is bounded by the number of records in open windows.
//
// Durability: OldestNeededSeq is the smallest Record::seq added to a still-open window.
// SaveState gives {"watermark_ns", "emitted_through_ns"} (null before any record);
// RestoreState makes windows ending at or before emitted_through_ns, or at or before the
// watermark, closed for good, so replayed records for them are late (and counted).
//
// Thread safety: none (a step is used by one run at a time).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "compute/step.h"

namespace fieldstack::compute {

class AggregateStep : public Step {
 public:
  // Records dropped because all their windows had closed.
  virtual uint64_t late_records() const = 0;
};

// InvalidArgument naming the field ("aggregate.metrics[1].op: ...") for a bad declaration.
Result<std::unique_ptr<AggregateStep>> MakeAggregateStep(const nlohmann::json& decl);

}  // namespace fieldstack::compute
