#include "compute/aggregate.h"

#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include "compute/step_decl.h"
#include "compute/timefmt.h"

namespace fieldstack::compute {
namespace {

constexpr double kNsPerS = 1e9;
constexpr int64_t kMaxWindowsPerRecord = 1000;

int TypeRank(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      return 0;
    case Value::Type::kBool:
      return 1;
    case Value::Type::kInt:
    case Value::Type::kFloat:
      return 2;
    case Value::Type::kString:
      return 3;
  }
  return 0;
}

// <0, 0, >0 like strcmp, in the order documented in aggregate.h.
int Compare(const Value& a, const Value& b) {
  int ra = TypeRank(a), rb = TypeRank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 1:
      return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
    case 2:
      if (a.type() == Value::Type::kInt && b.type() == Value::Type::kInt) {
        return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
      }
      return a.as_double() < b.as_double() ? -1 : (a.as_double() > b.as_double() ? 1 : 0);
    case 3:
      return a.text().compare(b.text());
    default:
      return 0;
  }
}

enum class Op { kCount, kSum, kAvg, kMin, kMax, kPct };

struct Metric {
  Op op;
  std::string column;  // empty: count of records
  std::string as;
  double q = 0;       // percentile, 0..100
  int slot = -1;      // index into columns_
  int pct_slot = -1;  // index into a group's percentile value lists
};

// One metric's running state in one (window, group).
struct Acc {
  uint64_t n = 0;
  int64_t isum = 0;
  bool all_int = true;
  double dsum = 0;
  Value best;  // min/max
};

struct Group {
  std::vector<Value> key;
  int32_t next_same_hash = -1;
  std::vector<Acc> acc;
  std::vector<std::vector<double>> pct;
};

struct Window {
  std::vector<Group> groups;
  std::unordered_map<uint64_t, int32_t> heads;  // group key hash -> first group with it
  uint64_t min_seq = UINT64_MAX;
};

// A metric column's value in the record being pushed.
struct Input {
  const Value* v = nullptr;  // nullptr: column missing (null)
  bool null = true;
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
};

class AggregateStepImpl final : public AggregateStep {
 public:
  Status Init(const nlohmann::json& j);
  Status Push(Record& rec, Emitter& out) override;
  Status Finish(Emitter& out) override;
  Status Tick(int64_t now_ns, Emitter& out) override;
  uint64_t OldestNeededSeq() const override;
  nlohmann::json SaveState() const override;
  Status RestoreState(const nlohmann::json& state) override;
  uint64_t late_records() const override { return late_; }

 private:
  struct Binding {
    std::shared_ptr<const Schema> schema;
    int time = -1;
    std::vector<int> group;
    std::vector<int> slots;
  };
  void Bind(const std::shared_ptr<const Schema>& schema);
  Status ReadInputs(const Record& rec);
  void Add(Window& w, const Record& rec, uint64_t hash);
  Status EmitWindow(int64_t start, Window& w, Emitter& out);
  Status CloseThrough(Emitter& out);

  // Declaration.
  std::vector<std::string> group_by_;
  std::string time_column_;
  bool timed_ = false;
  int64_t size_ns_ = 0;
  int64_t hop_ns_ = 0;
  int64_t lateness_ns_ = 0;
  std::vector<Metric> metrics_;
  std::vector<std::string> columns_;  // distinct metric columns
  std::vector<bool> column_numeric_;  // a sum/avg/pNN reads the column
  int pct_slots_ = 0;
  std::vector<int> pct_slot_column_;  // pct slot -> column slot
  std::shared_ptr<const Schema> out_schema_;

  // State.
  std::map<int64_t, Window> windows_;  // by start
  bool have_event_ = false;
  int64_t max_event_ns_ = 0;
  int64_t closed_bound_ns_ = INT64_MIN;  // windows ending at or before it are closed
  bool have_emitted_ = false;
  int64_t emitted_through_ns_ = 0;
  uint64_t late_ = 0;

  Binding binding_;
  std::vector<Input> inputs_;
  std::string key_bytes_;
};

Status AggregateStepImpl::Init(const nlohmann::json& j) {
  using namespace decl;
  FS_RETURN_IF_ERROR(
      CheckObject(j, "aggregate", {"type", "group_by", "time", "window", "metrics"}));
  if (const auto* g = Find(j, "group_by")) {
    FS_ASSIGN_OR_RETURN(group_by_, StringList(*g, "aggregate.group_by", true));
  }
  if (const auto* t = Find(j, "time")) {
    FS_ASSIGN_OR_RETURN(time_column_, NonEmptyString(*t, "aggregate.time"));
    timed_ = true;
  }
  const auto* w = Find(j, "window");
  if (timed_ && w == nullptr) return FieldError("aggregate.window", "required with \"time\"");
  if (!timed_ && w != nullptr) return FieldError("aggregate.time", "required with \"window\"");
  if (w != nullptr) {
    FS_RETURN_IF_ERROR(CheckObject(*w, "aggregate.window", {"size_s", "hop_s", "lateness_s"}));
    auto seconds = [](const nlohmann::json& v, const std::string& path) -> Result<int64_t> {
      FS_ASSIGN_OR_RETURN(double s, Number(v, path));
      if (s < 0 || s > 1e9) return FieldError(path, "must be between 0 and 1e9 seconds");
      return static_cast<int64_t>(std::llround(s * kNsPerS));
    };
    const auto* size = Find(*w, "size_s");
    if (size == nullptr) return FieldError("aggregate.window.size_s", "required");
    FS_ASSIGN_OR_RETURN(size_ns_, seconds(*size, "aggregate.window.size_s"));
    if (size_ns_ <= 0) return FieldError("aggregate.window.size_s", "must be > 0");
    hop_ns_ = size_ns_;
    if (const auto* hop = Find(*w, "hop_s")) {
      FS_ASSIGN_OR_RETURN(hop_ns_, seconds(*hop, "aggregate.window.hop_s"));
      if (hop_ns_ <= 0) return FieldError("aggregate.window.hop_s", "must be > 0");
      if (hop_ns_ > size_ns_) return FieldError("aggregate.window.hop_s", "must be <= size_s");
      if (size_ns_ % hop_ns_ != 0) {
        return FieldError("aggregate.window.size_s", "must be a multiple of hop_s");
      }
      if (size_ns_ / hop_ns_ > kMaxWindowsPerRecord) {
        return FieldError("aggregate.window.hop_s", "size_s / hop_s must be at most 1000");
      }
    }
    if (const auto* late = Find(*w, "lateness_s")) {
      FS_ASSIGN_OR_RETURN(lateness_ns_, seconds(*late, "aggregate.window.lateness_s"));
    }
  }
  const auto* ms = Find(j, "metrics");
  if (ms == nullptr) return FieldError("aggregate.metrics", "required");
  if (!ms->is_array() || ms->empty()) {
    return FieldError("aggregate.metrics", "must be a non-empty list of objects");
  }
  std::vector<std::string> names;
  if (timed_) names = {"window_start", "window_end"};
  for (const std::string& g : group_by_) names.push_back(g);
  for (size_t i = 0; i < ms->size(); ++i) {
    std::string path = Index("aggregate.metrics", i);
    const auto& mj = (*ms)[i];
    FS_RETURN_IF_ERROR(CheckObject(mj, path, {"op", "column", "as"}));
    const auto* op = Find(mj, "op");
    if (op == nullptr) return FieldError(Join(path, "op"), "required");
    FS_ASSIGN_OR_RETURN(std::string ops, String(*op, Join(path, "op")));
    Metric m;
    if (ops == "count") {
      m.op = Op::kCount;
    } else if (ops == "sum") {
      m.op = Op::kSum;
    } else if (ops == "avg") {
      m.op = Op::kAvg;
    } else if (ops == "min") {
      m.op = Op::kMin;
    } else if (ops == "max") {
      m.op = Op::kMax;
    } else {
      double q = -1;
      bool ok = ops.size() > 1 && ops[0] == 'p';
      if (ok) {
        auto r = std::from_chars(ops.data() + 1, ops.data() + ops.size(), q);
        ok = r.ec == std::errc() && r.ptr == ops.data() + ops.size() && q >= 0 && q <= 100;
      }
      if (!ok) {
        return FieldError(Join(path, "op"), "unknown op '" + ops +
                                                "' (known: count, sum, avg, min, max, pNN such "
                                                "as p50, p95, p99.9)");
      }
      m.op = Op::kPct;
      m.q = q;
    }
    if (const auto* c = Find(mj, "column")) {
      FS_ASSIGN_OR_RETURN(m.column, NonEmptyString(*c, Join(path, "column")));
    } else if (m.op != Op::kCount) {
      return FieldError(Join(path, "column"), "required for op '" + ops + "'");
    }
    if (const auto* as = Find(mj, "as")) {
      FS_ASSIGN_OR_RETURN(m.as, NonEmptyString(*as, Join(path, "as")));
    } else {
      m.as = m.column.empty() ? ops : ops + "_" + m.column;
    }
    if (std::find(names.begin(), names.end(), m.as) != names.end()) {
      return FieldError(Join(path, "as"), "output column '" + m.as + "' is already taken");
    }
    names.push_back(m.as);
    if (!m.column.empty()) {
      auto it = std::find(columns_.begin(), columns_.end(), m.column);
      m.slot = static_cast<int>(it - columns_.begin());
      if (it == columns_.end()) {
        columns_.push_back(m.column);
        column_numeric_.push_back(false);
      }
      if (m.op == Op::kSum || m.op == Op::kAvg || m.op == Op::kPct) {
        column_numeric_[m.slot] = true;
      }
      if (m.op == Op::kPct) {
        for (const Metric& other : metrics_) {
          if (other.op == Op::kPct && other.slot == m.slot) m.pct_slot = other.pct_slot;
        }
        if (m.pct_slot < 0) {
          m.pct_slot = pct_slots_++;
          pct_slot_column_.push_back(m.slot);
        }
      }
    }
    metrics_.push_back(std::move(m));
  }
  for (size_t a = 0; a < names.size(); ++a) {
    for (size_t b = a + 1; b < names.size(); ++b) {
      if (names[a] == names[b]) {
        return FieldError("aggregate.group_by", "output column '" + names[a] + "' appears twice");
      }
    }
  }
  out_schema_ = std::make_shared<const Schema>(std::move(names));
  inputs_.resize(columns_.size());
  return Status::Ok();
}

void AggregateStepImpl::Bind(const std::shared_ptr<const Schema>& schema) {
  if (binding_.schema.get() == schema.get()) return;
  binding_.schema = schema;
  binding_.time = timed_ ? schema->Find(time_column_) : -1;
  binding_.group.clear();
  for (const std::string& g : group_by_) binding_.group.push_back(schema->Find(g));
  binding_.slots.clear();
  for (const std::string& c : columns_) binding_.slots.push_back(schema->Find(c));
}

Status AggregateStepImpl::ReadInputs(const Record& rec) {
  for (size_t s = 0; s < columns_.size(); ++s) {
    Input& in = inputs_[s];
    int idx = binding_.slots[s];
    in = Input{};
    if (idx < 0) continue;
    const Value& v = rec.values[static_cast<size_t>(idx)];
    in.v = &v;
    in.null = v.is_null();
    if (in.null || !column_numeric_[s]) continue;
    if (v.type() == Value::Type::kInt) {
      in.is_int = true;
      in.i = v.as_int();
      in.d = static_cast<double>(in.i);
    } else if (v.type() == Value::Type::kFloat) {
      in.d = v.as_double();
    } else {
      const std::string& t = v.text();
      bool ok = v.type() == Value::Type::kString;
      if (ok) {
        auto r = std::from_chars(t.data(), t.data() + t.size(), in.i);
        if (r.ec == std::errc() && r.ptr == t.data() + t.size()) {
          in.is_int = true;
          in.d = static_cast<double>(in.i);
        } else {
          r = std::from_chars(t.data(), t.data() + t.size(), in.d);
          ok = r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty();
        }
      }
      if (!ok) {
        return InvalidArgumentError("aggregate: column '" + columns_[s] + "' is '" +
                                    FormatValue(v) + "', not a number");
      }
    }
  }
  return Status::Ok();
}

void AggregateStepImpl::Add(Window& w, const Record& rec, uint64_t hash) {
  w.min_seq = std::min(w.min_seq, rec.seq);
  // Find the group.
  int32_t gi = -1;
  auto head = w.heads.find(hash);
  if (head != w.heads.end()) {
    for (int32_t k = head->second; k >= 0; k = w.groups[k].next_same_hash) {
      const Group& g = w.groups[k];
      bool same = true;
      for (size_t c = 0; c < binding_.group.size() && same; ++c) {
        int idx = binding_.group[c];
        same = idx < 0 ? g.key[c].is_null() : g.key[c] == rec.values[static_cast<size_t>(idx)];
      }
      if (same) {
        gi = k;
        break;
      }
    }
  }
  if (gi < 0) {
    Group g;
    for (int idx : binding_.group) {
      g.key.push_back(idx < 0 ? Value() : rec.values[static_cast<size_t>(idx)]);
    }
    g.acc.resize(metrics_.size());
    g.pct.resize(static_cast<size_t>(pct_slots_));
    gi = static_cast<int32_t>(w.groups.size());
    if (head != w.heads.end()) {
      g.next_same_hash = head->second;
      head->second = gi;
    } else {
      w.heads.emplace(hash, gi);
    }
    w.groups.push_back(std::move(g));
  }
  Group& g = w.groups[static_cast<size_t>(gi)];
  for (size_t m = 0; m < metrics_.size(); ++m) {
    const Metric& mt = metrics_[m];
    Acc& a = g.acc[m];
    if (mt.slot < 0) {
      ++a.n;
      continue;
    }
    const Input& in = inputs_[static_cast<size_t>(mt.slot)];
    if (in.null) continue;
    switch (mt.op) {
      case Op::kCount:
        ++a.n;
        break;
      case Op::kSum:
      case Op::kAvg:
        ++a.n;
        a.dsum += in.d;
        if (a.all_int) {
          if (!in.is_int || __builtin_add_overflow(a.isum, in.i, &a.isum)) a.all_int = false;
        }
        break;
      case Op::kMin:
      case Op::kMax: {
        int c = a.n == 0 ? 0 : Compare(*in.v, a.best);
        if (a.n == 0 || (mt.op == Op::kMin ? c < 0 : c > 0)) a.best = *in.v;
        ++a.n;
        break;
      }
      case Op::kPct:
        break;  // below: metrics over the same column share one list
    }
  }
  for (size_t ps = 0; ps < pct_slot_column_.size(); ++ps) {
    const Input& in = inputs_[static_cast<size_t>(pct_slot_column_[ps])];
    if (!in.null) g.pct[ps].push_back(in.d);
  }
}

Status AggregateStepImpl::Push(Record& rec, Emitter& out) {
  Bind(rec.schema);
  int64_t t = 0;
  if (timed_) {
    if (binding_.time < 0) {
      return InvalidArgumentError("aggregate.time: the record has no column '" + time_column_ +
                                  "'");
    }
    Result<int64_t> tr = ParseTimestampNs(rec.values[static_cast<size_t>(binding_.time)]);
    if (!tr.ok()) {
      return InvalidArgumentError("aggregate.time: column '" + time_column_ +
                                  "': " + tr.status().message());
    }
    t = *tr;
  }
  FS_RETURN_IF_ERROR(ReadInputs(rec));
  key_bytes_.clear();
  for (int idx : binding_.group) {
    AppendKeyBytes(idx < 0 ? Value() : rec.values[static_cast<size_t>(idx)], &key_bytes_);
  }
  uint64_t hash = XXH3_64bits(key_bytes_.data(), key_bytes_.size());
  if (!timed_) {
    Add(windows_[0], rec, hash);
    return Status::Ok();
  }
  bool added = false;
  int64_t last_start = FloorDiv(t, hop_ns_) * hop_ns_;
  for (int64_t s = last_start - size_ns_ + hop_ns_; s <= last_start; s += hop_ns_) {
    if (s + size_ns_ <= closed_bound_ns_) continue;
    Add(windows_[s], rec, hash);
    added = true;
  }
  if (!added) ++late_;
  if (!have_event_ || t > max_event_ns_) {
    max_event_ns_ = t;
    have_event_ = true;
  }
  closed_bound_ns_ = std::max(closed_bound_ns_, max_event_ns_ - lateness_ns_);
  return CloseThrough(out);
}

Status AggregateStepImpl::EmitWindow(int64_t start, Window& w, Emitter& out) {
  for (Group& g : w.groups) {
    Record r;
    r.schema = out_schema_;
    r.seq = w.min_seq;
    r.values.reserve(out_schema_->size());
    if (timed_) {
      r.values.push_back(Value::String(FormatTimestamp(start)));
      r.values.push_back(Value::String(FormatTimestamp(start + size_ns_)));
    }
    for (Value& k : g.key) r.values.push_back(std::move(k));
    for (std::vector<double>& p : g.pct) std::sort(p.begin(), p.end());
    for (size_t m = 0; m < metrics_.size(); ++m) {
      const Metric& mt = metrics_[m];
      Acc& a = g.acc[m];
      switch (mt.op) {
        case Op::kCount:
          r.values.push_back(Value::Int(static_cast<int64_t>(a.n)));
          break;
        case Op::kSum:
          if (a.n == 0) {
            r.values.push_back(Value());
          } else {
            r.values.push_back(a.all_int ? Value::Int(a.isum) : Value::Float(a.dsum));
          }
          break;
        case Op::kAvg:
          r.values.push_back(a.n == 0 ? Value() : Value::Float(a.dsum / static_cast<double>(a.n)));
          break;
        case Op::kMin:
        case Op::kMax:
          r.values.push_back(a.n == 0 ? Value() : std::move(a.best));
          break;
        case Op::kPct: {
          const std::vector<double>& p = g.pct[static_cast<size_t>(mt.pct_slot)];
          if (p.empty()) {
            r.values.push_back(Value());
            break;
          }
          double pos = mt.q / 100.0 * static_cast<double>(p.size() - 1);
          size_t lo = static_cast<size_t>(std::floor(pos));
          size_t hi = std::min(lo + 1, p.size() - 1);
          double frac = pos - static_cast<double>(lo);
          r.values.push_back(Value::Float(p[lo] + (p[hi] - p[lo]) * frac));
          break;
        }
      }
    }
    FS_RETURN_IF_ERROR(out.Emit(r));
  }
  if (timed_) {
    emitted_through_ns_ =
        have_emitted_ ? std::max(emitted_through_ns_, start + size_ns_) : start + size_ns_;
    have_emitted_ = true;
  }
  return Status::Ok();
}

Status AggregateStepImpl::CloseThrough(Emitter& out) {
  while (!windows_.empty() && windows_.begin()->first + size_ns_ <= closed_bound_ns_) {
    auto it = windows_.begin();
    Status s = EmitWindow(it->first, it->second, out);
    windows_.erase(it);
    FS_RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

Status AggregateStepImpl::Finish(Emitter& out) {
  while (!windows_.empty()) {
    auto it = windows_.begin();
    Status s = EmitWindow(it->first, it->second, out);
    windows_.erase(it);
    FS_RETURN_IF_ERROR(s);
  }
  if (have_emitted_) closed_bound_ns_ = std::max(closed_bound_ns_, emitted_through_ns_);
  return Status::Ok();
}

Status AggregateStepImpl::Tick(int64_t now_ns, Emitter& out) {
  if (!timed_) return Status::Ok();
  closed_bound_ns_ = std::max(closed_bound_ns_, now_ns - lateness_ns_);
  return CloseThrough(out);
}

uint64_t AggregateStepImpl::OldestNeededSeq() const {
  uint64_t oldest = UINT64_MAX;
  for (const auto& [start, w] : windows_) oldest = std::min(oldest, w.min_seq);
  return oldest;
}

nlohmann::json AggregateStepImpl::SaveState() const {
  if (!timed_) return nullptr;
  nlohmann::json j = nlohmann::json::object();
  j["watermark_ns"] = have_event_ ? nlohmann::json(max_event_ns_ - lateness_ns_) : nullptr;
  j["emitted_through_ns"] = have_emitted_ ? nlohmann::json(emitted_through_ns_) : nullptr;
  return j;
}

Status AggregateStepImpl::RestoreState(const nlohmann::json& state) {
  if (state.is_null()) return Status::Ok();
  FS_RETURN_IF_ERROR(
      decl::CheckObject(state, "aggregate state", {"watermark_ns", "emitted_through_ns"}));
  if (const auto* wm = decl::Find(state, "watermark_ns"); wm != nullptr && !wm->is_null()) {
    FS_ASSIGN_OR_RETURN(int64_t w, decl::Integer(*wm, "aggregate state.watermark_ns"));
    have_event_ = true;
    max_event_ns_ = w + lateness_ns_;
    closed_bound_ns_ = std::max(closed_bound_ns_, w);
  }
  if (const auto* et = decl::Find(state, "emitted_through_ns"); et != nullptr && !et->is_null()) {
    FS_ASSIGN_OR_RETURN(int64_t e, decl::Integer(*et, "aggregate state.emitted_through_ns"));
    have_emitted_ = true;
    emitted_through_ns_ = e;
    closed_bound_ns_ = std::max(closed_bound_ns_, e);
  }
  // Windows restored as closed are never emitted again.
  while (!windows_.empty() && windows_.begin()->first + size_ns_ <= closed_bound_ns_) {
    windows_.erase(windows_.begin());
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<AggregateStep>> MakeAggregateStep(const nlohmann::json& decl) {
  auto step = std::make_unique<AggregateStepImpl>();
  FS_RETURN_IF_ERROR(step->Init(decl));
  return std::unique_ptr<AggregateStep>(std::move(step));
}

}  // namespace fieldstack::compute
