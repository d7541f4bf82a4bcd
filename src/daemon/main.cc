// fieldstack: the box daemon and its local commands.
//
//   fieldstack serve [--config PATH]        run the box (embedded defaults without a config)
//   fieldstack keys rotate [--config PATH]  replace the master key (the daemon must be stopped)
//   fieldstack drain [--config PATH]        upload everything pending (the daemon stopped)
//   fieldstack remove-smb-users             delete the system users made for SMB users
//   fieldstack share refresh NAME [--path P]... [--server URL]
//                                           pull what changed in the cloud into a share
//   fieldstack file state SHARE PATH [--server URL]
//                                           a file's cache state (resident, stub, pinned, dirty)
//   fieldstack version
//
// Exit codes: 0 success, 1 runtime failure (store, network), 2 bad configuration or usage.
// This is the only place (with src/cli) that names concrete implementations.

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "cloud/azure_blob/azure_blob_store.h"
#include "cloud/localfs/localfs_store.h"
#include "cloud/s3/s3_store.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "daemon/config.h"
#include "daemon/file_shares.h"
#include "daemon/object_endpoints.h"
#include "frontends/http/server.h"
#include "frontends/smb/smb_server.h"
#include "platform/file.h"
#include "store/store.h"
#include "sync/audit_log.h"
#include "sync/copy_log.h"
#include "sync/evictor.h"
#include "sync/recall.h"
#include "sync/refresher.h"
#include "sync/uploader.h"

namespace fieldstack::daemon {
namespace {

constexpr char kVersion[] = "0.1.0";
namespace http = frontends::http;
namespace bh = boost::beast::http;

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "fieldstack: %s\n", msg.c_str());
  return code;
}

Result<Config> ConfigFrom(const std::string& path) {
  if (path.empty()) return Config{};
  return LoadConfig(path);
}

// Store options from the config; InvalidArgument naming the key for unusable paths.
Result<store::StoreOptions> StoreOptionsFrom(const Config& c) {
  store::StoreOptions o;
  o.data_dir = c.data_dir;
  o.encryption = c.encryption;
  o.key_file = c.key_file;
  o.chunk_size_bytes = c.chunk_size_kib * 1024;
  Status dir = platform::MakeDirs(c.data_dir);
  if (!dir.ok()) return InvalidArgumentError("key 'data_dir': " + dir.message());
  if (!c.key_file.empty() && !platform::PathExists(platform::DirName(c.key_file))) {
    return InvalidArgumentError("key 'encryption.key_file': directory of " + c.key_file +
                                " does not exist");
  }
  if (!c.passphrase_file.empty()) {
    auto text = platform::ReadFileToString(c.passphrase_file);
    if (!text.ok()) {
      return InvalidArgumentError("key 'encryption.passphrase_file': " + text.status().message());
    }
    std::string pass = text->substr(0, text->find('\n'));
    if (pass.size() < 8) {
      return InvalidArgumentError(
          "key 'encryption.passphrase_file': passphrase shorter than 8 bytes");
    }
    o.passphrase = pass;
  }
  return o;
}

Status EnsureShares(store::Store& s, const Config& c) {
  for (const ShareConfig& want : c.shares) {
    auto have = s.GetShare(want.name);
    if (have.ok()) {
      if (have->kind != want.kind) {
        return FailedPreconditionError("share '" + want.name + "' exists as a " +
                                       std::string(store::ShareKindName(have->kind)) +
                                       " share but the config says " +
                                       std::string(store::ShareKindName(want.kind)));
      }
      continue;
    }
    FS_RETURN_IF_ERROR(s.CreateShare(want.name, want.kind).status());
    spdlog::info("created {} share '{}'", store::ShareKindName(want.kind), want.name);
  }
  return Status::Ok();
}

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

// The cloud side of the daemon: one ObjectStore per cloud share with a target; a thread that
// runs the Uploader; the cache (Evictor as the Store's CacheHooks, with the Recaller behind
// it); the Refresher, on demand and by each share's refresh_ttl_s.
class UploadService {
 public:
  // With `background`, a thread runs the uploader until the service is destroyed; without,
  // the caller drives it with RunOnce (fieldstack drain).
  static Result<std::unique_ptr<UploadService>> Start(store::Store& st, const Config& c,
                                                      Metrics& metrics, bool background = true) {
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
    svc->refresher_ = std::make_unique<sync::Refresher>(st, target_of, RealClock::Get(), fo,
                                                        &svc->log_, &metrics);
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
    svc->uploader_ = std::make_unique<sync::Uploader>(st, target_of, RealClock::Get(), opts,
                                                      &svc->log_, &metrics);
    if (background) svc->thread_ = std::thread([s = svc.get()] { s->Loop(); });
    return svc;
  }

  bool HasTarget(uint32_t share) const { return targets_.count(share) > 0; }
  int64_t BudgetSpentUntil() { return uploader_ ? uploader_->BudgetSpentUntil() : 0; }
  Result<sync::Uploader::Pass> RunOnce() {
    if (uploader_) return uploader_->RunOnce();
    // No targets at all: still queue what waits, so it is counted.
    sync::Uploader::Pass pass;
    FS_ASSIGN_OR_RETURN(pass.queued, store_.EnqueueUploads(sync::Uploader::kConsumer, 10000));
    return pass;
  }

  // Refreshes share `share` (folders `paths`, or all of it) now.
  Result<sync::Refresher::Pass> Refresh(const std::string& share,
                                        const std::vector<std::string>& paths) {
    return refresher_->Run(share, paths);
  }

  ~UploadService() {
    stop_ = true;
    // First no more recalls (a refresh recalling a pinned file then fails at once), waiting
    // for the fetches in flight; then the threads.
    store_.SetCacheHooks(nullptr);
    if (thread_.joinable()) thread_.join();
    if (ttl_thread_.joinable()) ttl_thread_.join();
  }

 private:
  UploadService(store::Store& st, std::string log_dir)
      : store_(st), log_(std::move(log_dir), RealClock::Get()) {}

  void Loop() {
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
  void RefreshLoop() {
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

  struct Ttl {
    std::string share;
    uint32_t ttl_s = 0;
    int64_t last_ns = 0;
  };

  store::Store& store_;
  sync::CopyLog log_;
  std::map<uint32_t, std::unique_ptr<cloud::ObjectStore>> targets_;
  std::unique_ptr<sync::Recaller> recaller_;
  std::unique_ptr<sync::Evictor> evictor_;
  std::unique_ptr<sync::Refresher> refresher_;
  std::map<uint32_t, Ttl> ttl_;
  std::thread ttl_thread_;
  std::set<uint32_t> mirror_;  // shares whose policy is "mirror"
  std::unique_ptr<sync::Uploader> uploader_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Exposes store state as metrics, refreshed at each scrape.
class StoreMetrics {
 public:
  StoreMetrics(Metrics& m, store::Store& s) : store_(s) {
    used_ = &prometheus::BuildGauge()
                 .Name(metric_names::kStoreUsedBytes)
                 .Help("Bytes of file data per share")
                 .Register(m.registry());
    free_ = &prometheus::BuildGauge()
                 .Name("fieldstack_volume_free_bytes")
                 .Help("Free bytes on the data volume")
                 .Register(m.registry())
                 .Add({});
    commits_ = &prometheus::BuildCounter()
                    .Name(metric_names::kStoreCommits)
                    .Help("Store changes committed")
                    .Register(m.registry())
                    .Add({});
    batches_ = &prometheus::BuildCounter()
                    .Name(metric_names::kStoreCommitBatches)
                    .Help("Group commits (one fsync each)")
                    .Register(m.registry())
                    .Add({});
  }
  void Refresh() {
    MutexLock l(mu_);
    if (auto shares = store_.ListShares(); shares.ok()) {
      for (auto& sh : *shares)
        used_->Add({{"share", sh.name}}).Set(static_cast<double>(sh.used_bytes));
    }
    if (auto u = store_.GetUsage(); u.ok()) free_->Set(static_cast<double>(u->volume_free_bytes));
    uint64_t c = store_.commits(), b = store_.commit_batches();
    commits_->Increment(static_cast<double>(c - last_commits_));
    batches_->Increment(static_cast<double>(b - last_batches_));
    last_commits_ = c;
    last_batches_ = b;
  }

 private:
  store::Store& store_;
  Mutex mu_;
  prometheus::Family<prometheus::Gauge>* used_;
  prometheus::Gauge* free_;
  prometheus::Counter* commits_;
  prometheus::Counter* batches_;
  uint64_t last_commits_ GUARDED_BY(mu_) = 0;
  uint64_t last_batches_ GUARDED_BY(mu_) = 0;
};

// SIGHUP: rereads the config and applies what can change while running (file-share settings
// and new shares). A bad config is logged and changes nothing.
void Reload(const std::string& config_path, store::Store& st, FileShares* file_shares) {
  auto c = ConfigFrom(config_path);
  Status s = c.ok() ? EnsureShares(st, *c) : c.status();
  if (s.ok() && file_shares != nullptr) s = file_shares->Reload(*c);
  if (!s.ok()) {
    spdlog::error("reload: {}; the running settings stay", s.ToString());
    return;
  }
  spdlog::info("reload: file-share settings applied (other settings take a restart)");
}

int Serve(const std::string& config_path) {
  auto config = ConfigFrom(config_path);
  if (!config.ok()) return Fail(2, config.status().message());
  const Config& c = *config;
  if (Status s = ConfigureLogging(c.log_format, c.log_level); !s.ok()) {
    return Fail(2, s.message());
  }
  auto opts = StoreOptionsFrom(c);
  if (!opts.ok())
    return Fail(2, "config " + (config_path.empty() ? std::string("(defaults)") : config_path) +
                       ": " + opts.status().message());

  // Signals are taken by sigwait below; every thread started from here inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // reload
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Metrics metrics;
  opts->metrics = &metrics;
  int64_t started_ns = RealClock::Get().MonotonicNanos();
  auto opened = store::Store::Open(*opts);
  if (!opened.ok())
    return Fail(1, "cannot open the store in " + c.data_dir + ": " + opened.status().ToString());
  std::unique_ptr<store::Store> st = std::move(*opened);
  if (Status s = EnsureShares(*st, c); !s.ok()) return Fail(1, s.ToString());
  StoreMetrics store_metrics(metrics, *st);
  auto audit = std::make_unique<sync::AuditLog>(
      *st,
      sync::AuditOptions{.path = c.data_dir + "/logs/audit.log",
                         .smb_sessions = c.smb_enabled ? frontends::smb::SmbServer::SessionsPath(
                                                             {.state_dir = c.data_dir + "/smb"})
                                                       : ""},
      RealClock::Get());
  audit->Start();
  auto uploads = UploadService::Start(*st, c, metrics);
  if (!uploads.ok()) return Fail(2, uploads.status().ToString());
  std::unique_ptr<FileShares> file_shares;
  if (c.smb_enabled || c.nfs_enabled) {
    auto served = FileShares::Start(*st, c);
    if (!served.ok()) {
      return Fail(served.status().code() == StatusCode::kInvalidArgument ? 2 : 1,
                  served.status().ToString());
    }
    file_shares = std::move(*served);
  }

  auto endpoints = ObjectEndpoints::Start(*st, c);
  if (!endpoints.ok()) {
    return Fail(endpoints.status().code() == StatusCode::kInvalidArgument ? 2 : 1,
                endpoints.status().ToString());
  }

  http::Router router;
  router.Add(bh::verb::get, "/healthz", [&](const http::Request& req) {
    auto usage = st->GetUsage();
    nlohmann::json j;
    j["version"] = kVersion;
    j["uptime_s"] = (RealClock::Get().MonotonicNanos() - started_ns) / 1'000'000'000;
    if (!usage.ok()) {
      j["status"] = "unavailable";
      j["error"] = usage.status().ToString();
      return http::MakeResponse(req, bh::status::service_unavailable, "application/json", j.dump());
    }
    j["status"] = "ok";
    j["used_bytes"] = usage->used_bytes;
    j["volume_free_bytes"] = usage->volume_free_bytes;
    return http::MakeResponse(req, bh::status::ok, "application/json", j.dump());
  });
  router.Add(bh::verb::get, "/metrics", [&](const http::Request& req) {
    store_metrics.Refresh();
    return http::MakeResponse(req, bh::status::ok, "text/plain; version=0.0.4",
                              metrics.Serialize());
  });
  // Cache and refresh (until the management API of issue 7 takes these over; local only, like
  // the rest of this port).
  router.Add(bh::verb::post, "/api/v1/refresh", [&](const http::Request& req) {
    auto bad = [&](const std::string& msg) {
      nlohmann::json e = {{"error", msg}};
      return http::MakeResponse(req, bh::status::bad_request, "application/json", e.dump());
    };
    nlohmann::json in = nlohmann::json::parse(req.body(), nullptr, false);
    if (in.is_discarded() || !in.is_object() || !in.contains("share") || !in["share"].is_string()) {
      return bad("the body must be JSON like {\"share\": \"name\", \"paths\": [\"folder\"]}");
    }
    std::vector<std::string> paths;
    if (in.contains("paths")) {
      if (!in["paths"].is_array()) return bad("\"paths\" must be an array of folders");
      for (const auto& p : in["paths"]) {
        if (!p.is_string()) return bad("\"paths\" must be an array of folders");
        paths.push_back(p.get<std::string>());
      }
    }
    auto pass = (*uploads)->Refresh(in["share"].get<std::string>(), paths);
    if (!pass.ok()) {
      nlohmann::json e = {{"error", pass.status().ToString()}};
      auto code = pass.status().code() == StatusCode::kNotFound ? bh::status::not_found
                  : pass.status().code() == StatusCode::kInvalidArgument ||
                          pass.status().code() == StatusCode::kFailedPrecondition
                      ? bh::status::bad_request
                      : bh::status::service_unavailable;
      return http::MakeResponse(req, code, "application/json", e.dump());
    }
    nlohmann::json j = {{"listed", pass->listed},       {"added", pass->added},
                        {"changed", pass->changed},     {"deleted", pass->deleted},
                        {"kept", pass->kept},           {"conflicts", pass->conflicts},
                        {"unchanged", pass->unchanged}, {"skipped", pass->skipped},
                        {"failed", pass->failed},       {"duration_ms", pass->duration_ms}};
    return http::MakeResponse(req, bh::status::ok, "application/json", j.dump());
  });
  router.Add(bh::verb::post, "/api/v1/file-state", [&](const http::Request& req) {
    nlohmann::json in = nlohmann::json::parse(req.body(), nullptr, false);
    if (in.is_discarded() || !in.is_object() || !in.contains("share") || !in["share"].is_string() ||
        !in.contains("path") || !in["path"].is_string()) {
      nlohmann::json e = {{"error",
                           "the body must be JSON like {\"share\": \"name\", "
                           "\"path\": \"folder/file\"}"}};
      return http::MakeResponse(req, bh::status::bad_request, "application/json", e.dump());
    }
    auto attr = st->Resolve(in["share"].get<std::string>(), in["path"].get<std::string>());
    auto state = attr.ok() ? st->CacheStateOf(attr->id) : Result<std::string>(attr.status());
    if (!state.ok()) {
      nlohmann::json e = {{"error", state.status().ToString()}};
      return http::MakeResponse(req,
                                state.status().code() == StatusCode::kNotFound
                                    ? bh::status::not_found
                                    : bh::status::bad_request,
                                "application/json", e.dump());
    }
    nlohmann::json j = {{"state", *state}, {"size", attr->size}};
    return http::MakeResponse(req, bh::status::ok, "application/json", j.dump());
  });
  http::ServerOptions so;
  so.address = c.http_address;
  so.port = c.http_port;
  http::HttpServer server(so, router);
  if (Status s = server.Start(); !s.ok()) {
    return Fail(s.code() == StatusCode::kInvalidArgument ? 2 : 1,
                "key 'http.address'/'http.port': " + s.message());
  }
  std::string shares;
  for (auto& sh : c.shares) {
    shares += (shares.empty() ? "" : ", ") + sh.name + " (" +
              std::string(store::ShareKindName(sh.kind)) + ")";
  }
  spdlog::info("fieldstack {} serving on http://{}:{} (/healthz, /metrics)", kVersion,
               c.http_address, server.port());
  std::string keys = "off";
  if (st->master_key_id() != 0) {
    keys = "on (master key id " + std::to_string(st->master_key_id()) + ")";
    if (c.passphrase_file.empty()) {
      keys += "; master key file " +
              (c.key_file.empty() ? c.data_dir + "/master.key" : c.key_file) +
              " (back it up: without it the data cannot be read)";
    }
  }
  spdlog::info("data in {}; encryption {}; shares: {}", c.data_dir, keys, shares);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP)
    Reload(config_path, *st, file_shares.get());
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server.Stop();
  endpoints->reset();   // no new object requests; those in flight finish
  file_shares.reset();  // no new file-share requests; unmounts, open files are committed
  audit.reset();        // writes the lines of what was committed
  uploads->reset();     // finishes the upload in progress, if any
  st.reset();           // commits open files, drains the committer
  spdlog::info("stopped cleanly");
  return 0;
}

// Uploads everything pending, reporting progress, and returns when the queue is empty.

int Drain(const std::string& config_path) {
  auto config = ConfigFrom(config_path);
  if (!config.ok()) return Fail(2, config.status().message());
  (void)ConfigureLogging(config->log_format, "warn");
  auto opts = StoreOptionsFrom(*config);
  if (!opts.ok()) return Fail(2, opts.status().message());
  auto opened = store::Store::Open(*opts);
  if (!opened.ok()) {
    std::string hint =
        opened.status().code() == StatusCode::kAlreadyExists ? " (stop the daemon first)" : "";
    return Fail(1, "cannot open the store: " + opened.status().ToString() + hint);
  }
  store::Store& st = **opened;
  Metrics metrics;
  auto svc = UploadService::Start(st, *config, metrics, /*background=*/false);
  if (!svc.ok()) return Fail(2, svc.status().ToString());
  uint64_t uploaded = 0;
  for (;;) {
    auto pass = (*svc)->RunOnce();
    if (!pass.ok()) return Fail(1, "upload pass failed: " + pass.status().ToString());
    uploaded += pass->uploaded;
    auto pending = st.PendingUploadsByShare();
    if (!pending.ok()) return Fail(1, pending.status().ToString());
    uint64_t total = 0, stuck = 0;
    for (auto& [share, n] : *pending) {
      total += n;
      if (!(*svc)->HasTarget(share)) stuck += n;
    }
    std::printf("uploaded %llu, pending %llu\n", static_cast<unsigned long long>(uploaded),
                static_cast<unsigned long long>(total));
    std::fflush(stdout);
    if (total == 0) {
      // The last uploads may have released objects that a `mirror` share deletes.
      for (int i = 0; i < 100; ++i) {
        auto more = (*svc)->RunOnce();
        if (!more.ok()) return Fail(1, "upload pass failed: " + more.status().ToString());
        if (more->deleted == 0) break;
      }
      return 0;
    }
    if (int64_t until = (*svc)->BudgetSpentUntil(); until != 0) {
      return Fail(1, std::to_string(total) + " files wait: the upload data budget is spent until " +
                         FormatUtc(until, "%Y-%m-%d %H:%M UTC") +
                         " ([upload] daily_budget / monthly_budget)");
    }
    if (stuck == total) {
      return Fail(1, std::to_string(stuck) +
                         " files wait for shares without an upload target ([shares.target])");
    }
    if (pass->uploaded == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Client commands: POST a JSON body to the running daemon's HTTP port, print the answer.
// Exit 0 on 2xx, 1 when the daemon cannot be reached or fails, 2 when it refuses the input.
int PostToDaemon(const std::string& server, const std::string& path, const std::string& body) {
  std::string url = server;
  if (url.starts_with("http://")) url = url.substr(7);
  if (url.ends_with("/")) url.pop_back();
  std::string host = url, port = "80";
  if (auto colon = url.rfind(':'); colon != std::string::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty() || port.empty() || server.starts_with("https://")) {
    return Fail(2, "--server must be http://HOST:PORT (got '" + server + "')");
  }
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    boost::beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::hours(2));  // a refresh of a large share takes a while
    stream.connect(resolver.resolve(host, port));
    bh::request<bh::string_body> req{bh::verb::post, path, 11};
    req.set(bh::field::host, host);
    req.set(bh::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    bh::write(stream, req);
    boost::beast::flat_buffer buf;
    bh::response<bh::string_body> res;
    bh::read(stream, buf, res);
    nlohmann::json j = nlohmann::json::parse(res.body(), nullptr, false);
    std::string text = j.is_discarded() ? res.body() : j.dump(2);
    if (res.result_int() / 100 == 2) {
      std::printf("%s\n", text.c_str());
      return 0;
    }
    std::string err = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : text;
    return Fail(res.result_int() / 100 == 4 ? 2 : 1, err);
  } catch (const std::exception& e) {
    return Fail(1, "cannot reach the daemon at " + server + ": " + e.what());
  }
}

int RotateKeys(const std::string& config_path) {
  auto config = ConfigFrom(config_path);
  if (!config.ok()) return Fail(2, config.status().message());
  (void)ConfigureLogging(config->log_format, config->log_level);
  auto opts = StoreOptionsFrom(*config);
  if (!opts.ok()) return Fail(2, opts.status().message());
  std::optional<std::string> new_pass;
  if (const char* p = std::getenv("FIELDSTACK_NEW_PASSPHRASE")) new_pass = p;
  auto opened = store::Store::Open(*opts);
  if (!opened.ok()) {
    std::string hint =
        opened.status().code() == StatusCode::kAlreadyExists ? " (stop the daemon first)" : "";
    return Fail(1, "cannot open the store: " + opened.status().ToString() + hint);
  }
  auto id = (*opened)->RotateMasterKey(new_pass);
  if (!id.ok()) return Fail(1, "rotation failed: " + id.status().ToString());
  std::printf("master key rotated; new key id %u\n", *id);
  return 0;
}

}  // namespace
}  // namespace fieldstack::daemon

int main(int argc, char** argv) {
  ::umask(077);  // everything the box writes is private to its user
  CLI::App app{"Fieldstack: edge storage gateway and compute box"};
  app.require_subcommand(1);
  std::string config;
  auto* serve = app.add_subcommand("serve", "run the box daemon");
  serve->add_option("--config,-c", config, "path to fieldstack.toml (default: embedded defaults)");
  auto* keys = app.add_subcommand("keys", "manage encryption keys");
  keys->require_subcommand(1);
  auto* rotate = keys->add_subcommand(
      "rotate",
      "replace the master key and re-wrap every file key (daemon stopped; a new "
      "passphrase may be given in FIELDSTACK_NEW_PASSPHRASE)");
  rotate->add_option("--config,-c", config, "path to fieldstack.toml");
  auto* drain = app.add_subcommand(
      "drain", "upload everything pending and return when done (daemon stopped)");
  drain->add_option("--config,-c", config, "path to fieldstack.toml");
  auto* remove_users = app.add_subcommand(
      "remove-smb-users",
      "delete the system users made for SMB (comment \"fieldstack SMB user\"), daemon stopped");
  std::string server = "http://127.0.0.1:8480";
  auto* share = app.add_subcommand("share", "share commands (talk to the running daemon)");
  share->require_subcommand(1);
  auto* refresh = share->add_subcommand(
      "refresh", "pull objects added, changed or deleted in the cloud into a share");
  std::string share_name;
  std::vector<std::string> paths;
  refresh->add_option("name", share_name, "the share")->required();
  refresh->add_option("--path,-p", paths, "a folder of the share (repeatable; default: all)");
  refresh->add_option("--server", server, "the daemon's HTTP address");
  auto* file = app.add_subcommand("file", "file commands (talk to the running daemon)");
  file->require_subcommand(1);
  auto* state =
      file->add_subcommand("state", "a file's cache state: resident, stub, pinned, dirty or local");
  std::string file_path;
  state->add_option("share", share_name, "the share")->required();
  state->add_option("path", file_path, "the file's path in the share")->required();
  state->add_option("--server", server, "the daemon's HTTP address");
  app.add_subcommand("version", "print the version");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (serve->parsed()) return fieldstack::daemon::Serve(config);
  if (rotate->parsed()) return fieldstack::daemon::RotateKeys(config);
  if (drain->parsed()) return fieldstack::daemon::Drain(config);
  if (refresh->parsed()) {
    nlohmann::json body = {{"share", share_name}, {"paths", paths}};
    return fieldstack::daemon::PostToDaemon(server, "/api/v1/refresh", body.dump());
  }
  if (state->parsed()) {
    nlohmann::json body = {{"share", share_name}, {"path", file_path}};
    return fieldstack::daemon::PostToDaemon(server, "/api/v1/file-state", body.dump());
  }
  if (remove_users->parsed()) {
    fieldstack::Status s = fieldstack::frontends::smb::SmbServer::RemoveSystemUsers();
    if (!s.ok()) {
      std::fprintf(stderr, "fieldstack: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  std::printf("fieldstack %s\n", fieldstack::daemon::kVersion);
  return 0;
}
