#include "sync/uploader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>

#include "crypto/hash.h"
#include "sync/backoff.h"

namespace fieldstack::sync {
namespace {

bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kCorruption;
}

// Which part size a saved multi-part upload was begun with travels with its id in the queue
// ("<part size>:<id>"): a restart with another part size must not reuse its parts.
std::string DecodeUploadId(const std::string& saved, std::string* part_size) {
  size_t colon = saved.find(':');
  if (colon == std::string::npos || saved.find_first_not_of("0123456789") != colon) {
    part_size->clear();
    return saved;
  }
  *part_size = saved.substr(0, colon);
  return saved.substr(colon + 1);
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
      pool_(static_cast<int>(std::max<size_t>(options.transfers, 1)) - 1),
      part_pool_(static_cast<int>(std::max<size_t>(options.transfers, 1))),
      budget_(options.budget, store, clock),
      bucket_(clock, std::nullopt, std::max<uint64_t>(options.part_size_bytes, 1 << 20)) {
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); };
  }
  // Files paused for a data budget by an earlier run may go now: if the budget (perhaps
  // changed since) is still spent, their first part pauses them again.
  auto woken = store_.WakeUploads(StatusCodeName(StatusCode::kResourceExhausted));
  if (!woken.ok()) spdlog::warn("uploader: {}", woken.status().ToString());
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
  rate_ = &prometheus::BuildGauge()
               .Name("fieldstack_upload_rate_bytes_per_second")
               .Help("Upload rate over the last pass (bytes handed to the network per second)")
               .Register(reg)
               .Add({});
  budget_spent_ = &prometheus::BuildGauge()
                       .Name("fieldstack_upload_budget_spent")
                       .Help("1 while uploads wait for the next period of a spent data budget")
                       .Register(reg)
                       .Add({});
  pending_ = &prometheus::BuildGauge()
                  .Name("fieldstack_upload_pending_files")
                  .Help("Files waiting in the upload queue")
                  .Register(reg)
                  .Add({});
}

std::string Uploader::EncodeUploadId(const std::string& id) const {
  return std::to_string(options_.part_size_bytes) + ":" + id;
}

std::optional<uint64_t> Uploader::CurrentRate() const {
  return options_.schedule.At(clock_.NowUnixNanos()).up_bytes_per_s;
}

void Uploader::BudgetSpent(const Status& why, int64_t resume_at_ns) {
  MutexLock l(budget_mu_);
  if (budget_resume_ns_ == resume_at_ns) return;
  budget_resume_ns_ = resume_at_ns;
  spdlog::warn("uploader: {}", why.message());
  if (budget_spent_) budget_spent_->Set(1);
}

Status Uploader::Pace(uint64_t bytes) {
  int64_t resume = 0;
  Status budget = budget_.Charge(bytes, &resume);
  if (!budget.ok()) {
    BudgetSpent(budget, resume);
    return budget;
  }
  for (;;) {
    std::optional<uint64_t> rate = CurrentRate();
    std::chrono::nanoseconds wait{0};
    {
      MutexLock l(bucket_mu_);
      bucket_.SetRate(rate);
      if (rate != std::optional<uint64_t>(0)) wait = bucket_.Reserve(bytes);
    }
    if (stopping_) return UnavailableError("the uploader is stopping");
    if (rate == std::optional<uint64_t>(0)) {
      options_.sleep(std::chrono::milliseconds(200));  // a paused window: wait it out
      continue;
    }
    // Long waits in steps, so Stop is seen.
    while (wait.count() > 0) {
      auto step = std::min<std::chrono::nanoseconds>(wait, std::chrono::milliseconds(200));
      options_.sleep(step);
      wait -= step;
      if (stopping_) return UnavailableError("the uploader is stopping");
    }
    sent_bytes_ += bytes;
    return Status::Ok();
  }
}

void Uploader::Log(CopyRecord r) {
  if (log_ == nullptr) return;
  Status s = log_->Append(r);
  if (!s.ok()) spdlog::warn("uploader: copy log: {}", s.ToString());
}

std::chrono::nanoseconds Uploader::Backoff(uint32_t attempts) {
  MutexLock l(rng_mu_);
  return JitteredBackoff(options_.backoff_base, options_.backoff_max, attempts, rng_);
}

Result<Uploader::Pass> Uploader::RunOnce() {
  Pass pass;
  const int64_t started = clock_.MonotonicNanos();
  const uint64_t sent_before = sent_bytes_;
  FS_ASSIGN_OR_RETURN(pass.queued, store_.EnqueueUploads(kConsumer, options_.events_per_pass));
  if (CurrentRate() == std::optional<uint64_t>(0)) {  // uploads paused now
    if (rate_) rate_->Set(0);
    return pass;
  }
  int64_t now = clock_.NowUnixNanos();
  {
    MutexLock l(budget_mu_);
    if (now < budget_resume_ns_) {  // the data budget is spent until then
      if (rate_) rate_->Set(0);
      return pass;
    }
    if (budget_resume_ns_ != 0 && budget_spent_) budget_spent_->Set(0);
  }
  FS_ASSIGN_OR_RETURN(auto shares, store_.ListShares());
  std::map<uint32_t, std::string> share_names;
  for (auto& sh : shares) share_names[sh.id] = sh.name;
  FS_RETURN_IF_ERROR(AbortAbandoned());
  FS_RETURN_IF_ERROR(DeleteReleased(share_names, now, pass));
  FS_ASSIGN_OR_RETURN(auto items, store_.DueUploads(now, options_.batch));
  std::vector<Outcome> outcomes(items.size(), Outcome::kSkipped);
  std::vector<std::string> names;  // resolved here: the workers only read
  for (const auto& item : items) {
    auto it = share_names.find(item.share_id);
    names.push_back(it == share_names.end() ? "" : it->second);
  }
  Mutex mu;
  Status first_error;
  pool_.ParallelFor(items.size(), [&](size_t i) {
    auto r = UploadOne(items[i], names[i], now);
    MutexLock l(mu);
    if (r.ok()) {
      outcomes[i] = *r;
    } else if (first_error.ok()) {
      first_error = r.status();
    }
  });
  FS_RETURN_IF_ERROR(first_error);
  for (Outcome o : outcomes) {
    switch (o) {
      case Outcome::kUploaded:
        ++pass.uploaded;
        break;
      case Outcome::kChanged:
        ++pass.changed;
        break;
      case Outcome::kConflict:
        ++pass.conflicts;
        break;
      case Outcome::kRetried:
        ++pass.retried;
        break;
      case Outcome::kFailed:
        ++pass.failed;
        break;
      case Outcome::kPaused:
        ++pass.paused;
        break;
      case Outcome::kSkipped:
        break;
    }
  }
  if (pending_) {
    if (auto n = store_.PendingUploads(); n.ok()) pending_->Set(static_cast<double>(*n));
  }
  if (rate_) {
    double seconds = static_cast<double>(clock_.MonotonicNanos() - started) / 1e9;
    double sent = static_cast<double>(sent_bytes_ - sent_before);
    rate_->Set(seconds > 0 ? sent / seconds : 0);
  }
  return pass;
}

Status Uploader::DeleteReleased(const std::map<uint32_t, std::string>& share_names, int64_t now,
                                Pass& pass) {
  if (!options_.mirror) return Status::Ok();
  std::vector<uint32_t> mirrored;
  for (const auto& [id, name] : share_names) {
    if (options_.mirror(id) && targets_(id) != nullptr) mirrored.push_back(id);
  }
  if (mirrored.empty()) return Status::Ok();
  FS_ASSIGN_OR_RETURN(auto due, store_.DueReleased(mirrored, now, options_.batch));
  for (store::ReleasedObject& r : due) {
    cloud::ObjectStore* target = targets_(r.share_id);
    // A file lives at that key again (written or renamed there): its upload replaces the
    // object (If-Match on this etag); deleting first would leave the cloud without it.
    auto live = store_.Resolve(share_names.at(r.share_id), r.key);
    if (live.ok() && live->type == store::NodeType::kFile) {
      r.not_before_ns = now + std::chrono::nanoseconds(options_.backoff_base).count() * 60;
      FS_RETURN_IF_ERROR(store_.UpdateReleased(r));
      continue;
    }
    cloud::Precondition unchanged;
    unchanged.if_match = r.etag;
    int64_t started = clock_.MonotonicNanos();
    Status s;
    if (r.etag.starts_with(store::kOwnerOnlyEtag)) {
      // An upload whose answer was lost: delete the object only if it is that file's.
      auto owned = OwnedEtag(*target, r.key, r.etag.substr(std::strlen(store::kOwnerOnlyEtag)));
      if (owned.ok() && owned->empty()) {
        FS_RETURN_IF_ERROR(store_.ForgetReleased(r.id));  // not there, or someone else's
        continue;
      }
      s = owned.status();
      if (owned.ok()) unchanged.if_match = *owned;
    }
    if (s.ok()) s = target->Delete(r.key, unchanged);
    CopyRecord rec;
    rec.share = share_names.at(r.share_id);
    rec.path = r.key;
    rec.etag = r.etag;
    rec.duration_ms = (clock_.MonotonicNanos() - started) / 1'000'000;
    if (s.ok() || s.code() == StatusCode::kNotFound) {
      FS_RETURN_IF_ERROR(store_.ForgetReleased(r.id));
      ++pass.deleted;
      rec.result = "deleted";
    } else if (s.code() == StatusCode::kFailedPrecondition) {
      spdlog::warn("uploader: '{}' changed in the cloud; not deleted", r.key);
      FS_RETURN_IF_ERROR(store_.ForgetReleased(r.id));
      ++pass.conflicts;
      rec.result = "conflict";
      rec.error = UploadError::kConflict;
      rec.message = "the object changed in the cloud since it was uploaded; not deleted";
    } else if (Retryable(s) && r.attempts + 1 < options_.max_attempts) {
      ++r.attempts;
      r.not_before_ns = now + Backoff(r.attempts).count();
      r.last_error = s.ToString();
      FS_RETURN_IF_ERROR(store_.UpdateReleased(r));
      ++pass.retried;
      rec.result = "retry";
      rec.error = ClassifyUploadError(s);
      rec.message = s.ToString();
    } else {
      spdlog::error("uploader: giving up deleting '{}': {}", r.key, s.ToString());
      FS_RETURN_IF_ERROR(store_.ForgetReleased(r.id));
      ++pass.failed;
      rec.result = "failed";
      rec.error = Retryable(s) ? UploadError::kGaveUp : ClassifyUploadError(s);
      rec.message = s.ToString();
    }
    Log(std::move(rec));
  }
  return Status::Ok();
}

Result<cloud::ObjectMeta> Uploader::MetaOf(const store::Attr& attr) {
  FS_ASSIGN_OR_RETURN(auto names, store_.ListXattrs(attr.id));
  std::vector<std::pair<std::string, std::string>> xattrs;
  for (std::string& name : names) {
    if (IsInternalXattr(name)) continue;  // never sent; not worth reading
    auto value = store_.GetXattr(attr.id, name);
    if (value.status().code() == StatusCode::kNotFound) continue;  // removed meanwhile
    if (!value.ok()) return value.status();
    xattrs.emplace_back(std::move(name), std::move(*value));
  }
  const std::string owner = std::to_string(attr.id);
  // The owner mark counts against the same budget.
  const size_t owner_bytes = std::strlen(kOwnerMetaKey) + owner.size();
  cloud::ObjectMeta meta = EncodeFileMeta(
      attr, xattrs,
      options_.meta_budget_bytes > owner_bytes ? options_.meta_budget_bytes - owner_bytes : 0);
  meta[kOwnerMetaKey] = owner;
  return meta;
}

// The etag of the object at `key` if it carries the owner mark of file `node`; "" when it is
// missing or someone else's.
Result<std::string> Uploader::OwnedEtag(cloud::ObjectStore& target, const std::string& key,
                                        const std::string& node) {
  auto head = target.Head(key);
  if (head.status().code() == StatusCode::kNotFound) return std::string();
  if (!head.ok()) return head.status();
  auto mark = head->meta.find(kOwnerMetaKey);
  return mark != head->meta.end() && mark->second == node ? head->etag : std::string();
}

Status Uploader::AbortAbandoned() {
  FS_ASSIGN_OR_RETURN(auto abandoned, store_.AbandonedUploads(options_.batch));
  for (const store::AbandonedUpload& a : abandoned) {
    cloud::ObjectStore* target = targets_(a.share_id);
    if (target != nullptr) {
      std::string part_size;
      Status s = target->AbortUpload({a.key, DecodeUploadId(a.upload_id, &part_size)});
      if (Retryable(s)) continue;  // offline: try again next pass
      if (!s.ok()) spdlog::warn("uploader: aborting the upload of '{}': {}", a.key, s.ToString());
    }
    FS_RETURN_IF_ERROR(store_.ForgetAbandonedUpload(a.id));
  }
  return Status::Ok();
}

Result<Uploader::Outcome> Uploader::UploadOne(store::UploadItem& item,
                                              const std::string& share_name, int64_t now) {
  cloud::ObjectStore* target = targets_(item.share_id);
  if (target == nullptr) return Outcome::kSkipped;
  auto path = store_.PathOf(item.node);
  auto attr = store_.GetAttr(item.node);
  if (!path.ok() || !attr.ok()) {
    // Deleted since it was queued: nothing to upload.
    FS_RETURN_IF_ERROR(store_.FinishUpload(item, store::FileState::kDirty, "", "", ""));
    return Outcome::kSkipped;
  }
  if (path->starts_with(std::string(store::kStagingDir) + "/")) {
    // Still being staged by the S3 or Blob API: it goes up under its key once renamed there
    // (or never, when the upload is abandoned).
    bool put = path->starts_with(std::string(store::kStagingDir) + "/put/");
    item.not_before_ns = now + (put ? 2'000'000'000LL : 60'000'000'000LL);
    FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
    return Outcome::kSkipped;
  }
  UploadJob job;
  job.node = item.node;
  job.data_gen = item.data_gen;
  job.key = *path;
  auto meta = MetaOf(*attr);
  if (!meta.ok() && meta.status().code() == StatusCode::kNotFound) {
    FS_RETURN_IF_ERROR(store_.FinishUpload(item, store::FileState::kDirty, "", "", ""));
    return Outcome::kSkipped;  // deleted meanwhile
  }
  FS_RETURN_IF_ERROR(meta.status());
  job.meta = std::move(*meta);
  if (!item.cloud_etag.empty() && item.cloud_key == job.key) {
    job.precondition.if_match = item.cloud_etag;
  } else {
    // A new key for this file. It may replace only an object this box released there (a
    // deleted or renamed file's); anything else is someone else's.
    FS_ASSIGN_OR_RETURN(std::string released, store_.ReleasedEtag(item.share_id, job.key));
    if (released.starts_with(store::kOwnerOnlyEtag)) {
      auto owned = OwnedEtag(*target, job.key, released.substr(std::strlen(store::kOwnerOnlyEtag)));
      released = owned.ok() ? *owned : "";  // offline: the upload itself fails and is retried
    }
    if (!released.empty()) {
      job.precondition.if_match = released;
    } else {
      job.precondition.if_none_match_any = true;
    }
    // If the answer to this upload is lost, the object must still be found as ours.
    FS_RETURN_IF_ERROR(store_.NoteUploadAttempt(item.node, item.share_id, job.key));
  }
  if (!item.upload_id.empty() && item.upload_key == job.key) {
    std::string part_size;
    cloud::Upload saved{item.upload_key, DecodeUploadId(item.upload_id, &part_size)};
    if (part_size == std::to_string(options_.part_size_bytes)) {
      job.upload = saved;
    } else {
      (void)target->AbortUpload(saved);  // begun with another part size: its parts don't fit
    }
  }
  FileUploader uploader(store_, *target,
                        {.part_size_bytes = options_.part_size_bytes,
                         .before_send = [this](uint64_t bytes) { return Pace(bytes); },
                         .parallel_parts = options_.transfers,
                         .pool = &part_pool_});
  int64_t started = clock_.MonotonicNanos();
  auto r = uploader.Upload(job);
  CopyRecord rec;
  rec.share = share_name;
  rec.path = job.key;
  rec.size = attr->size;
  rec.version = item.data_gen;
  rec.duration_ms = (clock_.MonotonicNanos() - started) / 1'000'000;
  if (r.ok()) {
    rec.etag = r->object.etag;
    rec.md5_base64 = r->md5.empty() ? "" : crypto::Base64(r->md5);
    rec.size = r->bytes;
  }
  Outcome outcome;
  if (r.ok() && r->outcome == UploadOutcome::kUploaded) {
    // How a recall after eviction checks what it reads back.
    store::CloudCopy copy = r->CloudCopyOf(job.key);
    FS_RETURN_IF_ERROR(
        store_.FinishUpload(item, store::FileState::kClean, job.key, r->object.etag, "", &copy));
    outcome = Outcome::kUploaded;
    rec.result = "uploaded";
    if (files_uploaded_) files_uploaded_->Increment();
    if (bytes_uploaded_) bytes_uploaded_->Increment(static_cast<double>(r->bytes));
  } else if (r.ok() && r->outcome == UploadOutcome::kFileChanged) {
    // The newer version's event re-queues the file; drop this version's upload state.
    item.upload_key.clear();
    item.upload_id.clear();
    FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
    outcome = Outcome::kChanged;
    rec.result = "changed";
  } else if (r.ok()) {
    spdlog::warn("uploader: '{}' changed in the cloud; not overwritten", job.key);
    FS_RETURN_IF_ERROR(store_.FinishUpload(
        item, store::FileState::kFailed, "", "",
        "conflict: the object changed in the cloud since it was last uploaded"));
    outcome = Outcome::kConflict;
    rec.result = "conflict";
    rec.error = UploadError::kConflict;
    rec.message = "the object changed in the cloud since it was last uploaded";
  } else if (r.status().code() == StatusCode::kResourceExhausted) {
    // The data budget is spent: wait for the next period, keeping the progress; not a failure.
    {
      MutexLock l(budget_mu_);
      item.not_before_ns = std::max(now, budget_resume_ns_);
    }
    item.last_error = r.status().ToString();
    item.upload_key = job.upload ? job.upload->key : "";
    item.upload_id = job.upload ? EncodeUploadId(job.upload->id) : "";
    FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
    outcome = Outcome::kPaused;
    rec.result = "paused";
    rec.error = UploadError::kBudgetSpent;
    rec.message = r.status().message();
  } else if (Retryable(r.status()) && item.attempts + 1 < options_.max_attempts) {
    ++item.attempts;
    item.not_before_ns = now + Backoff(item.attempts).count();
    item.last_error = r.status().ToString();
    item.upload_key = job.upload ? job.upload->key : "";
    item.upload_id = job.upload ? EncodeUploadId(job.upload->id) : "";
    FS_RETURN_IF_ERROR(store_.UpdateUpload(item));
    outcome = Outcome::kRetried;
    rec.result = "retry";
    rec.error = ClassifyUploadError(r.status());
    rec.message = r.status().ToString();
    if (failures_) failures_->Increment();
  } else {
    spdlog::error("uploader: giving up on '{}': {}", job.key, r.status().ToString());
    FS_RETURN_IF_ERROR(
        store_.FinishUpload(item, store::FileState::kFailed, "", "", r.status().ToString()));
    outcome = Outcome::kFailed;
    rec.result = "failed";
    rec.error = Retryable(r.status()) ? UploadError::kGaveUp : ClassifyUploadError(r.status());
    rec.message = r.status().ToString();
    if (failures_) failures_->Increment();
  }
  Log(std::move(rec));
  return outcome;
}

}  // namespace fieldstack::sync
