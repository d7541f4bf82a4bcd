#pragma once

// FileUploader sends one committed version of one Store file to an ObjectStore, in native
// format: the object's bytes are the file's bytes.
//
// - It reads through the Store (FileHandle::ReadCommitted), so every chunk is decrypted and its
//   tag checked as it is read, and only the pinned data generation is ever sent: if the file
//   is committed again meanwhile, the upload is abandoned (nothing becomes visible) and the
//   caller re-queues the new version.
// - Files up to one part go up with a single Put; larger ones as a multi-part upload whose
//   state (UploadJob::upload) the caller persists, so an interrupted upload resumes with the
//   parts the service already holds.
// - Every Put and part carries its MD5, which the service checks; the whole object's MD5 is
//   compared with what the service reports. A mismatch is a failure, never a success.
// - The job's precondition makes the final commit conditional, so an object changed in the
//   cloud is never silently overwritten: the outcome is kConflict.
//
// Memory: one part buffer per upload in progress, times parallel_parts.
// Thread safety: Upload may be called concurrently for different jobs.

#include <functional>
#include <optional>
#include <string>

#include "cloud/object_store.h"
#include "common/thread_pool.h"
#include "store/store.h"

namespace fieldstack::sync {

struct UploadJob {
  store::NodeId node = store::kNoNode;
  uint64_t data_gen = 0;  // the committed version to send (store::Attr::data_gen)
  std::string key;
  cloud::ObjectMeta meta;
  cloud::Precondition precondition;
  // Progress of a multi-part upload; persist it between attempts to resume.
  std::optional<cloud::Upload> upload;
};

enum class UploadOutcome {
  kUploaded,     // the object now holds exactly this version
  kFileChanged,  // the file has a newer committed version (or is gone): upload that instead
  kConflict,     // the precondition failed: the object changed in the cloud
};

struct UploadReport {
  UploadOutcome outcome = UploadOutcome::kUploaded;
  cloud::ObjectInfo object;   // for kUploaded
  std::string md5;            // raw MD5 of what was sent
  uint64_t bytes = 0;         // bytes of the file
  uint32_t parts_sent = 0;    // parts (or Puts) sent by this call
  uint32_t parts_reused = 0;  // parts found already stored from an earlier attempt
  // How the object was cut, so a recall can check each part it reads back (store::CloudCopy):
  // bytes per part (0 for a single Put) and the raw 16-byte MD5 of each part in part order,
  // always of the bytes this file holds (a reused part is read and hashed too).
  uint64_t part_size = 0;
  std::string part_md5s;

  // The cloud copy this upload made, as the Store records it (FinishUpload) for recalls.
  store::CloudCopy CloudCopyOf(const std::string& key) const {
    return {.key = key,
            .etag = object.etag,
            .size = bytes,
            .part_size = part_size,
            .part_md5s = part_md5s,
            .md5 = md5};
  }
};

// Errors from reading the file through the Store carry this context ("local read: ..."), so a
// local Corruption (bit rot on the box) is told apart from a cloud-side checksum mismatch.
inline constexpr char kLocalReadContext[] = "local read";

// Metadata naming the file an object was uploaded from (the Store node id). When a conditional
// write fails on an object carrying this job's mark, the object is an earlier upload of the same
// file whose etag was never recorded (a crash, a lost answer): it may be replaced.
inline constexpr char kOwnerMetaKey[] = "fieldstack_node";

class FileUploader {
 public:
  struct Options {
    uint64_t part_size_bytes = 8 << 20;  // also the largest single Put
    // Called with the size of each Put or part before it is sent; may block to pace the
    // upload (bandwidth schedule). An error (a spent data budget) stops the upload, keeping
    // its multi-part progress, and is returned.
    std::function<Status(uint64_t bytes)> before_send;
    // Parts of a multi-part upload sent at once on `pool` (memory: one part buffer each).
    size_t parallel_parts = 1;
    ThreadPool* pool = nullptr;
  };
  FileUploader(store::Store& store, cloud::ObjectStore& cloud, Options options)
      : store_(store), cloud_(cloud), options_(options) {}

  // Errors: the ObjectStore's (Unavailable: retry later, job.upload keeps the progress);
  // Corruption when a local chunk fails verification or the service saw other bytes (nothing
  // is committed); NotFound when the node is gone.
  Result<UploadReport> Upload(UploadJob& job);

 private:
  Result<UploadReport> Abandon(UploadJob& job, UploadOutcome outcome);
  Result<cloud::ObjectInfo> AlreadyThere(const UploadJob& job, const std::string& md5,
                                         uint64_t size, std::string* new_etag);

  store::Store& store_;
  cloud::ObjectStore& cloud_;
  Options options_;
};

}  // namespace fieldstack::sync
