#pragma once

// FuseFs: the Store as a file system, over libfuse3's low-level API, multi-threaded. Samba and
// nfs-ganesha serve this mount; nothing holds a second copy of the data.
//
// Layout: the mount's root lists the shares; each share is a top-level directory. Inode numbers
// are Store node ids + 1 (1 is the root). Every operation goes to the Store:
//   lookup/getattr/readdir -> Lookup/GetAttr/ReadDir (paged, so huge directories cost no memory)
//   create/open/read/write/fsync/release -> FileHandle (release is the commit point)
//   mkdir/symlink/readlink/unlink/rmdir/rename/setattr/xattrs -> the Store's calls
// Rename across shares is EXDEV; hard links are EPERM (one name per file). Errors map to errno
// in errno_map.cc. Permissions are checked by the kernel (default_permissions).
// Large I/O: writes of up to 1 MiB. The kernel's writeback cache stays off: with it the kernel
// would own mtime and could hold writes past close, and close is our commit point.
// Changes made underneath (REST, recall, refresh, later issues) reach the kernel: a thread
// follows the Store's events and invalidates the inodes and entries they touch.
// Open files are counted per node (IsOpen), for the evictor.
//
// Thread safety: all methods may be called concurrently.

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"
#include "store/store.h"

struct fuse_session;

namespace fieldstack::frontends::fuse {

class FuseFs {
 public:
  struct Options {
    std::string mountpoint;
    int threads = 8;
    bool allow_other = true;  // Samba and ganesha run as other users
  };

  // Mounts and starts serving. Needs /dev/fuse and root (or fusermount3).
  static Result<std::unique_ptr<FuseFs>> Mount(store::Store& store, Options options);
  ~FuseFs();  // unmounts

  // A daemon that was killed leaves its mount behind, dead ("transport endpoint is not
  // connected"): detach it so the mount point can be used again. Mount does this too.
  static void DetachDeadMount(const std::string& path);

  // Files open through the mount.
  bool IsOpen(store::NodeId node) const;
  size_t OpenFiles() const;

  // Internal: the low-level callbacks reach the instance through these.
  store::Store& store() { return store_; }
  void Opened(store::NodeId node, const store::Attr& attr);
  void Closed(store::NodeId node);
  // The attributes of an open file, for when it was deleted meanwhile (unlink while open).
  std::optional<store::Attr> OpenAttr(store::NodeId node) const;

 private:
  FuseFs(store::Store& store, Options options) : store_(store), options_(std::move(options)) {}
  void FollowEvents();

  store::Store& store_;
  Options options_;
  fuse_session* session_ = nullptr;
  std::thread loop_;
  std::thread events_;
  std::atomic<bool> stopping_{false};
  mutable Mutex mu_;
  struct Open {
    int count = 0;
    store::Attr attr;  // at open
  };
  std::map<store::NodeId, Open> open_ GUARDED_BY(mu_);
};

}  // namespace fieldstack::frontends::fuse
