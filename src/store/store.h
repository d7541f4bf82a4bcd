#pragma once

// Store: the single source of truth on the box (DESIGN.md sections 2 and 3). Every front end
// (FUSE, S3 API, Blob API) reads and changes shares only through it.
//
// Design:
//  - Metadata lives in one SQLite db (WAL). All changes go through the Committer (group
//    commit); reads use pooled read connections.
//  - A file's data lives in its own backing file, named by node id under objects/ (never by
//    path, so rename is metadata-only and names never reach the disk in clear). Data is kept as
//    sealed chunks with two slots each (ChunkFile), encrypted per file (AES-256-GCM) unless the
//    box turned encryption off.
//  - Commit point: writes land in the backing file immediately but are committed only by
//    FileHandle::Sync, FileHandle::Close or a truncate: the backing file is fdatasync'ed, then
//    size, data generation, version and a kWrite event are committed in one transaction. Every
//    other mutation (create, mkdir, setattr, rename, unlink, xattr) is committed, with its event,
//    before the call returns. A returned OK means durable against SIGKILL and power loss.
//  - A file with writes in flight is marked in the db (open_writes) before its first write; on
//    open after a crash, marked files are scrubbed back to their committed generation, so a torn
//    write never surfaces and uncommitted bytes never resurface later.
//  - Events: each committed change appends an event in the same transaction; consumers keep
//    their own durable cursor (SetCursor) and read with ReadEvents.
//  - Deleting a share is one commit that removes its row (and root): its other nodes drop out
//    of every lookup at once and are removed afterwards in small commits, their data files
//    after each (deleted_shares remembers an unfinished removal across a crash). Share ids are
//    never reused.
//
// Thread safety: all methods may be called concurrently. Per-file state has its own mutex.
// Lock order: Store::files_mu_, then LiveFile::mu. Neither is held while waiting for a commit
// other than the file's own.
//
// Errors: NotFound (no such node or name), AlreadyExists, InvalidArgument (bad name, path too
// long, write past 5 TiB, wrong node type), FailedPrecondition (directory not empty, moving a
// directory into itself), PermissionDenied (hard links are not supported), Corruption (a chunk
// or the metadata db failed verification), NoSpace, Unauthenticated (wrong key).

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "crypto/key_store.h"
#include "platform/file.h"
#include "store/types.h"

namespace fieldstack::store {

class Db;
class ReadPool;
class Committer;
struct LiveFile;

struct StoreOptions {
  std::string data_dir;
  // New files are encrypted when true. Files already encrypted stay readable either way, as
  // long as the master key is available.
  bool encryption = true;
  // Where the master key lives; empty means <data_dir>/master.key. Ignored with a passphrase.
  std::string key_file;
  // When set, the master key is derived from this passphrase instead of a key file.
  std::optional<std::string> passphrase;
  // Chunk size for a new store (fixed for its life; recorded in the db). Power of two,
  // 4 KiB to 4 MiB.
  uint32_t chunk_size_bytes = 256 * 1024;
  Clock* clock = nullptr;      // defaults to RealClock
  Metrics* metrics = nullptr;  // optional
};

class Store;

// An open file. Reads see every write made through any handle of the same file, committed or
// not. Close commits (like Sync) if the file has uncommitted writes.
//
// Thread safety: may be used from several threads; calls on one file are serialized.
class FileHandle {
 public:
  ~FileHandle();  // closes; a failed commit is logged (call Close to see it)
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;

  NodeId node() const { return node_; }
  // Reads up to out.size() bytes at `offset`; short only at end of file.
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out);
  // Reads committed data of generation `data_gen` (Attr::data_gen) only, never writes still in
  // flight: what the uploader sends. Short only at the committed end of file.
  // FailedPrecondition when the file's committed data is no longer that generation.
  Result<size_t> ReadCommitted(uint64_t data_gen, uint64_t offset, std::span<uint8_t> out);
  // The size of committed generation `data_gen`; FailedPrecondition as ReadCommitted.
  Result<uint64_t> CommittedSize(uint64_t data_gen);
  // InvalidArgument when the handle is read-only or the write would pass 5 TiB.
  Status Write(uint64_t offset, std::span<const uint8_t> data);
  // Commit point: after OK, everything written so far survives a crash.
  Status Sync();
  Status Close();
  // Close that also sets xattr `name`, in the same commit, to value(data_gen) where data_gen
  // is the generation the data has after it: one commit fewer for front ends that tag what
  // they wrote (the object APIs' metadata). The value is at most 64 KiB.
  Status CloseWithXattr(std::string_view name,
                        const std::function<std::string(uint64_t data_gen)>& value);

 private:
  friend class Store;
  FileHandle(Store* store, std::shared_ptr<LiveFile> file, NodeId node, bool writable)
      : store_(store), file_(std::move(file)), node_(node), writable_(writable) {}
  Store* store_;
  std::shared_ptr<LiveFile> file_;
  NodeId node_;
  bool writable_;
  bool closed_ = false;
  bool note_use_ = false;  // a use for the cache's LRU order (not the uploader's reads)
};

class Store {
 public:
  // Opens the store in options.data_dir, creating it when the directory holds no store yet.
  // Takes the data directory's lock (AlreadyExists when another process holds it), loads the
  // master key (Unauthenticated when it does not match the store), and recovers from a crash.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  // Commits files with uncommitted writes and stops the committer.
  // REQUIRES: every FileHandle of this Store has been destroyed.
  ~Store();

  // --- Shares ---
  // A share's root is a directory of mode 0777 owned by root: any client a front end admits
  // (SMB users, NFS allow-lists, squashed NFS root) may create in it.
  // A new share gets an id no share had before (not even a deleted one).
  Result<ShareInfo> CreateShare(std::string_view name, ShareKind kind);
  Result<ShareInfo> GetShare(std::string_view name);
  Result<std::vector<ShareInfo>> ListShares();
  // Deletes share `name` from the box: every node in it (files, folders, symlinks, stubs), their
  // xattrs, queued uploads, upload and cache bookkeeping, and the local data of its files.
  // Nothing in the cloud is deleted, whatever the share's policy: its events never become
  // deletes, and objects that `mirror` was still to delete (released by earlier renames and
  // deletes) are kept. Only multi-part uploads left unfinished by its files are aborted (their
  // parts never became objects).
  // The deletion is one commit: the share leaves ListShares and GetShare, and all its nodes
  // leave every lookup (by id or by name), at once; its name is free for a new, empty share
  // (with a new id) right away. The nodes' rows and data files are then removed in small
  // batches (the committer is never held for long), before this returns; after a crash, the
  // next Open finishes the removal.
  // Errors: NotFound (no such share); FailedPrecondition when files of the share are open (the
  // message names them; close them first), when files of the share wait for upload and not
  // `force` (the message says how many; `force` deletes them anyway and they never reach the
  // cloud), or while the share is being deleted by another call.
  Status DeleteShare(std::string_view name, bool force);

  // --- Namespace (by node id, as FUSE works) ---
  Result<Attr> GetAttr(NodeId node);
  Result<Attr> Lookup(NodeId parent, std::string_view name);
  // Resolves a share-relative path without following symlinks.
  Result<Attr> Resolve(std::string_view share, std::string_view path);
  Result<Attr> Mkdir(NodeId parent, std::string_view name, const NewNode& opts);
  Result<Attr> Symlink(NodeId parent, std::string_view name, std::string_view target,
                       const NewNode& opts);
  // Creates a regular file and opens it for writing. AlreadyExists if the name is taken.
  Result<std::unique_ptr<FileHandle>> Create(NodeId parent, std::string_view name,
                                             const NewNode& opts);
  // `for_sync`: the box's own reader (the uploader), not a use of the file for the cache's
  // least-recently-used order.
  Result<std::unique_ptr<FileHandle>> OpenFile(NodeId node, bool writable, bool for_sync = false);
  // Hard links are not supported: always PermissionDenied.
  Status Link(NodeId node, NodeId new_parent, std::string_view new_name);
  Status Unlink(NodeId parent, std::string_view name);
  Status Rmdir(NodeId parent, std::string_view name);
  // Replaces an existing target (a file, or an empty directory by a directory) unless
  // `no_replace`, then AlreadyExists.
  Status Rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
                bool no_replace = false);
  Result<Attr> SetAttr(NodeId node, const SetAttrRequest& req);
  // Up to `limit` entries with names after `after` (byte order), so listings are paged.
  Result<std::vector<Attr>> ReadDir(NodeId dir, std::string_view after, size_t limit);
  // The share-relative path of a node ("" for a share root).
  Result<std::string> PathOf(NodeId node);

  // --- Extended attributes (Samba keeps DOS attributes and ACLs here) ---
  enum class XattrMode { kAny, kCreate, kReplace };
  Status SetXattr(NodeId node, std::string_view name, std::string_view value,
                  XattrMode mode = XattrMode::kAny);
  Result<std::string> GetXattr(NodeId node, std::string_view name);
  Result<std::vector<std::string>> ListXattrs(NodeId node);
  Status RemoveXattr(NodeId node, std::string_view name);

  // --- Events ---
  // The origin recorded with the events of the calling thread's following changes (until set
  // again); front ends set it per request. The process name is filled in at commit.
  static void SetThreadOrigin(const Origin& origin);

  // Up to `limit` events with seq > after_seq, in order.
  Result<std::vector<Event>> ReadEvents(uint64_t after_seq, size_t limit);
  // The seq of the newest event (0 when there is none).
  Result<uint64_t> LastEventSeq();
  // A consumer's durable cursor (0 when never set).
  Result<uint64_t> GetCursor(std::string_view consumer);
  Status SetCursor(std::string_view consumer, uint64_t seq);

  // --- Upload queue (consumed by src/sync) ---
  // Moves the durable cursor `consumer` over up to `max_events` events and queues the files of
  // cloud shares whose data was committed, in one transaction (so no event is lost or queued
  // twice across a crash). Returns how many rows were added or advanced to a newer version.
  Result<size_t> EnqueueUploads(std::string_view consumer, size_t max_events);
  // Up to `limit` queued items due at `now_ns`, earliest first (paged: the queue may be long).
  Result<std::vector<UploadItem>> DueUploads(int64_t now_ns, size_t limit);
  Result<uint64_t> PendingUploads();
  // Queued files per share id (shares with none are absent).
  Result<std::map<uint32_t, uint64_t>> PendingUploadsByShare();
  // The last change (mtime, Unix ns) of the file that has waited longest for upload; 0 when
  // none waits.
  Result<int64_t> OldestPendingUploadNs();
  // Saves attempts, next attempt time, resume state and error of `item` (if its version is
  // still the queued one).
  Status UpdateUpload(const UploadItem& item);
  // Makes every queued item whose last error starts with `error_prefix` due now (uploads paused
  // for a data budget, when the uploader starts again with other limits). Returns how many.
  Result<size_t> WakeUploads(std::string_view error_prefix);
  // Removes `item` from the queue (if its version is still the queued one) and records the
  // result on the file if its committed version is still item.data_gen: state (kClean or
  // kFailed), the object's key and etag (kept when empty), and the error (empty for none).
  // With `copy` (kClean): how a later recall checks the object (its part size and part MD5s).
  Status FinishUpload(const UploadItem& item, FileState state, std::string_view cloud_key,
                      std::string_view cloud_etag, std::string_view error,
                      const CloudCopy* copy = nullptr);
  // Called before an upload of a file under a key its recorded upload does not hold. If the
  // answer is lost (a crash after the cloud committed), the object exists unknown to the Store;
  // when the file is then deleted or goes up under another key, that key is released as
  // "maybe ours" (etag kOwnerOnlyEtag + node id). FinishUpload forgets the attempt.
  Status NoteUploadAttempt(NodeId node, uint32_t share_id, std::string_view key);

  // Objects this box uploaded that no file owns any more: the file was deleted or replaced, or
  // went up again under a new key after a rename (FinishUpload). A share's `mirror` policy
  // deletes them from the cloud (if unchanged there); `keep` leaves them, and a new file under
  // the same key may replace them (ReleasedEtag gives the etag to require).
  Result<std::vector<ReleasedObject>> DueReleased(const std::vector<uint32_t>& shares,
                                                  int64_t now_ns, size_t limit);
  // Multi-part uploads that were started for a file version no longer wanted (the file was
  // committed again, or deleted): the uploader aborts them, then forgets them.
  Result<std::vector<AbandonedUpload>> AbandonedUploads(size_t limit);
  Status ForgetAbandonedUpload(uint64_t id);
  // The etag of the latest released object of `key` in the share, or empty.
  Result<std::string> ReleasedEtag(uint32_t share_id, std::string_view key);
  Status UpdateReleased(const ReleasedObject& r);
  Status ForgetReleased(uint64_t id);

  // --- Cache: eviction, recall, refresh (DESIGN.md section 3: clean -> stub -> clean) ---
  // A clean file can be evicted: its data goes, its metadata, xattrs and place stay (kStub).
  // Reading a stub recalls its data through CacheHooks::Fetch, in blocks (a part of the cloud
  // object each), several at once and ahead of the reader; every reader of the file shares
  // one recall, which goes on until the whole file is back (then kClean again). Opening a stub
  // for writing or truncating it (but to zero) recalls it whole first.
  //
  // Hooks for the cache policy and the cloud; set once, before front ends start. Without
  // hooks, writes are not paced and reading a stub fails with Unavailable. Setting nullptr
  // waits for recall fetches in flight (so the old hooks may then be destroyed).
  void SetCacheHooks(CacheHooks* hooks);
  // Resident clean files of a share with a cloud copy, least recently used first (paged after
  // (after_used_ns, after_node)). Use is recorded on open and commit (FlushAccessTimes).
  Result<std::vector<CacheFile>> EvictionCandidates(uint32_t share_id, int64_t after_used_ns,
                                                    NodeId after_node, size_t limit);
  // Drops the local data of each of `files` that is still clean at its data_gen, not open and
  // has a cloud copy, in one commit (others are skipped). Returns how many became stubs.
  Result<size_t> Evict(const std::vector<CacheFile>& files);
  Result<CacheUsage> GetCacheUsage(uint32_t share_id);
  // Bytes by which the open files of a share grew without committing yet.
  uint64_t UncommittedBytes(uint32_t share_id);
  // Writes the use times recorded in memory since the last flush (one commit).
  Status FlushAccessTimes();
  // Recalls the whole of `node` if it is a stub; returns when it is resident.
  Status Recall(NodeId node);
  // "resident", "stub", "pinned" (resident and pinned by policy), "dirty" (not yet in the
  // cloud: writing, dirty, uploading or failed), "local" (a local share's), or "directory".
  // Also the value of the read-only xattr kCacheStateXattr.
  Result<std::string> CacheStateOf(NodeId node);
  static constexpr char kCacheStateXattr[] = "user.fieldstack.cache";
  // The cloud copy recorded for a file (NotFound when none).
  Result<CloudCopy> CloudCopyOf(NodeId node);

  // Refresh (cloud -> box). A new file that is a stub of `spec.cloud` (event kCreate).
  Result<Attr> CreateStub(NodeId parent, std::string_view name, const StubSpec& spec);
  // Many stubs in one commit (a refresh's page of new objects): one result each, in order.
  // A stub refused by its checks (name taken, bad name or spec, parent missing or not a
  // folder) fails alone; any other failure fails them all.
  struct NewStub {
    NodeId parent = kNoNode;
    std::string name;
    StubSpec spec;
  };
  std::vector<Result<Attr>> CreateStubs(const std::vector<NewStub>& stubs);
  // Makes file `node` a stub of a newer cloud object (event kRefresh), if it is still at
  // `version`, clean or a stub, and not open; FailedPrecondition otherwise (a local change
  // wins: the caller treats it as a conflict or tries again later).
  Result<Attr> ReplaceWithStub(NodeId node, uint64_t version, const StubSpec& spec);
  // Deletes file `node` (its object is gone from the cloud) if it is still at `version`,
  // clean or a stub, and not open; FailedPrecondition otherwise.
  Status RemoveIfUnchanged(NodeId node, uint64_t version);
  // The cloud lost the object of clean file `node` (deleted there) while the box keeps the
  // file: forgets the cloud copy and queues the file for upload again, so it is never evicted
  // with no copy anywhere else. FailedPrecondition unless still clean at `version`.
  Status ReuploadIfUnchanged(NodeId node, uint64_t version);
  // Records that a refresh (`refresh_id`, increasing) saw the cloud objects of `nodes`.
  Status MarkRefreshed(const std::vector<NodeId>& nodes, uint64_t refresh_id);
  // Files of a share whose cloud copy's key starts with `key_prefix`, clean or stubs, that
  // refresh `refresh_id` did not see: their objects were deleted in the cloud. Paged by node.
  Result<std::vector<Attr>> NotRefreshed(uint32_t share_id, std::string_view key_prefix,
                                         uint64_t refresh_id, NodeId after_node, size_t limit);

  // --- Small durable values of other components (e.g. the uploader's data budget) ---
  // NotFound when never set. Keys are namespaced by the caller ("upload.budget.day").
  Result<std::string> GetValue(std::string_view key);
  Status SetValue(std::string_view key, std::string_view value);

  // --- Capacity and keys ---
  Result<Usage> GetUsage();
  // Replaces the master key and re-wraps every file key (data is not rewritten). With a key
  // file: a new random key, written durably before the db changes. With a passphrase:
  // `new_passphrase` (or the current one) with a fresh salt. Returns the new key id.
  Result<uint32_t> RotateMasterKey(std::optional<std::string> new_passphrase = std::nullopt);
  uint32_t master_key_id() const;

  const std::string& data_dir() const { return options_.data_dir; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint64_t commits() const;
  uint64_t commit_batches() const;

 private:
  friend class FileHandle;
  explicit Store(const StoreOptions& options);

  Status Init();
  Status CreateDb();
  Status LoadKeys(Db& db);
  Status Recover();
  std::string BackingPath(NodeId id) const;
  Result<std::shared_ptr<LiveFile>> GetOpenFile(NodeId node);
  // The state of file `node` as GetOpenFile starts it; nullptr (and *gated_share set) when its
  // share is being deleted (DeleteShare is committing).
  Result<std::shared_ptr<LiveFile>> LoadLiveFile(NodeId node, uint32_t* gated_share)
      REQUIRES(files_mu_);
  // Removes the nodes and data files of deleted share `share_id` (DeleteShare, or Open after a
  // crash), in small commits, then marks it purged in deleted_shares.
  Status PurgeShare(uint32_t share_id);
  std::shared_ptr<LiveFile> FindOpen(NodeId node);  // nullptr when the file is not open
  void ReleaseOpenFile(const std::shared_ptr<LiveFile>& f);
  // With `xattr_value`: also sets xattr `xattr_name` to xattr_value(committed data_gen).
  Status CommitData(LiveFile& f, bool release_mark, std::string_view xattr_name = {},
                    const std::function<std::string(uint64_t)>& xattr_value = nullptr);
  Status FlushDirtyChunk(LiveFile& f);
  Status EnsureMarked(LiveFile& f);
  Status EnsureChunkFile(LiveFile& f);
  Status InsertNodeTx(Db& db, NodeId parent, std::string_view name, NodeType type,
                      const NewNode& opts, std::string_view target, EventKind event,
                      const StubSpec* stub, int64_t now, bool encrypt, Attr* a);
  bool EncryptNewFiles();
  Result<Attr> InsertNode(NodeId parent, std::string_view name, NodeType type, const NewNode& opts,
                          std::string_view target, EventKind event, const StubSpec* stub = nullptr);
  // Recall (see SetCacheHooks). REQUIRES f.mu. Returns once bytes [offset, offset + len) of a
  // stub are in its backing file (at once for resident files).
  Status EnsureResident(LiveFile& f, uint64_t offset, uint64_t len);
  Status StartRecall(LiveFile& f);
  // Keeps the file's recall going: up to its parallel blocks in flight. REQUIRES f->mu.
  void PumpRecall(const std::shared_ptr<LiveFile>& f);
  void ScheduleBlock(const std::shared_ptr<LiveFile>& f, size_t block);
  void FetchBlock(std::shared_ptr<LiveFile> f, size_t block, uint64_t epoch);
  Status FinishRecall(LiveFile& f);
  void NoteUse(NodeId node);
  Status TruncateLocked(LiveFile& f, uint64_t size);
  Result<std::unique_ptr<crypto::ChunkCodec>> CodecFor(NodeId id, const std::string& wrapped,
                                                       uint32_t key_id);
  // After a commit removed file `id`: deletes its data now, or with its last open handle.
  void ForgetData(NodeId id);
  void DeleteBacking(NodeId id);
  // Counts and logs a failed read; returns `s`.
  Status ReadFailed(const Status& s);
  // Reads exactly out.size() bytes of `f` from `offset` (the caller keeps it within the file):
  // the newest bytes, or with `committed_only` those of the committed generation.
  Status ReadRange(LiveFile& f, uint64_t offset, std::span<uint8_t> out, bool committed_only);
  int64_t Now() const { return clock_->NowUnixNanos(); }

  StoreOptions options_;
  Clock* clock_;
  std::optional<platform::LockFile> lock_;
  std::string db_path_;
  uint32_t chunk_size_ = 0;
  std::unique_ptr<ReadPool> readers_;
  std::unique_ptr<Committer> committer_;
  // committer_->Run with the calling thread's origin, for the events the body appends.
  Status Commit(std::function<Status(Db&)> body);

  // Held shared by code that wraps or unwraps file keys, exclusive by key rotation, so that no
  // key is wrapped under a master key that rotation is replacing. Taken before files_mu_ and
  // never while waiting for another file's commit.
  std::shared_mutex rotation_mu_;
  mutable Mutex key_mu_;
  std::optional<crypto::MasterKey> master_ GUARDED_BY(key_mu_);

  Mutex files_mu_;
  std::unordered_map<NodeId, std::shared_ptr<LiveFile>> files_ GUARDED_BY(files_mu_);
  // Files whose data Evict is dropping: not opened until it is done.
  std::unordered_set<NodeId> evicting_ GUARDED_BY(files_mu_);
  // Shares whose deletion is being committed: none of their files is opened until it is done.
  std::unordered_set<uint32_t> deleting_shares_ GUARDED_BY(files_mu_);
  CondVar evict_cv_;  // evicting_ or deleting_shares_ lost a member

  std::atomic<CacheHooks*> hooks_{nullptr};
  std::unique_ptr<ThreadPool> recall_pool_;  // runs CacheHooks::Fetch, one block per task
  std::atomic<int> fetches_in_flight_{0};
  Mutex access_mu_;
  std::unordered_map<NodeId, int64_t> access_ GUARDED_BY(access_mu_);  // not yet flushed
  // Evicted files whose backing file is gone but whose stub_data row is still in the db; the
  // next eviction's commit drops the rows.
  Mutex evicted_mu_;
  std::vector<NodeId> evicted_rows_ GUARDED_BY(evicted_mu_);

  prometheus::Counter* bytes_written_ = nullptr;
  prometheus::Counter* bytes_read_ = nullptr;
  prometheus::Counter* corrupt_chunks_ = nullptr;
  prometheus::Counter* evictions_ = nullptr;
  prometheus::Counter* recalls_ = nullptr;
  prometheus::Counter* read_hits_ = nullptr;
  prometheus::Counter* read_misses_ = nullptr;
};

}  // namespace fieldstack::store
