#include "daemon/compute_service.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "compute/inference/onnxruntime/ort_runtime.h"
#include "compute/webhook.h"
#include "crypto/chunk_codec.h"
#include "crypto/hash.h"
#include "crypto/key_store.h"
#include "management/alerts.h"
#include "platform/file.h"

namespace fieldstack::daemon {
namespace {

using json = nlohmann::json;

class AlertsAdapter final : public compute::AlertRaiser {
 public:
  explicit AlertsAdapter(management::Alerts* a) : a_(a) {}
  void PipelineAlert(const std::string& pipeline, const std::string& message) override {
    if (a_ != nullptr) (void)a_->Raise("compute.pipeline_alert", pipeline, message);
  }
  void PipelineFailed(const std::string& pipeline, const std::string& error, bool failed) override {
    if (a_ == nullptr) return;
    if (failed) {
      (void)a_->Raise("compute.pipeline_failed", pipeline, error);
    } else {
      a_->Clear("compute.pipeline_failed", pipeline);
    }
  }

 private:
  management::Alerts* a_;
};

// A random secret kept in `path` (0600), made on first use.
Result<std::string> LoadOrMakeSecret(const std::string& path) {
  if (platform::PathExists(path)) {
    FS_ASSIGN_OR_RETURN(std::string s, platform::ReadFileToString(path));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (!s.empty()) return s;
  }
  uint8_t raw[24];
  FS_RETURN_IF_ERROR(crypto::RandomBytes(raw));
  std::string s = crypto::ToHex(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(path, s + "\n", 0600));
  return s;
}

bool ValidModuleName(const std::string& n) {
  return !n.empty() && n.size() <= 128 && n[0] != '.' &&
         n.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos;
}

// The sandbox runs modules as an unprivileged uid: it must be able to reach the compute folder.
void MakeTraversable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0001) == 0) {
    ::chmod(path.c_str(), (st.st_mode & 07777) | 0011);
  }
}

}  // namespace

Result<std::unique_ptr<ComputeService>> ComputeService::Start(const Config& c, store::Store& st,
                                                              Metrics& metrics,
                                                              management::Alerts* alerts,
                                                              const std::string& cert_file,
                                                              const std::string& key_file) {
  std::unique_ptr<ComputeService> svc(new ComputeService());
  svc->config_ = c;
  std::string dir = c.data_dir + "/compute";
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir, 0711));
  MakeTraversable(c.data_dir);
  MakeTraversable(dir);

  compute::BwrapOptions bo;
  bo.require_cgroups = false;
  auto runner = compute::MakeBwrapRunner(bo);
  if (runner.ok()) {
    svc->modules_ = std::move(*runner);
    spdlog::info("compute: modules run in {}", svc->modules_->Describe());
  } else {
    svc->sandbox_error_ = runner.status().ToString();
    spdlog::warn("compute: module steps are unavailable: {}", svc->sandbox_error_);
  }
  // Inference: ONNX Runtime when it is installed; models under <dir>/models.
  compute::inference::onnxruntime::OrtRuntimeOptions ro;
  ro.provider_dir = c.inference_cuda_provider_dir;
  ro.cuda_library_dirs = c.inference_cuda_library_dirs;
  ro.max_concurrent_gpu_runs = static_cast<int>(c.inference_gpu_concurrency);
  auto runtime = compute::inference::onnxruntime::MakeOnnxRuntime(ro);
  if (runtime.ok()) {
    svc->runtime_ = std::move(*runtime);
    spdlog::info("inference: {}", svc->runtime_->Describe());
    FS_ASSIGN_OR_RETURN(svc->models_, compute::inference::ModelRegistry::Open(dir + "/models",
                                                                              svc->runtime_.get()));
    svc->sessions_ = std::make_unique<compute::inference::ModelCache>(svc->runtime_.get());
  } else {
    svc->inference_error_ = runtime.status().ToString();
    spdlog::warn("inference is unavailable: {}", svc->inference_error_);
  }
  svc->webhooks_ = compute::MakeCurlWebhookClient("");
  svc->alerts_ = std::make_unique<AlertsAdapter>(alerts);

  // MQTT: the broker first, so the client can connect.
  const MqttConfig& m = c.mqtt;
  if (m.broker == "builtin") {
    compute::BrokerOptions bo2;
    bo2.data_dir = c.data_dir + "/mqtt/broker";
    bo2.address = m.address;
    bo2.port = m.port;
    if (m.tls_port != 0) {
      compute::BrokerTlsOptions tls;
      tls.cert_file = cert_file;
      tls.key_file = key_file;
      tls.port = m.tls_port;
      bo2.tls = tls;
    }
    FS_RETURN_IF_ERROR(platform::MakeDirs(c.data_dir + "/mqtt", 0700));
    FS_ASSIGN_OR_RETURN(std::string box_password,
                        LoadOrMakeSecret(c.data_dir + "/mqtt/box.password"));
    bo2.users.push_back({"fieldstack", box_password});
    for (const MqttUserConfig& u : m.users) {
      FS_ASSIGN_OR_RETURN(std::string pw, ReadSecret(u.password_file, "mqtt.users.password_file"));
      bo2.users.push_back({u.name, pw});
    }
    auto broker = compute::MosquittoBroker::Start(bo2);
    if (!broker.ok()) return broker.status().WithContext("mqtt broker");
    svc->broker_ = std::move(*broker);
    spdlog::info("mqtt: broker on {}:{}{}", m.address, svc->broker_->port(),
                 svc->broker_->tls_port() != 0
                     ? " and TLS on " + std::to_string(svc->broker_->tls_port())
                     : "");
    auto& o = svc->client_options_;
    o.server_uri = svc->broker_->uri();
    o.username = "fieldstack";
    o.password = box_password;
  } else if (m.broker == "external") {
    auto& o = svc->client_options_;
    o.server_uri = m.url;
    o.username = m.username;
    if (!m.password_file.empty()) {
      FS_ASSIGN_OR_RETURN(o.password, ReadSecret(m.password_file, "mqtt.password_file"));
    }
    o.ca_file = m.ca_file;
  }
  if (m.broker != "off") {
    auto& o = svc->client_options_;
    std::string device = c.device_name;
    if (device.empty()) {
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      device = host;
    }
    o.client_id = m.client_id.empty() ? "fieldstack-" + device : m.client_id;
    o.persistence_dir = c.data_dir + "/mqtt/client";
  }

  std::string hash_path = dir + "/hash.key";
  FS_ASSIGN_OR_RETURN(std::string hash_key, LoadOrMakeSecret(hash_path));
  compute::EngineOptions eo;
  eo.dir = dir;
  eo.store = &st;
  eo.metrics = &metrics;
  eo.modules = svc->modules_.get();
  eo.publisher = m.broker != "off" ? svc.get() : nullptr;
  eo.webhooks = svc->webhooks_.get();
  eo.alerts = svc->alerts_.get();
  eo.hash_key = hash_key;
  eo.inference.models = svc->models_.get();
  eo.inference.sessions = svc->sessions_.get();
  eo.inference.intra_op_threads = static_cast<int>(c.inference_threads);
  eo.inference.gpu_memory_limit_bytes = c.inference_gpu_memory_limit;
  eo.workers = static_cast<int>(c.compute_workers);
  FS_ASSIGN_OR_RETURN(svc->engine_, compute::Engine::Open(eo));
  MakeTraversable(dir + "/tmp");
  MakeTraversable(dir + "/modules");
  FS_RETURN_IF_ERROR(svc->SetPipelines(c.pipelines));
  FS_RETURN_IF_ERROR(svc->engine_->Start());
  spdlog::info("compute: {} pipeline(s)", c.pipelines.size());
  return svc;
}

ComputeService::~ComputeService() {
  {
    std::unique_lock l(client_mu_);
    if (client_ != nullptr) client_->Stop();
    client_.reset();
  }
  if (engine_ != nullptr) engine_->Stop();
  engine_.reset();
  broker_.reset();
}

Status ComputeService::SetPipelines(const std::vector<json>& docs) {
  std::vector<compute::PipelineDecl> decls;
  for (const json& d : docs) {
    FS_ASSIGN_OR_RETURN(compute::PipelineDecl p, compute::ParsePipeline(d));
    decls.push_back(std::move(p));
  }
  FS_RETURN_IF_ERROR(engine_->SetPipelines(std::move(decls)));
  if (config_.mqtt.broker == "off") return Status::Ok();
  std::vector<std::string> topics = engine_->Topics();
  {
    std::shared_lock l(client_mu_);
    if (client_ != nullptr && topics == topics_) return Status::Ok();
  }
  return StartClient(topics);
}

Status ComputeService::StartClient(const std::vector<std::string>& topics) {
  std::unique_lock l(client_mu_);
  if (client_ != nullptr) {
    client_->Stop();
    client_.reset();
  }
  FS_ASSIGN_OR_RETURN(auto client, compute::MqttClient::Create(client_options_));
  if (!topics.empty()) {
    compute::Engine* engine = engine_.get();
    Status s = client->Subscribe(topics, 1, [engine](const compute::MqttMessage& m) {
      return engine->OnMessage(m.topic, m.payload);
    });
    if (!s.ok() && s.code() != StatusCode::kUnavailable) return s.WithContext("mqtt subscribe");
  }
  FS_RETURN_IF_ERROR(client->Start());
  client_ = std::move(client);
  topics_ = topics;
  return Status::Ok();
}

Status ComputeService::Publish(const std::string& topic, const std::string& payload, bool retain) {
  std::shared_lock l(client_mu_);
  if (client_ == nullptr) return UnavailableError("the box's MQTT client is not running");
  return client_->Publish(topic, payload, 1, retain);
}

uint16_t ComputeService::broker_port() const { return broker_ != nullptr ? broker_->port() : 0; }

Status ComputeService::PutModule(const std::string& name, std::string_view content) {
  if (!ValidModuleName(name)) {
    return InvalidArgumentError(
        "name: '" + name +
        "' is not a module name (letters, digits, '.', '_', '-'; not starting with '.')");
  }
  if (content.empty()) return InvalidArgumentError("the module is empty");
  std::string path = engine_->modules_dir() + "/" + name;
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(path, content, 0755));
  ::chmod(path.c_str(), 0755);
  return Status::Ok();
}

Status ComputeService::DeleteModule(const std::string& name) {
  if (!ValidModuleName(name))
    return InvalidArgumentError("name: '" + name + "' is not a module name");
  std::string path = engine_->modules_dir() + "/" + name;
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return NotFoundError("no module '" + name + "'");
    return ErrnoStatus(errno, "delete module " + name);
  }
  return Status::Ok();
}

Result<std::vector<ComputeService::ModuleInfo>> ComputeService::Modules() {
  std::vector<ModuleInfo> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(engine_->modules_dir(), ec)) {
    if (!e.is_regular_file()) continue;
    ModuleInfo m;
    m.name = e.path().filename().string();
    if (!ValidModuleName(m.name)) continue;
    struct stat st;
    if (::stat(e.path().c_str(), &st) != 0) continue;
    m.size_bytes = static_cast<uint64_t>(st.st_size);
    m.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    auto content = platform::ReadFileToString(e.path().string());
    if (content.ok()) m.sha256 = crypto::ToHex(crypto::Digest::Sha256(*content));
    out.push_back(std::move(m));
  }
  if (ec) return ErrnoStatus(ec.value(), "list modules");
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

json ComputeService::Describe() {
  json j;
  j["sandbox"] = modules_ != nullptr ? modules_->Describe() : "unavailable: " + sandbox_error_;
  j["inference"] = runtime_ != nullptr ? runtime_->Describe() : "unavailable: " + inference_error_;
  j["mqtt"]["broker"] = config_.mqtt.broker;
  if (broker_ != nullptr) {
    auto st = broker_->status();
    j["mqtt"]["running"] = st.running && broker_->Healthy();
    j["mqtt"]["port"] = broker_->port();
    j["mqtt"]["tls_port"] = broker_->tls_port();
    j["mqtt"]["restarts"] = st.restarts;
    if (!st.last_error.empty()) j["mqtt"]["last_error"] = st.last_error;
  }
  std::shared_lock l(client_mu_);
  if (client_ != nullptr) {
    auto c = client_->counters();
    j["mqtt"]["client_connected"] = client_->connected();
    j["mqtt"]["messages_received"] = c.received;
    j["mqtt"]["messages_published"] = c.published;
    j["mqtt"]["topics"] = topics_;
  }
  return j;
}

}  // namespace fieldstack::daemon
