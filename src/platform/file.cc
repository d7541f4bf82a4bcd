#include "platform/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fieldstack::platform {

File::~File() { (void)Close(); }

File::File(File&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    (void)Close();
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

Result<File> File::Open(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  return File(fd, path);
}

Result<size_t> File::PRead(uint64_t offset, std::span<uint8_t> buf) const {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd_, buf.data() + done, buf.size() - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read " + path_);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status File::PWrite(uint64_t offset, std::span<const uint8_t> data) const {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write " + path_);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status File::DataSync() const {
  if (::fdatasync(fd_) != 0) return ErrnoStatus(errno, "fdatasync " + path_);
  return Status::Ok();
}

Status File::Sync() const {
  if (::fsync(fd_) != 0) return ErrnoStatus(errno, "fsync " + path_);
  return Status::Ok();
}

Result<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoStatus(errno, "stat " + path_);
  return static_cast<uint64_t>(st.st_size);
}

Status File::Truncate(uint64_t size) const {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(errno, "truncate " + path_);
  }
  return Status::Ok();
}

Status File::Close() {
  if (fd_ < 0) return Status::Ok();
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0 && errno != EINTR) return ErrnoStatus(errno, "close " + path_);
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  FS_ASSIGN_OR_RETURN(File f, File::Open(dir, O_RDONLY | O_DIRECTORY));
  return f.Sync();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return Status::Ok();
  std::string cur;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && ::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir " + cur);
    }
    pos = next + 1;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError(path + " is not a directory");
  return Status::Ok();
}

Result<std::string> ReadFileToString(const std::string& path) {
  FS_ASSIGN_OR_RETURN(File f, File::Open(path, O_RDONLY));
  FS_ASSIGN_OR_RETURN(uint64_t size, f.Size());
  std::string out(size, '\0');
  FS_ASSIGN_OR_RETURN(size_t n, f.PRead(0, {reinterpret_cast<uint8_t*>(out.data()), out.size()}));
  out.resize(n);
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp";
  {
    FS_ASSIGN_OR_RETURN(File f, File::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    FS_RETURN_IF_ERROR(f.PWrite(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}));
    FS_RETURN_IF_ERROR(f.Sync());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, "rename " + tmp);
  return SyncDir(DirName(path));
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink " + path);
  return Status::Ok();
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir " + dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Result<SpaceInfo> FileSystemSpace(const std::string& path) {
  struct statvfs sv;
  if (::statvfs(path.c_str(), &sv) != 0) return ErrnoStatus(errno, "statvfs " + path);
  return SpaceInfo{uint64_t{sv.f_blocks} * sv.f_frsize, uint64_t{sv.f_bavail} * sv.f_frsize};
}

Result<LockFile> LockFile::Acquire(const std::string& path) {
  FS_ASSIGN_OR_RETURN(File f, File::Open(path, O_RDWR | O_CREAT, 0600));
  if (::flock(f.fd(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      auto holder = ReadFileToString(path);
      std::string pid = holder.ok() ? *holder : std::string("unknown");
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return AlreadyExistsError("another fieldstack process (pid " + pid + ") holds " + path);
    }
    return ErrnoStatus(errno, "lock " + path);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  FS_RETURN_IF_ERROR(f.Truncate(0));
  FS_RETURN_IF_ERROR(f.PWrite(0, {reinterpret_cast<const uint8_t*>(pid.data()), pid.size()}));
  return LockFile(std::move(f));
}

Status AppendToRotatingLog(const std::string& path, std::string_view line, uint64_t max_bytes,
                           int keep) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= max_bytes) {
    for (int i = keep; i >= 1; --i) {
      std::string from = i == 1 ? path : path + "." + std::to_string(i - 1);
      std::string to = path + "." + std::to_string(i);
      if (i == keep) (void)RemoveFile(to);
      if (PathExists(from)) ::rename(from.c_str(), to.c_str());
    }
  }
  FS_ASSIGN_OR_RETURN(File f, File::Open(path, O_WRONLY | O_CREAT | O_APPEND, 0600));
  FS_ASSIGN_OR_RETURN(uint64_t size, f.Size());
  return f.PWrite(size, {reinterpret_cast<const uint8_t*>(line.data()), line.size()});
}

}  // namespace fieldstack::platform
