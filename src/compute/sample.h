#pragma once

// Record-selection steps (docs/compute.md): sample, subset and dedupe.
//
//  - sample {"every": N}: keeps records 1, N+1, 2N+1, ... by arrival count. The count is
//    checkpointed (SaveState {"seen": n}), so a restored run continues it; the choice is exact
//    after a replay only when the replay starts right after the checkpoint.
//    sample {"fraction": f, "seed": s}: keeps a record when XXH3_64bits_withSeed(Record::seq as
//    8 little-endian bytes, s) / 2^64 < f: deterministic per record, so replays choose the same
//    records whatever the order. Exactly one of every/fraction.
//  - subset {"time": {"column", "from", "to"}, "bbox": {"lat", "lon", "min_lat", "max_lat",
//    "min_lon", "max_lon"}}: keeps records with from <= time < to (either bound optional) and
//    inside the box (bounds inclusive; min_lon > max_lon is a box across the antimeridian).
//    A record whose time or coordinates cannot be read (missing, null, not a number, not a
//    time) is dropped and counted (unreadable_records()), not an error.
//  - dedupe {"columns": [...], "max_keys": N}: the first record of each key passes. The key is
//    the 64-bit XXH3 of the typed values of the columns (a missing column reads as null; an int
//    and a float of the same value are the same), or of every field name and value when no
//    columns are given. Two different keys collide with probability about n^2 / 2^65 over n
//    distinct keys (10^7 keys: about 3 in a million runs), and a collision drops a record that
//    should pass. Memory: 8 bytes per slot of an open-addressing set kept at most half full
//    (10^7 keys: 256 MiB at worst); the (max_keys + 1)-th distinct key fails the run with
//    InvalidArgument "dedupe: more than N distinct keys; raise max_keys" (default 10^7).
//    OldestNeededSeq is the seq of the first record seen: the key set depends on every record
//    since the start, and is not checkpointed.
//
// Thread safety: none (a step is used by one run at a time).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "compute/step.h"

namespace fieldstack::compute {

class SubsetStep : public Step {
 public:
  // Records dropped because their time or coordinates could not be read.
  virtual uint64_t unreadable_records() const = 0;
};

// Each: InvalidArgument naming the field ("subset.bbox.min_lat: ...") for a bad declaration.
Result<std::unique_ptr<Step>> MakeSampleStep(const nlohmann::json& decl);
Result<std::unique_ptr<SubsetStep>> MakeSubsetStep(const nlohmann::json& decl);
Result<std::unique_ptr<Step>> MakeDedupeStep(const nlohmann::json& decl);

}  // namespace fieldstack::compute
