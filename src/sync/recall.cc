#include "sync/recall.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "crypto/hash.h"
#include "sync/backoff.h"

namespace fieldstack::sync {
namespace {

constexpr size_t kMd5Bytes = 16;

std::string Md5Of(std::string_view data) { return crypto::Digest::Md5(data); }

Status ChangedError(const store::CloudCopy& copy) {
  return FailedPreconditionError("'" + copy.key + "' changed in the cloud since it was refreshed");
}

// Copies the part of `data` (object bytes from `data_offset`) that overlaps the requested
// range [offset, offset + out.size()) into `out`.
void CopyOverlap(std::string_view data, uint64_t data_offset, uint64_t offset,
                 std::span<uint8_t> out) {
  uint64_t from = std::max(offset, data_offset);
  uint64_t to = std::min(offset + out.size(), data_offset + data.size());
  if (from >= to) return;
  std::memcpy(out.data() + (from - offset), data.data() + (from - data_offset), to - from);
}

}  // namespace

Recaller::Recaller(Targets targets, Clock& clock, Options options, Metrics* metrics)
    : targets_(std::move(targets)),
      clock_(clock),
      options_(std::move(options)),
      bucket_(clock, std::nullopt, 1 << 20),
      rng_(options_.seed) {
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); };
  }
  if (metrics == nullptr) return;
  auto& reg = metrics->registry();
  bytes_ = &prometheus::BuildCounter()
                .Name(metric_names::kRecallBytes)
                .Help("Bytes read from the cloud to recall evicted files")
                .Register(reg)
                .Add({});
  failures_ = &prometheus::BuildCounter()
                   .Name(metric_names::kRecallFailures)
                   .Help("Recall reads that failed, by reason (unavailable, corruption, changed)")
                   .Register(reg);
}

Status Recaller::Failed(const char* reason, Status s) {
  if (failures_) failures_->Add({{"reason", reason}}).Increment();
  return s;
}

std::chrono::nanoseconds Recaller::Backoff(uint32_t attempt) {
  // Readers of many files do not hit a recovering link in step.
  MutexLock l(mu_);
  return JitteredBackoff(options_.backoff_base, options_.backoff_max, attempt, rng_);
}

Status Recaller::Pace(uint64_t bytes, int64_t deadline) {
  for (;;) {
    std::optional<uint64_t> rate = options_.schedule.At(clock_.NowUnixNanos()).down_bytes_per_s;
    if (rate == std::optional<uint64_t>(0)) {
      // A paused window: a reader waits, but not past its timeout.
      int64_t now = clock_.MonotonicNanos();
      if (now >= deadline) {
        return UnavailableError("downloads are paused by the bandwidth schedule");
      }
      options_.sleep(std::min<std::chrono::nanoseconds>(std::chrono::seconds(1),
                                                        std::chrono::nanoseconds(deadline - now)));
      continue;
    }
    bucket_.SetRate(rate);
    std::chrono::nanoseconds wait = bucket_.Reserve(bytes);
    if (wait.count() > 0) options_.sleep(wait);
    return Status::Ok();
  }
}

template <typename T>
Result<T> Recaller::Retry(const store::CloudCopy& copy, int64_t deadline,
                          const std::function<Result<T>()>& op) {
  for (uint32_t attempt = 1;; ++attempt) {
    Result<T> r = op();
    if (r.ok() || r.status().code() != StatusCode::kUnavailable) return r;
    int64_t now = clock_.MonotonicNanos();
    if (now >= deadline) {
      spdlog::warn("recall: giving up on '{}' after {} attempts: {}", copy.key, attempt,
                   r.status().ToString());
      return Failed(
          "unavailable",
          UnavailableError(fmt::format(
              "cloud not reachable for recall of '{}' after {:g} s: {}", copy.key,
              std::chrono::duration<double>(options_.timeout).count(), r.status().ToString())));
    }
    options_.sleep(std::min(Backoff(attempt), std::chrono::nanoseconds(deadline - now)));
  }
}

Result<bool> Recaller::Unchanged(cloud::ObjectStore& target, const store::CloudCopy& copy) {
  auto head = target.Head(copy.key);
  if (head.status().code() == StatusCode::kNotFound) return false;
  if (!head.ok()) return head.status();
  return head->size == copy.size && (copy.etag.empty() || head->etag == copy.etag);
}

Result<std::string> Recaller::GetRange(cloud::ObjectStore& target, const store::CloudCopy& copy,
                                       uint64_t offset, uint64_t length, int64_t deadline) {
  std::function<Result<std::string>()> once = [&]() -> Result<std::string> {
    FS_RETURN_IF_ERROR(Pace(length, deadline));
    auto got = target.Get(copy.key, offset, length);
    if (got.status().code() == StatusCode::kNotFound) {
      return Failed("changed",
                    FailedPreconditionError("'" + copy.key + "' was deleted from the cloud"));
    }
    if (!got.ok()) return got.status();
    if (bytes_) bytes_->Increment(static_cast<double>(got->size()));
    if (got->size() == length) return got;
    // Fewer bytes: the object is shorter now (changed), or the transfer was cut short.
    FS_ASSIGN_OR_RETURN(bool same, Unchanged(target, copy));
    if (!same) return Failed("changed", ChangedError(copy));
    return UnavailableError(fmt::format("short read of '{}' at {}: {} of {} bytes", copy.key,
                                        offset, got->size(), length));
  };
  return Retry(copy, deadline, once);
}

Result<std::string> Recaller::GetChecked(cloud::ObjectStore& target, const store::CloudCopy& copy,
                                         uint64_t offset, uint64_t length, const std::string& md5,
                                         int64_t deadline) {
  Status bad;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto got = GetRange(target, copy, offset, length, deadline);
    if (got.ok() && Md5Of(*got) == md5) return got;
    if (!got.ok() && got.status().code() != StatusCode::kCorruption) return got.status();
    // Damaged on the way (the adapter's own checksum, or ours): once more.
    bad =
        got.ok()
            ? CorruptionError(fmt::format("bytes [{}, {}) of '{}' do not match their recorded MD5",
                                          offset, offset + length, copy.key))
            : got.status();
  }
  // Wrong twice: another object under the key, or damaged in the cloud.
  auto same = Unchanged(target, copy);
  if (same.ok() && !*same) return Failed("changed", ChangedError(copy));
  spdlog::error("recall: {}", bad.ToString());
  return Failed("corruption", bad);
}

Status Recaller::FetchParts(cloud::ObjectStore& target, const store::CloudCopy& copy,
                            uint64_t offset, std::span<uint8_t> out, int64_t deadline) {
  const uint64_t part = copy.part_size == 0 ? copy.size : copy.part_size;
  const uint64_t parts = part == 0 ? 1 : std::max<uint64_t>(1, (copy.size + part - 1) / part);
  if (copy.part_md5s.size() != parts * kMd5Bytes) {
    return InvalidArgumentError(fmt::format("'{}': {} bytes of part MD5s for {} parts of {} bytes",
                                            copy.key, copy.part_md5s.size(), parts,
                                            copy.part_size));
  }
  const uint64_t end = offset + out.size();
  for (uint64_t i = offset / part; i * part < end; ++i) {
    const uint64_t part_offset = i * part;
    const uint64_t part_length = std::min(part, copy.size - part_offset);
    FS_ASSIGN_OR_RETURN(std::string data,
                        GetChecked(target, copy, part_offset, part_length,
                                   copy.part_md5s.substr(i * kMd5Bytes, kMd5Bytes), deadline));
    CopyOverlap(data, part_offset, offset, out);
  }
  return Status::Ok();
}

Status Recaller::FetchWhole(uint32_t share_id, cloud::ObjectStore& target,
                            const store::CloudCopy& copy, uint64_t offset, std::span<uint8_t> out,
                            int64_t deadline) {
  const std::string id =
      fmt::format("{}\n{}\n{}\n{}\n", share_id, copy.key, copy.etag, copy.size) + copy.md5;
  std::shared_ptr<Flight> flight;
  std::shared_ptr<const std::string> cached;  // keeps the bytes alive while copied unlocked
  bool fetch = false;
  {
    MutexLock l(mu_);
    auto it = flights_.find(id);
    if (last_whole_ && last_whole_id_ == id) {
      cached = last_whole_;
    } else if (it == flights_.end()) {
      flight = std::make_shared<Flight>();
      flights_[id] = flight;
      fetch = true;
    } else {
      flight = it->second;
    }
  }
  if (cached) {
    CopyOverlap(*cached, 0, offset, out);
    return Status::Ok();
  }
  if (fetch) {
    auto got = GetChecked(target, copy, 0, copy.size, copy.md5, deadline);
    MutexLock l(mu_);
    flight->done = true;
    if (got.ok()) {
      flight->data = std::make_shared<const std::string>(std::move(*got));
      // Kept only when more ranges of it are likely to follow.
      if (out.size() < copy.size) {
        last_whole_id_ = id;
        last_whole_ = flight->data;
      }
    } else {
      flight->status = got.status();
    }
    flights_.erase(id);
    flight_done_.notify_all();
  } else {
    MutexLock l(mu_);
    flight_done_.wait(mu_, [&] { return flight->done; });
  }
  // `flight` is immutable once done.
  if (!flight->status.ok()) return flight->status;
  CopyOverlap(*flight->data, 0, offset, out);
  return Status::Ok();
}

Status Recaller::FetchByEtag(uint32_t share_id, cloud::ObjectStore& target,
                             const store::CloudCopy& copy, uint64_t offset, std::span<uint8_t> out,
                             int64_t deadline) {
  if (copy.etag.empty()) {
    return InvalidArgumentError("'" + copy.key +
                                "' has neither a checksum nor an etag to check recalled bytes");
  }
  const auto cache_key = std::make_pair(share_id, copy.key);
  const int64_t ttl_ns = std::chrono::nanoseconds(options_.etag_check_ttl).count();
  bool fresh = false;
  {
    MutexLock l(mu_);
    auto it = etag_checks_.find(cache_key);
    fresh = it != etag_checks_.end() && it->second.etag == copy.etag &&
            it->second.size == copy.size &&
            clock_.MonotonicNanos() - it->second.checked_ns < ttl_ns;
  }
  if (!fresh) {
    std::function<Result<bool>()> head = [&] { return Unchanged(target, copy); };
    FS_ASSIGN_OR_RETURN(bool same, Retry(copy, deadline, head));
    MutexLock l(mu_);
    if (!same) {
      etag_checks_.erase(cache_key);
      return Failed("changed", ChangedError(copy));
    }
    if (etag_checks_.size() >= options_.etag_cache_entries) etag_checks_.clear();  // bounded
    etag_checks_[cache_key] = {copy.etag, copy.size, clock_.MonotonicNanos()};
  }
  FS_ASSIGN_OR_RETURN(std::string data, GetRange(target, copy, offset, out.size(), deadline));
  std::memcpy(out.data(), data.data(), out.size());
  return Status::Ok();
}

Status Recaller::Fetch(uint32_t share_id, const store::CloudCopy& copy, uint64_t offset,
                       std::span<uint8_t> out) {
  if (offset > copy.size || out.size() > copy.size - offset) {
    return InvalidArgumentError(fmt::format("bytes [{}, {}) are past the end of '{}' ({} bytes)",
                                            offset, offset + out.size(), copy.key, copy.size));
  }
  if (out.empty()) return Status::Ok();
  cloud::ObjectStore* target = targets_(share_id);
  if (target == nullptr) return UnavailableError("share has no cloud target");
  const int64_t deadline =
      clock_.MonotonicNanos() + std::chrono::nanoseconds(options_.timeout).count();
  if (!copy.part_md5s.empty()) return FetchParts(*target, copy, offset, out, deadline);
  if (copy.md5.size() == kMd5Bytes && copy.size <= options_.whole_object_max_bytes) {
    return FetchWhole(share_id, *target, copy, offset, out, deadline);
  }
  return FetchByEtag(share_id, *target, copy, offset, out, deadline);
}

Status Recaller::Confirm(uint32_t share_id, const store::CloudCopy& copy) {
  cloud::ObjectStore* target = targets_(share_id);
  if (target == nullptr) return UnavailableError("share has no cloud target");
  FS_ASSIGN_OR_RETURN(bool same, Unchanged(*target, copy));
  if (!same) return Failed("changed", ChangedError(copy));
  return Status::Ok();
}

}  // namespace fieldstack::sync
