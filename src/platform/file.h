#pragma once

// POSIX file helpers: an owned file descriptor with full-length positional I/O, durability
// calls (fdatasync, directory fsync), atomic whole-file replacement, an exclusive lock file and
// free-space queries. Every failure is a Status naming the path (ErrnoStatus).
//
// Thread safety: a File may be used from many threads at once for pread/pwrite/sync (the
// kernel serializes them); Close and moves need external synchronization.

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fieldstack::platform {

class File {
 public:
  File() = default;
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~File();
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // open(2) with `flags` (O_CLOEXEC is added) and `mode` for O_CREAT.
  static Result<File> Open(const std::string& path, int flags, mode_t mode = 0600);

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Reads up to buf.size() bytes at `offset`; returns the count, short only at end of file.
  Result<size_t> PRead(uint64_t offset, std::span<uint8_t> buf) const;
  // Writes all of `data` at `offset` (retries short writes and EINTR).
  Status PWrite(uint64_t offset, std::span<const uint8_t> data) const;
  Status DataSync() const;  // fdatasync; a failure is final for the data (never retry it)
  Status Sync() const;      // fsync
  Result<uint64_t> Size() const;
  Status Truncate(uint64_t size) const;
  Status Close();

 private:
  int fd_ = -1;
  std::string path_;
};

// fsyncs a directory so that entries created, renamed or removed in it are durable.
Status SyncDir(const std::string& dir);
// mkdir -p with `mode` for the directories it creates.
Status MakeDirs(const std::string& path, mode_t mode = 0700);
Result<std::string> ReadFileToString(const std::string& path);
// Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0600);
bool PathExists(const std::string& path);
Status RemoveFile(const std::string& path);  // a missing file is OK
// Names in `dir`, without "." and "..".
Result<std::vector<std::string>> ListDir(const std::string& dir);
std::string DirName(const std::string& path);

struct SpaceInfo {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // available to unprivileged users
};
Result<SpaceInfo> FileSystemSpace(const std::string& path);

// Appends `line` to a log file that rotates: when the file has reached `max_bytes`, it becomes
// path.1 (path.1 becomes path.2, ...; path.<keep> is dropped) and a new file is started.
// Not synchronized: callers serialize appends to one path.
Status AppendToRotatingLog(const std::string& path, std::string_view line, uint64_t max_bytes,
                           int keep);

// An exclusive, advisory lock held on a file for the life of the object (flock). Used to refuse
// a second daemon on the same data directory. The holder's pid is written into the file.
class LockFile {
 public:
  // AlreadyExists (with the holder's pid in the message) when another process holds it.
  static Result<LockFile> Acquire(const std::string& path);
  LockFile(LockFile&&) = default;
  LockFile& operator=(LockFile&&) = default;

 private:
  explicit LockFile(File f) : file_(std::move(f)) {}
  File file_;
};

}  // namespace fieldstack::platform
