#pragma once

// Copy logs (per share) and the stable error codes of uploads and refreshes
// (docs/error-codes.md).
//
// Each share has three logs of JSON lines under <log_dir>/<share>/: upload.log (every upload
// attempt: time, path, size, version, etag, MD5, duration, result), refresh.log (what each
// refresh did to a file, same fields and codes; docs/tiering.md) and errors.log (failures of
// both with a stable numeric code). A log rotates at `max_bytes` to .1, .2, ... keeping `keep`
// old files, so logs never fill the disk.
//
// Thread safety: Append may be called concurrently.

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"

namespace fieldstack::sync {

// Stable error codes: numbers never change meaning; new ones are added at the end.
enum class UploadError : int {
  kNone = 0,
  kTransient = 1001,           // network failure, timeout, throttling or 5xx; retried
  kChecksumMismatch = 1002,    // the cloud received other bytes than were sent; retried
  kConflict = 1003,            // the object changed in the cloud; not overwritten
  kLocalCorruption = 1004,     // a chunk on the box failed verification; nothing sent
  kAuthFailed = 1005,          // credentials refused
  kInvalidName = 1006,         // the path is not a valid name for the target
  kTooLarge = 1007,            // the file is too large for the target or its part size
  kNotFound = 1008,            // container (or the file) missing
  kQuotaExceeded = 1009,       // the target is full or over quota
  kGaveUp = 1010,              // retried too often; the last error is in the message
  kBudgetSpent = 1011,         // the daily or monthly data budget is spent; resumes next period
  kPageBlobMisaligned = 1012,  // a page blob's size is not a multiple of 512 bytes
  kTypeClash = 1013,           // refresh: a folder on one side, a file on the other
  kInternal = 1099,            // anything else
};

// The code for a failed upload's Status (see FileUploader: local read errors carry
// kLocalReadContext).
UploadError ClassifyUploadError(const Status& s);

// Which of a share's logs a record goes to (errors.log gets the failures of both).
enum class LogKind { kUpload, kRefresh };

struct CopyRecord {
  std::string share;
  std::string path;
  uint64_t size = 0;
  uint64_t version = 0;
  std::string etag;
  std::string md5_base64;
  int64_t duration_ms = 0;
  // upload.log: uploaded, conflict, retry, failed, changed, paused, deleted.
  // refresh.log: added, changed, deleted, kept, conflict, failed, skipped.
  std::string result;
  UploadError error = UploadError::kNone;
  std::string message;
  LogKind log = LogKind::kUpload;
};

class CopyLog {
 public:
  CopyLog(std::string dir, Clock& clock, uint64_t max_bytes = 16 << 20, int keep = 3)
      : dir_(std::move(dir)), clock_(clock), max_bytes_(max_bytes), keep_(keep) {}

  // Appends to the share's upload.log (or refresh.log, by r.log), and to errors.log when
  // r.error is set.
  Status Append(const CopyRecord& r);

 private:
  std::string dir_;
  Clock& clock_;
  uint64_t max_bytes_;
  int keep_;
  Mutex mu_;
};

}  // namespace fieldstack::sync
