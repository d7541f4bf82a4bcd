#include "sync/evictor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace fieldstack::sync {

std::optional<uint64_t> CacheSize::Resolve(uint64_t volume_bytes) const {
  if (bytes) return *bytes;
  if (percent) return static_cast<uint64_t>(static_cast<double>(volume_bytes) * *percent / 100.0);
  return std::nullopt;
}

Result<CacheSize> CacheSize::Parse(std::string_view text) {
  std::string t(text);
  t.erase(std::remove_if(t.begin(), t.end(), [](unsigned char c) { return std::isspace(c); }),
          t.end());
  auto bad = [&] {
    return InvalidArgumentError("'" + std::string(text) +
                                "' is not a size (bytes, \"20%\", \"500GiB\", \"2TB\")");
  };
  if (t.empty()) return bad();
  size_t end = 0;
  double v = 0;
  try {
    v = std::stod(t, &end);
  } catch (...) {
    return bad();
  }
  if (!std::isfinite(v) || v < 0) return bad();
  std::string unit = t.substr(end);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  CacheSize s;
  if (unit == "%") {
    if (v > 100) return InvalidArgumentError("'" + std::string(text) + "': more than 100%");
    s.percent = v;
    return s;
  }
  static const std::map<std::string, double> kUnits = {{"", 1},
                                                       {"b", 1},
                                                       {"k", 1e3},
                                                       {"kb", 1e3},
                                                       {"kib", 1024.0},
                                                       {"m", 1e6},
                                                       {"mb", 1e6},
                                                       {"mib", 1048576.0},
                                                       {"g", 1e9},
                                                       {"gb", 1e9},
                                                       {"gib", 1073741824.0},
                                                       {"t", 1e12},
                                                       {"tb", 1e12},
                                                       {"tib", 1099511627776.0}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return bad();
  double bytes = v * it->second;
  if (bytes > 1.8e19) return bad();
  s.bytes = static_cast<uint64_t>(bytes);
  return s;
}

namespace {

bool MatchComponent(std::string_view p, std::string_view s) {
  // '*' and '?' within one component, by backtracking over the last '*'.
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) slash = s.size();
    if (slash > start) out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool MatchParts(const std::vector<std::string_view>& p, size_t i,
                const std::vector<std::string_view>& s, size_t j) {
  if (i == p.size()) return j == s.size();
  if (p[i] == "**") {
    for (size_t k = j; k <= s.size(); ++k) {
      if (MatchParts(p, i + 1, s, k)) return true;
    }
    return false;
  }
  return j < s.size() && MatchComponent(p[i], s[j]) && MatchParts(p, i + 1, s, j + 1);
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view path) {
  std::string pat(pattern);
  if (!pat.empty() && pat.back() == '/') pat += "**";  // a folder and all below it
  return MatchParts(Split(pat), 0, Split(path), 0);
}

Evictor::Evictor(store::Store& store, Clock& clock, Options options, Recaller* recaller,
                 Metrics* metrics)
    : store_(store), clock_(clock), options_(std::move(options)), recaller_(recaller) {
  if (metrics != nullptr) {
    auto& reg = metrics->registry();
    resident_ = &prometheus::BuildGauge()
                     .Name(metric_names::kCacheResidentBytes)
                     .Help("Bytes of file data on the box per share (all but stubs)")
                     .Register(reg);
    stubs_ = &prometheus::BuildGauge()
                  .Name(metric_names::kCacheStubBytes)
                  .Help("Bytes of files per share whose data is in the cloud only")
                  .Register(reg);
    backpressure_ = &prometheus::BuildGauge()
                         .Name(metric_names::kCacheBackpressure)
                         .Help("Writers held back because the cache is at its hard cap")
                         .Register(reg)
                         .Add({});
  }
}

Evictor::~Evictor() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Evictor::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Evictor::Loop() {
  for (;;) {
    {
      MutexLock l(mu_);
      if (stop_) return;
    }
    auto pass = RunOnce();
    if (!pass.ok()) spdlog::warn("evictor: {}", pass.status().ToString());
    MutexLock l(mu_);
    // Under pressure, passes come quickly: writers wait for what they free.
    auto wait = waiting_ > 0 ? std::chrono::milliseconds(200) : options_.interval;
    cv_.wait_for(mu_, wait, [&]() REQUIRES(mu_) { return stop_ || pass_wanted_; });
    pass_wanted_ = false;
  }
}

const CachePolicy* Evictor::PolicyOf(uint32_t share_id) const {
  auto it = options_.shares.find(share_id);
  return it == options_.shares.end() ? nullptr : &it->second;
}

bool Evictor::Pinned(uint32_t share_id, std::string_view path) {
  auto match = [&](const CachePolicy& p) {
    return std::any_of(p.pinned.begin(), p.pinned.end(),
                       [&](const std::string& g) { return GlobMatch(g, path); });
  };
  const CachePolicy* share = PolicyOf(share_id);
  return match(options_.box) || (share != nullptr && match(*share));
}

Status Evictor::Fetch(uint32_t share_id, const store::CloudCopy& copy, uint64_t offset,
                      std::span<uint8_t> out) {
  if (recaller_ == nullptr) return UnavailableError("recall is not configured on this box");
  return recaller_->Fetch(share_id, copy, offset, out);
}

Status Evictor::Confirm(uint32_t share_id, const store::CloudCopy& copy) {
  if (recaller_ == nullptr) return UnavailableError("recall is not configured on this box");
  return recaller_->Confirm(share_id, copy);
}

Status Evictor::Admit(uint32_t share_id, uint64_t bytes) {
  const CachePolicy* share = PolicyOf(share_id);
  if (!options_.box.cap.set() && (share == nullptr || !share->cap.set())) return Status::Ok();
  const int64_t start = clock_.MonotonicNanos();
  const int64_t timeout = std::chrono::nanoseconds(options_.backpressure_timeout).count();
  MutexLock l(mu_);
  bool waited = false;
  for (;;) {
    uint64_t total = 0;
    for (const auto& [id, u] : usage_) total += u.resident + u.admitted;
    Usage& mine = usage_[share_id];
    auto box_cap = options_.box.cap.Resolve(volume_bytes_);
    auto share_cap = share != nullptr ? share->cap.Resolve(volume_bytes_) : std::nullopt;
    // Before the first pass nothing is known: let writes in.
    bool fits =
        passes_ == 0 || ((!box_cap || total + bytes <= *box_cap) &&
                         (!share_cap || mine.resident + mine.admitted + bytes <= *share_cap));
    if (fits) {
      mine.admitted += bytes;
      if (waited && --waiting_ == 0 && backpressure_) backpressure_->Set(0);
      return Status::Ok();
    }
    int64_t now = clock_.MonotonicNanos();
    if (!waited) {
      waited = true;
      if (waiting_++ == 0) {
        spdlog::warn("cache: at its hard cap; writers wait while clean files are evicted");
        if (backpressure_) backpressure_->Set(1);
      }
    }
    // Once a writer waited the whole timeout in vain, the next ones wait for a pass or so at
    // most (it may free room), not the whole timeout again, until a pass frees room.
    const int64_t limit = full_ ? std::min<int64_t>(timeout, 1'000'000'000) : timeout;
    if (now - start >= limit) {
      bool first = !full_;
      full_ = true;
      if (--waiting_ == 0 && backpressure_) backpressure_->Set(0);
      if (!first) {
        return NoSpaceError(
            "the box's cache is full: its data waits for upload and nothing can be "
            "evicted; try again when the link is back");
      }
      spdlog::error(
          "alert: cache full: the hard cap holds and nothing could be evicted for {} s (files "
          "wait for upload); writes are refused with ENOSPC / 507 until room is made",
          timeout / 1'000'000'000);
      return NoSpaceError(
          "the box's cache is full: its data waits for upload and nothing can be "
          "evicted; try again when the link is back");
    }
    pass_wanted_ = true;
    cv_.notify_all();
    uint64_t seen = passes_;
    cv_.wait_for(mu_, std::chrono::milliseconds(100),
                 [&]() REQUIRES(mu_) { return passes_ != seen || stop_; });
    if (stop_) return UnavailableError("the box is stopping");
  }
}

Result<uint64_t> Evictor::EvictOldest(const std::vector<uint32_t>& shares, uint64_t bytes,
                                      std::optional<int64_t> used_before_ns, Pass& pass) {
  struct Cursor {
    int64_t used_ns = INT64_MIN;
    store::NodeId node = 0;
    bool done = false;
  };
  std::map<uint32_t, Cursor> cursors;
  for (uint32_t s : shares) cursors[s];
  uint64_t freed = 0;
  while (freed < bytes) {
    // One page from each share, merged by use time; the oldest batch goes.
    std::vector<std::pair<store::CacheFile, uint32_t>> page;
    for (auto& [share, c] : cursors) {
      if (c.done) continue;
      FS_ASSIGN_OR_RETURN(auto files,
                          store_.EvictionCandidates(share, c.used_ns, c.node, options_.batch));
      if (files.size() < options_.batch) c.done = true;
      for (auto& f : files) page.emplace_back(f, share);
    }
    if (page.empty()) break;
    std::sort(page.begin(), page.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first.used_ns, a.first.node) < std::tie(b.first.used_ns, b.first.node);
    });
    std::vector<store::CacheFile> batch;
    uint64_t batch_bytes = 0;
    bool stop = false;
    for (const auto& [f, share] : page) {
      if (batch.size() >= options_.batch || freed + batch_bytes >= bytes) break;
      if (used_before_ns && f.used_ns >= *used_before_ns) {
        stop = true;
        break;
      }
      Cursor& c = cursors[share];
      c.used_ns = f.used_ns;
      c.node = f.node;
      // A path lookup per file only where globs are set.
      const CachePolicy* sp = PolicyOf(share);
      bool globs = !options_.box.pinned.empty() || (sp != nullptr && !sp->pinned.empty());
      auto path = globs ? store_.PathOf(f.node) : Result<std::string>(std::string());
      if (globs && path.ok() && Pinned(share, *path)) {
        ++pass.skipped_pinned;
        continue;
      }
      batch.push_back(f);
      batch_bytes += f.size;
    }
    // Pages of other shares past the cut are read again from their cursors next round.
    for (auto& [share, c] : cursors) {
      bool any_left = false;
      for (const auto& [f, s] : page) {
        if (s == share && std::tie(f.used_ns, f.node) > std::tie(c.used_ns, c.node))
          any_left = true;
      }
      if (any_left) c.done = false;
    }
    if (batch.empty()) {
      if (stop) break;
      continue;
    }
    FS_ASSIGN_OR_RETURN(size_t n, store_.Evict(batch));
    // Files skipped by the Store (opened or changed meanwhile) count as not freed.
    (void)n;
    for (const auto& f : batch) {
      auto a = store_.GetAttr(f.node);
      if (a.ok() && a->state == store::FileState::kStub) {
        freed += f.size;
        ++pass.evicted;
        pass.evicted_bytes += f.size;
      }
    }
    if (stop) break;
  }
  return freed;
}

Result<Evictor::Pass> Evictor::RunOnce() {
  Pass pass;
  std::map<uint32_t, uint64_t> admitted_before;  // what the measure below already counts
  {
    MutexLock l(mu_);
    for (const auto& [id, u] : usage_) admitted_before[id] = u.admitted;
  }
  FS_RETURN_IF_ERROR(store_.FlushAccessTimes());
  FS_ASSIGN_OR_RETURN(auto shares, store_.ListShares());
  FS_ASSIGN_OR_RETURN(store::Usage volume, store_.GetUsage());
  const uint64_t vol = volume.volume_total_bytes;
  std::map<uint32_t, uint64_t> resident;
  std::vector<uint32_t> cloud;
  auto measure = [&]() -> Status {
    for (const auto& sh : shares) {
      FS_ASSIGN_OR_RETURN(store::CacheUsage u, store_.GetCacheUsage(sh.id));
      // Data written but not yet committed is on the box too.
      resident[sh.id] = u.resident_bytes + store_.UncommittedBytes(sh.id);
      if (resident_)
        resident_->Add({{"share", sh.name}}).Set(static_cast<double>(u.resident_bytes));
      if (stubs_) stubs_->Add({{"share", sh.name}}).Set(static_cast<double>(u.stub_bytes));
    }
    return Status::Ok();
  };
  for (const auto& sh : shares) {
    if (sh.kind == store::ShareKind::kCloud) cloud.push_back(sh.id);
  }
  FS_RETURN_IF_ERROR(measure());
  const int64_t now = clock_.NowUnixNanos();
  // The evict-to level of a policy when `used` is over its high watermark or cap; 0: none.
  auto excess = [&](const CachePolicy& p, uint64_t used) -> uint64_t {
    auto high = p.high.Resolve(vol);
    auto cap = p.cap.Resolve(vol);
    auto low = p.low.Resolve(vol);
    bool over_high = high && used > *high;
    bool over_cap = cap && used > *cap * 9 / 10;
    if (!over_high && !over_cap) return 0;
    uint64_t target = UINT64_MAX;
    if (low)
      target = *low;
    else if (high)
      target = *high - *high / 10;
    if (cap) target = std::min<uint64_t>(target, *cap - *cap / 5);
    return used > target ? used - target : 0;
  };
  for (uint32_t id : cloud) {
    const CachePolicy* p = PolicyOf(id);
    std::optional<std::chrono::seconds> age = options_.box.max_age;
    if (p != nullptr && p->max_age) age = p->max_age;
    if (age) {
      int64_t before = now - std::chrono::nanoseconds(*age).count();
      FS_ASSIGN_OR_RETURN(uint64_t freed, EvictOldest({id}, UINT64_MAX, before, pass));
      resident[id] -= std::min(resident[id], freed);
    }
    if (p != nullptr) {
      uint64_t want = excess(*p, resident[id]);
      if (want > 0) {
        FS_ASSIGN_OR_RETURN(uint64_t freed, EvictOldest({id}, want, std::nullopt, pass));
        resident[id] -= std::min(resident[id], freed);
      }
    }
  }
  uint64_t total = 0;
  for (const auto& [id, r] : resident) total += r;
  uint64_t want = excess(options_.box, total);
  if (want > 0 && !cloud.empty()) {
    FS_ASSIGN_OR_RETURN(uint64_t freed, EvictOldest(cloud, want, std::nullopt, pass));
    (void)freed;
  }
  if (pass.evicted > 0) {
    FS_RETURN_IF_ERROR(measure());
    spdlog::info("evictor: evicted {} files ({} bytes); {} pinned kept", pass.evicted,
                 pass.evicted_bytes, pass.skipped_pinned);
  }
  {
    MutexLock l(mu_);
    volume_bytes_ = vol;
    uint64_t now_total = 0;
    for (const auto& [id, r] : resident) {
      // Writes admitted while this pass measured are not in its measure: they stay counted.
      uint64_t admitted = usage_[id].admitted;
      uint64_t before = admitted_before[id];
      usage_[id] = Usage{r, admitted > before ? admitted - before : 0};
      now_total += r;
    }
    if (full_ && (pass.evicted > 0 || now_total < last_total_)) full_ = false;
    last_total_ = now_total;
    ++passes_;
  }
  cv_.notify_all();
  return pass;
}

}  // namespace fieldstack::sync
