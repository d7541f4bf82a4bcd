#include "sync/uploader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>

#include "crypto/hash.h"

namespace fieldstack::sync {
namespace {

bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kCorruption;
}

}  // namespace

Uploader::Uploader(store::Store& store, Targets targets, Clock& clock, Options options,
                   CopyLog* log, Metrics* metrics)
    : store_(store),
      targets_(std::move(targets)),
      clock_(clock),
      options_(options),
      rng_(options.seed),
      log_(log),
      bucket_(clock, std::nullopt, std::max<uint64_t>(options.part_size_bytes, 1 << 20)) {
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); };
  }
  if (metrics == nullptr) return;
  auto& reg = metrics->registry();
  files_uploaded_ = &prometheus::BuildCounter()
                         .Name("fieldstack_upload_files_total")
                         .Help("File versions uploaded")
                         .Register(reg)
                         .Add({});
  bytes_uploaded_ = &prometheus::BuildCounter()
                         .Name("fieldstack_upload_bytes_total")
                         .Help("Bytes of file versions uploaded")
                         .Register(reg)
                         .Add({});
  failures_ = &prometheus::BuildCounter()
                   .Name("fieldstack_upload_failures_total")
                   .Help("Upload attempts that failed (retried or given up)")
                   .Register(reg)
                   .Add({});
  pending_ = &prometheus::BuildGauge()
                  .Name("fieldstack_upload_pending_files")
                  .Help("Files waiting in the upload queue")
                  .Register(reg)
                  .Add({});
}

std::optional<uint64_t> Uploader::CurrentRate() const {
  return options_.schedule.At(clock_.NowUnixNanos()).up_bytes_per_s;
}

void Uploader::Pace(uint64_t bytes) {
  for (;;) {
    std::optional<uint64_t> rate = CurrentRate();
    bucket_.SetRate(rate);
    if (rate == std::optional<uint64_t>(0)) {
      options_.sleep(std::chrono::seconds(1));  // a paused window: wait it out
      continue;
    }
    auto wait = bucket_.Reserve(bytes);
    if (wait.count() > 0) options_.sleep(wait);
    return;
  }
}

void Uploader::Log(CopyRecord r) {
  if (log_ == nullptr) return;
  Status s = log_->Append(r);
  if (!s.ok()) spdlog::warn("uploader: copy log: {}", s.ToString());
}

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
  if (CurrentRate() == std::optional<uint64_t>(0)) return pass;  // uploads paused now
  int64_t now = clock_.NowUnixNanos();
  FS_ASSIGN_OR_RETURN(auto items, store_.DueUploads(now, options_.batch));
  std::map<uint32_t, std::string> share_names;
  if (!items.empty()) {
    FS_ASSIGN_OR_RETURN(auto shares, store_.ListShares());
    for (auto& sh : shares) share_names[sh.id] = sh.name;
  }
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
                {"gid", std::to_string(attr->gid)},
                {kOwnerMetaKey, std::to_string(item.node)}};
    if (!item.cloud_etag.empty() && item.cloud_key == job.key) {
      job.precondition.if_match = item.cloud_etag;
    } else {
      job.precondition.if_none_match_any = true;
    }
    if (!item.upload_id.empty() && item.upload_key == job.key) {
      job.upload = cloud::Upload{item.upload_key, item.upload_id};
    }
    FileUploader uploader(store_, *target,
                          {.part_size_bytes = options_.part_size_bytes,
                           .before_send = [this](uint64_t bytes) { Pace(bytes); }});
    int64_t started = clock_.MonotonicNanos();
    auto r = uploader.Upload(job);
    CopyRecord rec;
    rec.share = share_names[item.share_id];
    rec.path = job.key;
    rec.size = attr->size;
    rec.version = item.data_gen;
    rec.duration_ms = (clock_.MonotonicNanos() - started) / 1'000'000;
    if (r.ok()) {
      rec.etag = r->object.etag;
      rec.md5_base64 = r->md5.empty() ? "" : crypto::Base64(r->md5);
      rec.size = r->bytes;
    }
    if (r.ok() && r->outcome == UploadOutcome::kUploaded) {
      FS_RETURN_IF_ERROR(
          store_.FinishUpload(item, store::FileState::kClean, job.key, r->object.etag, ""));
      ++pass.uploaded;
      rec.result = "uploaded";
      if (files_uploaded_) files_uploaded_->Increment();
      if (bytes_uploaded_) bytes_uploaded_->Increment(static_cast<double>(r->bytes));
    } else if (r.ok() && r->outcome == UploadOutcome::kFileChanged) {
      // The newer version's event re-queues the file; drop this version's upload state.
      item.upload_key.clear();
      item.upload_id.clear();
      FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
      ++pass.changed;
      rec.result = "changed";
    } else if (r.ok()) {
      spdlog::warn("uploader: '{}' changed in the cloud; not overwritten", job.key);
      FS_RETURN_IF_ERROR(store_.FinishUpload(
          item, store::FileState::kFailed, "", "",
          "conflict: the object changed in the cloud since it was last uploaded"));
      ++pass.conflicts;
      rec.result = "conflict";
      rec.error = UploadError::kConflict;
      rec.message = "the object changed in the cloud since it was last uploaded";
    } else if (Retryable(r.status()) && item.attempts + 1 < options_.max_attempts) {
      ++item.attempts;
      item.not_before_ns = now + Backoff(item.attempts).count();
      item.last_error = r.status().ToString();
      item.upload_key = job.upload ? job.upload->key : "";
      item.upload_id = job.upload ? job.upload->id : "";
      FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
      ++pass.retried;
      rec.result = "retry";
      rec.error = ClassifyUploadError(r.status());
      rec.message = r.status().ToString();
      if (failures_) failures_->Increment();
    } else {
      spdlog::error("uploader: giving up on '{}': {}", job.key, r.status().ToString());
      FS_RETURN_IF_ERROR(
          store_.FinishUpload(item, store::FileState::kFailed, "", "", r.status().ToString()));
      ++pass.failed;
      rec.result = "failed";
      rec.error = Retryable(r.status()) ? UploadError::kGaveUp : ClassifyUploadError(r.status());
      rec.message = r.status().ToString();
      if (failures_) failures_->Increment();
    }
    Log(std::move(rec));
  }
  if (pending_) {
    if (auto n = store_.PendingUploads(); n.ok()) pending_->Set(static_cast<double>(*n));
  }
  return pass;
}

}  // namespace fieldstack::sync
