#pragma once

// Value types of the Store's public API.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fieldstack::store {

using NodeId = uint64_t;
inline constexpr NodeId kNoNode = 0;
// The hidden folder at a share's root where the object front ends stage uploads (objects.h):
// never listed by them or the file shares, never uploaded to the cloud.
inline constexpr char kStagingDir[] = ".fieldstack-staging";

inline constexpr uint64_t kMaxFileBytes = 5ull << 40;  // 5 TiB
inline constexpr size_t kMaxNameBytes = 255;
inline constexpr size_t kMaxPathBytes = 1024;
inline constexpr size_t kMaxXattrValueBytes = 64 * 1024;

enum class NodeType : int { kFile = 1, kDirectory = 2, kSymlink = 3 };

enum class ShareKind : int {
  kLocal = 1,  // kept on the box
  kCloud = 2,  // uploaded to a cloud target
};

// A file's place in its life (DESIGN.md section 3). Local shares keep files kLocal.
enum class FileState : int {
  kLocal = 0,
  kWriting = 1,  // has writes not yet committed (in memory only; never stored)
  kDirty = 2,    // committed, waiting for upload
  kUploading = 3,
  kClean = 4,   // the cloud has this version
  kFailed = 5,  // permanent upload error
  kStub = 6,    // evicted: metadata only
  kRecalling = 7,
};

std::string_view FileStateName(FileState s);
std::string_view ShareKindName(ShareKind k);

struct Attr {
  NodeId id = kNoNode;
  NodeId parent = kNoNode;
  uint32_t share_id = 0;
  std::string name;
  NodeType type = NodeType::kFile;
  uint32_t mode = 0;  // permission bits only (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t version = 0;   // bumps on every committed change of this node
  uint64_t data_gen = 0;  // generation of the committed data; bumps when data is committed
  FileState state = FileState::kLocal;
  std::string symlink_target;
};

struct ShareInfo {
  uint32_t id = 0;
  std::string name;
  ShareKind kind = ShareKind::kLocal;
  NodeId root = kNoNode;
  uint64_t used_bytes = 0;  // sum of file sizes
};

struct Usage {
  uint64_t used_bytes = 0;  // all shares
  uint64_t volume_total_bytes = 0;
  uint64_t volume_free_bytes = 0;
};

enum class EventKind : int {
  kCreate = 1,
  kMkdir = 2,
  kSymlink = 3,
  kWrite = 4,    // data committed (close or sync after writes, truncate)
  kSetAttr = 5,  // mode, owner or times
  kRename = 6,
  kUnlink = 7,
  kRmdir = 8,
  kXattr = 9,
  kRefresh = 10,  // the data was replaced by a newer object from the cloud (now a stub)
};
std::string_view EventKindName(EventKind k);

// A durable record of one committed change. seq increases by one per event.
// Who made a change, as far as the front end knows: the calling process's ids (FUSE passes
// those of the process behind each request: smbd's session process, ganesha with the NFS
// client's squashed ids, or a local program) and that process's executable name, read when the
// change is committed. `known` is false for changes the Store makes itself (e.g. at shutdown).
struct Origin {
  bool known = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;
  std::string process;  // e.g. "smbd", "ganesha.nfsd", "cp"; empty when it had exited
};

struct Event {
  uint64_t seq = 0;
  int64_t time_ns = 0;
  uint32_t share_id = 0;
  NodeId node = kNoNode;
  EventKind kind = EventKind::kCreate;
  uint64_t version = 0;  // the node's version after the change
  std::string path;      // share-relative, '/'-separated; the new path for a rename
  std::string old_path;  // for kRename
  Origin origin;
};

// A file version waiting in the upload queue (one row per file; a newer version replaces an
// older one).
struct UploadItem {
  NodeId node = kNoNode;
  uint32_t share_id = 0;
  uint64_t data_gen = 0;      // the committed version to upload
  uint32_t attempts = 0;      // failed attempts so far
  int64_t not_before_ns = 0;  // wall-clock time of the next attempt
  std::string upload_key;     // multi-part upload in progress, to resume (empty: none)
  std::string upload_id;
  std::string last_error;
  std::string cloud_key;   // key and etag of the object we last wrote for this file
  std::string cloud_etag;  // (empty: none)
};

// A multi-part upload to abort (Store::AbandonedUploads).
struct AbandonedUpload {
  uint64_t id = 0;
  uint32_t share_id = 0;
  std::string key;
  std::string upload_id;
};

// An object in the cloud that no file owns any more (Store::DueReleased).
// ReleasedObject::etag of an object that may be ours but whose etag was never recorded (an
// upload attempt whose answer was lost): "owner-only:<node id>". Mirror deletes it only if it
// carries that node's owner mark.
inline constexpr char kOwnerOnlyEtag[] = "owner-only:";

struct ReleasedObject {
  uint64_t id = 0;
  uint32_t share_id = 0;
  std::string key;
  std::string etag;
  uint32_t attempts = 0;
  int64_t not_before_ns = 0;
  std::string last_error;
};

// The cloud object that holds a file's committed data (uploaded by this box, or found by a
// refresh), and how recalled bytes are checked: by the MD5 of each part as it was sent, or
// (objects this box did not write) by the etag, and the whole object's MD5 when the service
// keeps one.
struct CloudCopy {
  std::string key;
  std::string etag;
  uint64_t size = 0;
  uint64_t part_size = 0;  // bytes per part (the last may be shorter); 0: one part
  std::string part_md5s;   // raw 16-byte MD5 of each part in order; empty: not known
  std::string md5;         // raw MD5 of the whole object; empty: not known
};

// What a refresh brings in for one cloud object: a stub (metadata only; data on first read).
struct StubSpec {
  CloudCopy cloud;
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // set with the stub
};

// A resident clean file the evictor may drop (Store::EvictionCandidates).
struct CacheFile {
  NodeId node = kNoNode;
  uint64_t data_gen = 0;
  uint64_t size = 0;
  int64_t used_ns = 0;  // last open or commit, as the Store tracks it
};

// Bytes of a share by cache state (Store::GetCacheUsage). resident = everything but stubs.
struct CacheUsage {
  uint64_t resident_bytes = 0;
  uint64_t stub_bytes = 0;
  uint64_t clean_bytes = 0;  // resident and in the cloud: what eviction can free
  uint64_t stub_files = 0;
};

// What the Store asks of the cache policy and the cloud; src/sync implements it (Evictor,
// Recaller) and the daemon sets it before any front end starts (Store::SetCacheHooks).
class CacheHooks {
 public:
  virtual ~CacheHooks() = default;
  // Called before `bytes` more data land on the box in share `share_id` (a write, or a block
  // of a recall). May block while the cache is over its hard cap (back-pressure), then
  // returns NoSpace; OK lets the data in.
  virtual Status Admit(uint32_t share_id, uint64_t bytes) = 0;
  // Reads bytes [offset, offset + out.size()) of `copy` from share `share_id`'s cloud target,
  // checked as CloudCopy says. `offset` is a multiple of the Store's chunk size; the range
  // ends at a chunk boundary or at the end of the object. Unavailable when the cloud is not
  // reachable within the recall timeout, Corruption when the bytes fail their checksum,
  // FailedPrecondition when the object changed in the cloud.
  virtual Status Fetch(uint32_t share_id, const CloudCopy& copy, uint64_t offset,
                       std::span<uint8_t> out) = 0;
  // After every block of `copy` was fetched: Ok if the object is still that copy (its etag).
  // Called for copies without part MD5s, before the recalled file is clean.
  virtual Status Confirm(uint32_t share_id, const CloudCopy& copy) = 0;
  // Whether a path of the share must stay resident.
  virtual bool Pinned(uint32_t share_id, std::string_view path) = 0;
};

struct SetAttrRequest {
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
};

struct NewNode {
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

}  // namespace fieldstack::store
