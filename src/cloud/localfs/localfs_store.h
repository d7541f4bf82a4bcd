#pragma once

// LocalFsStore: an ObjectStore kept as a directory tree, one file per object at <root>/<key>
// (for export to removable media, and in tests). Metadata, etag and MD5 live in the file's
// xattrs (user.fieldstack.*). Writes go to a temporary file under <root>/.fieldstack-tmp,
// are fsynced and renamed into place, so an object is never seen half-written; multi-part
// uploads stage parts under <root>/.fieldstack-uploads/<id>/.
//
// Limits of a filesystem: a key cannot be both an object and a "directory" of other keys
// ("a" and "a/b"): the second is refused with FailedPrecondition. Keys starting with
// ".fieldstack-" are reserved. Preconditions are exact within one process.
//
// Thread safety: all methods may be called concurrently.

#include <string>

#include "cloud/object_store.h"
#include "common/mutex.h"

namespace fieldstack::cloud::localfs {

class LocalFsStore final : public ObjectStore {
 public:
  // Creates `root` if needed.
  static Result<std::unique_ptr<LocalFsStore>> Open(const std::string& root);

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
  explicit LocalFsStore(std::string root) : root_(std::move(root)) {}
  Status CheckKey(std::string_view key) const;
  std::string UploadDir(const Upload& upload) const;
  Status Check(std::string_view key, const Precondition& p) REQUIRES(mu_);
  // Sets the xattrs of the finished temp file `tmp`, fsyncs it and renames it to `key`.
  Result<ObjectInfo> Install(const std::string& tmp, std::string_view key, const ObjectMeta& meta,
                             const std::string& md5) REQUIRES(mu_);
  Status Walk(const std::string& rel, std::string_view prefix, std::string_view after, size_t limit,
              ListPage& page);

  std::string root_;
  Mutex mu_;  // serializes precondition checks with the renames they guard
};

}  // namespace fieldstack::cloud::localfs
