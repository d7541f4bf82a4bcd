// fieldstack: the box daemon and its local commands.
//
//   fieldstack serve [--config PATH]        run the box (embedded defaults without a config)
//   fieldstack keys rotate [--config PATH]  replace the master key (the daemon must be stopped)
//   fieldstack drain [--config PATH]        upload everything pending (the daemon stopped)
//   fieldstack remove-smb-users             delete the system users made for SMB users
//   fieldstack version
//   fieldstack <noun> <verb> ...            client commands over the REST API (src/cli,
//                                           docs/cli.md): login, status, share, user, ...
//
// Exit codes: 0 success, 1 runtime failure (store, network), 2 bad configuration or usage;
// the client commands add 3 (not signed in or not allowed) and 4 (a job failed).
// This is the only place (with src/cli) that names concrete implementations.

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "cli/commands.h"
#include "cloud/azure_blob/azure_blob_store.h"
#include "cloud/localfs/localfs_store.h"
#include "cloud/s3/s3_store.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "crypto/certificate.h"
#include "daemon/api_routes.h"
#include "daemon/box.h"
#include "daemon/compute_service.h"
#include "daemon/config.h"
#include "daemon/file_shares.h"
#include "daemon/object_endpoints.h"
#include "daemon/upload_service.h"
#include "frontends/http/server.h"
#include "frontends/smb/smb_server.h"
#include "management/alerts.h"
#include "management/api.h"
#include "management/auth.h"
#include "management/history.h"
#include "management/jobs.h"
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

// SIGHUP: rereads the config file (and settings.toml over it) and applies what can change
// while running (shares, targets, cache, schedule, keys). A bad config is logged and changes
// nothing.
void Reload(const std::string& config_path, Box& box) {
  auto c = ConfigFrom(config_path);
  Status s = c.status();
  if (c.ok()) s = ApplyManagedSettings(*c);
  if (s.ok()) {
    s = box.Update(
        [&](Config& cur) {
          OverlayManagedSettings(cur, *c);
          cur.smb_users = c->smb_users;  // file-share settings reload too
          return Status::Ok();
        },
        /*persist=*/false);
  }
  if (!s.ok()) {
    spdlog::error("reload: {}; the running settings stay", s.ToString());
    return;
  }
  spdlog::info("reload: settings applied (ports, TLS and paths take a restart)");
}

// Where the web UI's files are: [http] ui_dir, or the build's web/dist, or beside an installed
// binary; "" (no UI, the API still answers) when none has an index.html.
std::string UiDir(const Config& c) {
  if (!c.ui_dir.empty()) return c.ui_dir;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::string> candidates = {FS_WEB_DIR};
  if (!ec) candidates.push_back((exe.parent_path() / "../share/fieldstack/web").string());
  for (const auto& dir : candidates) {
    if (platform::PathExists(dir + "/index.html")) return dir;
  }
  return "";
}

// What the power route asked for, acted on after the daemon has stopped.
struct PowerRequest {
  std::atomic<bool> asked{false};
  std::atomic<bool> restart{false};
  std::atomic<bool> host{false};
};

int Serve(const std::string& config_path, char** argv) {
  auto config = ConfigFrom(config_path);
  if (!config.ok()) return Fail(2, config.status().message());
  if (Status s = ApplyManagedSettings(*config); !s.ok()) return Fail(2, s.message());
  if (Status s = CheckComplete(*config); !s.ok()) return Fail(2, s.message());
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

  // Management: alerts, users, jobs.
  management::AlertsOptions ao;
  ao.dir = c.data_dir + "/logs";
  ao.webhook = c.alerts_webhook;
  ao.webhook_ca_file = c.alerts_webhook_ca_file;
  auto alerts = management::Alerts::Open(ao, RealClock::Get());
  if (!alerts.ok()) return Fail(1, "alerts: " + alerts.status().ToString());
  management::AuthOptions auth_opts;
  management::Alerts* alerts_ptr = alerts->get();
  auth_opts.on_lockout = [alerts_ptr](const std::string& what, const std::string& who,
                                      int64_t until) {
    (void)alerts_ptr->Raise(
        "security.login_lockout", what + " " + who,
        "sign-ins refused until " + FormatUtc(until * 1'000'000'000, "%Y-%m-%d %H:%M:%S UTC"));
  };
  auto auth = management::Auth::Open(c.data_dir + "/management", RealClock::Get(), auth_opts);
  if (!auth.ok()) return Fail(1, "users: " + auth.status().ToString());
  auto jobs = std::make_unique<management::Jobs>(RealClock::Get());

  auto box = std::make_unique<Box>(c, *st, metrics);
  if (Status s = box->StartServices(); !s.ok()) {
    return Fail(s.code() == StatusCode::kInvalidArgument ? 2 : 1, s.ToString());
  }

  management::ApiOptions api_opts;
  api_opts.server.address = c.http_address;
  api_opts.server.port = c.http_port;
  api_opts.log_dir = c.data_dir + "/logs";
  for (const auto& p : c.http_public) api_opts.public_paths.insert(p);
  api_opts.ui_dir = UiDir(c);
  CertificateFiles cert;
  if (!c.allow_http || c.s3.enabled || c.blob.enabled) {
    auto files = EnsureBoxCertificate(c);
    if (!files.ok()) return Fail(1, files.status().ToString());
    cert = *files;
  }
  if (!c.allow_http) {
    api_opts.server.tls_cert_file = cert.cert;
    api_opts.server.tls_key_file = cert.key;
  }
  // Edge compute: pipelines, module sandbox, MQTT broker and client.
  if (c.mqtt.tls_port != 0 && cert.cert.empty()) {
    auto files = EnsureBoxCertificate(c);
    if (!files.ok()) return Fail(1, files.status().ToString());
    cert = *files;
  }
  auto compute_started = ComputeService::Start(c, *st, metrics, alerts->get(), cert.cert, cert.key);
  if (!compute_started.ok()) {
    return Fail(compute_started.status().code() == StatusCode::kInvalidArgument ? 2 : 1,
                "compute: " + compute_started.status().ToString());
  }
  std::unique_ptr<ComputeService> compute = std::move(*compute_started);
  box->SetCompute(compute.get());

  management::ManagementApi api(api_opts, **auth);
  management::MetricsHistory history;
  PowerRequest power;
  ApiContext ctx{*box,
                 **auth,
                 **alerts,
                 *jobs,
                 api,
                 history,
                 kVersion,
                 config_path,
                 started_ns,
                 cert,
                 [&] {
                   store_metrics.Refresh();
                   return metrics.Serialize();
                 },
                 [&power](bool restart, bool host) {
                   power.restart = restart;
                   power.host = host;
                   power.asked = true;
                   // After the answer is on its way.
                   std::thread([] {
                     std::this_thread::sleep_for(std::chrono::milliseconds(300));
                     ::kill(::getpid(), SIGTERM);
                   }).detach();
                 }};
  RegisterRoutes(ctx);
  if (Status s = api.Start(); !s.ok()) {
    return Fail(s.code() == StatusCode::kInvalidArgument ? 2 : 1,
                "key 'http.address'/'http.port': " + s.message());
  }
  std::string shares;
  for (auto& sh : c.shares) {
    shares += (shares.empty() ? "" : ", ") + sh.name + " (" +
              std::string(store::ShareKindName(sh.kind)) + ")";
  }
  std::string url = std::string(api.secure() ? "https" : "http") + "://" + c.http_address + ":" +
                    std::to_string(api.port());
  spdlog::info("fieldstack {} serving on {} (API {}/api/v1, /healthz, /metrics)", kVersion, url,
               url);
  if (api.secure()) {
    if (auto pem = platform::ReadFileToString(cert.cert); pem.ok()) {
      if (auto info = crypto::DescribeCertificate(*pem); info.ok()) {
        spdlog::info("tls: certificate {} sha256 {}", cert.cert, info->sha256_fingerprint);
      }
    }
  }
  if (!api_opts.ui_dir.empty()) {
    spdlog::info("web UI: {}/ (files in {})", url, api_opts.ui_dir);
  } else {
    spdlog::info("web UI: not built (make web); the API and CLI work without it");
  }
  if ((*auth)->NeedsSetup()) {
    // Printed once: whoever can read the console may set the admin password.
    spdlog::warn(
        "first start: set the admin password with the setup code {}: "
        "fieldstack setup --server {} --code {} (or POST /api/v1/setup)",
        (*auth)->setup_code(), url, (*auth)->setup_code());
  } else {
    spdlog::info("sign in: fieldstack login --server {} (users: fieldstack user list)", url);
  }
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

  // Alerts the box sees by itself, every health_interval_s.
  std::atomic<bool> stopping{false};
  std::thread health([&] {
    HealthState state;
    while (!stopping) {
      CheckHealth(ctx, state);
      for (uint32_t i = 0; i < c.health_interval_s * 10 && !stopping; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });

  // The dashboard's throughput history, every 10 s.
  std::thread sampler([&] {
    while (!stopping) {
      SampleHistory(ctx);
      for (int i = 0; i < 100 && !stopping; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });

  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) Reload(config_path, *box);
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  stopping = true;
  health.join();
  sampler.join();
  api.Stop();
  jobs.reset();  // cancels running jobs and waits for them: they use the box and the store
  box->SetCompute(nullptr);
  compute.reset();  // the MQTT client, the pipelines' runs, then the broker
  box.reset();      // object endpoints, file shares, then uploads
  audit.reset();    // writes the lines of what was committed
  st.reset();       // commits open files, drains the committer
  spdlog::info("stopped cleanly");
  if (power.asked && power.host) {
    const char* cmd = power.restart ? "systemctl reboot" : "systemctl poweroff";
    spdlog::warn("asking the host: {}", cmd);
    int rc = std::system(cmd);
    if (rc != 0) spdlog::error("'{}' failed ({})", cmd, rc);
  } else if (power.asked && power.restart) {
    spdlog::info("restarting");
    ::execv("/proc/self/exe", argv);
    return Fail(1, std::string("cannot restart: ") + std::strerror(errno));
  }
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
  app.add_subcommand("version", "print the version");
  fieldstack::cli::AddClientCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (serve->parsed()) return fieldstack::daemon::Serve(config, argv);
  if (rotate->parsed()) return fieldstack::daemon::RotateKeys(config);
  if (drain->parsed()) return fieldstack::daemon::Drain(config);
  if (auto rc = fieldstack::cli::RunClientCommand()) return *rc;
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
