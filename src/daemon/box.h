#pragma once

// Box: the running daemon's parts that the management API reads and changes, and the one
// place settings change while it runs.
//
// Settings: the config file is the start; what the API changes ([device], [upload], [cache],
// [alerts], storage accounts, shares, access keys, buckets) is kept in <data_dir>/settings.toml
// and replaces those sections of the file at every start (ApplyManagedSettings). Update()
// edits a copy of the settings, checks it as the config parser would, applies it (shares
// made or deleted, file shares reloaded, the upload service and object endpoints restarted
// when what they use changed) and only then saves it. When applying fails, the old settings
// are applied again and nothing is saved.
//
// Secrets given to the API (account keys, SAS, S3 keys, access key secrets) are written to
// files under <data_dir>/secrets (0600) that the settings name; they are never returned.
//
// Thread safety: every method may be called from any thread. Update calls are serialised;
// users of the services (refresh) hold a shared lock that Update waits for.
// Lock order: update_mu_, then services_mu_, then mu_.

#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "daemon/config.h"
#include "daemon/file_shares.h"
#include "daemon/object_endpoints.h"
#include "daemon/upload_service.h"
#include "store/store.h"

namespace fieldstack::daemon {

class ComputeService;

// The box certificate files for `c` (the configured ones, or <data_dir>/tls/box.{crt,key},
// made self-signed for the box's names when missing).
struct CertificateFiles {
  std::string cert;
  std::string key;
  bool self_signed_default = false;  // the files are the box's own (not configured ones)
};
Result<CertificateFiles> EnsureBoxCertificate(const Config& c);
// Replaces the certificate files with `chain_pem` and `key_pem`, crash-safely: both are written
// beside them as .new files, then the key is renamed over, then the certificate; an install a
// crash interrupted is finished (or dropped, when the certificate was not written yet) by
// EnsureBoxCertificate. Installs are serialised.
Status InstallCertificateFiles(const CertificateFiles& f, const std::string& chain_pem,
                               const std::string& key_pem);

// The names a self-signed box certificate is made for.
std::vector<std::string> BoxCertificateNames(const Config& c);

// Creates the shares of `c` missing in the Store; FailedPrecondition when one exists with
// another kind.
Status EnsureShares(store::Store& s, const Config& c);

class Box {
 public:
  Box(Config c, store::Store& st, Metrics& metrics)
      : config_(std::move(c)), store_(st), metrics_(metrics) {}
  ~Box();  // stops the services

  // Starts the upload service, file shares and object endpoints for the current settings.
  // InvalidArgument for bad settings (naming the key).
  Status StartServices();
  void StopServices();

  Config config() const;
  store::Store& store() { return store_; }
  Metrics& metrics() { return metrics_; }

  // Changes the settings as described above. `edit` returns an error to change nothing.
  // Without `persist` (a SIGHUP reload of the config file), settings.toml is not written.
  Status Update(const std::function<Status(Config&)>& edit, bool persist = true);

  // Deletes share `name`: from the Store first (which refuses while files are open, or wait
  // for upload unless `force`: FailedPrecondition saying how many), then from the settings.
  // NotFound when no share has the name; FailedPrecondition while a bucket is a folder of it.
  Status DeleteShare(const std::string& name, bool force);

  // Runs `fn` with the upload service (nullptr while none runs), holding it alive.
  template <typename F>
  auto WithUploads(F fn) {
    std::shared_lock l(services_mu_);
    return fn(uploads_.get());
  }
  template <typename F>
  auto WithFileShares(F fn) {
    std::shared_lock l(services_mu_);
    return fn(file_shares_.get());
  }
  template <typename F>
  auto WithEndpoints(F fn) {
    std::shared_lock l(services_mu_);
    return fn(endpoints_.get());
  }

  // The compute service (pipelines), set once after it started; Update applies pipeline
  // changes to it. Null: none (pipelines are only kept in the settings).
  void SetCompute(ComputeService* compute) { compute_ = compute; }
  ComputeService* compute() { return compute_; }
  // Writes `secret` to a new file <data_dir>/secrets/<name>-<random> (0600); returns its path.
  Result<std::string> SaveSecret(const std::string& name, const std::string& secret);

 private:
  Status Apply(const Config& old, const Config& next);

  mutable Mutex mu_;
  Config config_ GUARDED_BY(mu_);
  store::Store& store_;
  Metrics& metrics_;
  std::mutex update_mu_;
  std::shared_mutex services_mu_;
  std::unique_ptr<UploadService> uploads_;
  std::unique_ptr<FileShares> file_shares_;
  std::unique_ptr<ObjectEndpoints> endpoints_;
  ComputeService* compute_ = nullptr;
};

}  // namespace fieldstack::daemon
