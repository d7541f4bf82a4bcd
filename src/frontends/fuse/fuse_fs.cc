#define FUSE_USE_VERSION 312
#include "frontends/fuse/fuse_fs.h"

#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "frontends/fuse/errno_map.h"

namespace fieldstack::frontends::fuse {
namespace {

constexpr double kTimeout = 1.0;  // seconds the kernel may cache entries and attributes
constexpr size_t kMaxIo = 1 << 20;

FuseFs& Fs(fuse_req_t req) { return *static_cast<FuseFs*>(fuse_req_userdata(req)); }
// The Store, with the request's caller recorded as the origin of the changes it makes (every
// Store call of a request goes through here, on the thread serving the request).
store::Origin OriginOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return {true, ctx->uid, ctx->gid, ctx->pid, {}};
}
store::Store& St(fuse_req_t req) {
  store::Store::SetThreadOrigin(OriginOf(req));
  return Fs(req).store();
}
store::NodeId Node(fuse_ino_t ino) { return static_cast<store::NodeId>(ino - 1); }
fuse_ino_t Ino(store::NodeId node) { return static_cast<fuse_ino_t>(node + 1); }

void Fail(fuse_req_t req, const Status& s) { fuse_reply_err(req, ToErrno(s)); }

timespec Ts(int64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

struct stat StatOf(const store::Attr& a) {
  struct stat st {};
  st.st_ino = Ino(a.id);
  mode_t type = a.type == store::NodeType::kDirectory ? S_IFDIR
                : a.type == store::NodeType::kSymlink ? S_IFLNK
                                                      : S_IFREG;
  st.st_mode = type | (a.mode & 07777);
  st.st_nlink = a.type == store::NodeType::kDirectory ? 2 : 1;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size =
      static_cast<off_t>(a.type == store::NodeType::kSymlink ? a.symlink_target.size() : a.size);
  st.st_blksize = 1 << 20;
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st.st_atim = Ts(a.atime_ns);
  st.st_mtim = Ts(a.mtime_ns);
  st.st_ctim = Ts(a.ctime_ns);
  return st;
}

struct stat RootStat() {
  struct stat st {};
  st.st_ino = FUSE_ROOT_ID;
  st.st_mode = S_IFDIR | 0755;
  st.st_nlink = 2;
  return st;
}

void ReplyEntry(fuse_req_t req, const store::Attr& a) {
  fuse_entry_param e{};
  e.ino = Ino(a.id);
  e.attr = StatOf(a);
  e.attr_timeout = kTimeout;
  e.entry_timeout = kTimeout;
  fuse_reply_entry(req, &e);
}

// The share root a top-level name stands for.
Result<store::Attr> ShareRoot(store::Store& st, std::string_view name) {
  FS_ASSIGN_OR_RETURN(store::ShareInfo share, st.GetShare(name));
  return st.GetAttr(share.root);
}

// Operations that would change the list of shares through the mount are refused.
bool AtRoot(fuse_req_t req, fuse_ino_t parent) {
  if (parent != FUSE_ROOT_ID) return false;
  fuse_reply_err(req, EPERM);
  return true;
}

store::NewNode Owner(fuse_req_t req, mode_t mode) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return {static_cast<uint32_t>(mode & 07777), ctx->uid, ctx->gid};
}

struct OpenFile {
  std::unique_ptr<store::FileHandle> handle;
  store::NodeId node;
  bool writable;
};

OpenFile* Handle(fuse_file_info* fi) { return reinterpret_cast<OpenFile*>(fi->fh); }

// --- callbacks ---

void Init(void*, fuse_conn_info* conn) {
  conn->max_write = kMaxIo;
  conn->max_readahead = kMaxIo;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;  // close is the commit point; mtime is ours
  // File handles outlive the kernel's inode cache (nfs-ganesha's FSAL VFS exports the mount):
  // the kernel then looks up "." and ".." by node id.
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
}

// The kernel caps a FUSE mount's readahead at its backing device's default, 128 KiB, whatever
// max_readahead says: sequential reads then arrive as 128 KiB requests, half a chunk each.
// Raising the mount's read_ahead_kb to kMaxIo lets them arrive whole (more than twice the
// throughput here). Best effort: the mount works without it. The device number comes from
// mountinfo, as a stat() of the mount would be a request to ourselves.
void RaiseReadahead(const std::string& mountpoint) {
  const std::string want = std::filesystem::absolute(mountpoint).lexically_normal().string();
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string device;
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point == want) device = dev;  // the last mount there is ours
  }
  if (device.empty()) return;
  std::ofstream ra("/sys/class/bdi/" + device + "/read_ahead_kb");
  ra << kMaxIo / 1024;
  ra.flush();
  if (!ra) spdlog::warn("fuse: could not raise the readahead of {} ({})", mountpoint, device);
}

void ReplyRootEntry(fuse_req_t req) {
  fuse_entry_param e{};
  e.ino = FUSE_ROOT_ID;
  e.attr = RootStat();
  e.attr_timeout = kTimeout;
  e.entry_timeout = kTimeout;
  fuse_reply_entry(req, &e);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  std::string_view n = name;
  if (n == "." || n == "..") {  // export support: the node itself, or its parent
    if (parent == FUSE_ROOT_ID) return ReplyRootEntry(req);
    auto a = St(req).GetAttr(Node(parent));
    if (!a.ok()) return Fail(req, a.status());
    if (n == ".") return ReplyEntry(req, *a);
    if (a->parent == store::kNoNode) return ReplyRootEntry(req);  // a share's root
    auto p = St(req).GetAttr(a->parent);
    if (!p.ok()) return Fail(req, p.status());
    return ReplyEntry(req, *p);
  }
  if (n == store::kStagingDir && parent != FUSE_ROOT_ID) {
    // The object front ends' staging folder at a share's root is not part of the share.
    auto p = St(req).GetAttr(Node(parent));
    if (p.ok() && p->parent == store::kNoNode) return (void)fuse_reply_err(req, ENOENT);
  }
  auto a = parent == FUSE_ROOT_ID ? ShareRoot(St(req), name) : St(req).Lookup(Node(parent), name);
  if (!a.ok()) return Fail(req, a.status());
  ReplyEntry(req, *a);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino == FUSE_ROOT_ID) {
    struct stat st = RootStat();
    fuse_reply_attr(req, &st, kTimeout);
    return;
  }
  auto a = St(req).GetAttr(Node(ino));
  if (!a.ok() && a.status().code() == StatusCode::kNotFound) {
    // Deleted while open: the open handles still read it (POSIX unlink-while-open).
    if (auto open = Fs(req).OpenAttr(Node(ino))) {
      struct stat st = StatOf(*open);
      st.st_nlink = 0;
      fuse_reply_attr(req, &st, 0);
      return;
    }
  }
  if (!a.ok()) return Fail(req, a.status());
  struct stat st = StatOf(*a);
  fuse_reply_attr(req, &st, kTimeout);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The Store keeps times as nanoseconds in 64 bits (1677-09-21 to 2262-04-11); like the kernel
// does for file systems with a smaller range, times outside it are clamped to it.
int64_t NsOf(const timespec& t) {
  constexpr int64_t kMaxSec = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  if (t.tv_sec > kMaxSec) return kMaxSec * 1'000'000'000;
  if (t.tv_sec < -kMaxSec) return -kMaxSec * 1'000'000'000;
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  if (ino == FUSE_ROOT_ID) return (void)fuse_reply_err(req, EPERM);
  store::SetAttrRequest r;
  if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    r.atime_ns = NowNs();
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    r.atime_ns = NsOf(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    r.mtime_ns = NowNs();
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    r.mtime_ns = NsOf(attr->st_mtim);
  }
  auto a = St(req).SetAttr(Node(ino), r);
  if (!a.ok()) return Fail(req, a.status());
  struct stat st = StatOf(*a);
  fuse_reply_attr(req, &st, kTimeout);
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  auto a = St(req).GetAttr(Node(ino));
  if (!a.ok()) return Fail(req, a.status());
  if (a->type != store::NodeType::kSymlink) return (void)fuse_reply_err(req, EINVAL);
  fuse_reply_readlink(req, a->symlink_target.c_str());
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  if (AtRoot(req, parent)) return;
  auto a = St(req).Mkdir(Node(parent), name, Owner(req, mode));
  if (!a.ok()) return Fail(req, a.status());
  ReplyEntry(req, *a);
}

void SymLink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  if (AtRoot(req, parent)) return;
  auto a = St(req).Symlink(Node(parent), name, link, Owner(req, 0777));
  if (!a.ok()) return Fail(req, a.status());
  ReplyEntry(req, *a);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (AtRoot(req, parent)) return;
  fuse_reply_err(req, ToErrno(St(req).Unlink(Node(parent), name)));
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (AtRoot(req, parent)) return;
  fuse_reply_err(req, ToErrno(St(req).Rmdir(Node(parent), name)));
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
            const char* new_name, unsigned int flags) {
  if (parent == FUSE_ROOT_ID || new_parent == FUSE_ROOT_ID) {
    return (void)fuse_reply_err(req, parent == new_parent ? EPERM : EXDEV);
  }
  if (flags & ~RENAME_NOREPLACE) return (void)fuse_reply_err(req, EINVAL);  // no EXCHANGE
  auto from = St(req).GetAttr(Node(parent));
  auto to = St(req).GetAttr(Node(new_parent));
  if (from.ok() && to.ok() && from->share_id != to->share_id) {
    return (void)fuse_reply_err(req, EXDEV);  // shares are separate file systems
  }
  fuse_reply_err(req, ToErrno(St(req).Rename(Node(parent), name, Node(new_parent), new_name,
                                             (flags & RENAME_NOREPLACE) != 0)));
}

void Link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }

void ReplyOpen(fuse_req_t req, fuse_file_info* fi, std::unique_ptr<store::FileHandle> h,
               const store::Attr& attr, bool writable, bool created) {
  store::NodeId node = attr.id;
  auto* of = new OpenFile{std::move(h), node, writable};
  fi->fh = reinterpret_cast<uint64_t>(of);
  fi->keep_cache = 0;
  Fs(req).Opened(node, attr);
  if (created) {
    fuse_entry_param e{};
    e.ino = Ino(node);
    e.attr = StatOf(attr);
    e.attr_timeout = kTimeout;
    e.entry_timeout = kTimeout;
    if (fuse_reply_create(req, &e, fi) != 0) {
      Fs(req).Closed(node);
      delete of;
    }
  } else if (fuse_reply_open(req, fi) != 0) {
    Fs(req).Closed(node);
    delete of;
  }
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  if (AtRoot(req, parent)) return;
  auto h = St(req).Create(Node(parent), name, Owner(req, mode));
  if (!h.ok()) return Fail(req, h.status());
  store::NodeId node = (*h)->node();
  auto a = St(req).GetAttr(node);
  if (!a.ok()) return Fail(req, a.status());
  ReplyOpen(req, fi, std::move(*h), *a, true, true);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == FUSE_ROOT_ID) return (void)fuse_reply_err(req, EISDIR);
  bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
  auto h = St(req).OpenFile(Node(ino), writable);
  if (!h.ok()) return Fail(req, h.status());
  store::SetAttrRequest trunc;
  trunc.size = 0;
  auto a = writable && (fi->flags & O_TRUNC) ? St(req).SetAttr(Node(ino), trunc)
                                             : St(req).GetAttr(Node(ino));
  if (!a.ok()) return Fail(req, a.status());
  ReplyOpen(req, fi, std::move(*h), *a, writable, false);
}

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  std::vector<uint8_t> buf(std::min(size, kMaxIo * 4));
  auto n = Handle(fi)->handle->Read(static_cast<uint64_t>(off), buf);
  if (!n.ok()) return Fail(req, n.status());
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *n);
}

void Write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
           fuse_file_info* fi) {
  OpenFile* of = Handle(fi);
  store::Store::SetThreadOrigin(OriginOf(req));  // the Store keeps each file's last writer
  Status s =
      of->handle->Write(static_cast<uint64_t>(off), {reinterpret_cast<const uint8_t*>(data), size});
  if (!s.ok()) return Fail(req, s);
  fuse_reply_write(req, size);
}

// close(2) waits for flush: committing here makes "close returned" mean "durable", as the
// Store promises (docs/semantics.md).
void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  OpenFile* of = Handle(fi);
  store::Store::SetThreadOrigin(OriginOf(req));
  fuse_reply_err(req, of->writable ? ToErrno(of->handle->Sync()) : 0);
}

void FSync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  store::Store::SetThreadOrigin(OriginOf(req));
  fuse_reply_err(req, ToErrno(Handle(fi)->handle->Sync()));
}

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  OpenFile* of = Handle(fi);
  store::Store::SetThreadOrigin({});  // the kernel releases without a caller
  Status s = of->handle->Close();
  if (!s.ok()) spdlog::error("fuse: closing file {}: {}", of->node, s.ToString());
  Fs(req).Closed(of->node);
  delete of;
  fuse_reply_err(req, 0);
}

// A directory listing in progress: where the previous readdir call stopped, so the next one
// continues after that name (the Store pages by name) instead of from the start.
struct DirCursor {
  off_t next_off = 0;
  std::string last;
};

void OpenDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fi->fh = reinterpret_cast<uint64_t>(new DirCursor);
  fuse_reply_open(req, fi);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirCursor*>(fi->fh);
  fuse_reply_err(req, 0);
}

// Up to `limit` entries of directory `ino` named after `after`, in byte order: the shares for
// the mount's root, else the Store's paged listing.
Result<std::vector<store::Attr>> Entries(store::Store& st, fuse_ino_t ino, const std::string& after,
                                         size_t limit) {
  if (ino != FUSE_ROOT_ID) {
    FS_ASSIGN_OR_RETURN(auto page, st.ReadDir(Node(ino), after, limit));
    if (std::any_of(page.begin(), page.end(),
                    [](const store::Attr& a) { return a.name == store::kStagingDir; })) {
      // Hidden at a share's root (the object front ends' staging folder).
      FS_ASSIGN_OR_RETURN(store::Attr dir, st.GetAttr(Node(ino)));
      if (dir.parent == store::kNoNode) {
        std::erase_if(page, [](const store::Attr& a) { return a.name == store::kStagingDir; });
      }
    }
    return page;
  }
  FS_ASSIGN_OR_RETURN(auto shares, st.ListShares());
  std::sort(shares.begin(), shares.end(),
            [](const store::ShareInfo& x, const store::ShareInfo& y) { return x.name < y.name; });
  std::vector<store::Attr> out;
  for (const auto& sh : shares) {
    if (sh.name <= after || out.size() == limit) continue;
    FS_ASSIGN_OR_RETURN(store::Attr a, st.GetAttr(sh.root));
    a.name = sh.name;
    out.push_back(std::move(a));
  }
  return out;
}

// Offsets: 1 is ".", 2 is "..", entry i (from 0) is 3 + i.
void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  auto* cur = reinterpret_cast<DirCursor*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  auto add = [&](const std::string& name, const struct stat& st, off_t next) {
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, next);
    if (need > size - used) return false;
    used += need;
    return true;
  };
  if (off < 1) {
    struct stat st {};
    st.st_ino = ino;
    st.st_mode = S_IFDIR;
    if (!add(".", st, 1)) return (void)fuse_reply_buf(req, buf.data(), used);
    off = 1;
  }
  if (off < 2) {
    struct stat st {};
    st.st_ino = FUSE_ROOT_ID;  // readdir(3) skips entries whose inode is 0
    st.st_mode = S_IFDIR;
    if (!add("..", st, 2)) return (void)fuse_reply_buf(req, buf.data(), used);
    off = 2;
  }
  if (off != cur->next_off || off == 2) {
    // A new listing or a seek: find the entry before `off` from the start.
    cur->last.clear();
    off_t skip = off - 2;
    while (skip > 0) {
      auto page =
          Entries(St(req), ino, cur->last, static_cast<size_t>(std::min<off_t>(skip, 1024)));
      if (!page.ok()) return Fail(req, page.status());
      if (page->empty()) break;
      size_t n = std::min<size_t>(page->size(), static_cast<size_t>(skip));
      cur->last = (*page)[n - 1].name;
      skip -= static_cast<off_t>(n);
    }
  }
  for (;;) {
    auto page = Entries(St(req), ino, cur->last, 256);
    if (!page.ok()) return Fail(req, page.status());
    if (page->empty()) break;
    for (const auto& a : *page) {
      if (!add(a.name, StatOf(a), off + 1)) {
        cur->next_off = off;
        return (void)fuse_reply_buf(req, buf.data(), used);
      }
      ++off;
      cur->last = a.name;
    }
  }
  cur->next_off = off;
  fuse_reply_buf(req, buf.data(), used);
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  auto u = St(req).GetUsage();
  if (!u.ok()) return Fail(req, u.status());
  struct statvfs st {};
  st.f_bsize = st.f_frsize = 4096;
  st.f_blocks = u->volume_total_bytes / 4096;
  st.f_bfree = st.f_bavail = u->volume_free_bytes / 4096;
  st.f_files = st.f_ffree = 1'000'000'000;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  if (ino == FUSE_ROOT_ID) return (void)fuse_reply_err(req, EPERM);
  auto mode = (flags & XATTR_CREATE)    ? store::Store::XattrMode::kCreate
              : (flags & XATTR_REPLACE) ? store::Store::XattrMode::kReplace
                                        : store::Store::XattrMode::kAny;
  Status s = St(req).SetXattr(Node(ino), name, {value, size}, mode);
  fuse_reply_err(req, s.code() == StatusCode::kNotFound ? ENODATA : ToErrno(s));
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (ino == FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENODATA);
  auto v = St(req).GetXattr(Node(ino), name);
  if (!v.ok()) {
    return (void)fuse_reply_err(
        req, v.status().code() == StatusCode::kNotFound ? ENODATA : ToErrno(v.status()));
  }
  if (size == 0) return (void)fuse_reply_xattr(req, v->size());
  if (size < v->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, v->data(), v->size());
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::string all;
  if (ino != FUSE_ROOT_ID) {
    auto names = St(req).ListXattrs(Node(ino));
    if (!names.ok()) return Fail(req, names.status());
    for (const auto& n : *names) all += n + '\0';
  }
  if (size == 0) return (void)fuse_reply_xattr(req, all.size());
  if (size < all.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, all.data(), all.size());
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (ino == FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENODATA);
  Status s = St(req).RemoveXattr(Node(ino), name);
  fuse_reply_err(req, s.code() == StatusCode::kNotFound ? ENODATA : ToErrno(s));
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops o{};
  o.init = Init;
  o.lookup = Lookup;
  o.getattr = GetAttr;
  o.setattr = SetAttr;
  o.readlink = ReadLink;
  o.mkdir = MkDir;
  o.symlink = SymLink;
  o.unlink = Unlink;
  o.rmdir = RmDir;
  o.rename = Rename;
  o.link = Link;
  o.create = Create;
  o.open = Open;
  o.read = Read;
  o.write = Write;
  o.flush = Flush;
  o.fsync = FSync;
  o.release = Release;
  o.opendir = OpenDir;
  o.readdir = ReadDir;
  o.releasedir = ReleaseDir;
  o.statfs = StatFs;
  o.setxattr = SetXattr;
  o.getxattr = GetXattr;
  o.listxattr = ListXattr;
  o.removexattr = RemoveXattr;
  return o;
}();

}  // namespace

void FuseFs::DetachDeadMount(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOTCONN) {
    spdlog::warn("fuse: detaching the dead mount left on {}", path);
    ::umount2(path.c_str(), MNT_DETACH);
  }
}

Result<std::unique_ptr<FuseFs>> FuseFs::Mount(store::Store& store, Options options) {
  auto fs = std::unique_ptr<FuseFs>(new FuseFs(store, std::move(options)));
  DetachDeadMount(fs->options_.mountpoint);
  std::string opts = "default_permissions,fsname=fieldstack,subtype=fieldstack";
  if (fs->options_.allow_other) opts += ",allow_other";
  std::vector<std::string> argv = {"fieldstack", "-o", opts};
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
  fs->session_ = fuse_session_new(&args, &kOps, sizeof kOps, fs.get());
  fuse_opt_free_args(&args);  // parsing copied them
  if (fs->session_ == nullptr) return InternalError("fuse: cannot create a session");
  if (fuse_session_mount(fs->session_, fs->options_.mountpoint.c_str()) != 0) {
    fuse_session_destroy(fs->session_);
    fs->session_ = nullptr;
    return UnavailableError("fuse: cannot mount on " + fs->options_.mountpoint +
                            " (is /dev/fuse there, and are we root?)");
  }
  FuseFs* self = fs.get();
  fs->loop_ = std::thread([self] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, static_cast<unsigned>(self->options_.threads));
    fuse_loop_cfg_set_idle_threads(cfg, static_cast<unsigned>(self->options_.threads));
    fuse_session_loop_mt(self->session_, cfg);
    fuse_loop_cfg_destroy(cfg);
  });
  fs->events_ = std::thread([self] { self->FollowEvents(); });
  RaiseReadahead(fs->options_.mountpoint);
  spdlog::info("fuse: shares mounted on {}", fs->options_.mountpoint);
  return fs;
}

FuseFs::~FuseFs() {
  stopping_ = true;
  if (events_.joinable()) events_.join();
  if (session_ != nullptr) {
    fuse_session_exit(session_);
    fuse_session_unmount(session_);  // the loop's read of /dev/fuse ends
  }
  if (loop_.joinable()) loop_.join();
  if (session_ != nullptr) fuse_session_destroy(session_);
}

void FuseFs::Opened(store::NodeId node, const store::Attr& attr) {
  MutexLock l(mu_);
  Open& o = open_[node];
  ++o.count;
  o.attr = attr;
}

void FuseFs::Closed(store::NodeId node) {
  MutexLock l(mu_);
  auto it = open_.find(node);
  if (it != open_.end() && --it->second.count <= 0) open_.erase(it);
}

std::optional<store::Attr> FuseFs::OpenAttr(store::NodeId node) const {
  MutexLock l(mu_);
  auto it = open_.find(node);
  if (it == open_.end()) return std::nullopt;
  return it->second.attr;
}

bool FuseFs::IsOpen(store::NodeId node) const {
  MutexLock l(mu_);
  return open_.count(node) > 0;
}

size_t FuseFs::OpenFiles() const {
  MutexLock l(mu_);
  return open_.size();
}

void FuseFs::FollowEvents() {
  // From now on: what changed before the mount is not in any kernel cache.
  auto last = store_.LastEventSeq();
  uint64_t after = last.ok() ? *last : 0;
  while (!stopping_) {
    auto events = store_.ReadEvents(after, 1000);
    if (!events.ok() || events->empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    for (const store::Event& e : *events) {
      after = e.seq;
      fuse_lowlevel_notify_inval_inode(session_, Ino(e.node), 0, 0);
      if (e.kind == store::EventKind::kRename || e.kind == store::EventKind::kUnlink ||
          e.kind == store::EventKind::kRmdir) {
        // The parent's entry for the old name.
        const std::string& path = e.kind == store::EventKind::kRename ? e.old_path : e.path;
        size_t slash = path.rfind('/');
        std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
        auto share = store_.ListShares();
        if (!share.ok()) continue;
        for (const auto& s : *share) {
          if (s.id != e.share_id) continue;
          auto parent = slash == std::string::npos ? store_.GetAttr(s.root)
                                                   : store_.Resolve(s.name, path.substr(0, slash));
          if (parent.ok()) {
            fuse_lowlevel_notify_inval_entry(session_, Ino(parent->id), name.c_str(), name.size());
          }
        }
      }
    }
  }
}

}  // namespace fieldstack::frontends::fuse
