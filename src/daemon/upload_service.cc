#include "daemon/upload_service.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "cloud/azure_blob/azure_blob_store.h"
#include "cloud/localfs/localfs_store.h"
#include "cloud/s3/s3_store.h"
#include "common/clock.h"

namespace fieldstack::daemon {

Result<std::unique_ptr<cloud::ObjectStore>> MakeTarget(const ShareConfig& share) {
  const TargetConfig& t = share.target;
  std::string where = "shares '" + share.name + "' target";
  if (t.type == "localfs") {
    auto s = cloud::localfs::LocalFsStore::Open(t.path);
    if (!s.ok()) return s.status().WithContext(where);
    return std::unique_ptr<cloud::ObjectStore>(std::move(*s));
  }
  if (t.type == "s3") {
    cloud::s3::S3Config c;
    c.endpoint = t.endpoint;
    c.bucket = t.bucket;
    if (!t.region.empty()) c.region = t.region;
    c.virtual_hosted = t.addressing == "virtual";
    FS_ASSIGN_OR_RETURN(std::string creds,
                        ReadSecret(t.credentials_file, where + ".credentials_file"));
    std::vector<std::string> lines;
    for (size_t pos = 0; pos <= creds.size();) {
      size_t nl = std::min(creds.find('\n', pos), creds.size());
      std::string line = creds.substr(pos, nl - pos);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      lines.push_back(line);
      pos = nl + 1;
    }
    if (lines.size() < 2 || lines[0].empty() || lines[1].empty()) {
      return InvalidArgumentError(where + ".credentials_file: " + t.credentials_file +
                                  " must hold the access key id and the secret key on two lines");
    }
    c.credentials = {lines[0], lines[1], lines.size() > 2 ? lines[2] : ""};
    auto s = cloud::s3::S3Store::Open(c, RealClock::Get());
    if (!s.ok()) return s.status().WithContext(where);
    Status made = (*s)->CreateBucket();
    if (made.ok()) {
      spdlog::info("created bucket '{}'", t.bucket);
    } else if (made.code() != StatusCode::kAlreadyExists) {
      spdlog::warn("{}: cannot create bucket '{}': {}", where, t.bucket, made.ToString());
    }
    return std::unique_ptr<cloud::ObjectStore>(std::move(*s));
  }
  cloud::azure_blob::AzureConfig c{t.endpoint, t.account,   "",
                                   "",         t.container, t.page_blob_suffixes};
  if (!t.key_file.empty()) {
    FS_ASSIGN_OR_RETURN(c.key_base64, ReadSecret(t.key_file, where + ".key_file"));
  }
  if (!t.sas_file.empty()) {
    FS_ASSIGN_OR_RETURN(c.sas, ReadSecret(t.sas_file, where + ".sas_file"));
  }
  auto s = cloud::azure_blob::AzureBlobStore::Open(c, RealClock::Get());
  if (!s.ok()) return s.status().WithContext(where);
  // Make the container if it is missing; a SAS or an offline link may not allow it, and the
  // uploader reports what then fails.
  Status made = (*s)->CreateContainer();
  if (made.ok()) {
    spdlog::info("created container '{}'", t.container);
  } else if (made.code() != StatusCode::kAlreadyExists) {
    spdlog::warn("{}: cannot create container '{}': {}", where, t.container, made.ToString());
  }
  return std::unique_ptr<cloud::ObjectStore>(std::move(*s));
}

sync::CachePolicy PolicyFrom(const CacheConfig& c) {
  sync::CachePolicy p;
  // Sizes were checked when the config was read.
  if (!c.high_watermark.empty()) p.high = *sync::CacheSize::Parse(c.high_watermark);
  if (!c.low_watermark.empty()) p.low = *sync::CacheSize::Parse(c.low_watermark);
  if (!c.hard_cap.empty()) p.cap = *sync::CacheSize::Parse(c.hard_cap);
  if (c.max_age_days > 0) p.max_age = std::chrono::hours(24) * c.max_age_days;
  p.pinned = c.pinned;
  return p;
}

Result<std::unique_ptr<UploadService>> UploadService::Start(store::Store& st, const Config& c,
                                                            Metrics& metrics, bool background) {
  auto svc = std::unique_ptr<UploadService>(new UploadService(st, c.data_dir + "/logs"));
  for (const ShareConfig& share : c.shares) {
    if (share.target.type.empty()) continue;
    FS_ASSIGN_OR_RETURN(store::ShareInfo info, st.GetShare(share.name));
    FS_ASSIGN_OR_RETURN(svc->targets_[info.id], MakeTarget(share));
    if (share.target.policy == "mirror") svc->mirror_.insert(info.id);
    spdlog::info("share '{}' uploads to {} {}", share.name, share.target.type,
                 share.target.type == "localfs" ? share.target.path
                 : share.target.type == "s3"
                     ? share.target.endpoint + "/" + share.target.bucket
                     : share.target.endpoint + "/" + share.target.container);
  }
  auto* targets = &svc->targets_;
  auto target_of = [targets](uint32_t share) -> cloud::ObjectStore* {
    auto it = targets->find(share);
    return it == targets->end() ? nullptr : it->second.get();
  };
  sync::BandwidthSchedule schedule;
  if (!c.upload_bandwidth.empty()) {
    FS_ASSIGN_OR_RETURN(schedule, sync::BandwidthSchedule::ParseTimetable(c.upload_bandwidth));
  }
  sync::Recaller::Options ro;
  ro.schedule = schedule;  // its download rates
  ro.timeout = std::chrono::seconds(c.recall_timeout_s);
  svc->recaller_ = std::make_unique<sync::Recaller>(target_of, RealClock::Get(), ro, &metrics);
  sync::Evictor::Options eo;
  eo.box = PolicyFrom(c.cache);
  eo.interval = std::chrono::seconds(c.cache_interval_s);
  eo.backpressure_timeout = std::chrono::seconds(c.backpressure_timeout_s);
  for (const ShareConfig& share : c.shares) {
    FS_ASSIGN_OR_RETURN(store::ShareInfo info, st.GetShare(share.name));
    eo.shares[info.id] = PolicyFrom(share.cache);
    if (share.refresh_ttl_s > 0) svc->ttl_[info.id] = {share.name, share.refresh_ttl_s, 0};
  }
  svc->evictor_ =
      std::make_unique<sync::Evictor>(st, RealClock::Get(), eo, svc->recaller_.get(), &metrics);
  st.SetCacheHooks(svc->evictor_.get());
  if (background) svc->evictor_->Start();
  sync::Refresher::Options fo;
  fo.mirror = [m = &svc->mirror_](uint32_t share) { return m->count(share) > 0; };
  fo.pinned = [e = svc->evictor_.get()](uint32_t share, std::string_view path) {
    return e->Pinned(share, path);
  };
  fo.part_size_bytes = uint64_t{c.upload_part_size_mib} << 20;
  svc->refresher_ =
      std::make_unique<sync::Refresher>(st, target_of, RealClock::Get(), fo, &svc->log_, &metrics);
  if (background && !svc->ttl_.empty()) {
    svc->ttl_thread_ = std::thread([s = svc.get()] { s->RefreshLoop(); });
  }
  if (svc->targets_.empty()) return svc;
  sync::Uploader::Options opts;
  opts.part_size_bytes = uint64_t{c.upload_part_size_mib} << 20;
  opts.transfers = c.upload_transfers;
  opts.budget.daily_bytes = c.upload_daily_budget;
  opts.budget.monthly_bytes = c.upload_monthly_budget;
  opts.mirror = [m = &svc->mirror_](uint32_t share) { return m->count(share) > 0; };
  opts.schedule = schedule;
  svc->uploader_ =
      std::make_unique<sync::Uploader>(st, target_of, RealClock::Get(), opts, &svc->log_, &metrics);
  if (background) svc->thread_ = std::thread([s = svc.get()] { s->Loop(); });
  return svc;
}

Result<sync::Uploader::Pass> UploadService::RunOnce() {
  if (uploader_) return uploader_->RunOnce();
  // No targets at all: still queue what waits, so it is counted.
  sync::Uploader::Pass pass;
  FS_ASSIGN_OR_RETURN(pass.queued, store_.EnqueueUploads(sync::Uploader::kConsumer, 10000));
  return pass;
}

Result<sync::Refresher::Pass> UploadService::Refresh(const std::string& share,
                                                     const std::vector<std::string>& paths) {
  return refresher_->Run(share, paths);
}

UploadService::~UploadService() {
  stop_ = true;
  if (uploader_) uploader_->Stop();
  // First no more recalls (a refresh recalling a pinned file then fails at once), waiting
  // for the fetches in flight; then the threads.
  store_.SetCacheHooks(nullptr);
  if (thread_.joinable()) thread_.join();
  if (ttl_thread_.joinable()) ttl_thread_.join();
}

UploadService::UploadService(store::Store& st, std::string log_dir)
    : store_(st), log_(std::move(log_dir), RealClock::Get()) {}

void UploadService::Loop() {
  while (!stop_) {
    auto pass = uploader_->RunOnce();
    if (!pass.ok()) spdlog::warn("uploader: {}", pass.status().ToString());
    if (pass.ok() && pass->uploaded > 0) continue;
    // Idle or failing: look again shortly (new commits, retry times).
    for (int i = 0; i < 10 && !stop_; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

// Refreshes each share with a refresh_ttl_s when it is due.
void UploadService::RefreshLoop() {
  while (!stop_) {
    int64_t now = RealClock::Get().MonotonicNanos();
    for (auto& [id, t] : ttl_) {
      if (stop_ || (t.last_ns != 0 && now - t.last_ns < int64_t{t.ttl_s} * 1'000'000'000)) {
        continue;
      }
      t.last_ns = now;
      auto pass = refresher_->Run(t.share, {});
      if (!pass.ok()) {
        spdlog::warn("refresh of share '{}': {}", t.share, pass.status().ToString());
      } else {
        spdlog::info(
            "refresh of share '{}': {} listed, {} added, {} changed, {} deleted, {} "
            "conflicts, {} failed in {} ms",
            t.share, pass->listed, pass->added, pass->changed, pass->deleted, pass->conflicts,
            pass->failed, pass->duration_ms);
      }
    }
    for (int i = 0; i < 10 && !stop_; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

cloud::ObjectStore* UploadService::TargetOf(uint32_t share) const {
  auto it = targets_.find(share);
  return it == targets_.end() ? nullptr : it->second.get();
}

}  // namespace fieldstack::daemon
