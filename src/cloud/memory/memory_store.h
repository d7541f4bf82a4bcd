#pragma once

// MemoryStore: an ObjectStore held in RAM, for unit tests of the uploader. Behaves like the
// real services on everything the conformance suite checks (atomic commit, preconditions,
// checksums, paging).
//
// Thread safety: all methods may be called concurrently (one mutex).

#include <map>

#include "cloud/object_store.h"
#include "common/clock.h"
#include "common/mutex.h"

namespace fieldstack::cloud::memory {

class MemoryStore final : public ObjectStore {
 public:
  explicit MemoryStore(Clock& clock) : clock_(clock) {}

  Result<ObjectInfo> Put(std::string_view key, std::span<const uint8_t> data,
                         const PutOptions& options) override;
  Result<Upload> BeginUpload(std::string_view key, const UploadPlan& plan) override;
  Status PutPart(const Upload& upload, uint32_t number, std::span<const uint8_t> data,
                 const std::optional<std::string>& content_md5) override;
  Result<std::vector<PartInfo>> ListParts(const Upload& upload) override;
  Result<ObjectInfo> CommitUpload(const Upload& upload, const std::vector<uint32_t>& parts,
                                  const CommitOptions& options) override;
  Status AbortUpload(const Upload& upload) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Result<std::string> Get(std::string_view key, uint64_t offset, uint64_t length) override;
  Status Delete(std::string_view key, const Precondition& precondition) override;
  Result<ListPage> List(std::string_view prefix, std::string_view token, size_t limit) override;

 private:
  struct Object {
    ObjectInfo info;
    std::string data;
  };
  struct PendingUpload {
    std::string key;
    ObjectMeta meta;
    std::map<uint32_t, std::string> parts;
  };
  Status Check(std::string_view key, const Precondition& p) REQUIRES(mu_);
  ObjectInfo Store(std::string_view key, std::string data, ObjectMeta meta) REQUIRES(mu_);

  Clock& clock_;
  Mutex mu_;
  std::map<std::string, Object, std::less<>> objects_ GUARDED_BY(mu_);
  std::map<std::string, PendingUpload> uploads_ GUARDED_BY(mu_);
  uint64_t next_upload_ GUARDED_BY(mu_) = 1;
};

}  // namespace fieldstack::cloud::memory
