#include "sync/copy_log.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "platform/file.h"
#include "sync/file_uploader.h"

namespace fieldstack::sync {
namespace {

std::string Rfc3339(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm t;
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<int>(unix_ns / 1'000'000 % 1000));
  return buf;
}

}  // namespace

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

Status CopyLog::AppendLine(const std::string& path, const std::string& line) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= max_bytes_) {
    for (int i = keep_; i >= 1; --i) {
      std::string from = i == 1 ? path : path + "." + std::to_string(i - 1);
      std::string to = path + "." + std::to_string(i);
      if (i == keep_) (void)platform::RemoveFile(to);
      if (platform::PathExists(from)) ::rename(from.c_str(), to.c_str());
    }
  }
  FS_ASSIGN_OR_RETURN(platform::File f,
                      platform::File::Open(path, O_WRONLY | O_CREAT | O_APPEND, 0600));
  FS_ASSIGN_OR_RETURN(uint64_t size, f.Size());
  return f.PWrite(size, {reinterpret_cast<const uint8_t*>(line.data()), line.size()});
}

Status CopyLog::Append(const CopyRecord& r) {
  nlohmann::json j = {{"time", Rfc3339(clock_.NowUnixNanos())},
                      {"path", r.path},
                      {"size", r.size},
                      {"version", r.version},
                      {"etag", r.etag},
                      {"md5", r.md5_base64},
                      {"duration_ms", r.duration_ms},
                      {"result", r.result}};
  if (r.error != UploadError::kNone) {
    j["code"] = static_cast<int>(r.error);
    j["message"] = r.message;
  }
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string dir = dir_ + "/" + r.share;
  MutexLock l(mu_);
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir));
  FS_RETURN_IF_ERROR(AppendLine(dir + "/upload.log", line));
  if (r.error != UploadError::kNone) FS_RETURN_IF_ERROR(AppendLine(dir + "/errors.log", line));
  return Status::Ok();
}

}  // namespace fieldstack::sync
