#include "sync/uploader.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace fieldstack::sync {
namespace {

bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kCorruption;
}

}  // namespace

Uploader::Uploader(store::Store& store, Targets targets, Clock& clock, Options options)
    : store_(store),
      targets_(std::move(targets)),
      clock_(clock),
      options_(options),
      rng_(options.seed) {}

std::chrono::nanoseconds Uploader::Backoff(uint32_t attempts) {
  double base = std::chrono::duration<double>(options_.backoff_base).count();
  double cap = std::chrono::duration<double>(options_.backoff_max).count();
  double delay = std::min(cap, base * std::pow(2.0, std::min<uint32_t>(attempts, 30) - 1));
  // Full jitter in [delay/2, delay]: many boxes on one link do not retry in step.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::chrono::nanoseconds(static_cast<int64_t>(delay * jitter(rng_) * 1e9));
}

Result<Uploader::Pass> Uploader::RunOnce() {
  Pass pass;
  FS_ASSIGN_OR_RETURN(pass.queued, store_.EnqueueUploads(kConsumer, options_.events_per_pass));
  int64_t now = clock_.NowUnixNanos();
  FS_ASSIGN_OR_RETURN(auto items, store_.DueUploads(now, options_.batch));
  for (store::UploadItem& item : items) {
    cloud::ObjectStore* target = targets_(item.share_id);
    if (target == nullptr) continue;
    auto path = store_.PathOf(item.node);
    auto attr = store_.GetAttr(item.node);
    if (!path.ok() || !attr.ok()) {
      // Deleted since it was queued: nothing to upload.
      FS_RETURN_IF_ERROR(store_.FinishUpload(item, store::FileState::kDirty, "", "", ""));
      continue;
    }
    UploadJob job;
    job.node = item.node;
    job.data_gen = item.data_gen;
    job.key = *path;
    job.meta = {{"mtime_ns", std::to_string(attr->mtime_ns)},
                {"mode", std::to_string(attr->mode)},
                {"uid", std::to_string(attr->uid)},
                {"gid", std::to_string(attr->gid)}};
    if (!item.cloud_etag.empty() && item.cloud_key == job.key) {
      job.precondition.if_match = item.cloud_etag;
    } else {
      job.precondition.if_none_match_any = true;
    }
    if (!item.upload_id.empty() && item.upload_key == job.key) {
      job.upload = cloud::Upload{item.upload_key, item.upload_id};
    }
    FileUploader uploader(store_, *target, {.part_size_bytes = options_.part_size_bytes});
    auto r = uploader.Upload(job);
    if (r.ok() && r->outcome == UploadOutcome::kUploaded) {
      FS_RETURN_IF_ERROR(
          store_.FinishUpload(item, store::FileState::kClean, job.key, r->object.etag, ""));
      ++pass.uploaded;
    } else if (r.ok() && r->outcome == UploadOutcome::kFileChanged) {
      // The newer version's event re-queues the file; drop this version's upload state.
      item.upload_key.clear();
      item.upload_id.clear();
      FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
      ++pass.changed;
    } else if (r.ok()) {
      spdlog::warn("uploader: '{}' changed in the cloud; not overwritten", job.key);
      FS_RETURN_IF_ERROR(store_.FinishUpload(
          item, store::FileState::kFailed, "", "",
          "conflict: the object changed in the cloud since it was last uploaded"));
      ++pass.conflicts;
    } else if (Retryable(r.status()) && item.attempts + 1 < options_.max_attempts) {
      ++item.attempts;
      item.not_before_ns = now + Backoff(item.attempts).count();
      item.last_error = r.status().ToString();
      item.upload_key = job.upload ? job.upload->key : "";
      item.upload_id = job.upload ? job.upload->id : "";
      FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
      ++pass.retried;
    } else {
      spdlog::error("uploader: giving up on '{}': {}", job.key, r.status().ToString());
      FS_RETURN_IF_ERROR(
          store_.FinishUpload(item, store::FileState::kFailed, "", "", r.status().ToString()));
      ++pass.failed;
    }
  }
  return pass;
}

}  // namespace fieldstack::sync
