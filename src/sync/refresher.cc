#include "sync/refresher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "crypto/hash.h"
#include "store/names.h"
#include "sync/file_uploader.h"
#include "sync/object_meta.h"

namespace fieldstack::sync {
namespace {

std::string Join(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out;
}

// The object front ends stage uploads there; it is never uploaded, so never refreshed either.
bool IsStaging(std::string_view key) {
  std::string_view dir = store::kStagingDir;
  return key.starts_with(dir) && key.size() > dir.size() && key[dir.size()] == '/';
}

}  // namespace

// One Run's state for its share: the counts, and the folder the last object was in (objects
// come in key order, so neighbours share it and the walk from the root is done once).
struct Refresher::ShareRun {
  store::ShareInfo share;
  cloud::ObjectStore* cloud = nullptr;
  uint64_t refresh_id = 0;
  bool mirror = false;
  Pass pass;
  bool folder_cached = false;
  std::string folder_path;
  store::NodeId folder = store::kNoNode;
  // New stubs of the current page, created together (one commit) at its end.
  struct Pending {
    store::Store::NewStub stub;
    CopyRecord rec;
    std::string key;
  };
  std::vector<Pending> pending;
};

Refresher::Refresher(store::Store& store, Targets targets, Clock& clock, Options options,
                     CopyLog* log, Metrics* metrics)
    : store_(store), targets_(std::move(targets)), clock_(clock), options_(options), log_(log) {
  options_.page_size = std::max<size_t>(options_.page_size, 1);
  // Recalls fetch whole chunks: a part must be a whole number of them.
  uint64_t chunk = store_.chunk_size();
  options_.part_size_bytes = std::max<uint64_t>(options_.part_size_bytes, chunk);
  options_.part_size_bytes = (options_.part_size_bytes + chunk - 1) / chunk * chunk;
  if (metrics == nullptr) return;
  auto& reg = metrics->registry();
  duration_ = &prometheus::BuildGauge()
                   .Name(metric_names::kRefreshDurationSeconds)
                   .Help("How long the last refresh of a share took")
                   .Register(reg);
  objects_ = &prometheus::BuildCounter()
                  .Name(metric_names::kRefreshObjects)
                  .Help(
                      "Cloud objects (and files whose objects are gone) handled by refreshes, "
                      "by result")
                  .Register(reg);
}

std::string Refresher::ConflictName(std::string_view name, int64_t unix_ns, int attempt) {
  size_t dot = name.rfind('.');
  std::string_view stem = name, ext;
  if (dot != std::string_view::npos && dot > 0) {
    stem = name.substr(0, dot);
    ext = name.substr(dot);
  }
  std::string tag = " (conflict " + FormatUtc(unix_ns, "%Y%m%d-%H%M%S") + " box";
  if (attempt > 1) tag += " " + std::to_string(attempt);
  tag += ")";
  if (stem.size() + tag.size() + ext.size() > store::kMaxNameBytes) {
    if (tag.size() + ext.size() >= store::kMaxNameBytes) {  // an absurd extension: part of the stem
      stem = name;
      ext = {};
    }
    size_t keep = store::kMaxNameBytes - tag.size() - ext.size();
    // Cut at a character boundary, so the name stays valid UTF-8.
    while (keep > 0 && keep < stem.size() && (static_cast<uint8_t>(stem[keep]) & 0xC0) == 0x80) {
      --keep;
    }
    stem = stem.substr(0, keep);
  }
  return std::string(stem) + tag + std::string(ext);
}

Result<Refresher::Pass> Refresher::Run(std::string_view share,
                                       const std::vector<std::string>& paths) {
  // Every path is checked before anything changes. Nested folders are refreshed once, by
  // their outermost one.
  std::vector<std::string> prefixes;
  for (const std::string& p : paths) {
    FS_ASSIGN_OR_RETURN(std::vector<std::string> parts, store::SplitPath(p));
    prefixes.push_back(parts.empty() ? "" : Join(parts, parts.size()) + "/");
  }
  if (paths.empty()) prefixes.push_back("");
  std::sort(prefixes.begin(), prefixes.end());
  std::vector<std::string> outer;
  for (std::string& p : prefixes) {
    if (outer.empty() || !p.starts_with(outer.back())) outer.push_back(std::move(p));
  }

  ShareRun run;
  FS_ASSIGN_OR_RETURN(run.share, store_.GetShare(share));
  if (run.share.kind != store::ShareKind::kCloud) {
    return FailedPreconditionError("share '" + run.share.name + "' is local: nothing to refresh");
  }
  run.cloud = targets_(run.share.id);
  if (run.cloud == nullptr) {
    return FailedPreconditionError("share '" + run.share.name + "' has no cloud target");
  }
  run.mirror = options_.mirror && options_.mirror(run.share.id);

  MutexLock l(run_mu_);
  int64_t start_ns = clock_.MonotonicNanos();
  // The id goes to the db before any file is marked with it, so ids only grow, across crashes.
  std::string id_key = std::string(kValuePrefix) + run.share.name + ".id";
  auto last = store_.GetValue(id_key);
  if (!last.ok() && last.status().code() != StatusCode::kNotFound) return last.status();
  uint64_t last_id = 0;
  if (last.ok()) std::from_chars(last->data(), last->data() + last->size(), last_id);
  run.refresh_id = last_id + 1;
  FS_RETURN_IF_ERROR(store_.SetValue(id_key, std::to_string(run.refresh_id)));

  for (const std::string& prefix : outer) {
    bool complete = false;
    Status s = RefreshPrefix(run, prefix, &complete);
    if (!s.ok()) {
      return s.WithContext("refresh of '" + run.share.name + "/" + prefix + "'");
    }
    // A partial listing says nothing about what is gone: only a complete one is swept.
    if (complete) FS_RETURN_IF_ERROR(SweepDeleted(run, prefix));
  }

  run.pass.duration_ms = (clock_.MonotonicNanos() - start_ns) / 1'000'000;
  if (duration_ != nullptr) {
    duration_->Add({{"share", run.share.name}})
        .Set(static_cast<double>(run.pass.duration_ms) / 1e3);
  }
  const Pass& p = run.pass;
  spdlog::info(
      "refresh {} #{}: {} listed, {} added, {} changed, {} deleted, {} kept, {} conflicts, {} "
      "unchanged, {} skipped, {} failed in {} ms",
      run.share.name, run.refresh_id, p.listed, p.added, p.changed, p.deleted, p.kept, p.conflicts,
      p.unchanged, p.skipped, p.failed, p.duration_ms);
  return run.pass;
}

Status Refresher::RefreshPrefix(ShareRun& run, const std::string& prefix, bool* complete) {
  *complete = false;
  std::string token;
  std::vector<store::NodeId> seen;
  for (;;) {
    FS_ASSIGN_OR_RETURN(cloud::ListPage page, run.cloud->List(prefix, token, options_.page_size));
    seen.clear();
    for (const cloud::ObjectInfo& object : page.objects) {
      if (IsStaging(object.key)) continue;
      ++run.pass.listed;
      Count(run, RefreshObject(run, object, seen));
    }
    FlushStubs(run, seen);
    // Marked per page, before the next: a crash leaves fewer marks, which only makes the next
    // refresh look again. Nothing is swept before the listing is complete.
    if (!seen.empty()) FS_RETURN_IF_ERROR(store_.MarkRefreshed(seen, run.refresh_id));
    if (page.next_token.empty()) break;
    token = std::move(page.next_token);
  }
  *complete = true;
  return Status::Ok();
}

Refresher::Outcome Refresher::RefreshObject(ShareRun& run, const cloud::ObjectInfo& object,
                                            std::vector<store::NodeId>& seen) {
  CopyRecord rec;
  rec.path = object.key;
  rec.size = object.size;
  rec.etag = object.etag;
  if (!object.content_md5.empty()) rec.md5_base64 = crypto::Base64(object.content_md5);
  auto fail = [&](UploadError code, std::string message) {
    rec.result = "failed";
    rec.error = code;
    rec.message = std::move(message);
    Log(run, std::move(rec));
    return Outcome::kFailed;
  };

  // Keys map 1:1 to paths: a key the box would read as another path ("a//b", "/a") or not at
  // all (".." components, names over 255 bytes, invalid UTF-8) is not brought in.
  auto parts = store::SplitPath(object.key);
  if (parts.ok() && !parts->empty() && object.key == Join(*parts, parts->size()) + "/" &&
      object.size == 0) {
    // A folder marker (S3 consoles and some tools write "dir/"): the folder, no file.
    auto made = Folder(run, *parts, /*create=*/true);
    if (made.ok()) return Outcome::kUnchanged;
    return made.status().code() == StatusCode::kFailedPrecondition
               ? fail(UploadError::kTypeClash, made.status().message())
               : fail(ClassifyUploadError(made.status()), made.status().ToString());
  }
  if (!parts.ok() || parts->empty() || Join(*parts, parts->size()) != object.key) {
    return fail(UploadError::kInvalidName,
                "the key is not a valid path on the box" +
                    (parts.ok() ? std::string() : ": " + parts.status().message()));
  }
  std::vector<std::string> dirs(parts->begin(), parts->end() - 1);
  const std::string& name = parts->back();

  std::optional<store::Attr> local;
  auto folder = Folder(run, dirs, /*create=*/false);
  if (folder.ok()) {
    auto found = store_.Lookup(*folder, name);
    if (found.ok()) {
      local = std::move(*found);
    } else if (found.status().code() != StatusCode::kNotFound) {
      return fail(ClassifyUploadError(found.status()), found.status().ToString());
    }
  } else if (folder.status().code() == StatusCode::kFailedPrecondition) {
    return fail(UploadError::kTypeClash, folder.status().message());
  } else if (folder.status().code() != StatusCode::kNotFound) {
    return fail(ClassifyUploadError(folder.status()), folder.status().ToString());
  }

  bool xattrs_complete = true;
  store::StubSpec spec = SpecFor(object, &xattrs_complete);
  if (!xattrs_complete) {
    rec.message = "some xattrs did not fit the object's metadata at upload and are missing";
  }
  if (!local) {
    // Objects this box itself still accounts for are not brought back: one released after
    // its file was deleted or renamed here (a `keep` share leaves it; `mirror` deletes it
    // soon), or one whose file was renamed and is about to go up under its new key.
    auto released = store_.ReleasedEtag(run.share.id, object.key);
    if (released.ok() && !released->empty() && *released == object.etag) {
      return Outcome::kUnchanged;
    }
    auto mark = object.meta.find(kOwnerMetaKey);
    store::NodeId owner = 0;
    if (mark != object.meta.end()) {
      std::from_chars(mark->second.data(), mark->second.data() + mark->second.size(), owner);
    }
    if (owner != store::kNoNode) {
      auto owner_attr = store_.GetAttr(owner);
      auto copy = store_.CloudCopyOf(owner);
      if (owner_attr.ok() && owner_attr->share_id == run.share.id && copy.ok() &&
          copy->key == object.key && copy->etag == object.etag) {
        return Outcome::kUnchanged;
      }
    }
    auto parent = Folder(run, dirs, /*create=*/true);
    if (!parent.ok()) {
      return parent.status().code() == StatusCode::kFailedPrecondition
                 ? fail(UploadError::kTypeClash, parent.status().message())
                 : fail(ClassifyUploadError(parent.status()), parent.status().ToString());
    }
    run.pending.push_back({{*parent, name, std::move(spec)}, std::move(rec), object.key});
    return Outcome::kDeferred;
  }

  if (local->type != store::NodeType::kFile) {
    return fail(UploadError::kTypeClash,
                std::string(local->type == store::NodeType::kDirectory ? "a folder" : "a symlink") +
                    " on the box, a file in the cloud: neither is changed");
  }
  rec.version = local->data_gen;
  auto copy = store_.CloudCopyOf(local->id);
  if (!copy.ok() && copy.status().code() != StatusCode::kNotFound) {
    seen.push_back(local->id);  // the object exists: never swept as deleted
    return fail(ClassifyUploadError(copy.status()), copy.status().ToString());
  }
  if (copy.ok() && copy->key == object.key && copy->etag == object.etag) {
    // The box has this object, or a local change of it that the uploader will send.
    seen.push_back(local->id);
    return Outcome::kUnchanged;
  }

  switch (local->state) {
    case store::FileState::kClean:
    case store::FileState::kStub:
    case store::FileState::kRecalling: {
      seen.push_back(local->id);
      auto replaced = store_.ReplaceWithStub(local->id, local->version, spec);
      if (replaced.status().code() == StatusCode::kFailedPrecondition) {
        rec.result = "skipped";
        rec.message = "the file is open or changed on the box: " + replaced.status().message();
        Log(run, std::move(rec));
        return Outcome::kSkipped;
      }
      if (!replaced.ok()) {
        return fail(ClassifyUploadError(replaced.status()), replaced.status().ToString());
      }
      rec.result = "changed";
      rec.version = replaced->data_gen;
      RecallIfPinned(run, replaced->id, object.key, rec);
      Log(run, std::move(rec));
      return Outcome::kChanged;
    }
    default:
      break;
  }

  // The file has data the cloud does not (writing, dirty, uploading, failed). If the object
  // is this file's own upload whose answer is not recorded yet (in flight, or lost in a
  // crash), the uploader settles it; it is no conflict.
  auto mark = object.meta.find(kOwnerMetaKey);
  if (mark != object.meta.end() && mark->second == std::to_string(local->id)) {
    seen.push_back(local->id);
    return Outcome::kUnchanged;
  }
  // A conflict: both versions are kept. The local one moves aside (its upload follows it to
  // the new key); the cloud one comes in under the original name.
  auto aside = MoveAside(local->parent, name);
  if (!aside.ok()) {
    seen.push_back(local->id);
    return fail(ClassifyUploadError(aside.status()),
                "changed on the box and in the cloud, but the box's version could not be renamed "
                "aside: " +
                    aside.status().ToString());
  }
  std::string aside_path = dirs.empty() ? *aside : Join(dirs, dirs.size()) + "/" + *aside;
  spdlog::warn(
      "refresh {}: conflict: '{}' changed on the box and in the cloud; the box's "
      "version is now '{}'",
      run.share.name, object.key, aside_path);
  rec.result = "conflict";
  rec.error = UploadError::kConflict;
  std::string note = std::move(rec.message);
  rec.message = "changed on the box and in the cloud: the box's version is now '" + aside_path +
                "', the cloud's is a stub under the original name";
  if (!note.empty()) rec.message += "; " + note;
  auto stub = store_.CreateStub(local->parent, name, spec);
  if (stub.ok()) {
    seen.push_back(stub->id);
    RecallIfPinned(run, stub->id, object.key, rec);
  } else {
    // The box's version is safe under its new name; the next refresh brings the cloud's in.
    rec.message += " (not yet: " + stub.status().ToString() + ")";
  }
  Log(run, std::move(rec));
  return Outcome::kConflict;
}

Status Refresher::SweepDeleted(ShareRun& run, const std::string& prefix) {
  store::NodeId after = store::kNoNode;
  for (;;) {
    FS_ASSIGN_OR_RETURN(
        std::vector<store::Attr> files,
        store_.NotRefreshed(run.share.id, prefix, run.refresh_id, after, options_.page_size));
    for (const store::Attr& f : files) {
      after = std::max(after, f.id);
      CopyRecord rec;
      rec.path = store_.PathOf(f.id).value_or(f.name);
      rec.size = f.size;
      rec.version = f.data_gen;
      auto copy = store_.CloudCopyOf(f.id);
      if (!copy.ok()) continue;  // no cloud copy any more (changed meanwhile): nothing gone
      rec.etag = copy->etag;
      // The listing may have passed the key before the object was written (an upload that
      // finished during the refresh): the object itself has the last word before anything
      // goes.
      auto head = run.cloud->Head(copy->key);
      if (head.ok()) {
        Status marked = store_.MarkRefreshed({f.id}, run.refresh_id);
        if (!marked.ok()) spdlog::warn("refresh {}: {}", run.share.name, marked.ToString());
        Count(run, Outcome::kUnchanged);
        continue;
      }
      if (head.status().code() != StatusCode::kNotFound) {
        rec.result = "skipped";
        rec.message = "cannot tell whether the object is gone: " + head.status().ToString();
        Log(run, std::move(rec));
        Count(run, Outcome::kSkipped);
        continue;
      }
      if (!run.mirror) {
        rec.result = "kept";
        if (f.state == store::FileState::kStub) {
          // Its data was only in the cloud: keeping it keeps a name that cannot be read.
          rec.error = UploadError::kNotFound;
          rec.message =
              "the object is gone from the cloud; the file is a stub, so its data is "
              "lost (delete policy keep)";
        } else if (Status again = store_.ReuploadIfUnchanged(f.id, f.version); again.ok()) {
          // The box holds the only copy now: it goes up again, so eviction can never drop it.
          rec.message =
              "the object is gone from the cloud; the file stays and is uploaded again (delete "
              "policy keep)";
        } else {
          rec.message = "the object is gone from the cloud; the file stays (delete policy keep; " +
                        again.ToString() + ")";
        }
        Log(run, std::move(rec));
        Count(run, Outcome::kKept);
        continue;
      }
      Status removed = store_.RemoveIfUnchanged(f.id, f.version);
      if (removed.ok()) {
        rec.result = "deleted";
        Log(run, std::move(rec));
        Count(run, Outcome::kDeleted);
      } else if (removed.code() == StatusCode::kFailedPrecondition) {
        rec.result = "skipped";
        rec.message = "the file is open or changed on the box: " + removed.message();
        Log(run, std::move(rec));
        Count(run, Outcome::kSkipped);
      } else if (removed.code() != StatusCode::kNotFound) {  // NotFound: deleted meanwhile
        rec.result = "failed";
        rec.error = ClassifyUploadError(removed);
        rec.message = removed.ToString();
        Log(run, std::move(rec));
        Count(run, Outcome::kFailed);
      }
    }
    if (files.size() < options_.page_size) return Status::Ok();
  }
}

Result<store::NodeId> Refresher::Folder(ShareRun& run, const std::vector<std::string>& dirs,
                                        bool create) {
  std::string path = Join(dirs, dirs.size());
  if (run.folder_cached && run.folder_path == path) return run.folder;
  store::NodeId node = run.share.root;
  for (size_t i = 0; i < dirs.size(); ++i) {
    auto a = store_.Lookup(node, dirs[i]);
    if (!a.ok() && a.status().code() == StatusCode::kNotFound && create) {
      a = store_.Mkdir(node, dirs[i], {.mode = 0755});
      if (a.status().code() == StatusCode::kAlreadyExists) a = store_.Lookup(node, dirs[i]);
    }
    if (!a.ok()) return a.status();
    if (a->type != store::NodeType::kDirectory) {
      return FailedPreconditionError("'" + Join(dirs, i + 1) +
                                     "' is a file on the box and a folder in the cloud: neither "
                                     "is changed");
    }
    node = a->id;
  }
  run.folder_cached = true;
  run.folder_path = std::move(path);
  run.folder = node;
  return node;
}

store::StubSpec Refresher::SpecFor(const cloud::ObjectInfo& object, bool* xattrs_complete) const {
  store::StubSpec spec;
  // Objects come with no part MD5s (only the box that uploaded one knows them): recalls check
  // the etag, and the whole object's MD5 where the service keeps one.
  spec.cloud.key = object.key;
  spec.cloud.etag = object.etag;
  spec.cloud.size = object.size;
  spec.cloud.part_size = options_.part_size_bytes;
  spec.cloud.md5 = object.content_md5;
  FileMeta meta = DecodeFileMeta(object.meta);
  spec.mtime_ns = meta.mtime_ns.value_or(object.mtime_ns);
  spec.mode = meta.mode.value_or(0644) & 07777;
  spec.uid = meta.uid.value_or(0);
  spec.gid = meta.gid.value_or(0);
  spec.xattrs = std::move(meta.xattrs);
  *xattrs_complete = meta.xattrs_complete;
  return spec;
}

Result<std::string> Refresher::MoveAside(store::NodeId parent, const std::string& name) {
  int64_t now = clock_.NowUnixNanos();
  for (int attempt = 1; attempt <= 100; ++attempt) {
    std::string aside = ConflictName(name, now, attempt);
    Status s = store_.Rename(parent, name, parent, aside, /*no_replace=*/true);
    if (s.ok()) return aside;
    if (s.code() != StatusCode::kAlreadyExists) return s;
  }
  return AlreadyExistsError("100 conflict names of '" + name + "' are taken");
}

void Refresher::RecallIfPinned(ShareRun& run, store::NodeId node, const std::string& path,
                               CopyRecord& record) {
  if (!options_.pinned || !options_.pinned(run.share.id, path)) return;
  Status s = store_.Recall(node);
  if (s.ok()) return;
  spdlog::warn("refresh {}: pinned '{}' stays a stub: recall failed: {}", run.share.name, path,
               s.ToString());
  if (record.error == UploadError::kNone) record.error = ClassifyUploadError(s);
  if (!record.message.empty()) record.message += "; ";
  record.message += "pinned, but the recall failed (the file stays a stub): " + s.ToString();
}

void Refresher::FlushStubs(ShareRun& run, std::vector<store::NodeId>& seen) {
  if (run.pending.empty()) return;
  std::vector<store::Store::NewStub> batch;
  batch.reserve(run.pending.size());
  for (const auto& p : run.pending) batch.push_back(p.stub);
  std::vector<Result<store::Attr>> made = store_.CreateStubs(batch);
  for (size_t i = 0; i < run.pending.size(); ++i) {
    ShareRun::Pending& p = run.pending[i];
    CopyRecord rec = std::move(p.rec);
    const Result<store::Attr>& stub = made[i];
    Outcome outcome = Outcome::kAdded;
    if (stub.status().code() == StatusCode::kAlreadyExists) {
      auto there = store_.Lookup(p.stub.parent, p.stub.name);
      if (there.ok() && there->type == store::NodeType::kDirectory) {
        // Another key of the page needed a folder of this name ("a/b" and "a/b/c").
        rec.result = "failed";
        rec.error = UploadError::kTypeClash;
        rec.message = "a folder on the box, a file in the cloud: neither is changed";
        outcome = Outcome::kFailed;
      } else {
        // Created on the box meanwhile: the next refresh compares the two.
        rec.result = "skipped";
        rec.message = "a file of this name was created on the box during the refresh";
        outcome = Outcome::kSkipped;
      }
    } else if (!stub.ok()) {
      rec.result = "failed";
      rec.error = ClassifyUploadError(stub.status());
      rec.message = stub.status().ToString();
      outcome = Outcome::kFailed;
    } else {
      seen.push_back(stub->id);
      rec.result = "added";
      rec.version = stub->data_gen;
      RecallIfPinned(run, stub->id, p.key, rec);
    }
    Log(run, std::move(rec));
    Count(run, outcome);
  }
  run.pending.clear();
}

void Refresher::Count(ShareRun& run, Outcome outcome) {
  if (outcome == Outcome::kDeferred) return;  // counted when its page is flushed
  Pass& p = run.pass;
  switch (outcome) {
    case Outcome::kAdded:
      ++p.added;
      break;
    case Outcome::kChanged:
      ++p.changed;
      break;
    case Outcome::kConflict:
      ++p.conflicts;
      break;
    case Outcome::kUnchanged:
      ++p.unchanged;
      break;
    case Outcome::kSkipped:
      ++p.skipped;
      break;
    case Outcome::kFailed:
      ++p.failed;
      break;
    case Outcome::kDeleted:
      ++p.deleted;
      break;
    case Outcome::kKept:
      ++p.kept;
      break;
    case Outcome::kDeferred:
      return;
  }
  if (objects_ != nullptr) {
    static constexpr const char* kNames[] = {"added",   "changed", "conflict", "unchanged",
                                             "skipped", "failed",  "deleted",  "kept"};
    objects_->Add({{"result", kNames[static_cast<int>(outcome)]}}).Increment();
  }
}

void Refresher::Log(ShareRun& run, CopyRecord r) {
  if (log_ == nullptr) return;
  r.share = run.share.name;
  r.log = LogKind::kRefresh;
  Status s = log_->Append(r);
  if (!s.ok()) spdlog::warn("refresh {}: refresh log: {}", run.share.name, s.ToString());
}

}  // namespace fieldstack::sync
