#include "store/store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <shared_mutex>
#include <thread>

#include "common/thread_pool.h"
#include "crypto/chunk_codec.h"
#include "store/chunk_file.h"
#include "store/db.h"
#include "store/names.h"

namespace fieldstack::store {

namespace {

// The origin of the changes the current thread commits (see Store::SetThreadOrigin); set on
// the committer thread around each body.
thread_local Origin t_origin;

// The process a caller's thread id belongs to, and its executable's name; the name is empty
// when the process is gone.
void ResolveProcess(Origin& o) {
  if (o.pid <= 0) return;
  std::string dir = "/proc/" + std::to_string(o.pid);
  std::ifstream status(dir + "/status");  // "Tgid:" names the process of a thread
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Tgid:")) {
      o.pid = std::atoi(line.c_str() + 5);
      break;
    }
  }
  char buf[PATH_MAX];
  ssize_t n = ::readlink((dir + "/exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) return;
  std::string exe(buf, static_cast<size_t>(n));
  if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
  o.process = exe.substr(exe.rfind('/') + 1);
}

}  // namespace

// Per-file state shared by every handle of one file. Guarded by `mu`, except `handles` and
// `deleted`, which Store::files_mu_ guards.
struct LiveFile {
  Mutex mu;
  NodeId id = kNoNode;
  uint32_t share_id = 0;
  ShareKind share_kind = ShareKind::kLocal;
  // Changed under Store::files_mu_, except that a recall fetch, which runs while a handle or an
  // earlier fetch holds the file open, adds its own without it (lock order).
  std::atomic<int> handles{0};
  std::weak_ptr<LiveFile> self;
  // Unlinked while open; set under Store::files_mu_, read by a recall to stop fetching.
  std::atomic<bool> deleted{false};
  int writers = 0;
  bool marked = false;  // an open_writes row is durable for this file
  uint64_t committed_gen = 0;
  uint64_t committed_size = 0;
  uint64_t size = 0;             // including uncommitted writes
  bool dirty = false;            // uncommitted changes to data or size
  bool unsynced = false;         // backing file written since the last fdatasync
  bool created_backing = false;  // backing file created, its directory not yet synced
  int64_t mtime_ns = 0;
  std::unique_ptr<crypto::ChunkCodec> codec;  // until the ChunkFile takes it
  std::unique_ptr<ChunkFile> chunks;
  // Write-back buffer for the one chunk being filled (sequential writes seal each chunk once).
  int64_t buf_index = -1;
  uint32_t buf_len = 0;
  bool buf_dirty = false;
  std::vector<uint8_t> buf;
  // The last chunk read in part, decrypted: the next part of it is served from here (the
  // kernel reads in pieces smaller than a chunk).
  std::vector<uint8_t> scratch;
  int64_t scratch_index = -1;
  ChunkFile::ContentId scratch_content;
  // Who changed the data last (a write, a truncate, or opening for writing): the origin of
  // the kWrite event of the next commit, whichever handle or thread makes it.
  Origin writer;
  int32_t writer_thread = 0;  // the thread id `writer` was resolved from
  // Recall of a stub (Store::EnsureResident): the cloud copy, and per block of `block` bytes
  // whether it is in the backing file (kHave), being fetched (kFetching) or not (kMissing).
  // Every reader waits on recall_cv; the recall goes on, `parallel` blocks at once, until the
  // whole file is back or a block fails (recall_error; the next read tries again).
  enum : uint8_t { kMissing = 0, kFetching = 1, kHave = 2 };
  bool stub = false;
  bool recall_started = false;  // stub_data row committed and backing file created
  CloudCopy copy;
  uint64_t block = 0;
  std::vector<uint8_t> blocks;
  size_t blocks_have = 0;
  size_t fetching = 0;
  size_t next_block = 0;  // where the recall goes on (PumpRecall)
  size_t parallel = 4;    // blocks fetched at once (fewer when blocks are large)
  Status recall_error;
  // Bumped by each read that starts waiting: fetches scheduled before report their failure
  // only as a missing block, so an old outage never fails a read made after it.
  uint64_t recall_epoch = 0;
  CondVar recall_cv;

  uint64_t pending_gen() const { return committed_gen + 1; }
};

namespace {

// Records the calling thread's origin as the file's last writer (f.mu held). The process is
// looked up now, while the caller is surely alive, not when a later close commits.
void NoteWriter(LiveFile& f, bool only_if_unknown = false) {
  if (!t_origin.known || (only_if_unknown && f.writer.known)) return;
  if (f.writer.known && f.writer_thread == t_origin.pid && f.writer.uid == t_origin.uid &&
      f.writer.gid == t_origin.gid) {
    return;
  }
  f.writer_thread = t_origin.pid;
  f.writer = t_origin;
  ResolveProcess(f.writer);
}

// The file's last writer as the origin of what the current thread commits, until destroyed.
class WriterOrigin {
 public:
  explicit WriterOrigin(const LiveFile& f) : saved_(t_origin) {
    if (f.writer.known) t_origin = f.writer;
  }
  ~WriterOrigin() { t_origin = std::move(saved_); }

 private:
  Origin saved_;
};

}  // namespace

namespace {

// Shows uncommitted writes of an open file in its attributes, as a local filesystem would.
void OverlayPending(Attr& a, LiveFile& f) REQUIRES(f.mu) {
  if (!f.dirty) return;
  a.size = f.size;
  a.mtime_ns = f.mtime_ns;
  a.state = FileState::kWriting;
}

constexpr int kSchemaVersion = 3;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shares(
  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, kind INTEGER NOT NULL,
  root_id INTEGER NOT NULL, used_bytes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS nodes(
  id INTEGER PRIMARY KEY AUTOINCREMENT, share_id INTEGER NOT NULL, parent_id INTEGER NOT NULL,
  name TEXT NOT NULL, type INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL,
  gid INTEGER NOT NULL, size INTEGER NOT NULL DEFAULT 0, atime_ns INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, version INTEGER NOT NULL,
  data_gen INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL DEFAULT 0, target TEXT,
  wrapped_key BLOB, key_id INTEGER NOT NULL DEFAULT 0, cloud_key TEXT, cloud_etag TEXT, sync_error TEXT,
  used_ns INTEGER NOT NULL DEFAULT 0, part_size INTEGER, part_md5s BLOB, cloud_md5 BLOB,
  refresh_id INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS nodes_dentry ON nodes(parent_id, name);
CREATE TABLE IF NOT EXISTS xattrs(
  node_id INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY(node_id, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ns INTEGER NOT NULL, share_id INTEGER NOT NULL,
  node_id INTEGER NOT NULL, kind INTEGER NOT NULL, version INTEGER NOT NULL, path TEXT NOT NULL,
  old_path TEXT);
CREATE TABLE IF NOT EXISTS event_origins(
  seq INTEGER PRIMARY KEY, uid INTEGER NOT NULL, gid INTEGER NOT NULL, pid INTEGER NOT NULL,
  process TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors(name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_writes(node_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS orphans(node_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS upload_queue(
  node_id INTEGER PRIMARY KEY, share_id INTEGER NOT NULL, data_gen INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, not_before_ns INTEGER NOT NULL DEFAULT 0,
  upload_key TEXT, upload_id TEXT, last_error TEXT);
CREATE INDEX IF NOT EXISTS upload_queue_due ON upload_queue(not_before_ns);
CREATE TABLE IF NOT EXISTS released_objects(
  id INTEGER PRIMARY KEY AUTOINCREMENT, share_id INTEGER NOT NULL, key TEXT NOT NULL,
  etag TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before_ns INTEGER NOT NULL DEFAULT 0,
  last_error TEXT);
CREATE INDEX IF NOT EXISTS released_by_key ON released_objects(share_id, key);
CREATE TABLE IF NOT EXISTS upload_attempts(
  node_id INTEGER PRIMARY KEY, share_id INTEGER NOT NULL, key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stub_data(node_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS abandoned_uploads(
  id INTEGER PRIMARY KEY AUTOINCREMENT, share_id INTEGER NOT NULL, key TEXT NOT NULL,
  upload_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deleted_shares(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, deleted_ns INTEGER NOT NULL,
  purged_ns INTEGER NOT NULL DEFAULT 0);
)sql";

// Schema version 1 -> 2 (cache tiering): the columns a version-1 nodes table lacks.
constexpr const char* kMigrateV2[] = {
    "ALTER TABLE nodes ADD COLUMN used_ns INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE nodes ADD COLUMN part_size INTEGER",
    "ALTER TABLE nodes ADD COLUMN part_md5s BLOB",
    "ALTER TABLE nodes ADD COLUMN cloud_md5 BLOB",
    "ALTER TABLE nodes ADD COLUMN refresh_id INTEGER NOT NULL DEFAULT 0",
    // Files from before tiering count as used when they last changed or were read.
    "UPDATE nodes SET used_ns = max(atime_ns, mtime_ns)",
};
// Indexes of version 2: clean files by last use (eviction), stubs by share (cache usage).
constexpr const char* kIndexesV2 = R"sql(
CREATE INDEX IF NOT EXISTS nodes_lru ON nodes(share_id, used_ns, id) WHERE state=4;
CREATE INDEX IF NOT EXISTS nodes_stubs ON nodes(share_id, size) WHERE state=6;
)sql";

constexpr const char* kNodeCols =
    "id, parent_id, share_id, name, type, mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, "
    "version, state, target, data_gen";
// The condition that a node's share still exists. The nodes of a deleted share stay in the
// table until Store::PurgeShare has removed them, in batches, after the share's own commit:
// every lookup by id or name leaves them out, so the share goes at once, and nothing can be
// created below them.
constexpr const char* kLiveShare = "EXISTS (SELECT 1 FROM shares s WHERE s.id = nodes.share_id)";

Attr ReadAttr(const Stmt& s) {
  Attr a;
  a.id = s.Int(0);
  a.parent = s.Int(1);
  a.share_id = static_cast<uint32_t>(s.Int(2));
  a.name = s.Text(3);
  a.type = static_cast<NodeType>(s.Int(4));
  a.mode = static_cast<uint32_t>(s.Int(5));
  a.uid = static_cast<uint32_t>(s.Int(6));
  a.gid = static_cast<uint32_t>(s.Int(7));
  a.size = s.Int(8);
  a.atime_ns = s.Int(9);
  a.mtime_ns = s.Int(10);
  a.ctime_ns = s.Int(11);
  a.version = s.Int(12);
  a.state = static_cast<FileState>(s.Int(13));
  a.symlink_target = s.Text(14);
  a.data_gen = s.Int(15);
  return a;
}

Result<Attr> LoadAttr(Db& db, NodeId id) {
  static const std::string sql =
      std::string("SELECT ") + kNodeCols + " FROM nodes WHERE id=? AND " + kLiveShare;
  FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare(sql.c_str()));
  s.Bind(1, static_cast<int64_t>(id));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no node " + std::to_string(id));
  return ReadAttr(s);
}

Result<Attr> LoadChild(Db& db, NodeId parent, std::string_view name) {
  static const std::string sql = std::string("SELECT ") + kNodeCols +
                                 " FROM nodes WHERE parent_id=? AND name=? AND " + kLiveShare;
  FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare(sql.c_str()));
  s.Bind(1, static_cast<int64_t>(parent)).Bind(2, name);
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no entry '" + std::string(name) + "'");
  return ReadAttr(s);
}

// The share-relative path of `id`, walking up to the share root.
Result<std::string> PathIn(Db& db, NodeId id) {
  std::vector<std::string> parts;
  for (int depth = 0; depth < 4096; ++depth) {
    FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT parent_id, name FROM nodes WHERE id=?"));
    s.Bind(1, static_cast<int64_t>(id));
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no node " + std::to_string(id));
    NodeId parent = s.Int(0);
    if (parent == kNoNode) break;  // share root
    parts.push_back(s.Text(1));
    id = parent;
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!path.empty()) path += '/';
    path += *it;
  }
  return path;
}

Status AppendEvent(Db& db, int64_t now, uint32_t share, NodeId node, EventKind kind,
                   uint64_t version, std::string_view path, std::string_view old_path = {}) {
  FS_ASSIGN_OR_RETURN(
      Stmt s, db.Prepare("INSERT INTO events(time_ns, share_id, node_id, kind, version, path, "
                         "old_path) VALUES(?,?,?,?,?,?,?)"));
  s.Bind(1, now).Bind(2, int64_t{share}).Bind(3, static_cast<int64_t>(node));
  s.Bind(4, static_cast<int64_t>(kind)).Bind(5, static_cast<int64_t>(version)).Bind(6, path);
  if (old_path.empty()) {
    s.BindNull(7);
  } else {
    s.Bind(7, old_path);
  }
  FS_RETURN_IF_ERROR(s.Run());
  if (!t_origin.known) return Status::Ok();
  if (t_origin.process.empty()) ResolveProcess(t_origin);
  FS_ASSIGN_OR_RETURN(Stmt o, db.Prepare("INSERT INTO event_origins(seq, uid, gid, pid, process) "
                                         "VALUES(?,?,?,?,?)"));
  o.Bind(1, db.LastInsertId()).Bind(2, int64_t{t_origin.uid}).Bind(3, int64_t{t_origin.gid});
  o.Bind(4, int64_t{t_origin.pid}).Bind(5, t_origin.process);
  return o.Run();
}

Status AdjustUsed(Db& db, uint32_t share, int64_t delta) {
  if (delta == 0) return Status::Ok();
  FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("UPDATE shares SET used_bytes=used_bytes+? WHERE id=?"));
  s.Bind(1, delta).Bind(2, int64_t{share});
  return s.Run();
}

// Bumps version and ctime of `id`; returns the new version.
Result<uint64_t> Touch(Db& db, NodeId id, int64_t now) {
  FS_ASSIGN_OR_RETURN(Stmt s,
                      db.Prepare("UPDATE nodes SET version=version+1, ctime_ns=? WHERE id=? "
                                 "RETURNING version"));
  s.Bind(1, now).Bind(2, static_cast<int64_t>(id));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no node " + std::to_string(id));
  uint64_t v = s.Int(0);
  FS_RETURN_IF_ERROR(s.Run());
  return v;
}

Result<std::string> GetMeta(Db& db, const char* key) {
  FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT value FROM meta WHERE key=?"));
  s.Bind(1, key);
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError(std::string("meta ") + key);
  return s.Blob(0);
}

Status PutMeta(Db& db, const char* key, std::string_view value) {
  FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)"));
  s.Bind(1, key).BindBlob(2, value);
  return s.Run();
}

// Moves the multi-part upload in progress of `node`'s queue row, if any, to
// abandoned_uploads; with `only_if_stale`, only when the file has a newer committed version
// than the one being uploaded (its parts must never be reused for the new one).
Status AbandonUpload(Db& db, NodeId node, bool only_if_stale) {
  static constexpr const char* kAny =
      "INSERT INTO abandoned_uploads(share_id, key, upload_id) SELECT q.share_id, q.upload_key, "
      "q.upload_id FROM upload_queue q WHERE q.node_id=? AND q.upload_key IS NOT NULL AND "
      "q.upload_key<>'' AND q.upload_id IS NOT NULL AND q.upload_id<>''";
  static constexpr const char* kStale =
      "INSERT INTO abandoned_uploads(share_id, key, upload_id) SELECT q.share_id, q.upload_key, "
      "q.upload_id FROM upload_queue q JOIN nodes n ON n.id = q.node_id WHERE q.node_id=? AND "
      "q.upload_key IS NOT NULL AND q.upload_key<>'' AND q.upload_id IS NOT NULL AND "
      "q.upload_id<>'' AND n.data_gen > q.data_gen";
  FS_ASSIGN_OR_RETURN(Stmt a, db.Prepare(only_if_stale ? kStale : kAny));
  a.Bind(1, static_cast<int64_t>(node));
  FS_RETURN_IF_ERROR(a.Run());
  if (db.Changes() == 0) return Status::Ok();
  FS_ASSIGN_OR_RETURN(Stmt c, db.Prepare("UPDATE upload_queue SET upload_key=NULL, "
                                         "upload_id=NULL WHERE node_id=?"));
  c.Bind(1, static_cast<int64_t>(node));
  return c.Run();
}

// The key of the node's last upload attempt, unless `except` or the key the node's recorded
// upload holds, is released as "maybe ours" (Store::NoteUploadAttempt); the attempt is
// forgotten.
Status ReleaseAttempt(Db& db, NodeId node, std::string_view except) {
  FS_ASSIGN_OR_RETURN(
      Stmt r,
      db.Prepare("INSERT INTO released_objects(share_id, key, etag) SELECT a.share_id, a.key, ? "
                 "|| a.node_id FROM upload_attempts a WHERE a.node_id=? AND a.key<>? AND NOT "
                 "EXISTS (SELECT 1 FROM released_objects r WHERE r.share_id=a.share_id AND "
                 "r.key=a.key) AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id=a.node_id AND "
                 "n.cloud_key=a.key AND n.cloud_etag IS NOT NULL) AND EXISTS (SELECT 1 FROM "
                 "shares s WHERE s.id=a.share_id)"));
  r.Bind(1, std::string_view(kOwnerOnlyEtag)).Bind(2, static_cast<int64_t>(node)).Bind(3, except);
  FS_RETURN_IF_ERROR(r.Run());
  FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM upload_attempts WHERE node_id=?"));
  d.Bind(1, static_cast<int64_t>(node));
  return d.Run();
}

// Deletes a node's row and xattrs; a file's data is queued in `orphans` for deletion after the
// commit (Store::ForgetData) and its bytes leave the share's usage.
Status ValidateStub(const StubSpec& spec);

// Makes node `id` a stub of spec.cloud with its attributes and xattrs (replacing all xattrs):
// size, data generation + 1, state, times and the cloud copy.
Status SetStub(Db& db, NodeId id, const StubSpec& spec, bool had_data) {
  FS_ASSIGN_OR_RETURN(
      Stmt u, db.Prepare("UPDATE nodes SET size=?, data_gen=data_gen+1, state=6, mtime_ns=?, "
                         "mode=?, uid=?, gid=?, cloud_key=?, cloud_etag=?, part_size=?, "
                         "part_md5s=?, cloud_md5=?, sync_error=NULL, used_ns=0 WHERE id=?"));
  u.Bind(1, static_cast<int64_t>(spec.cloud.size)).Bind(2, spec.mtime_ns);
  u.Bind(3, int64_t{spec.mode & 07777}).Bind(4, int64_t{spec.uid}).Bind(5, int64_t{spec.gid});
  u.Bind(6, spec.cloud.key).Bind(7, spec.cloud.etag);
  u.Bind(8, static_cast<int64_t>(spec.cloud.part_size)).BindBlob(9, spec.cloud.part_md5s);
  u.BindBlob(10, spec.cloud.md5).Bind(11, static_cast<int64_t>(id));
  FS_RETURN_IF_ERROR(u.Run());
  FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM xattrs WHERE node_id=?"));
  d.Bind(1, static_cast<int64_t>(id));
  FS_RETURN_IF_ERROR(d.Run());
  for (const auto& [name, value] : spec.xattrs) {
    FS_ASSIGN_OR_RETURN(Stmt x, db.Prepare("INSERT OR REPLACE INTO xattrs VALUES(?,?,?)"));
    x.Bind(1, static_cast<int64_t>(id)).Bind(2, name).BindBlob(3, value);
    FS_RETURN_IF_ERROR(x.Run());
  }
  if (!had_data) return Status::Ok();
  // Its data goes after the commit; a crash before that leaves this row for Recover.
  FS_ASSIGN_OR_RETURN(Stmt r, db.Prepare("INSERT OR IGNORE INTO stub_data VALUES(?)"));
  r.Bind(1, static_cast<int64_t>(id));
  return r.Run();
}

Status RemoveNode(Db& db, const Attr& a) {
  // The object last uploaded for this file is no longer any file's (released_objects); it
  // replaced whatever was released under its key before (one row per key).
  FS_ASSIGN_OR_RETURN(Stmt old, db.Prepare("DELETE FROM released_objects WHERE (share_id, key) IN "
                                           "(SELECT share_id, cloud_key FROM nodes WHERE id=?)"));
  old.Bind(1, static_cast<int64_t>(a.id));
  FS_RETURN_IF_ERROR(old.Run());
  FS_ASSIGN_OR_RETURN(Stmt r, db.Prepare("INSERT INTO released_objects(share_id, key, etag) "
                                         "SELECT share_id, cloud_key, cloud_etag FROM nodes "
                                         "WHERE id=? AND cloud_key IS NOT NULL AND "
                                         "cloud_etag IS NOT NULL"));
  r.Bind(1, static_cast<int64_t>(a.id));
  FS_RETURN_IF_ERROR(r.Run());
  FS_RETURN_IF_ERROR(ReleaseAttempt(db, a.id, ""));
  // A multi-part upload in progress for it is abandoned (aborted by the uploader).
  FS_RETURN_IF_ERROR(AbandonUpload(db, a.id, /*only_if_stale=*/false));
  FS_ASSIGN_OR_RETURN(Stmt q, db.Prepare("DELETE FROM upload_queue WHERE node_id=?"));
  q.Bind(1, static_cast<int64_t>(a.id));
  FS_RETURN_IF_ERROR(q.Run());
  FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM nodes WHERE id=?"));
  d.Bind(1, static_cast<int64_t>(a.id));
  FS_RETURN_IF_ERROR(d.Run());
  FS_ASSIGN_OR_RETURN(Stmt x, db.Prepare("DELETE FROM xattrs WHERE node_id=?"));
  x.Bind(1, static_cast<int64_t>(a.id));
  FS_RETURN_IF_ERROR(x.Run());
  if (a.type != NodeType::kFile) return Status::Ok();
  // Its backing file goes as an orphan's; no stub row may outlive the node.
  FS_ASSIGN_OR_RETURN(Stmt sd, db.Prepare("DELETE FROM stub_data WHERE node_id=?"));
  sd.Bind(1, static_cast<int64_t>(a.id));
  FS_RETURN_IF_ERROR(sd.Run());
  FS_ASSIGN_OR_RETURN(Stmt o, db.Prepare("INSERT OR IGNORE INTO orphans VALUES(?)"));
  o.Bind(1, static_cast<int64_t>(a.id));
  FS_RETURN_IF_ERROR(o.Run());
  return AdjustUsed(db, a.share_id, -static_cast<int64_t>(a.size));
}

// Length in bytes of the longest path below `dir`, relative to it (0 for an empty dir).
Result<uint64_t> LongestSubpath(Db& db, NodeId dir) {
  FS_ASSIGN_OR_RETURN(
      Stmt s, db.Prepare("WITH RECURSIVE sub(id, len) AS (SELECT ?, 0 UNION ALL "
                         "SELECT n.id, sub.len + 1 + length(CAST(n.name AS BLOB)) FROM nodes n "
                         "JOIN sub ON n.parent_id = sub.id) SELECT max(len) FROM sub"));
  s.Bind(1, static_cast<int64_t>(dir));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<uint64_t>(s.Int(0)) : 0;
}

Status CheckPathLength(Db& db, NodeId parent, std::string_view name, uint64_t below) {
  FS_ASSIGN_OR_RETURN(std::string parent_path, PathIn(db, parent));
  uint64_t len = parent_path.size() + (parent_path.empty() ? 0 : 1) + name.size() + below;
  if (len > kMaxPathBytes) {
    return InvalidArgumentError("path would be " + std::to_string(len) +
                                " bytes; at most 1024 are allowed");
  }
  return Status::Ok();
}

constexpr std::string_view kKeyCheckContext = "key-check";
constexpr uint64_t kKeyCheckId = 0;  // node ids start at 1

std::string KeyCheck(const crypto::MasterKey& mk) {
  crypto::Key zero{};
  auto w = crypto::WrapKey(mk, zero, kKeyCheckId);
  return w.ok() ? *w : std::string();
}

bool KeyMatches(const crypto::MasterKey& mk, const std::string& check) {
  return crypto::UnwrapKey(mk, check, kKeyCheckId).ok();
}

}  // namespace

std::string_view FileStateName(FileState s) {
  switch (s) {
    case FileState::kLocal:
      return "local";
    case FileState::kWriting:
      return "writing";
    case FileState::kDirty:
      return "dirty";
    case FileState::kUploading:
      return "uploading";
    case FileState::kClean:
      return "clean";
    case FileState::kFailed:
      return "failed";
    case FileState::kStub:
      return "stub";
    case FileState::kRecalling:
      return "recalling";
  }
  return "unknown";
}

std::string_view ShareKindName(ShareKind k) { return k == ShareKind::kCloud ? "cloud" : "local"; }

std::string_view EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kCreate:
      return "create";
    case EventKind::kMkdir:
      return "mkdir";
    case EventKind::kSymlink:
      return "symlink";
    case EventKind::kWrite:
      return "write";
    case EventKind::kSetAttr:
      return "setattr";
    case EventKind::kRename:
      return "rename";
    case EventKind::kUnlink:
      return "unlink";
    case EventKind::kRmdir:
      return "rmdir";
    case EventKind::kXattr:
      return "xattr";
    case EventKind::kRefresh:
      return "refresh";
  }
  return "unknown";
}

Store::Store(const StoreOptions& options)
    : options_(options), clock_(options.clock ? options.clock : &RealClock::Get()) {
  if (options_.key_file.empty()) options_.key_file = options_.data_dir + "/master.key";
}

Store::~Store() {
  // Recall fetches in flight finish and start no more; then their pool goes.
  SetCacheHooks(nullptr);
  recall_pool_.reset();
  std::vector<std::shared_ptr<LiveFile>> open;
  {
    MutexLock l(files_mu_);
    for (auto& [id, f] : files_) open.push_back(f);
  }
  for (auto& f : open) {
    MutexLock l(f->mu);
    Status s = CommitData(*f, true);
    if (!s.ok())
      spdlog::error("store: commit of file {} at shutdown failed: {}", f->id, s.ToString());
  }
  committer_.reset();
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.data_dir.empty()) return InvalidArgumentError("data_dir is empty");
  uint32_t cs = options.chunk_size_bytes;
  if (cs < 4096 || cs > (4u << 20) || (cs & (cs - 1)) != 0) {
    return InvalidArgumentError("chunk size must be a power of two from 4 KiB to 4 MiB");
  }
  std::unique_ptr<Store> store(new Store(options));
  FS_RETURN_IF_ERROR(store->Init());
  return store;
}

std::string Store::BackingPath(NodeId id) const {
  char name[64];
  std::snprintf(name, sizeof name, "/objects/%02x/%016llx", static_cast<unsigned>(id & 0xff),
                static_cast<unsigned long long>(id));
  return options_.data_dir + name;
}

Status Store::Init() {
  const std::string& dir = options_.data_dir;
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir));
  FS_ASSIGN_OR_RETURN(auto lock, platform::LockFile::Acquire(dir + "/LOCK"));
  lock_.emplace(std::move(lock));
  db_path_ = dir + "/meta.db";
  bool fresh = !platform::PathExists(db_path_);
  if (fresh && platform::PathExists(dir + "/objects")) {
    return FailedPreconditionError(
        "metadata db " + db_path_ + " is missing but " + dir +
        "/objects holds data; refusing to start an empty store over it (restore meta.db)");
  }
  if (fresh) FS_RETURN_IF_ERROR(CreateDb());
  FS_ASSIGN_OR_RETURN(auto db, Db::Open(db_path_, false));
  Status schema = db->Exec(kSchema);
  if (!schema.ok()) return schema.WithContext("metadata db " + db_path_);
  auto version = GetMeta(*db, "schema_version");
  auto chunk = GetMeta(*db, "chunk_size");
  if (!version.ok() || !chunk.ok()) {
    return CorruptionError("metadata db " + db_path_ + " lacks its schema version or chunk size");
  }
  if (int from = std::atoi(version->c_str()); from == 1 || from == 2) {
    // In place, in one transaction. Tables new in a version (stub_data in 2, deleted_shares in
    // 3) were made by kSchema above; version 3 changes nothing else.
    FS_RETURN_IF_ERROR(db->Exec("BEGIN"));
    if (from == 1) {
      for (const char* sql : kMigrateV2) FS_RETURN_IF_ERROR(db->Exec(sql));
    }
    FS_RETURN_IF_ERROR(PutMeta(*db, "schema_version", std::to_string(kSchemaVersion)));
    FS_RETURN_IF_ERROR(db->Exec("COMMIT"));
    spdlog::info("store: metadata db {} upgraded from schema version {} to {}", db_path_, from,
                 kSchemaVersion);
    *version = std::to_string(kSchemaVersion);
  }
  if (std::atoi(version->c_str()) != kSchemaVersion) {
    return FailedPreconditionError("metadata db schema version " + *version +
                                   " is not supported (want " + std::to_string(kSchemaVersion) +
                                   ")");
  }
  chunk_size_ = static_cast<uint32_t>(std::strtoul(chunk->c_str(), nullptr, 10));
  if (chunk_size_ < 4096 || (chunk_size_ & (chunk_size_ - 1)) != 0) {
    return CorruptionError("metadata db has a bad chunk size " + *chunk);
  }
  FS_RETURN_IF_ERROR(db->Exec(kIndexesV2));
  FS_RETURN_IF_ERROR(LoadKeys(*db));
  // Backing files spread over 256 directories by the low byte of the node id.
  for (int i = 0; i < 256; ++i) {
    char shard[16];
    std::snprintf(shard, sizeof shard, "/objects/%02x", i);
    FS_RETURN_IF_ERROR(platform::MakeDirs(dir + shard));
  }
  readers_ = std::make_unique<ReadPool>(db_path_);
  recall_pool_ = std::make_unique<ThreadPool>(8);
  committer_ = std::make_unique<Committer>(std::move(db));
  if (options_.metrics != nullptr) {
    auto& reg = options_.metrics->registry();
    bytes_written_ = &prometheus::BuildCounter()
                          .Name(metric_names::kStoreBytesWritten)
                          .Help("File bytes written through the Store")
                          .Register(reg)
                          .Add({});
    bytes_read_ = &prometheus::BuildCounter()
                       .Name(metric_names::kStoreBytesRead)
                       .Help("File bytes read through the Store")
                       .Register(reg)
                       .Add({});
    corrupt_chunks_ = &prometheus::BuildCounter()
                           .Name(metric_names::kStoreCorruptChunks)
                           .Help("Chunks that failed verification on read")
                           .Register(reg)
                           .Add({});
    evictions_ = &prometheus::BuildCounter()
                      .Name(metric_names::kCacheEvictions)
                      .Help("Files whose local data was evicted (now stubs)")
                      .Register(reg)
                      .Add({});
    recalls_ = &prometheus::BuildCounter()
                    .Name(metric_names::kCacheRecalls)
                    .Help("Stubs whose data was recalled whole from the cloud")
                    .Register(reg)
                    .Add({});
    read_hits_ = &prometheus::BuildCounter()
                      .Name(metric_names::kCacheReadHits)
                      .Help("Reads served from data on the box")
                      .Register(reg)
                      .Add({});
    read_misses_ = &prometheus::BuildCounter()
                        .Name(metric_names::kCacheReadMisses)
                        .Help("Reads that waited for a recall from the cloud")
                        .Register(reg)
                        .Add({});
  }
  return Recover();
}

// Makes the metadata db under a temporary name and renames it into place, so that a crash
// while a store is being created never leaves a db without its schema.
Status Store::CreateDb() {
  std::string tmp = db_path_ + ".new";
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    FS_RETURN_IF_ERROR(platform::RemoveFile(tmp + suffix));
  }
  {
    FS_ASSIGN_OR_RETURN(auto db, Db::Open(tmp, true));
    FS_RETURN_IF_ERROR(db->Exec("BEGIN"));
    FS_RETURN_IF_ERROR(db->Exec(kSchema));
    FS_RETURN_IF_ERROR(PutMeta(*db, "schema_version", std::to_string(kSchemaVersion)));
    FS_RETURN_IF_ERROR(PutMeta(*db, "chunk_size", std::to_string(options_.chunk_size_bytes)));
    FS_RETURN_IF_ERROR(db->Exec("COMMIT"));
    // Fold the WAL into the db file so that the rename below carries everything.
    FS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=DELETE"));
  }
  {
    FS_ASSIGN_OR_RETURN(platform::File f, platform::File::Open(tmp, O_RDWR));
    // Names of files are in the db: only the owner may read it (its WAL inherits the mode).
    if (::fchmod(f.fd(), 0600) != 0) return ErrnoStatus(errno, "chmod " + tmp);
    FS_RETURN_IF_ERROR(f.Sync());
  }
  if (::rename(tmp.c_str(), db_path_.c_str()) != 0) return ErrnoStatus(errno, "rename " + tmp);
  return platform::SyncDir(options_.data_dir);
}

Status Store::LoadKeys(Db& db) {
  auto check = GetMeta(db, "key_check");
  bool has_key = check.ok();
  if (!has_key && !options_.encryption) return Status::Ok();  // nothing encrypted, none wanted
  crypto::MasterKey mk;
  if (options_.passphrase) {
    auto salt = GetMeta(db, "kdf_salt");
    std::string s;
    uint32_t id = 1;
    if (salt.ok()) {
      s = *salt;
      auto kid = GetMeta(db, "key_id");
      if (kid.ok()) id = static_cast<uint32_t>(std::atoi(kid->c_str()));
    } else {
      if (has_key) {
        return FailedPreconditionError(
            "this store's master key is in a key file, but a passphrase was given");
      }
      s.resize(16);
      FS_RETURN_IF_ERROR(crypto::RandomBytes({reinterpret_cast<uint8_t*>(s.data()), s.size()}));
    }
    FS_ASSIGN_OR_RETURN(mk, crypto::DeriveFromPassphrase(*options_.passphrase, s, id));
    if (has_key && !KeyMatches(mk, *check)) {
      return UnauthenticatedError("the passphrase does not unlock this store");
    }
    if (!has_key) FS_RETURN_IF_ERROR(PutMeta(db, "kdf_salt", s));
  } else {
    if (has_key && GetMeta(db, "kdf_salt").ok()) {
      return FailedPreconditionError(
          "this store's master key comes from a passphrase; give it (encryption.passphrase_file)");
    }
    const std::string& path = options_.key_file;
    std::string next = path + ".new";
    // A rotation that crashed after its db commit left the new key beside the old one.
    if (has_key && platform::PathExists(next)) {
      auto nk = crypto::LoadKeyFile(next);
      if (nk.ok() && KeyMatches(*nk, *check)) {
        FS_RETURN_IF_ERROR(crypto::WriteKeyFile(path, *nk));
      }
      FS_RETURN_IF_ERROR(platform::RemoveFile(next));
    }
    if (has_key) {
      auto loaded = crypto::LoadKeyFile(path);
      if (!loaded.ok() && loaded.status().code() == StatusCode::kNotFound) {
        return UnauthenticatedError(
            "key file " + path + " is missing; this store's data cannot be decrypted without it");
      }
      if (!loaded.ok()) return loaded.status();
      mk = *loaded;
      if (!KeyMatches(mk, *check)) {
        return UnauthenticatedError("key file " + path + " does not match this store");
      }
    } else {
      FS_ASSIGN_OR_RETURN(mk, crypto::LoadOrCreateKeyFile(path));
    }
  }
  if (!has_key) {
    FS_RETURN_IF_ERROR(PutMeta(db, "key_check", KeyCheck(mk)));
    FS_RETURN_IF_ERROR(PutMeta(db, "key_id", std::to_string(mk.id)));
  }
  MutexLock l(key_mu_);
  master_ = mk;
  return Status::Ok();
}

uint32_t Store::master_key_id() const {
  MutexLock l(key_mu_);
  return master_ ? master_->id : 0;
}

uint64_t Store::commits() const { return committer_->commits(); }
uint64_t Store::commit_batches() const { return committer_->batches(); }

Result<std::unique_ptr<crypto::ChunkCodec>> Store::CodecFor(NodeId id, const std::string& wrapped,
                                                            uint32_t key_id) {
  if (wrapped.empty()) return crypto::NewChecksumCodec();
  MutexLock l(key_mu_);
  if (!master_) {
    return UnauthenticatedError("file " + std::to_string(id) +
                                " is encrypted but no master key is loaded");
  }
  if (key_id != master_->id) {
    return CorruptionError("file " + std::to_string(id) + " key is wrapped under key id " +
                           std::to_string(key_id) + ", not the current " +
                           std::to_string(master_->id));
  }
  FS_ASSIGN_OR_RETURN(crypto::Key key, crypto::UnwrapKey(*master_, wrapped, id));
  return crypto::NewAesGcmCodec(key);
}

Status Store::Recover() {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  // Files that had writes in flight at the crash: cut them back to their committed state.
  std::vector<NodeId> marked;
  {
    FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT node_id FROM open_writes"));
    for (;;) {
      FS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      marked.push_back(s.Int(0));
    }
  }
  for (NodeId id : marked) {
    FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT size, data_gen, wrapped_key, key_id FROM nodes "
                                            "WHERE id=? AND type=1"));
    s.Bind(1, static_cast<int64_t>(id));
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) continue;  // deleted since; the orphan pass removes its data
    uint64_t size = s.Int(0), gen = s.Int(1);
    std::string wrapped = s.Blob(2);
    uint32_t key_id = static_cast<uint32_t>(s.Int(3));
    auto file = platform::File::Open(BackingPath(id), O_RDWR);
    if (!file.ok()) {
      if (file.status().code() == StatusCode::kNotFound) continue;
      return file.status();
    }
    FS_ASSIGN_OR_RETURN(auto codec, CodecFor(id, wrapped, key_id));
    ChunkFile cf(std::move(*file), id, chunk_size_, std::move(codec));
    FS_RETURN_IF_ERROR(cf.Scrub(gen, size).WithContext("recovering file " + std::to_string(id)));
  }
  std::vector<NodeId> orphans;
  {
    FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT node_id FROM orphans"));
    for (;;) {
      FS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      orphans.push_back(s.Int(0));
    }
  }
  for (NodeId id : orphans) FS_RETURN_IF_ERROR(platform::RemoveFile(BackingPath(id)));
  // Stubs whose data was being evicted or recalled: a partial backing file is never trusted.
  std::vector<NodeId> partial;
  {
    FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT d.node_id FROM stub_data d JOIN nodes n ON "
                                            "n.id = d.node_id WHERE n.state=6"));
    for (;;) {
      FS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      partial.push_back(s.Int(0));
    }
  }
  for (NodeId id : partial) FS_RETURN_IF_ERROR(platform::RemoveFile(BackingPath(id)));
  if (!marked.empty() || !orphans.empty() || !partial.empty()) {
    spdlog::info(
        "store: recovered {} files with writes in flight, removed {} unlinked files and "
        "{} partial recalls or evictions",
        marked.size(), orphans.size(), partial.size());
    FS_RETURN_IF_ERROR(Commit([](Db& db) {
      FS_RETURN_IF_ERROR(db.Exec("DELETE FROM open_writes"));
      FS_RETURN_IF_ERROR(db.Exec("DELETE FROM stub_data"));
      return db.Exec("DELETE FROM orphans");
    }));
  }
  // Shares deleted before the crash whose files were not all removed yet.
  std::vector<uint32_t> purging;
  {
    FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT id FROM deleted_shares WHERE purged_ns=0"));
    for (;;) {
      FS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      purging.push_back(static_cast<uint32_t>(s.Int(0)));
    }
  }
  for (uint32_t id : purging) {
    spdlog::info("store: finishing the deletion of share {}", id);
    FS_RETURN_IF_ERROR(PurgeShare(id));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Shares

Result<ShareInfo> Store::CreateShare(std::string_view name, ShareKind kind) {
  FS_RETURN_IF_ERROR(ValidateName(name).WithContext("share name"));
  ShareInfo info;
  int64_t now = Now();
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT id FROM shares WHERE name=?"));
    q.Bind(1, name);
    FS_ASSIGN_OR_RETURN(bool exists, q.Step());
    if (exists) return AlreadyExistsError("share '" + std::string(name) + "' exists");
    // A share id is never used twice: events, released objects and the other components'
    // state of a deleted share must never apply to a new one (deleted_shares keeps its id).
    FS_ASSIGN_OR_RETURN(Stmt ins,
                        db.Prepare("INSERT INTO shares(id, name, kind, root_id) VALUES(1 + max("
                                   "(SELECT coalesce(max(id), 0) FROM shares), "
                                   "(SELECT coalesce(max(id), 0) FROM deleted_shares)),?,?,0)"));
    ins.Bind(1, name).Bind(2, static_cast<int64_t>(kind));
    FS_RETURN_IF_ERROR(ins.Run());
    info.id = static_cast<uint32_t>(db.LastInsertId());
    FS_ASSIGN_OR_RETURN(Stmt root,
                        db.Prepare("INSERT INTO nodes(share_id, parent_id, name, type, mode, uid, "
                                   "gid, atime_ns, mtime_ns, ctime_ns, version) "
                                   "VALUES(?,0,?,2,511,0,0,?,?,?,1)"));  // 0777
    root.Bind(1, int64_t{info.id}).Bind(2, name).Bind(3, now).Bind(4, now).Bind(5, now);
    FS_RETURN_IF_ERROR(root.Run());
    info.root = db.LastInsertId();
    FS_ASSIGN_OR_RETURN(Stmt upd, db.Prepare("UPDATE shares SET root_id=? WHERE id=?"));
    upd.Bind(1, static_cast<int64_t>(info.root)).Bind(2, int64_t{info.id});
    return upd.Run();
  }));
  info.name = name;
  info.kind = kind;
  return info;
}

Result<ShareInfo> Store::GetShare(std::string_view name) {
  FS_ASSIGN_OR_RETURN(auto shares, ListShares());
  for (auto& s : shares) {
    if (s.name == name) return s;
  }
  return NotFoundError("no share '" + std::string(name) + "'");
}

Result<std::vector<ShareInfo>> Store::ListShares() {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT id, name, kind, root_id, used_bytes FROM shares "
                                          "ORDER BY name"));
  std::vector<ShareInfo> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({static_cast<uint32_t>(s.Int(0)), s.Text(1), static_cast<ShareKind>(s.Int(2)),
                   static_cast<NodeId>(s.Int(3)), static_cast<uint64_t>(s.Int(4))});
  }
  return out;
}

namespace {

// Deletes what the Store keeps of node `id` of a deleted share, without releasing anything in
// the cloud (unlike RemoveNode); a file's backing file is queued in `orphans`.
Status PurgeNode(Db& db, NodeId id, bool file) {
  // A multi-part upload in progress for it is abandoned: its parts never became an object.
  FS_RETURN_IF_ERROR(AbandonUpload(db, id, /*only_if_stale=*/false));
  static constexpr const char* kDeletes[] = {
      "DELETE FROM upload_queue WHERE node_id=?", "DELETE FROM upload_attempts WHERE node_id=?",
      "DELETE FROM open_writes WHERE node_id=?",  "DELETE FROM stub_data WHERE node_id=?",
      "DELETE FROM xattrs WHERE node_id=?",       "DELETE FROM nodes WHERE id=?",
  };
  for (const char* sql : kDeletes) {
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare(sql));
    d.Bind(1, static_cast<int64_t>(id));
    FS_RETURN_IF_ERROR(d.Run());
  }
  if (!file) return Status::Ok();
  FS_ASSIGN_OR_RETURN(Stmt o, db.Prepare("INSERT OR IGNORE INTO orphans VALUES(?)"));
  o.Bind(1, static_cast<int64_t>(id));
  return o.Run();
}

Status ForgetOrphans(Db& db, const std::vector<NodeId>& ids) {
  for (NodeId id : ids) {
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM orphans WHERE node_id=?"));
    d.Bind(1, static_cast<int64_t>(id));
    FS_RETURN_IF_ERROR(d.Run());
  }
  return Status::Ok();
}

std::string Plural(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

}  // namespace

Status Store::DeleteShare(std::string_view name, bool force) {
  FS_ASSIGN_OR_RETURN(ShareInfo info, GetShare(name));
  const std::string quoted = "share '" + std::string(name) + "'";
  // No file of the share may be open, and none is opened until the deletion is committed.
  std::vector<NodeId> open;
  {
    MutexLock l(files_mu_);
    if (deleting_shares_.count(info.id) != 0) {
      return FailedPreconditionError(quoted + " is being deleted");
    }
    for (const auto& [id, f] : files_) {
      if (f->share_id == info.id) open.push_back(id);
    }
    if (open.empty()) deleting_shares_.insert(info.id);
  }
  if (!open.empty()) {
    std::sort(open.begin(), open.end());
    std::string names;
    for (size_t i = 0; i < open.size() && i < 3; ++i) {
      auto path = PathOf(open[i]);
      names += (i > 0 ? ", '" : "'") + (path.ok() ? *path : "#" + std::to_string(open[i])) + "'";
    }
    if (open.size() > 3) names += ", ...";
    return FailedPreconditionError(
        quoted + " has " + Plural(open.size(), "open file", "open files") + " (" + names +
        (open.size() == 1 ? "); close it first" : "); close them first"));
  }
  struct Ungate {
    Ungate(Store* s, uint32_t share) : store(s), id(share) {}
    Ungate(const Ungate&) = delete;
    Ungate& operator=(const Ungate&) = delete;
    Store* store;
    uint32_t id;
    ~Ungate() {
      {
        MutexLock l(store->files_mu_);
        store->deleting_shares_.erase(id);
      }
      store->evict_cv_.notify_all();
    }
  };
  std::optional<Ungate> gate;
  gate.emplace(this, info.id);
  auto waiting = [&](uint64_t n) {
    return FailedPreconditionError(
        quoted + " has " + Plural(n, "file", "files") +
        " waiting for upload; with force, the share is deleted anyway and " +
        (n == 1 ? "that file never reaches" : "those files never reach") + " the cloud");
  };
  if (!force && info.kind == ShareKind::kCloud) {
    // Files committed but not uploaded yet, queued or not (the uploader queues them from the
    // event log, a little later): read outside the committer, as it scans the share's nodes.
    FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
    FS_ASSIGN_OR_RETURN(
        Stmt c,
        rd->Prepare("SELECT count(*) FROM nodes WHERE share_id=? AND type=1 AND (state IN "
                    "(2, 3) OR id IN (SELECT node_id FROM upload_queue WHERE share_id=?))"));
    c.Bind(1, int64_t{info.id}).Bind(2, int64_t{info.id});
    FS_ASSIGN_OR_RETURN(bool row, c.Step());
    if (row && c.Int(0) > 0) return waiting(static_cast<uint64_t>(c.Int(0)));
  }
  int64_t now = Now();
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT id, root_id FROM shares WHERE name=?"));
    q.Bind(1, name);
    FS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row || static_cast<uint32_t>(q.Int(0)) != info.id) {
      return NotFoundError("no " + quoted);  // deleted (and perhaps made again) meanwhile
    }
    NodeId root = q.Int(1);
    if (!force) {
      // Queued meanwhile (a refresh that found the cloud copy gone queues the file again).
      FS_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT count(*) FROM upload_queue WHERE share_id=?"));
      c.Bind(1, int64_t{info.id});
      FS_ASSIGN_OR_RETURN(bool counted, c.Step());
      if (counted && c.Int(0) > 0) return waiting(static_cast<uint64_t>(c.Int(0)));
    }
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM shares WHERE id=?"));
    d.Bind(1, int64_t{info.id});
    FS_RETURN_IF_ERROR(d.Run());
    FS_ASSIGN_OR_RETURN(Stmt m, db.Prepare("INSERT INTO deleted_shares(id, name, deleted_ns) "
                                           "VALUES(?,?,?)"));
    m.Bind(1, int64_t{info.id}).Bind(2, name).Bind(3, now);
    FS_RETURN_IF_ERROR(m.Run());
    // Objects released by earlier renames and deletes stay in the cloud, even under `mirror`.
    FS_ASSIGN_OR_RETURN(Stmt r, db.Prepare("DELETE FROM released_objects WHERE share_id=?"));
    r.Bind(1, int64_t{info.id});
    FS_RETURN_IF_ERROR(r.Run());
    // The root goes now, so that the name is free for a new share at once; the other nodes
    // are out of sight (kLiveShare) until PurgeShare removes them.
    return PurgeNode(db, root, /*file=*/false);
  }));
  gate.reset();
  spdlog::info("store: share '{}' (id {}) deleted; removing its files", name, info.id);
  Status purged = PurgeShare(info.id);
  if (!purged.ok()) {
    // The share is gone; what is left of its files is removed at the next start.
    spdlog::error("store: removing the files of deleted share '{}': {}", name, purged.ToString());
  }
  return Status::Ok();
}

Status Store::PurgeShare(uint32_t share_id) {
  // Small commits, so that the committer is never held for long, and the nodes are read
  // outside it: they are out of sight and nothing changes below them any more.
  constexpr int64_t kBatch = 1000;
  NodeId after = kNoNode;
  uint64_t nodes = 0, files = 0;
  std::vector<NodeId> removed;  // orphans whose backing file is gone; the next commit forgets them
  for (bool last = false; !last;) {
    std::vector<std::pair<NodeId, bool>> batch;  // node, is a file
    {
      FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
      FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT id, type FROM nodes WHERE share_id=? AND "
                                              "id>? ORDER BY id LIMIT ?"));
      s.Bind(1, int64_t{share_id}).Bind(2, static_cast<int64_t>(after)).Bind(3, kBatch);
      for (;;) {
        FS_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        batch.emplace_back(s.Int(0), static_cast<NodeType>(s.Int(1)) == NodeType::kFile);
      }
    }
    last = batch.size() < static_cast<size_t>(kBatch);
    int64_t now = Now();
    FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
      FS_RETURN_IF_ERROR(ForgetOrphans(db, removed));
      for (const auto& [id, file] : batch) FS_RETURN_IF_ERROR(PurgeNode(db, id, file));
      if (!last) return Status::Ok();
      // Released while the nodes were being removed (an upload that finished meanwhile).
      FS_ASSIGN_OR_RETURN(Stmt r, db.Prepare("DELETE FROM released_objects WHERE share_id=?"));
      r.Bind(1, int64_t{share_id});
      FS_RETURN_IF_ERROR(r.Run());
      FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE deleted_shares SET purged_ns=? WHERE id=?"));
      u.Bind(1, std::max<int64_t>(now, 1)).Bind(2, int64_t{share_id});
      return u.Run();
    }));
    removed.clear();
    for (const auto& [id, file] : batch) {
      ++nodes;
      if (!file) continue;
      ++files;
      Status r = platform::RemoveFile(BackingPath(id));
      if (r.ok()) {
        removed.push_back(id);
      } else {
        spdlog::warn("store: removing data of file {}: {} (removed at the next start)", id,
                     r.ToString());
      }
    }
    if (!batch.empty()) after = batch.back().first;
  }
  if (!removed.empty()) {
    FS_RETURN_IF_ERROR(Commit([&](Db& db) { return ForgetOrphans(db, removed); }));
  }
  spdlog::info("store: deleted share {}: {} nodes removed, {} of them files", share_id, nodes,
               files);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Namespace

Result<Attr> Store::GetAttr(NodeId node) {
  Attr a;
  {
    FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
    FS_ASSIGN_OR_RETURN(a, LoadAttr(rd.db(), node));
  }
  if (auto f = FindOpen(node)) {
    MutexLock l(f->mu);
    OverlayPending(a, *f);
  }
  return a;
}

Result<Attr> Store::Lookup(NodeId parent, std::string_view name) {
  FS_RETURN_IF_ERROR(ValidateName(name));
  NodeId id;
  {
    FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
    FS_ASSIGN_OR_RETURN(Attr a, LoadChild(rd.db(), parent, name));
    id = a.id;
  }
  return GetAttr(id);
}

Result<Attr> Store::Resolve(std::string_view share, std::string_view path) {
  FS_ASSIGN_OR_RETURN(auto parts, SplitPath(path));
  FS_ASSIGN_OR_RETURN(ShareInfo info, GetShare(share));
  NodeId cur = info.root;
  for (const auto& part : parts) {
    FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
    FS_ASSIGN_OR_RETURN(Attr a, LoadChild(rd.db(), cur, part));
    if (&part != &parts.back() && a.type != NodeType::kDirectory) {
      return InvalidArgumentError("'" + a.name + "' in '" + std::string(path) +
                                  "' is not a directory");
    }
    cur = a.id;
  }
  return GetAttr(cur);
}

Result<std::string> Store::PathOf(NodeId node) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  return PathIn(rd.db(), node);
}

// The body of InsertNode's transaction: checks, the node row, its key, its event. Fails
// before writing anything for a missing or non-directory parent, a taken name or a path too
// long. Sets *a to the new node.
Status Store::InsertNodeTx(Db& db, NodeId parent, std::string_view name, NodeType type,
                           const NewNode& opts, std::string_view target, EventKind event,
                           const StubSpec* stub, int64_t now, bool encrypt, Attr* a) {
  FS_ASSIGN_OR_RETURN(Attr p, LoadAttr(db, parent));
  if (p.type != NodeType::kDirectory) {
    return InvalidArgumentError("parent '" + p.name + "' is not a directory");
  }
  auto existing = LoadChild(db, parent, name);
  if (existing.ok()) return AlreadyExistsError("'" + std::string(name) + "' exists");
  FS_RETURN_IF_ERROR(CheckPathLength(db, parent, name, 0));
  FS_ASSIGN_OR_RETURN(
      Stmt s, db.Prepare("INSERT INTO nodes(share_id, parent_id, name, type, mode, uid, gid, "
                         "atime_ns, mtime_ns, ctime_ns, version, target) "
                         "VALUES(?,?,?,?,?,?,?,?,?,?,1,?)"));
  s.Bind(1, int64_t{p.share_id}).Bind(2, static_cast<int64_t>(parent)).Bind(3, name);
  s.Bind(4, static_cast<int64_t>(type)).Bind(5, int64_t{opts.mode & 07777});
  s.Bind(6, int64_t{opts.uid}).Bind(7, int64_t{opts.gid});
  s.Bind(8, now).Bind(9, now).Bind(10, now);
  if (type == NodeType::kSymlink) {
    s.Bind(11, target);
  } else {
    s.BindNull(11);
  }
  FS_RETURN_IF_ERROR(s.Run());
  NodeId id = db.LastInsertId();
  if (encrypt) {
    // The file key is bound to the node id, known only now.
    crypto::Key key;
    FS_RETURN_IF_ERROR(crypto::RandomBytes(key));
    MutexLock l(key_mu_);
    FS_ASSIGN_OR_RETURN(std::string wrapped, crypto::WrapKey(*master_, key, id));
    FS_ASSIGN_OR_RETURN(Stmt k, db.Prepare("UPDATE nodes SET wrapped_key=?, key_id=? WHERE id=?"));
    k.BindBlob(1, wrapped).Bind(2, int64_t{master_->id}).Bind(3, static_cast<int64_t>(id));
    FS_RETURN_IF_ERROR(k.Run());
  }
  if (stub != nullptr) {
    FS_RETURN_IF_ERROR(SetStub(db, id, *stub, /*had_data=*/false));
    FS_RETURN_IF_ERROR(AdjustUsed(db, p.share_id, static_cast<int64_t>(stub->cloud.size)));
  } else if (type == NodeType::kFile) {
    // Created files are opened for writing: mark them before any data can land.
    FS_ASSIGN_OR_RETURN(Stmt m, db.Prepare("INSERT OR IGNORE INTO open_writes VALUES(?)"));
    m.Bind(1, static_cast<int64_t>(id));
    FS_RETURN_IF_ERROR(m.Run());
  }
  FS_RETURN_IF_ERROR(Touch(db, parent, now).status());
  FS_ASSIGN_OR_RETURN(Stmt mt, db.Prepare("UPDATE nodes SET mtime_ns=? WHERE id=?"));
  mt.Bind(1, now).Bind(2, static_cast<int64_t>(parent));
  FS_RETURN_IF_ERROR(mt.Run());
  FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, id));
  FS_RETURN_IF_ERROR(AppendEvent(db, now, p.share_id, id, event, 1, path));
  a->id = id;
  a->parent = parent;
  a->share_id = p.share_id;
  a->name = name;
  a->type = type;
  a->mode = opts.mode & 07777;
  a->uid = opts.uid;
  a->gid = opts.gid;
  a->atime_ns = a->mtime_ns = a->ctime_ns = now;
  a->version = 1;
  a->symlink_target = target;
  if (stub != nullptr) {
    a->size = stub->cloud.size;
    a->mtime_ns = stub->mtime_ns;
    a->data_gen = 1;
    a->state = FileState::kStub;
  }
  return Status::Ok();
}

bool Store::EncryptNewFiles() {
  if (!options_.encryption) return false;
  MutexLock l(key_mu_);
  return master_.has_value();
}

Result<Attr> Store::InsertNode(NodeId parent, std::string_view name, NodeType type,
                               const NewNode& opts, std::string_view target, EventKind event,
                               const StubSpec* stub) {
  FS_RETURN_IF_ERROR(ValidateName(name));
  if (type == NodeType::kSymlink && (target.empty() || target.size() > 4095)) {
    return InvalidArgumentError("symlink target must be 1 to 4095 bytes");
  }
  int64_t now = Now();
  std::shared_lock rot(rotation_mu_);
  bool encrypt = type == NodeType::kFile && EncryptNewFiles();
  Attr a;
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    return InsertNodeTx(db, parent, name, type, opts, target, event, stub, now, encrypt, &a);
  }));
  return a;
}

std::vector<Result<Attr>> Store::CreateStubs(const std::vector<NewStub>& stubs) {
  std::vector<Result<Attr>> out(stubs.size(), Result<Attr>(InternalError("not created")));
  std::vector<bool> valid(stubs.size(), false);
  for (size_t i = 0; i < stubs.size(); ++i) {
    Status v = ValidateName(stubs[i].name);
    if (v.ok()) v = ValidateStub(stubs[i].spec);
    if (!v.ok()) {
      out[i] = v;
    } else {
      valid[i] = true;
    }
  }
  int64_t now = Now();
  std::shared_lock rot(rotation_mu_);
  bool encrypt = EncryptNewFiles();
  Status s = Commit([&](Db& db) -> Status {
    for (size_t i = 0; i < stubs.size(); ++i) {
      if (!valid[i]) continue;
      const NewStub& n = stubs[i];
      NewNode opts{n.spec.mode, n.spec.uid, n.spec.gid};
      Attr a;
      Status one = InsertNodeTx(db, n.parent, n.name, NodeType::kFile, opts, {}, EventKind::kCreate,
                                &n.spec, now, encrypt, &a);
      // Checks fail before anything is written: that stub is refused, the others go on. Any
      // other failure undoes the whole batch.
      StatusCode c = one.code();
      if (!one.ok() && c != StatusCode::kAlreadyExists && c != StatusCode::kInvalidArgument &&
          c != StatusCode::kNotFound) {
        return one;
      }
      out[i] = one.ok() ? Result<Attr>(std::move(a)) : Result<Attr>(one);
    }
    return Status::Ok();
  });
  if (!s.ok()) {
    for (size_t i = 0; i < stubs.size(); ++i) {
      if (valid[i]) out[i] = s;
    }
  }
  return out;
}

Result<Attr> Store::Mkdir(NodeId parent, std::string_view name, const NewNode& opts) {
  return InsertNode(parent, name, NodeType::kDirectory, opts, {}, EventKind::kMkdir);
}

Result<Attr> Store::Symlink(NodeId parent, std::string_view name, std::string_view target,
                            const NewNode& opts) {
  NewNode o = opts;
  o.mode = 0777;
  return InsertNode(parent, name, NodeType::kSymlink, o, target, EventKind::kSymlink);
}

Result<std::unique_ptr<FileHandle>> Store::Create(NodeId parent, std::string_view name,
                                                  const NewNode& opts) {
  FS_ASSIGN_OR_RETURN(Attr a,
                      InsertNode(parent, name, NodeType::kFile, opts, {}, EventKind::kCreate));
  FS_ASSIGN_OR_RETURN(auto f, GetOpenFile(a.id));
  {
    MutexLock l(f->mu);
    f->marked = true;
    ++f->writers;
    NoteWriter(*f);
    // Closing a new file is a commit even without writes, so an empty file also gets its
    // kWrite event (and is uploaded).
    f->dirty = true;
  }
  return std::unique_ptr<FileHandle>(new FileHandle(this, std::move(f), a.id, true));
}

Result<std::unique_ptr<FileHandle>> Store::OpenFile(NodeId node, bool writable, bool for_sync) {
  FS_ASSIGN_OR_RETURN(auto f, GetOpenFile(node));
  // The handle owns the file's open count from here, so an error below releases it.
  std::unique_ptr<FileHandle> h(new FileHandle(this, f, node, false));
  h->note_use_ = !for_sync;
  if (!for_sync) NoteUse(node);
  if (writable) {
    MutexLock l(f->mu);
    // A stub is recalled whole before anyone may change it.
    FS_RETURN_IF_ERROR(EnsureResident(*f, 0, f->size));
    ++f->writers;
    h->writable_ = true;
    NoteWriter(*f, /*only_if_unknown=*/true);  // an opener is the writer of nothing yet
  }
  return h;
}

std::shared_ptr<LiveFile> Store::FindOpen(NodeId node) {
  MutexLock l(files_mu_);
  auto it = files_.find(node);
  return it == files_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<LiveFile>> Store::GetOpenFile(NodeId node) {
  std::shared_lock rot(rotation_mu_);
  MutexLock l(files_mu_);
  for (;;) {
    while (evicting_.count(node) != 0) evict_cv_.wait(files_mu_);
    auto it = files_.find(node);
    if (it != files_.end()) {
      ++it->second->handles;
      return it->second;
    }
    uint32_t gated = 0;
    FS_ASSIGN_OR_RETURN(auto f, LoadLiveFile(node, &gated));
    if (f != nullptr) {
      f->handles = 1;
      f->self = f;
      files_[node] = f;
      return f;
    }
    // DeleteShare of its share is committing: afterwards the file is gone (or still there, if
    // the deletion failed).
    while (deleting_shares_.count(gated) != 0) evict_cv_.wait(files_mu_);
  }
}

Result<std::shared_ptr<LiveFile>> Store::LoadLiveFile(NodeId node, uint32_t* gated_share) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s,
                      rd->Prepare("SELECT n.type, n.size, n.data_gen, n.wrapped_key, n.key_id, "
                                  "n.share_id, s.kind, n.mtime_ns, n.state, n.cloud_key, "
                                  "n.cloud_etag, n.part_size, n.part_md5s, n.cloud_md5 FROM nodes "
                                  "n JOIN shares s ON s.id = n.share_id WHERE n.id=?"));
  s.Bind(1, static_cast<int64_t>(node));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no node " + std::to_string(node));
  if (static_cast<NodeType>(s.Int(0)) != NodeType::kFile) {
    return InvalidArgumentError("node " + std::to_string(node) + " is not a regular file");
  }
  auto f = std::make_shared<fieldstack::store::LiveFile>();
  f->id = node;
  f->size = f->committed_size = s.Int(1);
  f->committed_gen = s.Int(2);
  f->share_id = static_cast<uint32_t>(s.Int(5));
  if (deleting_shares_.count(f->share_id) != 0) {
    *gated_share = f->share_id;
    return std::shared_ptr<LiveFile>();
  }
  f->share_kind = static_cast<ShareKind>(s.Int(6));
  f->mtime_ns = s.Int(7);
  if (static_cast<FileState>(s.Int(8)) == FileState::kStub && f->size > 0) {
    f->stub = true;
    f->copy.key = s.Text(9);
    f->copy.etag = s.Text(10);
    f->copy.size = f->size;
    f->copy.part_size = static_cast<uint64_t>(s.Int(11));
    f->copy.part_md5s = s.Blob(12);
    f->copy.md5 = s.Blob(13);
    // A block is one part of the object when parts fall on chunk boundaries, the whole of a
    // small single-part object, or else 8 MiB (the fetch then reads the parts it spans).
    const uint64_t cs = chunk_size_;
    uint64_t block = f->copy.part_size;
    if (block == 0) block = f->size;  // one part: the whole object (at most an upload part)
    if (block < f->size && block % cs != 0) block = std::max<uint64_t>(cs, (8u << 20) / cs * cs);
    f->block = block;
    f->blocks.assign((f->size + block - 1) / block, LiveFile::kMissing);
    // At most about 256 MiB of blocks in flight per file (parts may be large).
    f->parallel = std::clamp<uint64_t>((256u << 20) / block, 1, 4);
  }
  FS_ASSIGN_OR_RETURN(f->codec, CodecFor(node, s.Blob(3), static_cast<uint32_t>(s.Int(4))));
  return f;
}

void Store::ReleaseOpenFile(const std::shared_ptr<LiveFile>& f) {
  bool remove_data = false;
  bool partial = false;
  {
    MutexLock l(files_mu_);
    if (--f->handles > 0) return;
    files_.erase(f->id);
    remove_data = f->deleted;
    if (!remove_data) {
      MutexLock fl(f->mu);
      partial = f->stub && f->recall_started;
      // Nobody opens the file again until its partial data is gone.
      if (partial) evicting_.insert(f->id);
    }
  }
  if (remove_data) {
    DeleteBacking(f->id);
    return;
  }
  if (partial) {
    // A recall that stopped part way (a cloud error; nobody reads any more): its blocks are
    // not tracked across opens, so they go, and the stub_data row with them.
    NodeId id = f->id;
    Status s = platform::RemoveFile(BackingPath(id));
    if (s.ok()) {
      s = Commit([id](Db& db) {
        FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM stub_data WHERE node_id=?"));
        d.Bind(1, static_cast<int64_t>(id));
        return d.Run();
      });
    }
    if (!s.ok())
      spdlog::warn("store: dropping the partial recall of file {}: {}", id, s.ToString());
    MutexLock l(files_mu_);
    evicting_.erase(id);
    evict_cv_.notify_all();
  }
}

void Store::ForgetData(NodeId id) {
  {
    MutexLock l(files_mu_);
    auto it = files_.find(id);
    if (it != files_.end()) {
      it->second->deleted = true;  // open handles keep working; data goes with the last one
      return;
    }
  }
  DeleteBacking(id);
}

void Store::DeleteBacking(NodeId id) {
  Status s = platform::RemoveFile(BackingPath(id));
  if (!s.ok()) {
    spdlog::warn("store: removing data of deleted file {}: {}", id, s.ToString());
    return;  // the orphan row stays; the next start retries
  }
  s = Commit([id](Db& db) {
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM orphans WHERE node_id=?"));
    d.Bind(1, static_cast<int64_t>(id));
    return d.Run();
  });
  if (!s.ok()) spdlog::warn("store: forgetting orphan {}: {}", id, s.ToString());
}

Status Store::EnsureChunkFile(LiveFile& f) {
  if (f.chunks) return Status::Ok();
  std::string path = BackingPath(f.id);
  // A file with committed data must have its backing file: never invent zeros for lost data.
  auto file = platform::File::Open(path, O_RDWR);
  bool may_create = f.committed_size == 0 || f.committed_gen == 0;
  if (!file.ok() && file.status().code() == StatusCode::kNotFound && may_create) {
    file = platform::File::Open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    f.created_backing = file.ok();
  }
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kNotFound) {
      return CorruptionError("data of file " + std::to_string(f.id) + " (" + path + ") is missing");
    }
    return file.status();
  }
  f.chunks = std::make_unique<ChunkFile>(std::move(*file), f.id, chunk_size_, std::move(f.codec));
  f.buf.assign(chunk_size_, 0);
  f.scratch.assign(chunk_size_, 0);
  f.scratch_index = -1;
  return Status::Ok();
}

Status Store::EnsureMarked(LiveFile& f) {
  if (f.marked) return Status::Ok();
  NodeId id = f.id;
  FS_RETURN_IF_ERROR(Commit([id](Db& db) {
    FS_ASSIGN_OR_RETURN(Stmt m, db.Prepare("INSERT OR IGNORE INTO open_writes VALUES(?)"));
    m.Bind(1, static_cast<int64_t>(id));
    return m.Run();
  }));
  f.marked = true;
  return Status::Ok();
}

Status Store::FlushDirtyChunk(LiveFile& f) {
  if (f.buf_index < 0 || !f.buf_dirty) return Status::Ok();
  FS_RETURN_IF_ERROR(
      f.chunks->Write(f.buf_index, f.pending_gen(), f.committed_gen, {f.buf.data(), f.buf_len}));
  f.buf_dirty = false;
  f.unsynced = true;
  return Status::Ok();
}

Status Store::CommitData(LiveFile& f, bool release_mark, std::string_view xattr_name,
                         const std::function<std::string(uint64_t)>& xattr_value) {
  if (!f.dirty && !(release_mark && f.marked) && !xattr_value) return Status::Ok();
  WriterOrigin origin(f);
  if (f.dirty) {
    FS_RETURN_IF_ERROR(FlushDirtyChunk(f));
    if (f.unsynced) {
      // A failed fdatasync is final for this data: report it, never retry and claim success.
      FS_RETURN_IF_ERROR(f.chunks->file().DataSync());
      f.unsynced = false;
    }
    if (f.created_backing) {
      // The new backing file's directory entry must be durable before a commit points to it.
      FS_RETURN_IF_ERROR(platform::SyncDir(platform::DirName(BackingPath(f.id))));
      f.created_backing = false;
    }
  }
  bool dirty = f.dirty;
  uint64_t gen = f.pending_gen();
  int64_t now = Now();
  int64_t delta = static_cast<int64_t>(f.size) - static_cast<int64_t>(f.committed_size);
  FileState state = f.share_kind == ShareKind::kCloud ? FileState::kDirty : FileState::kLocal;
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    if (dirty) {
      FS_ASSIGN_OR_RETURN(
          Stmt u, db.Prepare("UPDATE nodes SET size=?, data_gen=?, mtime_ns=?, ctime_ns=?, "
                             "state=?, version=version+1, used_ns=?, part_size=NULL, "
                             "part_md5s=NULL, cloud_md5=NULL WHERE id=? RETURNING version"));
      u.Bind(1, static_cast<int64_t>(f.size)).Bind(2, static_cast<int64_t>(gen));
      u.Bind(3, f.mtime_ns).Bind(4, now).Bind(5, static_cast<int64_t>(state)).Bind(6, now);
      u.Bind(7, static_cast<int64_t>(f.id));
      FS_ASSIGN_OR_RETURN(bool row, u.Step());
      if (row) {  // else unlinked while open: nothing to record
        uint64_t version = u.Int(0);
        FS_RETURN_IF_ERROR(u.Run());
        FS_RETURN_IF_ERROR(AdjustUsed(db, f.share_id, delta));
        FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, f.id));
        FS_RETURN_IF_ERROR(
            AppendEvent(db, now, f.share_id, f.id, EventKind::kWrite, version, path));
      }
    }
    if (xattr_value) {
      auto attr = LoadAttr(db, f.id);
      if (attr.ok()) {  // else unlinked while open
        std::string value = xattr_value(dirty ? gen : f.committed_gen);
        if (xattr_name.empty() || xattr_name.size() > 255 || value.size() > kMaxXattrValueBytes) {
          return InvalidArgumentError(
              "xattr name must be 1-255 bytes and its value at most 64 KiB");
        }
        FS_ASSIGN_OR_RETURN(Stmt x, db.Prepare("INSERT OR REPLACE INTO xattrs VALUES(?,?,?)"));
        x.Bind(1, static_cast<int64_t>(f.id)).Bind(2, xattr_name).BindBlob(3, value);
        FS_RETURN_IF_ERROR(x.Run());
        if (!dirty) {
          FS_ASSIGN_OR_RETURN(uint64_t v, Touch(db, f.id, now));
          FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, f.id));
          FS_RETURN_IF_ERROR(AppendEvent(db, now, f.share_id, f.id, EventKind::kXattr, v, path));
        }
      }
    }
    if (release_mark) {
      FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM open_writes WHERE node_id=?"));
      d.Bind(1, static_cast<int64_t>(f.id));
      FS_RETURN_IF_ERROR(d.Run());
    }
    return Status::Ok();
  }));
  if (dirty) {
    f.committed_gen = gen;
    f.committed_size = f.size;
    f.dirty = false;
  }
  if (release_mark) f.marked = false;
  return Status::Ok();
}

Status Store::TruncateLocked(LiveFile& f, uint64_t size) {
  NoteWriter(f);
  if (size > kMaxFileBytes) return InvalidArgumentError("size past the 5 TiB file limit");
  if (f.stub && size == 0) {
    // Nothing of the old data is needed: an empty backing file, and the stub is a file again.
    FS_RETURN_IF_ERROR(StartRecall(f));
    f.stub = false;
    f.recall_started = false;
  }
  FS_RETURN_IF_ERROR(EnsureResident(f, 0, f.size));
  FS_RETURN_IF_ERROR(EnsureMarked(f));
  FS_RETURN_IF_ERROR(EnsureChunkFile(f));
  FS_RETURN_IF_ERROR(FlushDirtyChunk(f));
  bool shrink = size < f.size;
  if (shrink) {
    // Rewrite the boundary chunk with its tail zeroed, so a later extension reads zeros.
    uint64_t j = size / chunk_size_;
    uint32_t keep = static_cast<uint32_t>(size % chunk_size_);
    if (keep > 0) {
      std::span<uint8_t> chunk(f.buf.data(), chunk_size_);
      FS_ASSIGN_OR_RETURN(uint32_t len, f.chunks->Read(j, chunk));
      (void)len;
      std::memset(f.buf.data() + keep, 0, chunk_size_ - keep);
      f.buf_index = static_cast<int64_t>(j);
      f.buf_len = keep;
      f.buf_dirty = true;
      FS_RETURN_IF_ERROR(FlushDirtyChunk(f));
    }
    f.buf_index = -1;
  }
  f.size = size;
  f.dirty = true;
  f.mtime_ns = Now();
  FS_RETURN_IF_ERROR(CommitData(f, false));
  if (shrink) {
    // Only now that the shrink is durable may the old chunks go. The file stays marked until
    // they are gone, so a crash in between is repaired by Recover; otherwise the old chunks
    // would resurface as data when the file grows again.
    FS_RETURN_IF_ERROR(f.chunks->CutAfter(size));
  }
  if (f.writers == 0) FS_RETURN_IF_ERROR(CommitData(f, true));
  return Status::Ok();
}

Status Store::Link(NodeId, NodeId, std::string_view) {
  return PermissionDeniedError("hard links are not supported (each file has one name)");
}

Status Store::Unlink(NodeId parent, std::string_view name) {
  FS_RETURN_IF_ERROR(ValidateName(name));
  int64_t now = Now();
  NodeId removed = kNoNode;
  bool was_file = false;
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr a, LoadChild(db, parent, name));
    if (a.type == NodeType::kDirectory) {
      return InvalidArgumentError("'" + a.name + "' is a directory (use rmdir)");
    }
    FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, a.id));
    FS_RETURN_IF_ERROR(RemoveNode(db, a));
    FS_RETURN_IF_ERROR(Touch(db, parent, now).status());
    FS_ASSIGN_OR_RETURN(Stmt mt, db.Prepare("UPDATE nodes SET mtime_ns=? WHERE id=?"));
    mt.Bind(1, now).Bind(2, static_cast<int64_t>(parent));
    FS_RETURN_IF_ERROR(mt.Run());
    removed = a.id;
    was_file = a.type == NodeType::kFile;
    return AppendEvent(db, now, a.share_id, a.id, EventKind::kUnlink, a.version + 1, path);
  }));
  if (was_file) ForgetData(removed);
  return Status::Ok();
}

Status Store::Rmdir(NodeId parent, std::string_view name) {
  FS_RETURN_IF_ERROR(ValidateName(name));
  int64_t now = Now();
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr a, LoadChild(db, parent, name));
    if (a.type != NodeType::kDirectory) {
      return InvalidArgumentError("'" + a.name + "' is not a directory");
    }
    FS_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT 1 FROM nodes WHERE parent_id=? LIMIT 1"));
    c.Bind(1, static_cast<int64_t>(a.id));
    FS_ASSIGN_OR_RETURN(bool child, c.Step());
    if (child) return FailedPreconditionError("directory '" + a.name + "' is not empty");
    FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, a.id));
    FS_RETURN_IF_ERROR(RemoveNode(db, a));
    FS_RETURN_IF_ERROR(Touch(db, parent, now).status());
    return AppendEvent(db, now, a.share_id, a.id, EventKind::kRmdir, a.version + 1, path);
  });
}

Status Store::Rename(NodeId parent, std::string_view name, NodeId new_parent,
                     std::string_view new_name, bool no_replace) {
  FS_RETURN_IF_ERROR(ValidateName(name));
  FS_RETURN_IF_ERROR(ValidateName(new_name));
  int64_t now = Now();
  NodeId replaced_file = kNoNode;
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr src, LoadChild(db, parent, name));
    FS_ASSIGN_OR_RETURN(Attr np, LoadAttr(db, new_parent));
    if (np.type != NodeType::kDirectory) {
      return InvalidArgumentError("rename target parent is not a directory");
    }
    if (np.share_id != src.share_id) {
      return InvalidArgumentError("cannot rename across shares");
    }
    auto dst = LoadChild(db, new_parent, new_name);
    if (dst.ok() && dst->id == src.id) return Status::Ok();
    if (src.type == NodeType::kDirectory) {
      // Refuse moving a directory below itself.
      for (NodeId cur = new_parent; cur != kNoNode;) {
        if (cur == src.id) {
          return FailedPreconditionError("cannot move directory '" + src.name + "' into itself");
        }
        FS_ASSIGN_OR_RETURN(Attr c, LoadAttr(db, cur));
        cur = c.parent;
      }
    }
    FS_ASSIGN_OR_RETURN(uint64_t below, src.type == NodeType::kDirectory
                                            ? LongestSubpath(db, src.id)
                                            : Result<uint64_t>(uint64_t{0}));
    FS_RETURN_IF_ERROR(CheckPathLength(db, new_parent, new_name, below));
    FS_ASSIGN_OR_RETURN(std::string old_path, PathIn(db, src.id));
    if (dst.ok()) {
      if (no_replace) return AlreadyExistsError("'" + std::string(new_name) + "' exists");
      if (src.type == NodeType::kDirectory && dst->type != NodeType::kDirectory) {
        return InvalidArgumentError("cannot replace a non-directory with a directory");
      }
      if (src.type != NodeType::kDirectory && dst->type == NodeType::kDirectory) {
        return InvalidArgumentError("cannot replace a directory with a non-directory");
      }
      if (dst->type == NodeType::kDirectory) {
        FS_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT 1 FROM nodes WHERE parent_id=? LIMIT 1"));
        c.Bind(1, static_cast<int64_t>(dst->id));
        FS_ASSIGN_OR_RETURN(bool child, c.Step());
        if (child) return FailedPreconditionError("target directory is not empty");
      }
      FS_ASSIGN_OR_RETURN(std::string dst_path, PathIn(db, dst->id));
      FS_RETURN_IF_ERROR(RemoveNode(db, *dst));
      if (dst->type == NodeType::kFile) replaced_file = dst->id;
      FS_RETURN_IF_ERROR(
          AppendEvent(db, now, dst->share_id, dst->id,
                      dst->type == NodeType::kDirectory ? EventKind::kRmdir : EventKind::kUnlink,
                      dst->version + 1, dst_path));
    }
    FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE nodes SET parent_id=?, name=? WHERE id=?"));
    u.Bind(1, static_cast<int64_t>(new_parent)).Bind(2, new_name);
    u.Bind(3, static_cast<int64_t>(src.id));
    FS_RETURN_IF_ERROR(u.Run());
    FS_ASSIGN_OR_RETURN(uint64_t v, Touch(db, src.id, now));
    for (NodeId p : {parent, new_parent}) {
      FS_RETURN_IF_ERROR(Touch(db, p, now).status());
      FS_ASSIGN_OR_RETURN(Stmt mt, db.Prepare("UPDATE nodes SET mtime_ns=? WHERE id=?"));
      mt.Bind(1, now).Bind(2, static_cast<int64_t>(p));
      FS_RETURN_IF_ERROR(mt.Run());
      if (parent == new_parent) break;
    }
    FS_ASSIGN_OR_RETURN(std::string new_path, PathIn(db, src.id));
    return AppendEvent(db, now, src.share_id, src.id, EventKind::kRename, v, new_path, old_path);
  }));
  if (replaced_file != kNoNode) ForgetData(replaced_file);
  return Status::Ok();
}

Result<Attr> Store::SetAttr(NodeId node, const SetAttrRequest& req) {
  if (req.size) {
    FS_ASSIGN_OR_RETURN(auto f, GetOpenFile(node));
    Status s;
    {
      MutexLock l(f->mu);
      s = TruncateLocked(*f, *req.size);
      if (s.ok() && req.mtime_ns) f->mtime_ns = *req.mtime_ns;
    }
    ReleaseOpenFile(f);
    FS_RETURN_IF_ERROR(s);
  }
  if (req.mode || req.uid || req.gid || req.atime_ns || req.mtime_ns) {
    if (req.mtime_ns) {
      // An open file keeps the explicit mtime through its next commit.
      if (auto f = FindOpen(node)) {
        MutexLock l(f->mu);
        f->mtime_ns = *req.mtime_ns;
      }
    }
    int64_t now = Now();
    FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
      FS_ASSIGN_OR_RETURN(Attr a, LoadAttr(db, node));
      FS_ASSIGN_OR_RETURN(
          Stmt u, db.Prepare("UPDATE nodes SET mode=?, uid=?, gid=?, atime_ns=?, mtime_ns=? "
                             "WHERE id=?"));
      u.Bind(1, int64_t{req.mode ? (*req.mode & 07777) : a.mode});
      u.Bind(2, int64_t{req.uid.value_or(a.uid)}).Bind(3, int64_t{req.gid.value_or(a.gid)});
      u.Bind(4, req.atime_ns.value_or(a.atime_ns)).Bind(5, req.mtime_ns.value_or(a.mtime_ns));
      u.Bind(6, static_cast<int64_t>(node));
      FS_RETURN_IF_ERROR(u.Run());
      FS_ASSIGN_OR_RETURN(uint64_t v, Touch(db, node, now));
      FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, node));
      return AppendEvent(db, now, a.share_id, node, EventKind::kSetAttr, v, path);
    }));
  }
  return GetAttr(node);
}

Result<std::vector<Attr>> Store::ReadDir(NodeId dir, std::string_view after, size_t limit) {
  std::vector<Attr> out;
  {
    FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
    FS_ASSIGN_OR_RETURN(Attr d, LoadAttr(rd.db(), dir));
    if (d.type != NodeType::kDirectory) return InvalidArgumentError("not a directory");
    static const std::string sql = std::string("SELECT ") + kNodeCols +
                                   " FROM nodes WHERE parent_id=? AND name>? ORDER BY name "
                                   "LIMIT ?";
    FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare(sql.c_str()));
    s.Bind(1, static_cast<int64_t>(dir)).Bind(2, after).Bind(3, static_cast<int64_t>(limit));
    for (;;) {
      FS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadAttr(s));
    }
  }
  MutexLock l(files_mu_);
  for (Attr& a : out) {
    auto it = files_.find(a.id);
    if (it == files_.end()) continue;
    LiveFile& f = *it->second;
    MutexLock fl(f.mu);
    OverlayPending(a, f);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Xattrs

Status Store::SetXattr(NodeId node, std::string_view name, std::string_view value, XattrMode mode) {
  if (name == kCacheStateXattr) {
    return PermissionDeniedError(std::string(kCacheStateXattr) + " is read-only");
  }
  if (name.empty() || name.size() > 255)
    return InvalidArgumentError("xattr name must be 1-255 bytes");
  if (value.size() > kMaxXattrValueBytes) {
    return InvalidArgumentError("xattr value is over 64 KiB");
  }
  int64_t now = Now();
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr a, LoadAttr(db, node));
    FS_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT 1 FROM xattrs WHERE node_id=? AND name=?"));
    q.Bind(1, static_cast<int64_t>(node)).Bind(2, name);
    FS_ASSIGN_OR_RETURN(bool exists, q.Step());
    if (exists && mode == XattrMode::kCreate) {
      return AlreadyExistsError("xattr '" + std::string(name) + "' exists");
    }
    if (!exists && mode == XattrMode::kReplace) {
      return NotFoundError("no xattr '" + std::string(name) + "'");
    }
    FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("INSERT OR REPLACE INTO xattrs VALUES(?,?,?)"));
    s.Bind(1, static_cast<int64_t>(node)).Bind(2, name).BindBlob(3, value);
    FS_RETURN_IF_ERROR(s.Run());
    FS_ASSIGN_OR_RETURN(uint64_t v, Touch(db, node, now));
    FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, node));
    return AppendEvent(db, now, a.share_id, node, EventKind::kXattr, v, path);
  });
}

Result<std::string> Store::GetXattr(NodeId node, std::string_view name) {
  if (name == kCacheStateXattr) return CacheStateOf(node);
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_RETURN_IF_ERROR(LoadAttr(rd.db(), node).status());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT value FROM xattrs WHERE node_id=? AND name=?"));
  s.Bind(1, static_cast<int64_t>(node)).Bind(2, name);
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no xattr '" + std::string(name) + "'");
  return s.Blob(0);
}

Result<std::vector<std::string>> Store::ListXattrs(NodeId node) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_RETURN_IF_ERROR(LoadAttr(rd.db(), node).status());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT name FROM xattrs WHERE node_id=? ORDER BY name"));
  s.Bind(1, static_cast<int64_t>(node));
  std::vector<std::string> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(s.Text(0));
  }
  return out;
}

Status Store::RemoveXattr(NodeId node, std::string_view name) {
  if (name == kCacheStateXattr) {
    return PermissionDeniedError(std::string(kCacheStateXattr) + " is read-only");
  }
  int64_t now = Now();
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr a, LoadAttr(db, node));
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM xattrs WHERE node_id=? AND name=?"));
    d.Bind(1, static_cast<int64_t>(node)).Bind(2, name);
    FS_RETURN_IF_ERROR(d.Run());
    if (db.Changes() == 0) return NotFoundError("no xattr '" + std::string(name) + "'");
    FS_ASSIGN_OR_RETURN(uint64_t v, Touch(db, node, now));
    FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, node));
    return AppendEvent(db, now, a.share_id, node, EventKind::kXattr, v, path);
  });
}

// ---------------------------------------------------------------------------------------------
// Events, capacity, keys

void Store::SetThreadOrigin(const Origin& origin) { t_origin = origin; }

Status Store::Commit(std::function<Status(Db&)> body) {
  return committer_->Run([&body, origin = t_origin](Db& db) {
    Origin saved = std::exchange(t_origin, origin);
    Status s = body(db);
    t_origin = std::move(saved);
    return s;
  });
}

Result<std::vector<Event>> Store::ReadEvents(uint64_t after_seq, size_t limit) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s,
                      rd->Prepare("SELECT e.seq, time_ns, share_id, node_id, kind, version, path, "
                                  "old_path, o.seq IS NOT NULL, o.uid, o.gid, o.pid, o.process "
                                  "FROM events e LEFT JOIN event_origins o ON o.seq = e.seq "
                                  "WHERE e.seq>? ORDER BY e.seq LIMIT ?"));
  s.Bind(1, static_cast<int64_t>(after_seq)).Bind(2, static_cast<int64_t>(limit));
  std::vector<Event> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    Event& e = out.emplace_back(
        Event{static_cast<uint64_t>(s.Int(0)), s.Int(1), static_cast<uint32_t>(s.Int(2)),
              static_cast<NodeId>(s.Int(3)), static_cast<EventKind>(s.Int(4)),
              static_cast<uint64_t>(s.Int(5)), s.Text(6), s.Text(7)});
    if (s.Int(8) != 0) {
      e.origin = {true, static_cast<uint32_t>(s.Int(9)), static_cast<uint32_t>(s.Int(10)),
                  static_cast<int32_t>(s.Int(11)), s.Text(12)};
    }
  }
  return out;
}

Result<uint64_t> Store::GetCursor(std::string_view consumer) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT seq FROM cursors WHERE name=?"));
  s.Bind(1, consumer);
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<uint64_t>(s.Int(0)) : uint64_t{0};
}

Status Store::SetCursor(std::string_view consumer, uint64_t seq) {
  if (consumer.empty()) return InvalidArgumentError("consumer name is empty");
  return Commit([&](Db& db) {
    FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("INSERT OR REPLACE INTO cursors VALUES(?,?)"));
    s.Bind(1, consumer).Bind(2, static_cast<int64_t>(seq));
    return s.Run();
  });
}

Result<Usage> Store::GetUsage() {
  Usage u;
  FS_ASSIGN_OR_RETURN(auto shares, ListShares());
  for (auto& s : shares) u.used_bytes += s.used_bytes;
  FS_ASSIGN_OR_RETURN(auto space, platform::FileSystemSpace(options_.data_dir));
  u.volume_total_bytes = space.total_bytes;
  u.volume_free_bytes = space.free_bytes;
  return u;
}

Result<uint32_t> Store::RotateMasterKey(std::optional<std::string> new_passphrase) {
  std::unique_lock rot(rotation_mu_);
  crypto::MasterKey old;
  {
    MutexLock l(key_mu_);
    if (!master_) return FailedPreconditionError("encryption is off and no master key exists");
    old = *master_;
  }
  uint32_t id = old.id + 1;
  crypto::MasterKey next;
  std::string salt;
  bool passphrase = options_.passphrase.has_value();
  if (passphrase) {
    salt.resize(16);
    FS_RETURN_IF_ERROR(crypto::RandomBytes({reinterpret_cast<uint8_t*>(salt.data()), 16}));
    FS_ASSIGN_OR_RETURN(next, crypto::DeriveFromPassphrase(
                                  new_passphrase.value_or(*options_.passphrase), salt, id));
  } else {
    FS_ASSIGN_OR_RETURN(next, crypto::NewRandomMasterKey(id));
    // The new key is durable before any file key is wrapped under it.
    FS_RETURN_IF_ERROR(crypto::WriteKeyFile(options_.key_file + ".new", next));
  }
  uint64_t rewrapped = 0;
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    rewrapped = 0;
    int64_t after = 0;
    for (;;) {
      std::vector<std::pair<int64_t, std::string>> batch;
      {
        FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT id, wrapped_key FROM nodes WHERE id>? "
                                               "AND wrapped_key IS NOT NULL ORDER BY id "
                                               "LIMIT 1000"));
        s.Bind(1, after);
        for (;;) {
          FS_ASSIGN_OR_RETURN(bool row, s.Step());
          if (!row) break;
          batch.emplace_back(s.Int(0), s.Blob(1));
        }
      }
      if (batch.empty()) break;
      for (auto& [nid, wrapped] : batch) {
        FS_ASSIGN_OR_RETURN(crypto::Key k, crypto::UnwrapKey(old, wrapped, nid));
        FS_ASSIGN_OR_RETURN(std::string w, crypto::WrapKey(next, k, nid));
        FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE nodes SET wrapped_key=?, key_id=? "
                                               "WHERE id=?"));
        u.BindBlob(1, w).Bind(2, int64_t{id}).Bind(3, nid);
        FS_RETURN_IF_ERROR(u.Run());
        ++rewrapped;
      }
      after = batch.back().first;
    }
    FS_RETURN_IF_ERROR(PutMeta(db, "key_check", KeyCheck(next)));
    FS_RETURN_IF_ERROR(PutMeta(db, "key_id", std::to_string(id)));
    if (passphrase) FS_RETURN_IF_ERROR(PutMeta(db, "kdf_salt", salt));
    return Status::Ok();
  }));
  if (!passphrase) {
    // The db now needs the new key; a crash before this write is finished by LoadKeys,
    // which finds the new key in master.key.new.
    FS_RETURN_IF_ERROR(crypto::WriteKeyFile(options_.key_file, next));
    FS_RETURN_IF_ERROR(platform::RemoveFile(options_.key_file + ".new"));
  } else if (new_passphrase) {
    options_.passphrase = new_passphrase;
  }
  {
    MutexLock l(key_mu_);
    master_ = next;
  }
  spdlog::info("store: master key rotated to id {} ({} file keys re-wrapped)", id, rewrapped);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Upload queue

Result<size_t> Store::EnqueueUploads(std::string_view consumer, size_t max_events) {
  size_t queued = 0;
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    queued = 0;
    uint64_t cursor = 0;
    {
      FS_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT seq FROM cursors WHERE name=?"));
      c.Bind(1, consumer);
      FS_ASSIGN_OR_RETURN(bool row, c.Step());
      if (row) cursor = c.Int(0);
    }
    // Events of cloud shares that committed data; the node's current committed generation
    // is what gets queued (a later write supersedes an earlier one in the same row).
    std::vector<std::pair<uint64_t, NodeId>> writes;
    std::vector<NodeId> renames;
    uint64_t last = cursor;
    {
      FS_ASSIGN_OR_RETURN(
          Stmt e, db.Prepare("SELECT e.seq, e.node_id, e.kind, s.kind FROM events e LEFT JOIN "
                             "shares s ON s.id = e.share_id WHERE e.seq>? ORDER BY e.seq LIMIT ?"));
      e.Bind(1, static_cast<int64_t>(cursor)).Bind(2, static_cast<int64_t>(max_events));
      for (;;) {
        FS_ASSIGN_OR_RETURN(bool row, e.Step());
        if (!row) break;
        last = e.Int(0);
        // The cursor moves over the events of a deleted share (no kind): they queue nothing.
        if (e.IsNull(3) || static_cast<ShareKind>(e.Int(3)) != ShareKind::kCloud) continue;
        auto kind = static_cast<EventKind>(e.Int(2));
        if (kind == EventKind::kWrite) writes.emplace_back(last, e.Int(1));
        if (kind == EventKind::kRename) renames.push_back(e.Int(1));
      }
    }
    for (auto& [seq, node] : writes) {
      FS_RETURN_IF_ERROR(AbandonUpload(db, node, /*only_if_stale=*/true));
      FS_ASSIGN_OR_RETURN(
          Stmt q, db.Prepare("INSERT INTO upload_queue(node_id, share_id, data_gen) "
                             "SELECT id, share_id, data_gen FROM nodes WHERE id=? AND type=1 "
                             "ON CONFLICT(node_id) DO UPDATE SET data_gen=excluded.data_gen, "
                             "attempts=0, not_before_ns=0, last_error=NULL "
                             "WHERE excluded.data_gen > upload_queue.data_gen"));
      q.Bind(1, static_cast<int64_t>(node));
      FS_RETURN_IF_ERROR(q.Run());
      queued += db.Changes();
    }
    // A renamed file (or every file below a renamed directory) that was uploaded before goes
    // up again under its new key; the old object is released when that succeeds.
    for (NodeId node : renames) {
      FS_ASSIGN_OR_RETURN(
          Stmt q, db.Prepare("WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT n.id FROM "
                             "nodes n JOIN sub ON n.parent_id = sub.id) "
                             "INSERT INTO upload_queue(node_id, share_id, data_gen) "
                             "SELECT n.id, n.share_id, n.data_gen FROM nodes n JOIN sub ON "
                             "n.id = sub.id WHERE n.type=1 AND n.cloud_key IS NOT NULL "
                             "ON CONFLICT(node_id) DO NOTHING"));
      q.Bind(1, static_cast<int64_t>(node));
      FS_RETURN_IF_ERROR(q.Run());
      queued += db.Changes();
    }
    if (last == cursor) return Status::Ok();
    FS_ASSIGN_OR_RETURN(Stmt c, db.Prepare("INSERT OR REPLACE INTO cursors VALUES(?,?)"));
    c.Bind(1, consumer).Bind(2, static_cast<int64_t>(last));
    return c.Run();
  }));
  return queued;
}

Result<std::vector<UploadItem>> Store::DueUploads(int64_t now_ns, size_t limit) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(
      Stmt s,
      rd->Prepare(
          "SELECT q.node_id, q.share_id, q.data_gen, q.attempts, q.not_before_ns, "
          "q.upload_key, q.upload_id, q.last_error, n.cloud_key, n.cloud_etag FROM upload_queue "
          "q JOIN nodes n ON n.id = q.node_id JOIN shares s ON s.id = q.share_id WHERE "
          "q.not_before_ns<=? ORDER BY q.not_before_ns, q.node_id LIMIT ?"));
  s.Bind(1, now_ns).Bind(2, static_cast<int64_t>(limit));
  std::vector<UploadItem> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    UploadItem it;
    it.node = s.Int(0);
    it.share_id = static_cast<uint32_t>(s.Int(1));
    it.data_gen = s.Int(2);
    it.attempts = static_cast<uint32_t>(s.Int(3));
    it.not_before_ns = s.Int(4);
    it.upload_key = s.Text(5);
    it.upload_id = s.Text(6);
    it.last_error = s.Text(7);
    it.cloud_key = s.Text(8);
    it.cloud_etag = s.Text(9);
    out.push_back(std::move(it));
  }
  return out;
}

Result<uint64_t> Store::PendingUploads() {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  // Rows of a deleted share whose nodes are still being purged do not count.
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT count(*) FROM upload_queue q JOIN shares s ON "
                                          "s.id = q.share_id"));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<uint64_t>(s.Int(0)) : uint64_t{0};
}

Result<std::map<uint32_t, uint64_t>> Store::PendingUploadsByShare() {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s,
                      rd->Prepare("SELECT q.share_id, count(*) FROM upload_queue q JOIN shares s "
                                  "ON s.id = q.share_id GROUP BY q.share_id"));
  std::map<uint32_t, uint64_t> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out[static_cast<uint32_t>(s.Int(0))] = static_cast<uint64_t>(s.Int(1));
  }
  return out;
}

Result<int64_t> Store::OldestPendingUploadNs() {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT min(n.mtime_ns) FROM upload_queue q JOIN nodes "
                                          "n ON n.id = q.node_id JOIN shares s ON "
                                          "s.id = q.share_id"));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int(0) : int64_t{0};
}

Status Store::UpdateUpload(const UploadItem& item) {
  return Commit([&](Db& db) {
    FS_ASSIGN_OR_RETURN(
        Stmt u, db.Prepare("UPDATE upload_queue SET attempts=?, not_before_ns=?, upload_key=?, "
                           "upload_id=?, last_error=? WHERE node_id=? AND data_gen=?"));
    u.Bind(1, int64_t{item.attempts}).Bind(2, item.not_before_ns).Bind(3, item.upload_key);
    u.Bind(4, item.upload_id).Bind(5, item.last_error).Bind(6, static_cast<int64_t>(item.node));
    u.Bind(7, static_cast<int64_t>(item.data_gen));
    return u.Run();
  });
}

Status Store::NoteUploadAttempt(NodeId node, uint32_t share_id, std::string_view key) {
  return Commit([&](Db& db) -> Status {
    // An attempt under another key (the file was renamed meanwhile) may have landed too.
    FS_RETURN_IF_ERROR(ReleaseAttempt(db, node, key));
    FS_ASSIGN_OR_RETURN(Stmt a, db.Prepare("INSERT INTO upload_attempts(node_id, share_id, key) "
                                           "VALUES(?,?,?)"));
    a.Bind(1, static_cast<int64_t>(node)).Bind(2, int64_t{share_id}).Bind(3, key);
    return a.Run();
  });
}

Status Store::FinishUpload(const UploadItem& item, FileState state, std::string_view cloud_key,
                           std::string_view cloud_etag, std::string_view error,
                           const CloudCopy* copy) {
  return Commit([&](Db& db) -> Status {
    if (copy != nullptr) {
      FS_ASSIGN_OR_RETURN(Stmt c, db.Prepare("UPDATE nodes SET part_size=?, part_md5s=?, "
                                             "cloud_md5=? WHERE id=? AND data_gen=?"));
      c.Bind(1, static_cast<int64_t>(copy->part_size)).BindBlob(2, copy->part_md5s);
      c.BindBlob(3, copy->md5).Bind(4, static_cast<int64_t>(item.node));
      c.Bind(5, static_cast<int64_t>(item.data_gen));
      FS_RETURN_IF_ERROR(c.Run());
    }
    // A newer version queued meanwhile keeps its row; the node's state follows only the
    // version it describes.
    FS_ASSIGN_OR_RETURN(Stmt d,
                        db.Prepare("DELETE FROM upload_queue WHERE node_id=? AND data_gen=?"));
    d.Bind(1, static_cast<int64_t>(item.node)).Bind(2, static_cast<int64_t>(item.data_gen));
    FS_RETURN_IF_ERROR(d.Run());
    FS_ASSIGN_OR_RETURN(Stmt e, db.Prepare("SELECT 1 FROM nodes WHERE id=?"));
    e.Bind(1, static_cast<int64_t>(item.node));
    FS_ASSIGN_OR_RETURN(bool exists, e.Step());
    if (!cloud_key.empty()) {
      // Recorded below: the attempt is no longer in doubt.
      FS_ASSIGN_OR_RETURN(Stmt a, db.Prepare("DELETE FROM upload_attempts WHERE node_id=? AND "
                                             "key=?"));
      a.Bind(1, static_cast<int64_t>(item.node)).Bind(2, cloud_key);
      FS_RETURN_IF_ERROR(a.Run());
    }
    if (!cloud_key.empty() && !exists) {
      // The file was deleted while it went up: the object just written is no file's. It
      // replaced whatever was released under its key.
      FS_ASSIGN_OR_RETURN(Stmt f,
                          db.Prepare("DELETE FROM released_objects WHERE share_id=? AND key=?"));
      f.Bind(1, int64_t{item.share_id}).Bind(2, cloud_key);
      FS_RETURN_IF_ERROR(f.Run());
      // Unless the share itself was deleted: its objects stay in the cloud.
      FS_ASSIGN_OR_RETURN(Stmt r, db.Prepare("INSERT INTO released_objects(share_id, key, etag) "
                                             "SELECT id, ?, ? FROM shares WHERE id=?"));
      r.Bind(1, cloud_key).Bind(2, cloud_etag).Bind(3, int64_t{item.share_id});
      return r.Run();
    }
    if (!cloud_key.empty()) {
      // Uploaded under a new key (a rename): the object under the old key is released (and
      // replaces older rows of that key). An object released earlier under the new key has
      // just been replaced.
      FS_ASSIGN_OR_RETURN(Stmt old, db.Prepare("DELETE FROM released_objects WHERE (share_id, key) "
                                               "IN (SELECT share_id, cloud_key FROM nodes WHERE "
                                               "id=? AND data_gen=? AND cloud_key<>?)"));
      old.Bind(1, static_cast<int64_t>(item.node)).Bind(2, static_cast<int64_t>(item.data_gen));
      old.Bind(3, cloud_key);
      FS_RETURN_IF_ERROR(old.Run());
      FS_ASSIGN_OR_RETURN(
          Stmt r, db.Prepare("INSERT INTO released_objects(share_id, key, etag) SELECT share_id, "
                             "cloud_key, cloud_etag FROM nodes WHERE id=? AND data_gen=? AND "
                             "cloud_key IS NOT NULL AND cloud_etag IS NOT NULL AND cloud_key<>?"));
      r.Bind(1, static_cast<int64_t>(item.node)).Bind(2, static_cast<int64_t>(item.data_gen));
      r.Bind(3, cloud_key);
      FS_RETURN_IF_ERROR(r.Run());
      FS_ASSIGN_OR_RETURN(Stmt f,
                          db.Prepare("DELETE FROM released_objects WHERE share_id=? AND key=?"));
      f.Bind(1, int64_t{item.share_id}).Bind(2, cloud_key);
      FS_RETURN_IF_ERROR(f.Run());
    }
    FS_ASSIGN_OR_RETURN(Stmt u,
                        db.Prepare("UPDATE nodes SET state=?, cloud_etag=coalesce(?, cloud_etag), "
                                   "sync_error=?, cloud_key=coalesce(?, cloud_key) WHERE id=? AND "
                                   "data_gen=?"));
    u.Bind(1, static_cast<int64_t>(state));
    if (cloud_etag.empty()) {
      u.BindNull(2);
    } else {
      u.Bind(2, cloud_etag);
    }
    if (error.empty()) {
      u.BindNull(3);
    } else {
      u.Bind(3, error);
    }
    if (cloud_key.empty()) {
      u.BindNull(4);
    } else {
      u.Bind(4, cloud_key);
    }
    u.Bind(5, static_cast<int64_t>(item.node)).Bind(6, static_cast<int64_t>(item.data_gen));
    return u.Run();
  });
}

Result<uint64_t> Store::LastEventSeq() {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT coalesce(max(seq), 0) FROM events"));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<uint64_t>(s.Int(0)) : 0;
}

Result<std::string> Store::GetValue(std::string_view key) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  return GetMeta(rd.db(), ("app." + std::string(key)).c_str());
}

Status Store::SetValue(std::string_view key, std::string_view value) {
  return Commit([&](Db& db) { return PutMeta(db, ("app." + std::string(key)).c_str(), value); });
}

Result<std::vector<ReleasedObject>> Store::DueReleased(const std::vector<uint32_t>& shares,
                                                       int64_t now_ns, size_t limit) {
  std::vector<ReleasedObject> out;
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  for (uint32_t share : shares) {
    if (out.size() >= limit) break;
    FS_ASSIGN_OR_RETURN(
        Stmt s, rd->Prepare("SELECT id, share_id, key, etag, attempts, not_before_ns, last_error "
                            "FROM released_objects WHERE share_id=? AND not_before_ns<=? "
                            "ORDER BY id LIMIT ?"));
    s.Bind(1, int64_t{share}).Bind(2, now_ns).Bind(3, static_cast<int64_t>(limit - out.size()));
    for (;;) {
      FS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ReleasedObject r;
      r.id = s.Int(0);
      r.share_id = static_cast<uint32_t>(s.Int(1));
      r.key = s.Text(2);
      r.etag = s.Text(3);
      r.attempts = static_cast<uint32_t>(s.Int(4));
      r.not_before_ns = s.Int(5);
      r.last_error = s.Text(6);
      out.push_back(std::move(r));
    }
  }
  return out;
}

Result<size_t> Store::WakeUploads(std::string_view error_prefix) {
  size_t n = 0;
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE upload_queue SET not_before_ns=0 WHERE "
                                           "substr(last_error, 1, ?)=?"));
    u.Bind(1, static_cast<int64_t>(error_prefix.size())).Bind(2, error_prefix);
    FS_RETURN_IF_ERROR(u.Run());
    n = static_cast<size_t>(db.Changes());
    return Status::Ok();
  }));
  return n;
}

Result<std::vector<AbandonedUpload>> Store::AbandonedUploads(size_t limit) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT id, share_id, key, upload_id FROM "
                                          "abandoned_uploads ORDER BY id LIMIT ?"));
  s.Bind(1, static_cast<int64_t>(limit));
  std::vector<AbandonedUpload> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(
        {static_cast<uint64_t>(s.Int(0)), static_cast<uint32_t>(s.Int(1)), s.Text(2), s.Text(3)});
  }
  return out;
}

Status Store::ForgetAbandonedUpload(uint64_t id) {
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM abandoned_uploads WHERE id=?"));
    d.Bind(1, static_cast<int64_t>(id));
    return d.Run();
  });
}

Result<std::string> Store::ReleasedEtag(uint32_t share_id, std::string_view key) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT etag FROM released_objects WHERE share_id=? "
                                          "AND key=? ORDER BY id DESC LIMIT 1"));
  s.Bind(1, int64_t{share_id}).Bind(2, key);
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Text(0) : std::string();
}

Status Store::UpdateReleased(const ReleasedObject& r) {
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE released_objects SET attempts=?, "
                                           "not_before_ns=?, last_error=? WHERE id=?"));
    u.Bind(1, int64_t{r.attempts}).Bind(2, r.not_before_ns).Bind(3, r.last_error);
    u.Bind(4, static_cast<int64_t>(r.id));
    return u.Run();
  });
}

Status Store::ForgetReleased(uint64_t id) {
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM released_objects WHERE id=?"));
    d.Bind(1, static_cast<int64_t>(id));
    return d.Run();
  });
}

Status Store::ReadFailed(const Status& s) {
  if (s.code() == StatusCode::kCorruption && corrupt_chunks_) corrupt_chunks_->Increment();
  spdlog::error("store: {}", s.ToString());
  return s;
}

// ---------------------------------------------------------------------------------------------
// Cache: eviction, recall, refresh

namespace {

Status ValidateStub(const StubSpec& spec) {
  if (spec.cloud.key.empty() || spec.cloud.etag.empty()) {
    return InvalidArgumentError("a stub needs the key and etag of its cloud object");
  }
  if (spec.cloud.size > kMaxFileBytes) return InvalidArgumentError("stub past the 5 TiB limit");
  if (spec.cloud.part_md5s.size() % 16 != 0 ||
      (!spec.cloud.md5.empty() && spec.cloud.md5.size() != 16)) {
    return InvalidArgumentError("stub checksums must be 16-byte MD5s");
  }
  for (const auto& [name, value] : spec.xattrs) {
    if (name.empty() || name.size() > 255 || value.size() > kMaxXattrValueBytes) {
      return InvalidArgumentError("stub xattr '" + name + "': name 1-255 bytes, value 64 KiB");
    }
  }
  return Status::Ok();
}

}  // namespace

void Store::SetCacheHooks(CacheHooks* hooks) {
  hooks_.store(hooks);
  if (hooks != nullptr) return;
  // Fetches in flight may still use the old hooks: wait for them.
  while (fetches_in_flight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void Store::NoteUse(NodeId node) {
  MutexLock l(access_mu_);
  access_[node] = Now();
}

Status Store::FlushAccessTimes() {
  std::unordered_map<NodeId, int64_t> pending;
  {
    MutexLock l(access_mu_);
    pending.swap(access_);
  }
  if (pending.empty()) return Status::Ok();
  return Commit([&](Db& db) -> Status {
    for (const auto& [node, ns] : pending) {
      FS_ASSIGN_OR_RETURN(Stmt u,
                          db.Prepare("UPDATE nodes SET used_ns=max(used_ns, ?) WHERE id=?"));
      u.Bind(1, ns).Bind(2, static_cast<int64_t>(node));
      FS_RETURN_IF_ERROR(u.Run());
    }
    return Status::Ok();
  });
}

Result<std::vector<CacheFile>> Store::EvictionCandidates(uint32_t share_id, int64_t after_used_ns,
                                                         NodeId after_node, size_t limit) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(
      Stmt s, rd->Prepare("SELECT id, data_gen, size, used_ns FROM nodes WHERE share_id=? AND "
                          "state=4 AND (used_ns, id) > (?, ?) AND type=1 AND size>0 AND "
                          "cloud_etag IS NOT NULL AND EXISTS (SELECT 1 FROM shares WHERE "
                          "shares.id = nodes.share_id) ORDER BY used_ns, id LIMIT ?"));
  s.Bind(1, int64_t{share_id}).Bind(2, after_used_ns).Bind(3, static_cast<int64_t>(after_node));
  s.Bind(4, static_cast<int64_t>(limit));
  std::vector<CacheFile> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({static_cast<NodeId>(s.Int(0)), static_cast<uint64_t>(s.Int(1)),
                   static_cast<uint64_t>(s.Int(2)), s.Int(3)});
  }
  return out;
}

Result<size_t> Store::Evict(const std::vector<CacheFile>& files) {
  std::vector<NodeId> claimed;
  {
    MutexLock l(files_mu_);
    for (const CacheFile& c : files) {
      if (files_.count(c.node) != 0 || evicting_.count(c.node) != 0) continue;  // open: in use
      evicting_.insert(c.node);
      claimed.push_back(c.node);
    }
  }
  std::vector<NodeId> done_rows;
  {
    MutexLock l(evicted_mu_);
    done_rows.swap(evicted_rows_);
  }
  std::vector<NodeId> evicted;
  Status s = Commit([&](Db& db) -> Status {
    evicted.clear();
    for (NodeId id : done_rows) {
      FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM stub_data WHERE node_id=?"));
      d.Bind(1, static_cast<int64_t>(id));
      FS_RETURN_IF_ERROR(d.Run());
    }
    for (const CacheFile& c : files) {
      if (std::find(claimed.begin(), claimed.end(), c.node) == claimed.end()) continue;
      FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE nodes SET state=6 WHERE id=? AND data_gen=? "
                                             "AND state=4 AND type=1 AND cloud_key IS NOT NULL "
                                             "AND cloud_etag IS NOT NULL"));
      u.Bind(1, static_cast<int64_t>(c.node)).Bind(2, static_cast<int64_t>(c.data_gen));
      FS_RETURN_IF_ERROR(u.Run());
      if (db.Changes() == 0) continue;  // changed, or uploaded again, since it was listed
      FS_ASSIGN_OR_RETURN(Stmt r, db.Prepare("INSERT OR IGNORE INTO stub_data VALUES(?)"));
      r.Bind(1, static_cast<int64_t>(c.node));
      FS_RETURN_IF_ERROR(r.Run());
      evicted.push_back(c.node);
    }
    return Status::Ok();
  });
  if (!s.ok()) {
    MutexLock l(evicted_mu_);
    evicted_rows_.insert(evicted_rows_.end(), done_rows.begin(), done_rows.end());
    evicted.clear();
  }
  std::vector<NodeId> removed;
  for (NodeId id : evicted) {
    Status r = platform::RemoveFile(BackingPath(id));
    if (r.ok()) {
      removed.push_back(id);
    } else {
      spdlog::warn("store: evicting file {}: {} (removed at the next start)", id, r.ToString());
    }
  }
  {
    MutexLock l(evicted_mu_);
    evicted_rows_.insert(evicted_rows_.end(), removed.begin(), removed.end());
  }
  {
    MutexLock l(files_mu_);
    for (NodeId id : claimed) evicting_.erase(id);
  }
  evict_cv_.notify_all();
  FS_RETURN_IF_ERROR(s);
  if (evictions_) evictions_->Increment(static_cast<double>(evicted.size()));
  return evicted.size();
}

Result<CacheUsage> Store::GetCacheUsage(uint32_t share_id) {
  CacheUsage u;
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt t, rd->Prepare("SELECT used_bytes FROM shares WHERE id=?"));
  t.Bind(1, int64_t{share_id});
  FS_ASSIGN_OR_RETURN(bool row, t.Step());
  if (!row) return NotFoundError("no share " + std::to_string(share_id));
  uint64_t used = static_cast<uint64_t>(t.Int(0));
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare("SELECT coalesce(sum(size), 0), count(*) FROM nodes "
                                          "WHERE share_id=? AND state=6"));
  s.Bind(1, int64_t{share_id});
  FS_ASSIGN_OR_RETURN(row, s.Step());
  u.stub_bytes = static_cast<uint64_t>(s.Int(0));
  u.stub_files = static_cast<uint64_t>(s.Int(1));
  FS_ASSIGN_OR_RETURN(Stmt c, rd->Prepare("SELECT coalesce(sum(size), 0) FROM nodes WHERE "
                                          "share_id=? AND state=4"));
  c.Bind(1, int64_t{share_id});
  FS_ASSIGN_OR_RETURN(row, c.Step());
  u.clean_bytes = static_cast<uint64_t>(c.Int(0));
  u.resident_bytes = used > u.stub_bytes ? used - u.stub_bytes : 0;
  return u;
}

uint64_t Store::UncommittedBytes(uint32_t share_id) {
  std::vector<std::shared_ptr<LiveFile>> open;
  {
    MutexLock l(files_mu_);
    for (auto& [id, f] : files_) {
      if (f->share_id == share_id) open.push_back(f);
    }
  }
  // Not under files_mu_: a file's lock may be held through an fsync.
  uint64_t total = 0;
  for (auto& f : open) {
    MutexLock fl(f->mu);
    if (f->dirty && f->size > f->committed_size) total += f->size - f->committed_size;
  }
  return total;
}

Result<CloudCopy> Store::CloudCopyOf(NodeId node) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  static const std::string sql = std::string(
                                     "SELECT cloud_key, cloud_etag, size, part_size, part_md5s, "
                                     "cloud_md5 FROM nodes WHERE id=? AND ") +
                                 kLiveShare;
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare(sql.c_str()));
  s.Bind(1, static_cast<int64_t>(node));
  FS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no node " + std::to_string(node));
  if (s.IsNull(0) || s.IsNull(1))
    return NotFoundError("no cloud copy of node " + std::to_string(node));
  CloudCopy c;
  c.key = s.Text(0);
  c.etag = s.Text(1);
  c.size = static_cast<uint64_t>(s.Int(2));
  c.part_size = static_cast<uint64_t>(s.Int(3));
  c.part_md5s = s.Blob(4);
  c.md5 = s.Blob(5);
  return c;
}

Result<std::string> Store::CacheStateOf(NodeId node) {
  FS_ASSIGN_OR_RETURN(Attr a, GetAttr(node));
  if (a.type == NodeType::kDirectory) return std::string("directory");
  switch (a.state) {
    case FileState::kLocal:
      return std::string("local");
    case FileState::kStub:
    case FileState::kRecalling:
      return std::string("stub");
    case FileState::kClean: {
      CacheHooks* hooks = hooks_.load();
      if (hooks != nullptr) {
        FS_ASSIGN_OR_RETURN(std::string path, PathOf(node));
        if (hooks->Pinned(a.share_id, path)) return std::string("pinned");
      }
      return std::string("resident");
    }
    default:
      return std::string("dirty");
  }
}

Result<Attr> Store::CreateStub(NodeId parent, std::string_view name, const StubSpec& spec) {
  FS_RETURN_IF_ERROR(ValidateStub(spec));
  NewNode opts{spec.mode, spec.uid, spec.gid};
  return InsertNode(parent, name, NodeType::kFile, opts, {}, EventKind::kCreate, &spec);
}

Result<Attr> Store::ReplaceWithStub(NodeId node, uint64_t version, const StubSpec& spec) {
  FS_RETURN_IF_ERROR(ValidateStub(spec));
  {
    MutexLock l(files_mu_);
    if (files_.count(node) != 0 || evicting_.count(node) != 0) {
      return FailedPreconditionError("file " + std::to_string(node) + " is open");
    }
    evicting_.insert(node);
  }
  int64_t now = Now();
  bool had_data = false;
  Status s = Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr a, LoadAttr(db, node));
    if (a.type != NodeType::kFile || a.version != version ||
        (a.state != FileState::kClean && a.state != FileState::kStub)) {
      return FailedPreconditionError("file " + std::to_string(node) + " changed on the box");
    }
    had_data = a.state == FileState::kClean;
    FS_RETURN_IF_ERROR(SetStub(db, node, spec, /*had_data=*/true));
    FS_RETURN_IF_ERROR(AdjustUsed(
        db, a.share_id, static_cast<int64_t>(spec.cloud.size) - static_cast<int64_t>(a.size)));
    FS_ASSIGN_OR_RETURN(uint64_t v, Touch(db, node, now));
    FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, node));
    return AppendEvent(db, now, a.share_id, node, EventKind::kRefresh, v, path);
  });
  if (s.ok()) {
    Status r = platform::RemoveFile(BackingPath(node));
    if (r.ok()) {
      MutexLock l(evicted_mu_);
      evicted_rows_.push_back(node);
    } else {
      spdlog::warn("store: dropping the old data of file {}: {}", node, r.ToString());
    }
  }
  (void)had_data;
  {
    MutexLock l(files_mu_);
    evicting_.erase(node);
  }
  evict_cv_.notify_all();
  FS_RETURN_IF_ERROR(s);
  return GetAttr(node);
}

Status Store::RemoveIfUnchanged(NodeId node, uint64_t version) {
  {
    MutexLock l(files_mu_);
    if (files_.count(node) != 0 || evicting_.count(node) != 0) {
      return FailedPreconditionError("file " + std::to_string(node) + " is open");
    }
    evicting_.insert(node);
  }
  int64_t now = Now();
  Status s = Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr a, LoadAttr(db, node));
    if (a.type != NodeType::kFile || a.version != version ||
        (a.state != FileState::kClean && a.state != FileState::kStub)) {
      return FailedPreconditionError("file " + std::to_string(node) + " changed on the box");
    }
    FS_ASSIGN_OR_RETURN(std::string path, PathIn(db, node));
    FS_RETURN_IF_ERROR(RemoveNode(db, a));
    FS_RETURN_IF_ERROR(Touch(db, a.parent, now).status());
    return AppendEvent(db, now, a.share_id, node, EventKind::kUnlink, a.version + 1, path);
  });
  {
    MutexLock l(files_mu_);
    evicting_.erase(node);
  }
  evict_cv_.notify_all();
  FS_RETURN_IF_ERROR(s);
  ForgetData(node);
  return Status::Ok();
}

Status Store::ReuploadIfUnchanged(NodeId node, uint64_t version) {
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Attr a, LoadAttr(db, node));
    if (a.type != NodeType::kFile || a.version != version || a.state != FileState::kClean) {
      return FailedPreconditionError("file " + std::to_string(node) + " changed on the box");
    }
    FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE nodes SET state=2, cloud_key=NULL, "
                                           "cloud_etag=NULL, part_size=NULL, part_md5s=NULL, "
                                           "cloud_md5=NULL WHERE id=?"));
    u.Bind(1, static_cast<int64_t>(node));
    FS_RETURN_IF_ERROR(u.Run());
    FS_ASSIGN_OR_RETURN(Stmt q, db.Prepare("INSERT OR REPLACE INTO upload_queue(node_id, "
                                           "share_id, data_gen) VALUES(?,?,?)"));
    q.Bind(1, static_cast<int64_t>(node)).Bind(2, int64_t{a.share_id});
    q.Bind(3, static_cast<int64_t>(a.data_gen));
    return q.Run();
  });
}

Status Store::MarkRefreshed(const std::vector<NodeId>& nodes, uint64_t refresh_id) {
  if (nodes.empty()) return Status::Ok();
  return Commit([&](Db& db) -> Status {
    for (NodeId id : nodes) {
      FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE nodes SET refresh_id=? WHERE id=?"));
      u.Bind(1, static_cast<int64_t>(refresh_id)).Bind(2, static_cast<int64_t>(id));
      FS_RETURN_IF_ERROR(u.Run());
    }
    return Status::Ok();
  });
}

Result<std::vector<Attr>> Store::NotRefreshed(uint32_t share_id, std::string_view key_prefix,
                                              uint64_t refresh_id, NodeId after_node,
                                              size_t limit) {
  FS_ASSIGN_OR_RETURN(auto rd, readers_->Borrow());
  static const std::string sql =
      std::string("SELECT ") + kNodeCols +
      " FROM nodes WHERE share_id=? AND id>? AND type=1 AND state IN (4, 6) AND refresh_id<? AND "
      "cloud_key IS NOT NULL AND substr(cloud_key, 1, ?)=? ORDER BY id LIMIT ?";
  FS_ASSIGN_OR_RETURN(Stmt s, rd->Prepare(sql.c_str()));
  s.Bind(1, int64_t{share_id}).Bind(2, static_cast<int64_t>(after_node));
  s.Bind(3, static_cast<int64_t>(refresh_id)).Bind(4, static_cast<int64_t>(key_prefix.size()));
  s.Bind(5, key_prefix).Bind(6, static_cast<int64_t>(limit));
  std::vector<Attr> out;
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadAttr(s));
  }
  return out;
}

Status Store::Recall(NodeId node) {
  FS_ASSIGN_OR_RETURN(auto h, OpenFile(node, false));
  {
    LiveFile& f = *h->file_;
    MutexLock l(f.mu);
    FS_RETURN_IF_ERROR(EnsureResident(f, 0, f.size));
  }
  return h->Close();
}

Status Store::StartRecall(LiveFile& f) {
  if (f.recall_started) return Status::Ok();
  NodeId id = f.id;
  {
    // Its row must stay until the recall is done: the next eviction must not drop it.
    MutexLock l(evicted_mu_);
    std::erase(evicted_rows_, id);
  }
  // Recorded first, so a crash mid-recall leaves no partial backing file behind (Recover).
  FS_RETURN_IF_ERROR(Commit([id](Db& db) {
    FS_ASSIGN_OR_RETURN(Stmt r, db.Prepare("INSERT OR IGNORE INTO stub_data VALUES(?)"));
    r.Bind(1, static_cast<int64_t>(id));
    return r.Run();
  }));
  std::string path = BackingPath(id);
  FS_ASSIGN_OR_RETURN(auto file, platform::File::Open(path, O_RDWR | O_CREAT | O_TRUNC, 0600));
  f.created_backing = true;
  f.chunks = std::make_unique<ChunkFile>(std::move(file), id, chunk_size_, std::move(f.codec));
  f.buf.assign(chunk_size_, 0);
  f.scratch.assign(chunk_size_, 0);
  f.scratch_index = -1;
  f.recall_started = true;
  return Status::Ok();
}

Status Store::EnsureResident(LiveFile& f, uint64_t offset, uint64_t len) {
  if (!f.stub || len == 0) {
    if (read_hits_ && len > 0) read_hits_->Increment();
    return Status::Ok();
  }
  if (hooks_.load() == nullptr) {
    return UnavailableError("file " + std::to_string(f.id) +
                            " is in the cloud only, and recall "
                            "is not configured");
  }
  FS_RETURN_IF_ERROR(StartRecall(f));
  const size_t first = offset / f.block;
  const size_t last = std::min<size_t>((offset + len - 1) / f.block, f.blocks.size() - 1);
  std::shared_ptr<LiveFile> self = f.self.lock();
  if (!self) return InternalError("recall of a file that is not open");
  bool missed = false;
  f.recall_error = Status::Ok();
  ++f.recall_epoch;
  for (;;) {
    bool all = true;
    size_t first_missing = SIZE_MAX;
    for (size_t b = first; b <= last; ++b) {
      if (f.blocks[b] == LiveFile::kHave) continue;
      all = false;
      if (f.blocks[b] == LiveFile::kMissing && first_missing == SIZE_MAX) first_missing = b;
    }
    if (all || !f.stub) break;
    if (first_missing != SIZE_MAX && !f.recall_error.ok()) return f.recall_error;
    missed = true;
    // The recall goes on from the first block this reader lacks, then ahead of it (read-ahead)
    // to the end of the file, a few blocks at a time.
    if (first_missing != SIZE_MAX) f.next_block = first_missing;
    if (f.fetching == 0 && first_missing != SIZE_MAX && hooks_.load() != nullptr) {
      // Nothing in flight: the block this reader waits for goes alone, so its bytes come
      // first; read-ahead starts when it lands (FetchBlock).
      f.next_block = first_missing + 1;
      ScheduleBlock(self, first_missing);
    } else {
      PumpRecall(self);
    }
    if (f.fetching == 0)
      return UnavailableError("recall of file " + std::to_string(f.id) + " stopped");
    f.recall_cv.wait(f.mu);
  }
  if (missed) {
    if (read_misses_) read_misses_->Increment();
  } else if (read_hits_) {
    read_hits_->Increment();
  }
  return Status::Ok();
}

void Store::PumpRecall(const std::shared_ptr<LiveFile>& f) {
  const size_t n = f->blocks.size();
  while (f->stub && f->fetching < f->parallel && f->recall_error.ok() && !f->deleted &&
         hooks_.load() != nullptr) {
    // The next missing block from the cursor on, then the gaps before it.
    size_t tries = 0;
    size_t b = f->next_block % n;
    while (tries < n && f->blocks[b] != LiveFile::kMissing) {
      b = (b + 1) % n;
      ++tries;
    }
    if (tries == n) return;
    f->next_block = b + 1;
    ScheduleBlock(f, b);
  }
}

void Store::ScheduleBlock(const std::shared_ptr<LiveFile>& f, size_t block) {
  f->blocks[block] = LiveFile::kFetching;
  ++f->fetching;
  ++f->handles;  // the fetch keeps the file open until it lands (released in FetchBlock)
  ++fetches_in_flight_;
  recall_pool_->Submit([this, f, block, epoch = f->recall_epoch] { FetchBlock(f, block, epoch); });
}

void Store::FetchBlock(std::shared_ptr<LiveFile> f, size_t block, uint64_t epoch) {
  const uint64_t offset = block * f->block;
  uint64_t len;
  CloudCopy copy;
  {
    MutexLock l(f->mu);
    len = std::min<uint64_t>(f->block, f->size - offset);
    copy = f->copy;
  }
  std::vector<uint8_t> buf(len);
  CacheHooks* hooks = hooks_.load();
  Status s =
      hooks == nullptr ? UnavailableError("recall is stopping") : hooks->Admit(f->share_id, len);
  if (s.ok()) s = hooks->Fetch(f->share_id, copy, offset, buf);
  {
    MutexLock l(f->mu);
    --f->fetching;
    if (s.ok() && f->stub) {
      // Written at the committed generation, into a backing file that holds nothing else.
      const uint64_t gen = f->committed_gen;
      const uint64_t first = offset / chunk_size_;
      const uint64_t whole = len / chunk_size_ * chunk_size_;
      if (whole > 0) {
        s = f->chunks->WriteWholeChunks(first, gen, gen - 1, {buf.data(), whole},
                                        ThreadPool::Shared());
      }
      if (s.ok() && whole < len) {
        s = f->chunks->Write(first + whole / chunk_size_, gen, gen - 1,
                             {buf.data() + whole, len - whole});
      }
    }
    if (s.ok() && f->stub) {
      f->blocks[block] = LiveFile::kHave;
      ++f->blocks_have;
      if (f->blocks_have == f->blocks.size()) {
        // Objects checked only by etag: still the same object, so no block came from another.
        if (f->copy.part_md5s.empty()) s = hooks->Confirm(f->share_id, f->copy);
        if (s.ok()) s = FinishRecall(*f);
        if (!s.ok()) {
          // Keep the data out of use: every block is fetched again by the next reader.
          std::fill(f->blocks.begin(), f->blocks.end(), LiveFile::kMissing);
          f->blocks_have = 0;
        }
      }
    } else if (f->stub) {
      f->blocks[block] = LiveFile::kMissing;
    }
    if (!s.ok()) {
      spdlog::warn("store: recall of file {} at {}: {}", f->id, offset, s.ToString());
      if (epoch == f->recall_epoch) f->recall_error = s;
    } else {
      PumpRecall(f);  // keep the recall going until the whole file is back
    }
    f->recall_cv.notify_all();
  }
  ReleaseOpenFile(f);
  --fetches_in_flight_;
}

Status Store::FinishRecall(LiveFile& f) {
  FS_RETURN_IF_ERROR(f.chunks->file().DataSync());
  if (f.created_backing) {
    FS_RETURN_IF_ERROR(platform::SyncDir(platform::DirName(BackingPath(f.id))));
    f.created_backing = false;
  }
  NodeId id = f.id;
  uint64_t gen = f.committed_gen;
  int64_t now = Now();
  FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE nodes SET state=4, used_ns=? WHERE id=? AND "
                                           "data_gen=? AND state=6"));
    u.Bind(1, now).Bind(2, static_cast<int64_t>(id)).Bind(3, static_cast<int64_t>(gen));
    FS_RETURN_IF_ERROR(u.Run());
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM stub_data WHERE node_id=?"));
    d.Bind(1, static_cast<int64_t>(id));
    return d.Run();
  }));
  f.stub = false;
  f.recall_started = false;
  if (recalls_) recalls_->Increment();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// FileHandle

FileHandle::~FileHandle() {
  Status s = Close();
  if (!s.ok()) spdlog::error("store: closing file {}: {}", node_, s.ToString());
}

Status Store::ReadRange(LiveFile& f, uint64_t offset, std::span<uint8_t> out, bool committed_only) {
  FS_RETURN_IF_ERROR(EnsureChunkFile(f));
  const uint32_t cs = chunk_size_;
  const uint64_t max_gen = committed_only ? f.committed_gen : UINT64_MAX;
  // The write-back buffer holds uncommitted bytes: a committed read never looks at it.
  const int64_t buffered = committed_only ? -1 : f.buf_index;
  size_t done = 0;
  while (done < out.size()) {
    uint64_t pos = offset + done;
    uint64_t j = pos / cs;
    uint32_t within = static_cast<uint32_t>(pos % cs);
    if (within == 0 && out.size() - done >= cs) {
      // Whole chunks go straight to the caller's buffer, opened on every core.
      uint64_t k = (out.size() - done) / cs;
      if (buffered >= static_cast<int64_t>(j) && buffered < static_cast<int64_t>(j + k)) {
        k = static_cast<uint64_t>(buffered) - j;
      }
      if (k > 0) {
        Status s =
            f.chunks->ReadWholeChunks(j, out.subspan(done, k * cs), ThreadPool::Shared(), max_gen);
        if (!s.ok()) return ReadFailed(s);
        done += k * cs;
        continue;
      }
    }
    size_t n = std::min<size_t>(cs - within, out.size() - done);
    const uint8_t* src;
    if (static_cast<int64_t>(j) == buffered) {
      src = f.buf.data();
    } else {
      auto content = f.chunks->Content(j, max_gen);
      if (!content.ok()) return ReadFailed(content.status());
      if (f.scratch_index != static_cast<int64_t>(j) || !(f.scratch_content == *content)) {
        f.scratch_index = -1;
        auto r = f.chunks->Read(j, f.scratch, max_gen);
        if (!r.ok()) return ReadFailed(r.status());
        f.scratch_index = static_cast<int64_t>(j);
        f.scratch_content = *content;
      }
      src = f.scratch.data();
    }
    std::memcpy(out.data() + done, src + within, n);
    done += n;
  }
  if (bytes_read_) bytes_read_->Increment(static_cast<double>(done));
  return Status::Ok();
}

Result<size_t> FileHandle::Read(uint64_t offset, std::span<uint8_t> out) {
  if (closed_) return FailedPreconditionError("handle is closed");
  LiveFile& f = *file_;
  MutexLock l(f.mu);
  if (offset >= f.size || out.empty()) return size_t{0};
  size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), f.size - offset));
  FS_RETURN_IF_ERROR(store_->EnsureResident(f, offset, want));
  FS_RETURN_IF_ERROR(store_->ReadRange(f, offset, out.subspan(0, want), false));
  return want;
}

namespace {

// FailedPrecondition unless the file's committed data is still generation `data_gen` (f.mu held).
Status SameGeneration(const LiveFile& f, uint64_t data_gen) {
  if (f.committed_gen == data_gen) return Status::Ok();
  return FailedPreconditionError("file " + std::to_string(f.id) + " changed: data generation " +
                                 std::to_string(f.committed_gen) + ", not " +
                                 std::to_string(data_gen));
}

}  // namespace

Result<size_t> FileHandle::ReadCommitted(uint64_t data_gen, uint64_t offset,
                                         std::span<uint8_t> out) {
  if (closed_) return FailedPreconditionError("handle is closed");
  LiveFile& f = *file_;
  MutexLock l(f.mu);
  FS_RETURN_IF_ERROR(SameGeneration(f, data_gen));
  if (offset >= f.committed_size || out.empty()) return size_t{0};
  size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), f.committed_size - offset));
  FS_RETURN_IF_ERROR(store_->EnsureResident(f, offset, want));
  FS_RETURN_IF_ERROR(store_->ReadRange(f, offset, out.subspan(0, want), true));
  return want;
}

Result<uint64_t> FileHandle::CommittedSize(uint64_t data_gen) {
  if (closed_) return FailedPreconditionError("handle is closed");
  LiveFile& f = *file_;
  MutexLock l(f.mu);
  FS_RETURN_IF_ERROR(SameGeneration(f, data_gen));
  return f.committed_size;
}

Status FileHandle::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (closed_) return FailedPreconditionError("handle is closed");
  if (!writable_) return InvalidArgumentError("file is open read-only");
  if (offset > kMaxFileBytes || data.size() > kMaxFileBytes - offset) {
    return InvalidArgumentError("write would pass the 5 TiB file size limit");
  }
  if (data.empty()) return Status::Ok();
  // Back-pressure: over the cache's hard cap, the writer waits here (then NoSpace).
  if (CacheHooks* hooks = store_->hooks_.load()) {
    FS_RETURN_IF_ERROR(hooks->Admit(file_->share_id, data.size()));
  }
  LiveFile& f = *file_;
  MutexLock l(f.mu);
  NoteWriter(f);
  FS_RETURN_IF_ERROR(store_->EnsureMarked(f));
  FS_RETURN_IF_ERROR(store_->EnsureChunkFile(f));
  const uint32_t cs = store_->chunk_size_;
  size_t done = 0;
  while (done < data.size()) {
    uint64_t pos = offset + done;
    uint64_t j = pos / cs;
    uint32_t within = static_cast<uint32_t>(pos % cs);
    if (within == 0 && data.size() - done >= cs) {
      // Whole chunks skip the buffer and are sealed on every core.
      size_t k = (data.size() - done) / cs;
      if (f.buf_index >= static_cast<int64_t>(j) && f.buf_index < static_cast<int64_t>(j + k)) {
        f.buf_index = -1;  // fully overwritten below
        f.buf_dirty = false;
      }
      FS_RETURN_IF_ERROR(f.chunks->WriteWholeChunks(
          j, f.pending_gen(), f.committed_gen, data.subspan(done, k * cs), ThreadPool::Shared()));
      f.unsynced = true;
      done += k * cs;
      f.size = std::max<uint64_t>(f.size, pos + k * cs);
      continue;
    }
    size_t n = std::min<size_t>(cs - within, data.size() - done);
    if (static_cast<int64_t>(j) != f.buf_index) {
      FS_RETURN_IF_ERROR(store_->FlushDirtyChunk(f));
      f.buf_index = -1;
      bool whole = within == 0 && n == cs;
      if (whole || j * cs >= f.size) {
        // Nothing to merge with: the chunk is fully overwritten or lies past the end.
        std::memset(f.buf.data(), 0, cs);
        f.buf_len = 0;
      } else {
        FS_ASSIGN_OR_RETURN(uint32_t len, f.chunks->Read(j, f.buf));
        // Bytes past the file size in the last chunk read as zeros.
        uint64_t valid = std::min<uint64_t>(len, f.size - j * cs);
        std::memset(f.buf.data() + valid, 0, cs - valid);
        f.buf_len = static_cast<uint32_t>(valid);
      }
      f.buf_index = static_cast<int64_t>(j);
    }
    std::memcpy(f.buf.data() + within, data.data() + done, n);
    f.buf_len = std::max<uint32_t>(f.buf_len, within + static_cast<uint32_t>(n));
    f.buf_dirty = true;
    done += n;
    f.size = std::max<uint64_t>(f.size, pos + n);
    if (f.buf_len == cs) {
      // A full chunk goes out now, so sequential writers stream to disk.
      FS_RETURN_IF_ERROR(store_->FlushDirtyChunk(f));
    }
  }
  f.dirty = true;
  f.mtime_ns = store_->Now();
  if (store_->bytes_written_) store_->bytes_written_->Increment(static_cast<double>(data.size()));
  return Status::Ok();
}

Status FileHandle::Sync() {
  if (closed_) return FailedPreconditionError("handle is closed");
  MutexLock l(file_->mu);
  return store_->CommitData(*file_, false);
}

Status FileHandle::CloseWithXattr(std::string_view name,
                                  const std::function<std::string(uint64_t)>& value) {
  if (closed_) return FailedPreconditionError("file already closed");
  if (!writable_) return InvalidArgumentError("CloseWithXattr needs a writable handle");
  closed_ = true;
  Status s;
  {
    MutexLock l(file_->mu);
    --file_->writers;
    s = store_->CommitData(*file_, file_->writers == 0, name, value);
  }
  store_->ReleaseOpenFile(file_);
  return s;
}

Status FileHandle::Close() {
  if (closed_) return Status::Ok();
  closed_ = true;
  // Closing is a use too: a file open for days is not the least recently used when it closes.
  if (note_use_) store_->NoteUse(node_);
  Status s;
  {
    MutexLock l(file_->mu);
    if (writable_) {
      // The last writer to close commits and drops the file's in-flight mark; earlier ones
      // commit what they wrote (close is a commit point for every writer).
      --file_->writers;
      s = store_->CommitData(*file_, file_->writers == 0);
    }
  }
  store_->ReleaseOpenFile(file_);
  return s;
}

}  // namespace fieldstack::store
