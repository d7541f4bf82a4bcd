#pragma once

// Test-only: building records by hand and keeping what a step emits, for the step tests
// (aggregate_test.cc, redact_test.cc, sample_test.cc).

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compute/record.h"
#include "compute/step.h"

namespace fieldstack::compute {

// An Emitter that keeps a copy of every record it is given, in order.
class Collect : public Emitter {
 public:
  Status Emit(Record& rec) override {
    out.push_back(rec);
    return Status::Ok();
  }
  // The kept records' seq, in order.
  std::vector<uint64_t> seqs() const {
    std::vector<uint64_t> s;
    for (const Record& r : out) s.push_back(r.seq);
    return s;
  }
  std::vector<Record> out;
};

inline std::shared_ptr<const Schema> MakeSchema(std::vector<std::string> names) {
  return std::make_shared<const Schema>(std::move(names));
}

inline Record Rec(std::shared_ptr<const Schema> schema, std::vector<Value> values,
                  uint64_t seq = 0) {
  Record r;
  r.schema = std::move(schema);
  r.values = std::move(values);
  r.seq = seq;
  return r;
}

inline Value Str(std::string s) { return Value::String(std::move(s)); }

}  // namespace fieldstack::compute
