#pragma once

// Refresher: brings what changed in a share's cloud container onto the box (DESIGN.md section
// 3, "cloud changed (refresh) -> stub or conflict"; docs/tiering.md "Refresh"). One Run
//   1. takes the share's next refresh id (a per-share counter kept with Store::SetValue);
//   2. lists the container under each requested folder ("<path>/", or everything) page by page,
//      never holding more than one page, and maps each key 1:1 to a share-relative path:
//        - no file there: a new stub (Store::CreateStub; metadata only, data on first read),
//          with the POSIX attributes and xattrs our uploader stored in the object's metadata;
//        - a file whose recorded cloud copy is this object (same key and etag): unchanged;
//        - a clean file or stub of an older object: replaced by a stub of the new one
//          (Store::ReplaceWithStub, which refuses when the file changed or is open meanwhile:
//          then it is skipped and tried again by the next refresh);
//        - a file with local changes not in the cloud: a conflict. Both versions are kept: the
//          local one is renamed to "<stem> (conflict <YYYYMMDD-HHMMSS> box)<ext>" and the
//          cloud one becomes a stub under the original name;
//        - a folder on one side and a file on the other: a failed record; nothing changes;
//      pinned paths are recalled at once (full copies); every file seen is marked with the
//      refresh id (Store::MarkRefreshed, one batch per page);
//   3. after a folder's listing completed (never after a partial one), the files whose cloud
//      copy lies under that folder and were not seen are those whose objects were deleted in
//      the cloud: the share's `mirror` policy removes them (only if unchanged and not open),
//      `keep` (the default) leaves them.
// Every outcome but "unchanged" goes to the share's refresh.log (CopyLog, LogKind::kRefresh)
// with the codes of the copy log.
//
// Thread safety: Run may be called from several threads; runs are serialized (two runs of one
// share must not interleave their refresh ids). Time comes from the injected Clock.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/object_store.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "store/store.h"
#include "sync/copy_log.h"

namespace fieldstack::sync {

class Refresher {
 public:
  struct Options {
    // True for shares whose delete policy is `mirror`: a file whose object was deleted in the
    // cloud is removed from the box. Unset or false: `keep`, the file stays.
    std::function<bool(uint32_t share_id)> mirror;
    // Paths (share-relative) that are pulled in as full copies rather than stubs.
    std::function<bool(uint32_t share_id, std::string_view path)> pinned;
    size_t page_size = 1000;  // objects per listing request, and files per NotRefreshed page
    // How recalls of a stub split the object (the Store fetches a part at a time). Rounded up
    // to a multiple of the Store's chunk size.
    uint64_t part_size_bytes = 8 << 20;
  };
  // The ObjectStore of a share, or nullptr when the share has no cloud target (as Uploader).
  using Targets = std::function<cloud::ObjectStore*(uint32_t share_id)>;

  // What a Run did, one count per listed object (and per deleted or kept file).
  struct Pass {
    size_t listed = 0;     // objects listed (staging keys excluded)
    size_t added = 0;      // new stubs
    size_t changed = 0;    // files replaced by a stub of a newer object
    size_t deleted = 0;    // files removed: their objects are gone (mirror)
    size_t kept = 0;       // files whose objects are gone, left on the box (keep)
    size_t conflicts = 0;  // local changes renamed aside, the cloud version stubbed in
    size_t unchanged = 0;
    size_t skipped = 0;  // busy (open or changed meanwhile); the next refresh tries again
    size_t failed = 0;   // invalid names, folder/file clashes, errors; in errors.log
    int64_t duration_ms = 0;
  };

  // `log` (per-share refresh logs) and `metrics` are optional.
  Refresher(store::Store& store, Targets targets, Clock& clock, Options options,
            CopyLog* log = nullptr, Metrics* metrics = nullptr);

  // Refreshes share `share`: the folders `paths` (share-relative, "" or "/" the whole share),
  // or the whole share when `paths` is empty. Per-object failures are counted and logged, and
  // the run goes on. Errors: NotFound (no such share), InvalidArgument (a path that is not a
  // valid share path, e.g. with ".."), FailedPrecondition (a local share, or one without a
  // cloud target), or the error that stopped a listing or the Store (nothing is deleted for a
  // folder whose listing did not complete).
  Result<Pass> Run(std::string_view share, const std::vector<std::string>& paths);

  // The name the local version of a conflicting file is renamed to: "<stem> (conflict
  // <YYYYMMDD-HHMMSS> box)<ext>" with the UTC time `unix_ns`, the extension from the last '.'
  // of `name` (none for a name starting with its only '.'), and " 2", " 3", ... after "box"
  // for `attempt` 2, 3, ...; the stem is shortened so the name fits 255 bytes.
  static std::string ConflictName(std::string_view name, int64_t unix_ns, int attempt = 1);

  static constexpr char kValuePrefix[] = "refresh.";  // "refresh.<share>.id"

 private:
  struct ShareRun;
  // In the order of the metric's result labels (Count).
  enum class Outcome {
    kAdded,
    kChanged,
    kConflict,
    kUnchanged,
    kSkipped,
    kFailed,
    kDeleted,
    kKept,
    kDeferred,  // a new stub, created with the rest of its page (FlushStubs), counted then
  };

  // Lists one folder (key prefix) and handles its objects; sets *complete when the whole
  // listing was seen.
  Status RefreshPrefix(ShareRun& run, const std::string& prefix, bool* complete);
  // Handles one listed object; adds the node to mark (if any) to `seen`.
  Outcome RefreshObject(ShareRun& run, const cloud::ObjectInfo& object,
                        std::vector<store::NodeId>& seen);
  // Creates the page's new stubs in one commit, then records, logs and counts each.
  void FlushStubs(ShareRun& run, std::vector<store::NodeId>& seen);
  // Files under `prefix` not seen by this run: deleted (mirror) or kept.
  Status SweepDeleted(ShareRun& run, const std::string& prefix);
  // The folder `dirs` (components below the share root): its node, NotFound when missing, or
  // created (with its parents, mode 0755) with `create`. FailedPrecondition when a component
  // is not a folder.
  Result<store::NodeId> Folder(ShareRun& run, const std::vector<std::string>& dirs, bool create);
  // The stub of `object`, with the attributes and xattrs our uploader put in its metadata
  // (defaults for others' objects: mode 0644, owner root, the object's time).
  store::StubSpec SpecFor(const cloud::ObjectInfo& object, bool* xattrs_complete) const;
  // Renames the local file `name` in `parent` aside to its conflict name; returns that name.
  Result<std::string> MoveAside(store::NodeId parent, const std::string& name);
  // Recalls a new or replaced stub when its path is pinned (a failure leaves the stub).
  void RecallIfPinned(ShareRun& run, store::NodeId node, const std::string& path,
                      CopyRecord& record);
  void Count(ShareRun& run, Outcome outcome);
  void Log(ShareRun& run, CopyRecord r);

  store::Store& store_;
  Targets targets_;
  Clock& clock_;
  Options options_;
  CopyLog* log_;
  Mutex run_mu_;  // serializes runs
  prometheus::Family<prometheus::Gauge>* duration_ = nullptr;
  prometheus::Family<prometheus::Counter>* objects_ = nullptr;
};

}  // namespace fieldstack::sync
