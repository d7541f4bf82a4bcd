#pragma once

// FaultObjectStore wraps an ObjectStore for tests: counts Puts and parts, fails the next
// `fail_puts` Puts and every part after `fail_parts_after` with Unavailable, and runs `on_part`
// before each part (to change a file mid-upload). Reads: counts Gets and Heads, fails the next
// `fail_gets` Gets and `fail_heads` Heads with Unavailable, and lets `on_get` change the bytes
// a Get returns (damage on the way).

#include <atomic>
#include <functional>

#include "cloud/object_store.h"

namespace fieldstack::testing {

class FaultObjectStore final : public cloud::ObjectStore {
 public:
  explicit FaultObjectStore(cloud::ObjectStore& inner) : in_(inner) {}
  std::atomic<int> puts = 0;
  std::atomic<int> parts = 0;
  std::atomic<int> fail_puts = 0;
  std::atomic<int> fail_parts_after = -1;
  std::function<void()> on_part;
  std::atomic<int> gets = 0;
  std::atomic<int> heads = 0;
  std::atomic<int> fail_gets = 0;
  std::atomic<int> fail_heads = 0;
  std::function<void(std::string& bytes)> on_get;

  Result<cloud::ObjectInfo> Put(std::string_view k, std::span<const uint8_t> d,
                                const cloud::PutOptions& o) override {
    if (fail_puts > 0) {
      --fail_puts;
      return UnavailableError("injected: link down");
    }
    ++puts;
    return in_.Put(k, d, o);
  }
  Result<cloud::Upload> BeginUpload(std::string_view k, const cloud::UploadPlan& p) override {
    return in_.BeginUpload(k, p);
  }
  Status PutPart(const cloud::Upload& u, uint32_t n, std::span<const uint8_t> d,
                 const std::optional<std::string>& md5) override {
    if (on_part) on_part();
    if (fail_parts_after >= 0 && parts >= fail_parts_after) {
      return UnavailableError("injected: link down");
    }
    ++parts;
    return in_.PutPart(u, n, d, md5);
  }
  Result<std::vector<cloud::PartInfo>> ListParts(const cloud::Upload& u) override {
    return in_.ListParts(u);
  }
  Result<cloud::ObjectInfo> CommitUpload(const cloud::Upload& u, const std::vector<uint32_t>& p,
                                         const cloud::CommitOptions& o) override {
    return in_.CommitUpload(u, p, o);
  }
  Status AbortUpload(const cloud::Upload& u) override { return in_.AbortUpload(u); }
  Result<cloud::ObjectInfo> Head(std::string_view k) override {
    ++heads;
    if (fail_heads > 0) {
      --fail_heads;
      return UnavailableError("injected: link down");
    }
    return in_.Head(k);
  }
  Result<std::string> Get(std::string_view k, uint64_t o, uint64_t l) override {
    ++gets;
    if (fail_gets > 0) {
      --fail_gets;
      return UnavailableError("injected: link down");
    }
    auto got = in_.Get(k, o, l);
    if (got.ok() && on_get) on_get(*got);
    return got;
  }
  Status Delete(std::string_view k, const cloud::Precondition& c) override {
    return in_.Delete(k, c);
  }
  Result<cloud::ListPage> List(std::string_view p, std::string_view a, size_t l) override {
    return in_.List(p, a, l);
  }

 private:
  cloud::ObjectStore& in_;
};

}  // namespace fieldstack::testing
