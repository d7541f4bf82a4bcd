#include "sync/copy_log.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "platform/file.h"
#include "sync/file_uploader.h"

namespace fieldstack::sync {

UploadError ClassifyUploadError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return UploadError::kNone;
    case StatusCode::kUnavailable:
      return UploadError::kTransient;
    case StatusCode::kCorruption:
      return s.message().starts_with(kLocalReadContext) ? UploadError::kLocalCorruption
                                                        : UploadError::kChecksumMismatch;
    case StatusCode::kFailedPrecondition:
      return UploadError::kConflict;
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      return UploadError::kAuthFailed;
    case StatusCode::kInvalidArgument:
      if (s.message().find("not a multiple of 512") != std::string::npos) {
        return UploadError::kPageBlobMisaligned;
      }
      return s.message().find("part") != std::string::npos ? UploadError::kTooLarge
                                                           : UploadError::kInvalidName;
    case StatusCode::kNotFound:
      return UploadError::kNotFound;
    case StatusCode::kNoSpace:
      return UploadError::kQuotaExceeded;
    case StatusCode::kResourceExhausted:
      return UploadError::kBudgetSpent;
    default:
      return UploadError::kInternal;
  }
}

Status CopyLog::Append(const CopyRecord& r) {
  nlohmann::json j = {{"time", FormatRfc3339(clock_.NowUnixNanos())},
                      {"path", r.path},
                      {"size", r.size},
                      {"version", r.version},
                      {"etag", r.etag},
                      {"md5", r.md5_base64},
                      {"duration_ms", r.duration_ms},
                      {"result", r.result}};
  // In errors.log, which holds both, this tells a refresh's line from an upload's.
  if (r.log == LogKind::kRefresh) j["log"] = "refresh";
  if (r.error != UploadError::kNone) j["code"] = static_cast<int>(r.error);
  // A refresh explains some outcomes that are no error (skipped, kept).
  if (r.error != UploadError::kNone || !r.message.empty()) j["message"] = r.message;
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string dir = dir_ + "/" + r.share;
  MutexLock l(mu_);
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir));
  const char* file = r.log == LogKind::kRefresh ? "/refresh.log" : "/upload.log";
  FS_RETURN_IF_ERROR(platform::AppendToRotatingLog(dir + file, line, max_bytes_, keep_));
  if (r.error != UploadError::kNone) {
    FS_RETURN_IF_ERROR(platform::AppendToRotatingLog(dir + "/errors.log", line, max_bytes_, keep_));
  }
  return Status::Ok();
}

}  // namespace fieldstack::sync
