#include "compute/sample.h"

#include <xxhash.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

#include "compute/step_decl.h"
#include "compute/timefmt.h"

namespace fieldstack::compute {
namespace {

// ---- sample ------------------------------------------------------------------------------

class SampleStep final : public Step {
 public:
  Status Init(const nlohmann::json& j) {
    using namespace decl;
    FS_RETURN_IF_ERROR(CheckObject(j, "sample", {"type", "every", "fraction", "seed"}));
    const auto* every = Find(j, "every");
    const auto* fraction = Find(j, "fraction");
    const auto* seed = Find(j, "seed");
    if ((every == nullptr) == (fraction == nullptr)) {
      return FieldError("sample", "needs exactly one of \"every\" and \"fraction\"");
    }
    if (every != nullptr) {
      FS_ASSIGN_OR_RETURN(int64_t n, Integer(*every, "sample.every"));
      if (n < 1) return FieldError("sample.every", "must be >= 1");
      every_ = static_cast<uint64_t>(n);
      if (seed != nullptr) return FieldError("sample.seed", "goes with \"fraction\"");
      return Status::Ok();
    }
    FS_ASSIGN_OR_RETURN(fraction_, Number(*fraction, "sample.fraction"));
    if (fraction_ < 0 || fraction_ > 1) return FieldError("sample.fraction", "must be in 0..1");
    if (seed != nullptr) {
      if (!seed->is_number_integer()) return FieldError("sample.seed", "must be an integer");
      seed_ = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                         : static_cast<uint64_t>(seed->get<int64_t>());
    }
    return Status::Ok();
  }

  Status Push(Record& rec, Emitter& out) override {
    bool keep;
    if (every_ > 0) {
      keep = seen_ % every_ == 0;
      ++seen_;
    } else {
      uint8_t b[8];
      for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(rec.seq >> (8 * i));
      uint64_t h = XXH3_64bits_withSeed(b, sizeof b, seed_);
      keep = static_cast<double>(h) * 0x1p-64 < fraction_;
    }
    return keep ? out.Emit(rec) : Status::Ok();
  }

  nlohmann::json SaveState() const override {
    if (every_ == 0) return nullptr;
    return {{"seen", seen_}};
  }
  Status RestoreState(const nlohmann::json& state) override {
    if (state.is_null() || every_ == 0) return Status::Ok();
    FS_RETURN_IF_ERROR(decl::CheckObject(state, "sample state", {"seen"}));
    const auto* s = decl::Find(state, "seen");
    if (s == nullptr || !s->is_number_integer() || s->get<int64_t>() < 0) {
      return InvalidArgumentError("sample state.seen: must be a non-negative integer");
    }
    seen_ = s->get<uint64_t>();
    return Status::Ok();
  }

 private:
  uint64_t every_ = 0;
  uint64_t seen_ = 0;
  double fraction_ = 0;
  uint64_t seed_ = 0;
};

// ---- subset ------------------------------------------------------------------------------

std::optional<double> ReadNumber(const Value& v) {
  if (v.is_number()) return v.as_double();
  if (v.type() != Value::Type::kString) return std::nullopt;
  const std::string& t = v.text();
  double d;
  auto r = std::from_chars(t.data(), t.data() + t.size(), d);
  if (r.ec != std::errc() || r.ptr != t.data() + t.size() || !std::isfinite(d)) {
    return std::nullopt;
  }
  return d;
}

class SubsetStepImpl final : public SubsetStep {
 public:
  Status Init(const nlohmann::json& j) {
    using namespace decl;
    FS_RETURN_IF_ERROR(CheckObject(j, "subset", {"type", "time", "bbox"}));
    const auto* time = Find(j, "time");
    const auto* bbox = Find(j, "bbox");
    if (time == nullptr && bbox == nullptr) {
      return FieldError("subset", "needs \"time\" or \"bbox\" (or both)");
    }
    if (time != nullptr) {
      FS_RETURN_IF_ERROR(CheckObject(*time, "subset.time", {"column", "from", "to"}));
      const auto* col = Find(*time, "column");
      if (col == nullptr) return FieldError("subset.time.column", "required");
      FS_ASSIGN_OR_RETURN(time_column_, NonEmptyString(*col, "subset.time.column"));
      auto bound = [](const nlohmann::json& v, const std::string& path) -> Result<int64_t> {
        Result<int64_t> t = InvalidArgumentError("");
        if (v.is_string()) {
          t = ParseTimestampNs(v.get<std::string>());
        } else if (v.is_number_integer()) {
          t = ParseTimestampNs(Value::Int(v.get<int64_t>()));
        } else if (v.is_number()) {
          t = ParseTimestampNs(Value::Float(v.get<double>()));
        } else {
          return FieldError(path, std::string("must be a time (ISO 8601 string or epoch "
                                              "seconds), not ") +
                                      v.type_name());
        }
        if (!t.ok()) return FieldError(path, t.status().message());
        return *t;
      };
      if (const auto* from = Find(*time, "from")) {
        FS_ASSIGN_OR_RETURN(int64_t f, bound(*from, "subset.time.from"));
        from_ns_ = f;
      }
      if (const auto* to = Find(*time, "to")) {
        FS_ASSIGN_OR_RETURN(int64_t t, bound(*to, "subset.time.to"));
        to_ns_ = t;
      }
      if (!from_ns_ && !to_ns_) return FieldError("subset.time", "needs \"from\" or \"to\"");
      if (from_ns_ && to_ns_ && *from_ns_ >= *to_ns_) {
        return FieldError("subset.time.to", "must be after \"from\"");
      }
    }
    if (bbox != nullptr) {
      has_bbox_ = true;
      FS_RETURN_IF_ERROR(CheckObject(*bbox, "subset.bbox",
                                     {"lat", "lon", "min_lat", "max_lat", "min_lon", "max_lon"}));
      auto col = [&](const char* key, std::string* out) -> Status {
        const auto* v = Find(*bbox, key);
        if (v == nullptr) return FieldError(Join("subset.bbox", key), "required");
        FS_ASSIGN_OR_RETURN(*out, NonEmptyString(*v, Join("subset.bbox", key)));
        return Status::Ok();
      };
      FS_RETURN_IF_ERROR(col("lat", &lat_column_));
      FS_RETURN_IF_ERROR(col("lon", &lon_column_));
      auto num = [&](const char* key, double lo, double hi, double* out) -> Status {
        const auto* v = Find(*bbox, key);
        std::string path = Join("subset.bbox", key);
        if (v == nullptr) return FieldError(path, "required");
        FS_ASSIGN_OR_RETURN(*out, Number(*v, path));
        if (*out < lo || *out > hi) {
          return FieldError(path, "must be in " + std::to_string(static_cast<int>(lo)) + ".." +
                                      std::to_string(static_cast<int>(hi)));
        }
        return Status::Ok();
      };
      FS_RETURN_IF_ERROR(num("min_lat", -90, 90, &min_lat_));
      FS_RETURN_IF_ERROR(num("max_lat", -90, 90, &max_lat_));
      FS_RETURN_IF_ERROR(num("min_lon", -180, 180, &min_lon_));
      FS_RETURN_IF_ERROR(num("max_lon", -180, 180, &max_lon_));
      if (min_lat_ > max_lat_) return FieldError("subset.bbox.max_lat", "must be >= min_lat");
    }
    return Status::Ok();
  }

  Status Push(Record& rec, Emitter& out) override {
    if (schema_.get() != rec.schema.get()) {
      schema_ = rec.schema;
      time_idx_ = time_column_.empty() ? -1 : schema_->Find(time_column_);
      lat_idx_ = has_bbox_ ? schema_->Find(lat_column_) : -1;
      lon_idx_ = has_bbox_ ? schema_->Find(lon_column_) : -1;
    }
    if (!time_column_.empty()) {
      if (time_idx_ < 0) return Unreadable();
      Result<int64_t> t = ParseTimestampNs(rec.values[static_cast<size_t>(time_idx_)]);
      if (!t.ok()) return Unreadable();
      if ((from_ns_ && *t < *from_ns_) || (to_ns_ && *t >= *to_ns_)) return Status::Ok();
    }
    if (has_bbox_) {
      if (lat_idx_ < 0 || lon_idx_ < 0) return Unreadable();
      std::optional<double> lat = ReadNumber(rec.values[static_cast<size_t>(lat_idx_)]);
      std::optional<double> lon = ReadNumber(rec.values[static_cast<size_t>(lon_idx_)]);
      if (!lat || !lon) return Unreadable();
      if (*lat < min_lat_ || *lat > max_lat_) return Status::Ok();
      bool in_lon = min_lon_ <= max_lon_ ? (*lon >= min_lon_ && *lon <= max_lon_)
                                         : (*lon >= min_lon_ || *lon <= max_lon_);
      if (!in_lon) return Status::Ok();
    }
    return out.Emit(rec);
  }

  uint64_t unreadable_records() const override { return unreadable_; }

 private:
  Status Unreadable() {
    ++unreadable_;
    return Status::Ok();
  }

  std::string time_column_;
  std::optional<int64_t> from_ns_, to_ns_;
  bool has_bbox_ = false;
  std::string lat_column_, lon_column_;
  double min_lat_ = 0, max_lat_ = 0, min_lon_ = 0, max_lon_ = 0;
  std::shared_ptr<const Schema> schema_;
  int time_idx_ = -1, lat_idx_ = -1, lon_idx_ = -1;
  uint64_t unreadable_ = 0;
};

// ---- dedupe ------------------------------------------------------------------------------

// A set of 64-bit hashes: open addressing, linear probing, at most half full.
class HashSet {
 public:
  size_t size() const { return size_ + (has_zero_ ? 1 : 0); }
  // True when `h` was not in the set (and is now).
  bool Insert(uint64_t h) {
    if (h == 0) {
      bool fresh = !has_zero_;
      has_zero_ = true;
      return fresh;
    }
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return false;
      if (slots_[i] == 0) {
        slots_[i] = h;
        ++size_;
        return true;
      }
    }
  }
  bool Contains(uint64_t h) const {
    if (h == 0) return has_zero_;
    if (slots_.empty()) return false;
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return true;
      if (slots_[i] == 0) return false;
    }
  }

 private:
  void Grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
    size_ = 0;
    for (uint64_t h : old) {
      if (h != 0) Insert(h);
    }
  }
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
  bool has_zero_ = false;
};

class DedupeStep final : public Step {
 public:
  Status Init(const nlohmann::json& j) {
    using namespace decl;
    FS_RETURN_IF_ERROR(CheckObject(j, "dedupe", {"type", "columns", "max_keys"}));
    if (const auto* c = Find(j, "columns")) {
      FS_ASSIGN_OR_RETURN(columns_, StringList(*c, "dedupe.columns", false));
    }
    if (const auto* m = Find(j, "max_keys")) {
      FS_ASSIGN_OR_RETURN(int64_t n, Integer(*m, "dedupe.max_keys"));
      if (n < 1) return FieldError("dedupe.max_keys", "must be >= 1");
      max_keys_ = static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  Status Push(Record& rec, Emitter& out) override {
    key_.clear();
    if (columns_.empty()) {
      for (size_t i = 0; i < rec.values.size(); ++i) {
        const std::string& name = rec.schema->names()[i];
        uint32_t n = static_cast<uint32_t>(name.size());
        key_.append(reinterpret_cast<const char*>(&n), 4);
        key_.append(name);
        AppendKeyBytes(rec.values[i], &key_);
      }
    } else {
      if (schema_.get() != rec.schema.get()) {
        schema_ = rec.schema;
        idx_.clear();
        for (const std::string& c : columns_) idx_.push_back(schema_->Find(c));
      }
      for (int i : idx_)
        AppendKeyBytes(i < 0 ? Value() : rec.values[static_cast<size_t>(i)], &key_);
    }
    uint64_t h = XXH3_64bits(key_.data(), key_.size());
    if (keys_.Contains(h)) return Status::Ok();
    if (keys_.size() >= max_keys_) {
      return InvalidArgumentError("dedupe: more than " + std::to_string(max_keys_) +
                                  " distinct keys; raise max_keys");
    }
    keys_.Insert(h);
    return out.Emit(rec);
  }

  // The key set is not kept across restarts and does not hold the engine's message buffer:
  // in an MQTT pipeline, dedupe remembers the keys seen since the daemon started (documented
  // in docs/compute.md). Files are read whole in one run, so they are unaffected.
  uint64_t OldestNeededSeq() const override { return UINT64_MAX; }

 private:
  std::vector<std::string> columns_;
  uint64_t max_keys_ = 10'000'000;
  std::shared_ptr<const Schema> schema_;
  std::vector<int> idx_;
  std::string key_;
  HashSet keys_;
};

}  // namespace

Result<std::unique_ptr<Step>> MakeSampleStep(const nlohmann::json& decl) {
  auto step = std::make_unique<SampleStep>();
  FS_RETURN_IF_ERROR(step->Init(decl));
  return std::unique_ptr<Step>(std::move(step));
}

Result<std::unique_ptr<SubsetStep>> MakeSubsetStep(const nlohmann::json& decl) {
  auto step = std::make_unique<SubsetStepImpl>();
  FS_RETURN_IF_ERROR(step->Init(decl));
  return std::unique_ptr<SubsetStep>(std::move(step));
}

Result<std::unique_ptr<Step>> MakeDedupeStep(const nlohmann::json& decl) {
  auto step = std::make_unique<DedupeStep>();
  FS_RETURN_IF_ERROR(step->Init(decl));
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace fieldstack::compute
