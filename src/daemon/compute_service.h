#pragma once

// ComputeService: the box's edge compute (docs/compute.md) wired to the rest of the daemon:
// the pipeline engine (compute/engine.h) on the Store, the module sandbox (bubblewrap +
// cgroups), the MQTT broker ([mqtt] broker = "builtin": a supervised mosquitto) or an external
// one, and the box's own MQTT client, which subscribes to the MQTT pipelines' topics (durably
// buffering each message before it is acknowledged) and publishes for their mqtt sinks.
//
// The box's client uses the user "fieldstack" on the builtin broker, with a random password
// kept in <data_dir>/mqtt/box.password (0600). When the pipelines' topics change, the client
// is made again (same client id and persistence folder) with the new subscriptions.
//
// Thread safety: all methods may be called from any thread. Lock order: client_mu_ before
// the engine's locks.

#include <memory>
#include <nlohmann/json.hpp>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "compute/broker.h"
#include "compute/engine.h"
#include "compute/inference/inference.h"
#include "compute/inference/registry.h"
#include "compute/mqtt_client.h"
#include "compute/sandbox.h"
#include "daemon/config.h"
#include "store/store.h"

namespace fieldstack::management {
class Alerts;
}

namespace fieldstack::daemon {

class ComputeService : public compute::MessagePublisher {
 public:
  // `cert_file`/`key_file`: the box certificate, for the builtin broker's TLS listener.
  static Result<std::unique_ptr<ComputeService>> Start(const Config& c, store::Store& st,
                                                       Metrics& metrics, management::Alerts* alerts,
                                                       const std::string& cert_file,
                                                       const std::string& key_file);
  ~ComputeService() override;

  // Replaces the pipelines (JSON declarations, already checked) and the client's subscriptions.
  Status SetPipelines(const std::vector<nlohmann::json>& docs);
  compute::Engine& engine() { return *engine_; }
  // The model registry; null when the box has no inference runtime (inference_error() says why).
  compute::inference::ModelRegistry* models() { return models_.get(); }
  const std::string& inference_error() const { return inference_error_; }
  // Drops loaded sessions of a removed model file.
  void ForgetModel(const std::string& path) {
    if (sessions_ != nullptr) sessions_->Forget(path);
  }
  // Stores a module (an executable file) under `name`; InvalidArgument for a bad name.
  Status PutModule(const std::string& name, std::string_view content);
  Status DeleteModule(const std::string& name);
  struct ModuleInfo {
    std::string name;
    uint64_t size_bytes = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };
  Result<std::vector<ModuleInfo>> Modules();
  // Broker, client and sandbox state for the API.
  nlohmann::json Describe();
  // The builtin broker's plain port (0 without one), for tests and the API.
  uint16_t broker_port() const;

  // compute::MessagePublisher
  Status Publish(const std::string& topic, const std::string& payload, bool retain) override;

 private:
  ComputeService() = default;
  Status StartClient(const std::vector<std::string>& topics);

  Config config_;
  std::unique_ptr<compute::ModuleRunner> modules_;
  std::string sandbox_error_;
  std::unique_ptr<compute::WebhookClient> webhooks_;
  std::unique_ptr<compute::AlertRaiser> alerts_;
  std::unique_ptr<compute::inference::Runtime> runtime_;
  std::string inference_error_;
  std::unique_ptr<compute::inference::ModelRegistry> models_;
  std::unique_ptr<compute::inference::ModelCache> sessions_;
  std::unique_ptr<compute::MosquittoBroker> broker_;
  std::unique_ptr<compute::Engine> engine_;
  compute::MqttClientOptions client_options_;
  std::shared_mutex client_mu_;
  std::unique_ptr<compute::MqttClient> client_;
  std::vector<std::string> topics_;
};

}  // namespace fieldstack::daemon
