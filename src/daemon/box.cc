#include "daemon/box.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <set>

#include "crypto/certificate.h"
#include "crypto/chunk_codec.h"
#include "daemon/compute_service.h"
#include "platform/file.h"

namespace fieldstack::daemon {

std::vector<std::string> BoxCertificateNames(const Config& c) {
  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') names.push_back(host);
  if (!c.device_name.empty()) names.push_back(c.device_name);
  for (const std::string* a : {&c.http_address, &c.s3.address, &c.blob.address}) {
    if (*a != "0.0.0.0" && *a != "::" && *a != "127.0.0.1" && *a != "localhost") {
      names.push_back(*a);
    }
  }
  for (const std::string& n : c.tls_names) names.push_back(n);
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (auto& n : names) {
    if (seen.insert(n).second) unique.push_back(n);
  }
  return unique;
}

namespace {

// Finishes or drops an install a crash interrupted (see InstallCertificateFiles).
void RecoverCertificateFiles(const CertificateFiles& f) {
  std::string cert_new = f.cert + ".new", key_new = f.key + ".new";
  bool have_cert = platform::PathExists(cert_new), have_key = platform::PathExists(key_new);
  if (have_cert) {
    if (have_key && ::rename(key_new.c_str(), f.key.c_str()) != 0) return;
    if (::rename(cert_new.c_str(), f.cert.c_str()) != 0) return;
    spdlog::warn("tls: finished installing the certificate an interrupted upload left");
  } else if (have_key) {
    (void)platform::RemoveFile(key_new);  // the certificate never arrived: keep the old pair
  }
}

}  // namespace

Status InstallCertificateFiles(const CertificateFiles& f, const std::string& chain_pem,
                               const std::string& key_pem) {
  static std::mutex mu;
  std::lock_guard l(mu);
  std::string cert_new = f.cert + ".new", key_new = f.key + ".new";
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(key_new, key_pem, 0600));
  Status s = platform::WriteFileAtomic(cert_new, chain_pem, 0644);
  if (!s.ok()) {
    (void)platform::RemoveFile(key_new);
    return s;
  }
  if (::rename(key_new.c_str(), f.key.c_str()) != 0) {
    Status e = ErrnoStatus(errno, "rename " + key_new);
    (void)platform::RemoveFile(key_new);
    (void)platform::RemoveFile(cert_new);
    return e;
  }
  if (::rename(cert_new.c_str(), f.cert.c_str()) != 0) {
    // The key is new, the certificate old: finish at the next start (RecoverCertificateFiles).
    return ErrnoStatus(errno, "rename " + cert_new);
  }
  return platform::SyncDir(platform::DirName(f.cert));
}

Result<CertificateFiles> EnsureBoxCertificate(const Config& c) {
  CertificateFiles f;
  f.cert = c.tls_cert_file.empty() ? c.data_dir + "/tls/box.crt" : c.tls_cert_file;
  f.key = c.tls_key_file.empty() ? c.data_dir + "/tls/box.key" : c.tls_key_file;
  RecoverCertificateFiles(f);
  f.self_signed_default = c.tls_cert_file.empty();
  if (f.self_signed_default) {
    Status s = crypto::EnsureSelfSignedCertificate(f.cert, f.key, BoxCertificateNames(c));
    if (!s.ok()) return s.WithContext("box certificate in " + c.data_dir + "/tls");
  }
  return f;
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

Box::~Box() { StopServices(); }

Status Box::StartServices() {
  Config c = config();
  std::unique_lock l(services_mu_);
  FS_ASSIGN_OR_RETURN(uploads_, UploadService::Start(store_, c, metrics_));
  if (c.smb_enabled || c.nfs_enabled) {
    FS_ASSIGN_OR_RETURN(file_shares_, FileShares::Start(store_, c));
  }
  FS_ASSIGN_OR_RETURN(endpoints_, ObjectEndpoints::Start(store_, c));
  return Status::Ok();
}

void Box::StopServices() {
  std::unique_lock l(services_mu_);
  endpoints_.reset();    // no new object requests; those in flight finish
  file_shares_.reset();  // no new file-share requests; unmounts, open files are committed
  uploads_.reset();      // finishes the upload in progress, if any
}

Config Box::config() const {
  MutexLock l(mu_);
  return config_;
}

Result<std::string> Box::SaveSecret(const std::string& name, const std::string& secret) {
  std::string dir = config().data_dir + "/secrets";
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir, 0700));
  // A new file each time: a change of secret changes the settings (so the services restart
  // with it), and a refused change leaves the file in use untouched.
  std::vector<uint8_t> raw(6);
  FS_RETURN_IF_ERROR(crypto::RandomBytes(raw));
  static const char* kHex = "0123456789abcdef";
  std::string suffix;
  for (uint8_t b : raw) suffix += std::string{kHex[b >> 4], kHex[b & 15]};
  std::string path = dir + "/" + name + "-" + suffix;
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(path, secret + "\n", 0600));
  return path;
}

namespace {

// Whether the upload service would run the same with `b` as with `a`: the same shares,
// targets, accounts (and secret files), schedule, budgets and cache policy.
bool SameUploads(const Config& a, const Config& b) {
  auto upload_part = [](Config c) {
    c.device_name.clear();
    c.host_power = false;
    c.alerts_webhook.clear();
    c.alerts_webhook_ca_file.clear();
    c.health_interval_s = 0;
    c.access_keys.clear();
    c.buckets.clear();
    for (auto& sh : c.shares) {
      sh.smb = sh.nfs = sh.nfs_read_only = false;
      sh.smb_encrypt.clear();
      sh.nfs_clients.clear();
      sh.nfs_squash.clear();
    }
    return ManagedSettingsToml(c);
  };
  return upload_part(a) == upload_part(b);
}

bool SameKeys(const Config& a, const Config& b) {
  if (a.access_keys.size() != b.access_keys.size() || a.buckets.size() != b.buckets.size()) {
    return false;
  }
  for (size_t i = 0; i < a.access_keys.size(); ++i) {
    const auto &x = a.access_keys[i], &y = b.access_keys[i];
    if (x.user != y.user || x.id != y.id || x.secret_file != y.secret_file || x.read != y.read ||
        x.write != y.write) {
      return false;
    }
  }
  for (size_t i = 0; i < a.buckets.size(); ++i) {
    if (a.buckets[i].name != b.buckets[i].name || a.buckets[i].share != b.buckets[i].share ||
        a.buckets[i].path != b.buckets[i].path) {
      return false;
    }
  }
  return true;
}

}  // namespace

Status Box::Apply(const Config& old, const Config& next) {
  std::unique_lock l(services_mu_);
  FS_RETURN_IF_ERROR(EnsureShares(store_, next));
  // Shares left out of the settings stop being served and uploaded; their data stays in the
  // Store (only DeleteShare removes it), so a mistyped config cannot delete a share.
  bool removed = false;
  std::set<std::string> keep;
  for (const auto& sh : next.shares) keep.insert(sh.name);
  for (const auto& sh : old.shares) removed = removed || !keep.count(sh.name);
  if (file_shares_) {
    // First, and all or nothing: a share SMB or NFS cannot serve refuses the whole change.
    Status s = file_shares_->Reload(next);
    if (!s.ok()) {
      (void)file_shares_->Reload(old);
      return InvalidArgumentError(s.message());
    }
  }
  bool restart_uploads = !SameUploads(old, next);
  bool restart_endpoints = !SameKeys(old, next) || removed;
  if (restart_endpoints) endpoints_.reset();
  if (restart_uploads) uploads_.reset();
  Status result = Status::Ok();
  if (restart_uploads) {
    auto u = UploadService::Start(store_, next, metrics_);
    if (u.ok()) {
      uploads_ = std::move(*u);
    } else {
      result = u.status();
    }
  }
  if (result.ok() && restart_endpoints) {
    auto e = ObjectEndpoints::Start(store_, next);
    if (e.ok()) {
      endpoints_ = std::move(*e);
    } else {
      result = e.status();
    }
  }
  if (result.ok() && compute_ != nullptr && old.pipelines != next.pipelines) {
    result = compute_->SetPipelines(next.pipelines);
    if (!result.ok()) (void)compute_->SetPipelines(old.pipelines);
  }
  if (result.ok()) return result;
  spdlog::error("settings: cannot apply: {}; going back to the previous settings",
                result.ToString());
  if (!uploads_) {
    auto u = UploadService::Start(store_, old, metrics_);
    if (u.ok()) uploads_ = std::move(*u);
  }
  if (!endpoints_) {
    auto e = ObjectEndpoints::Start(store_, old);
    if (e.ok()) endpoints_ = std::move(*e);
  }
  if (file_shares_) (void)file_shares_->Reload(old);
  // What the settings name cannot be used (a target that cannot be made): the caller's input.
  return result.code() == StatusCode::kInternal ? InvalidArgumentError(result.message()) : result;
}

Status Box::DeleteShare(const std::string& name, bool force) {
  Config c = config();
  bool found = false;
  for (const auto& s : c.shares) found = found || s.name == name;
  if (!found) return NotFoundError("no share '" + name + "'");
  for (const auto& b : c.buckets) {
    if (b.share == name) {
      return FailedPreconditionError("bucket '" + b.name +
                                     "' is a folder of this share; remove it first");
    }
  }
  Config without = c;
  std::erase_if(without.shares, [&](const ShareConfig& sh) { return sh.name == name; });
  for (const auto& doc : c.pipelines) {
    if (!CheckPipeline(without, doc).ok()) {
      return FailedPreconditionError("pipeline '" + doc.value("name", std::string()) +
                                     "' reads or writes this share; change or delete it first");
    }
  }
  FS_RETURN_IF_ERROR(store_.DeleteShare(name, force));
  spdlog::info("deleted share '{}' (its cloud copies stay)", name);
  Status s = Update([&](Config& cfg) {
    cfg.shares.erase(std::remove_if(cfg.shares.begin(), cfg.shares.end(),
                                    [&](const ShareConfig& sh) { return sh.name == name; }),
                     cfg.shares.end());
    return Status::Ok();
  });
  if (!s.ok()) {
    spdlog::error("share '{}' is deleted from the store but the settings still name it: {}", name,
                  s.ToString());
  }
  return s;
}

Status Box::Update(const std::function<Status(Config&)>& edit, bool persist) {
  std::lock_guard u(update_mu_);
  Config old = config();
  Config next = old;
  FS_RETURN_IF_ERROR(edit(next));
  FS_ASSIGN_OR_RETURN(Config checked, ValidateManaged(next));
  FS_RETURN_IF_ERROR(Apply(old, checked));
  if (persist) {
    Status s = platform::WriteFileAtomic(checked.data_dir + "/settings.toml",
                                         ManagedSettingsToml(checked), 0600);
    if (!s.ok()) {
      (void)Apply(checked, old);
      return s.WithContext("saving the settings");
    }
  }
  MutexLock l(mu_);
  config_ = std::move(checked);
  return Status::Ok();
}

}  // namespace fieldstack::daemon
