#include "compute/mqtt_client.h"

#include <MQTTAsync.h>
#include <MQTTClientPersistence.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "common/mutex.h"
#include "platform/file.h"

namespace fieldstack::compute {
namespace {

using std::chrono::milliseconds;

// ---- Client persistence: one file per Paho key, each write durable before it returns. ----
//
// Paho stores here what must outlive the process: queued received messages ("q-N": those
// messageArrived declined, see the header), outgoing QoS 1 publishes and commands ("s-N",
// "c-N"). Files are "k.<key>" in persistence_dir, replaced atomically (temp, fsync, rename,
// fsync dir) so that a crash leaves the old or the new entry, never a torn one. A removal is
// not fsynced: an entry that reappears after a crash is delivered again (at least once).

struct PersistenceDir {
  std::string dir;
  std::string Path(const char* key) const { return dir + "/k." + key; }
};

bool UsableKey(const char* key) {
  return key != nullptr && key[0] != '\0' && std::strchr(key, '/') == nullptr;
}

int PersistOpen(void** handle, const char*, const char*, void* context) {
  *handle = context;
  return 0;
}
int PersistClose(void*) { return 0; }

int PersistPut(void* handle, char* key, int bufcount, char* buffers[], int buflens[]) {
  auto* p = static_cast<PersistenceDir*>(handle);
  if (!UsableKey(key)) return MQTTCLIENT_PERSISTENCE_ERROR;
  std::string data;
  for (int i = 0; i < bufcount; ++i) data.append(buffers[i], static_cast<size_t>(buflens[i]));
  Status s = platform::WriteFileAtomic(p->Path(key), data, 0600);
  if (!s.ok()) {
    spdlog::error("mqtt: client persistence: {}", s.ToString());
    return MQTTCLIENT_PERSISTENCE_ERROR;
  }
  return 0;
}

int PersistGet(void* handle, char* key, char** buffer, int* buflen) {
  auto* p = static_cast<PersistenceDir*>(handle);
  if (!UsableKey(key)) return MQTTCLIENT_PERSISTENCE_ERROR;
  auto data = platform::ReadFileToString(p->Path(key));
  if (!data.ok()) return MQTTCLIENT_PERSISTENCE_ERROR;
  *buffer = static_cast<char*>(std::malloc(data->size() + 1));
  if (*buffer == nullptr) return MQTTCLIENT_PERSISTENCE_ERROR;
  std::memcpy(*buffer, data->data(), data->size());
  *buflen = static_cast<int>(data->size());
  return 0;
}

int PersistRemove(void* handle, char* key) {
  auto* p = static_cast<PersistenceDir*>(handle);
  if (!UsableKey(key)) return MQTTCLIENT_PERSISTENCE_ERROR;
  return platform::RemoveFile(p->Path(key)).ok() ? 0 : MQTTCLIENT_PERSISTENCE_ERROR;
}

std::vector<std::string> KeyNames(const std::string& dir) {
  std::vector<std::string> keys;
  auto names = platform::ListDir(dir);
  if (!names.ok()) return keys;
  for (const std::string& n : *names) {
    if (n.size() > 2 && n.compare(0, 2, "k.") == 0 &&
        !(n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0)) {
      keys.push_back(n.substr(2));
    }
  }
  return keys;
}

int PersistKeys(void* handle, char*** keys, int* nkeys) {
  auto* p = static_cast<PersistenceDir*>(handle);
  std::vector<std::string> names = KeyNames(p->dir);
  *nkeys = static_cast<int>(names.size());
  *keys = nullptr;
  if (names.empty()) return 0;
  *keys = static_cast<char**>(std::malloc(names.size() * sizeof(char*)));
  if (*keys == nullptr) return MQTTCLIENT_PERSISTENCE_ERROR;
  for (size_t i = 0; i < names.size(); ++i) (*keys)[i] = ::strdup(names[i].c_str());
  return 0;
}

int PersistClear(void* handle) {
  auto* p = static_cast<PersistenceDir*>(handle);
  for (const std::string& k : KeyNames(p->dir)) (void)platform::RemoveFile(p->Path(k.c_str()));
  return 0;
}

int PersistContainsKey(void* handle, char* key) {
  auto* p = static_cast<PersistenceDir*>(handle);
  return UsableKey(key) && platform::PathExists(p->Path(key)) ? 0 : MQTTCLIENT_PERSISTENCE_ERROR;
}

// ---- Waiting for Paho's asynchronous results. ----
//
// Paho calls onSuccess/onFailure with the context we gave, possibly after the waiter gave up
// (or never, when the client is destroyed first). So the context is an id in this registry,
// not a pointer: a late callback finds nothing and does nothing.

struct Outcome {
  bool done = false;
  bool ok = false;
  int code = 0;
  std::string message;
  std::vector<int> granted_qos;  // subscribe
  int filters = 1;
  const int* qos_list = nullptr;  // SUBACK of several filters, valid during the callback
};

class Waiters {
 public:
  static Waiters& Get() {
    static Waiters* w = new Waiters;  // outlives Paho's threads at exit
    return *w;
  }
  // `filters`: for a SUBSCRIBE, how many filters it carries (Paho reports the grants of a
  // multi-filter SUBSCRIBE in alt.qosList without their count).
  void* Add(int filters = 1) {
    MutexLock l(mu_);
    uint64_t id = ++next_;
    pending_[id] = Outcome{.filters = filters};
    return reinterpret_cast<void*>(static_cast<uintptr_t>(id));
  }
  void Complete(void* context, Outcome o) {
    MutexLock l(mu_);
    auto it = pending_.find(reinterpret_cast<uintptr_t>(context));
    if (it == pending_.end()) return;
    o.done = true;
    if (o.ok && it->second.filters > 1) {
      o.granted_qos.clear();
      if (o.qos_list != nullptr) o.granted_qos.assign(o.qos_list, o.qos_list + it->second.filters);
    }
    o.qos_list = nullptr;
    it->second = std::move(o);
    cv_.notify_all();
  }
  // The outcome, or nullopt after `timeout_ms` or once `give_up` (checked every 50 ms) says
  // so. Forgets the id either way.
  std::optional<Outcome> Wait(void* context, int timeout_ms,
                              const std::function<bool()>& give_up = nullptr) {
    std::unique_lock<Mutex> l(mu_);
    uint64_t id = reinterpret_cast<uintptr_t>(context);
    auto deadline = std::chrono::steady_clock::now() + milliseconds(timeout_ms);
    while (!pending_[id].done && std::chrono::steady_clock::now() < deadline) {
      if (give_up && give_up()) break;
      cv_.wait_until(l, std::min(deadline, std::chrono::steady_clock::now() + milliseconds(50)));
    }
    Outcome o = std::move(pending_[id]);
    pending_.erase(id);
    if (!o.done) return std::nullopt;
    return o;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  uint64_t next_ GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Outcome> pending_ GUARDED_BY(mu_);
};

void OnSuccess(void* context, MQTTAsync_successData* data) {
  Outcome o{.ok = true};
  if (data != nullptr) {
    o.granted_qos.push_back(data->alt.qos);  // SUBACK of one filter: the granted qos
    o.qos_list = data->alt.qosList;
  }
  Waiters::Get().Complete(context, std::move(o));
}

void OnFailure(void* context, MQTTAsync_failureData* data) {
  Outcome o{.ok = false};
  if (data != nullptr) {
    o.code = data->code;
    if (data->message != nullptr) o.message = data->message;
  }
  Waiters::Get().Complete(context, std::move(o));
}

thread_local const void* in_handler_of = nullptr;  // the Impl whose handler runs here

bool ValidTopic(const std::string& topic) {
  return !topic.empty() && topic.size() <= 65535 &&
         topic.find_first_of(std::string("+#\0", 3)) == std::string::npos;
}

std::vector<std::string> Levels(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

std::string PahoError(int rc) {
  const char* s = MQTTAsync_strerror(rc);
  return s != nullptr ? std::string(s) : "error " + std::to_string(rc);
}

}  // namespace

// ---- The client. ----

struct Subscription {
  std::vector<std::string> filters;
  int qos = 1;
  MessageHandler handler;
};

struct MqttClient::Impl {
  MqttClientOptions o;
  PersistenceDir persistence_dir;
  MQTTClient_persistence persistence{};
  std::optional<platform::LockFile> lock;
  MQTTAsync handle = nullptr;

  std::atomic<bool> link_up{false};    // Paho's connection (CONNACK seen, not lost)
  std::atomic<bool> connected{false};  // link_up and the subscriptions made on it
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::thread connector;

  Mutex mu;
  CondVar cv;  // connection state changes, stopping
  std::vector<std::shared_ptr<Subscription>> subs GUARDED_BY(mu);
  bool attempt_done GUARDED_BY(mu) = false;
  bool refused_credentials GUARDED_BY(mu) = false;
  std::string last_error GUARDED_BY(mu);

  std::atomic<uint64_t> received{0}, handled{0}, handler_failures{0}, dropped_unmatched{0},
      published{0}, publish_failures{0}, connects{0}, reconnects{0};

  void Connector();
  Status SubscribeNow(const std::vector<std::string>& filters, int qos);
  int Deliver(char* topic_name, int topic_len, MQTTAsync_message* m);

  static void OnConnected(void* context, MQTTAsync_successData*) {
    auto* self = static_cast<Impl*>(context);
    MutexLock l(self->mu);
    self->link_up = true;
    self->attempt_done = true;
    self->refused_credentials = false;
    self->last_error.clear();
    self->cv.notify_all();
  }
  static void OnConnectFailed(void* context, MQTTAsync_failureData* data) {
    auto* self = static_cast<Impl*>(context);
    MutexLock l(self->mu);
    self->attempt_done = true;
    int code = data != nullptr ? data->code : MQTTASYNC_FAILURE;
    // MQTT 3.1.1 CONNACK codes 4 (bad user name or password) and 5 (not authorized).
    self->refused_credentials = code == 4 || code == 5;
    self->last_error = "connect to " + self->o.server_uri + " failed: " +
                       (self->refused_credentials ? "the broker refused the credentials"
                        : data != nullptr && data->message != nullptr ? std::string(data->message)
                                                                      : PahoError(code));
    self->cv.notify_all();
  }
  static void OnConnectionLost(void* context, char* cause) {
    auto* self = static_cast<Impl*>(context);
    {
      MutexLock l(self->mu);
      self->link_up = false;
      self->connected = false;
      self->last_error = "connection to " + self->o.server_uri + " lost" +
                         (cause != nullptr ? std::string(": ") + cause : std::string());
      self->cv.notify_all();
    }
    if (cause != nullptr) MQTTAsync_free(cause);
  }
  static int OnMessage(void* context, char* topic_name, int topic_len, MQTTAsync_message* m) {
    return static_cast<Impl*>(context)->Deliver(topic_name, topic_len, m);
  }
};

int MqttClient::Impl::Deliver(char* topic_name, int topic_len, MQTTAsync_message* m) {
  ++received;
  MqttMessage msg;
  msg.topic = topic_len > 0 ? std::string(topic_name, static_cast<size_t>(topic_len))
                            : std::string(topic_name);
  msg.payload.assign(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
  msg.qos = m->qos;
  msg.retained = m->retained != 0;
  msg.duplicate = m->dup != 0;

  std::vector<std::shared_ptr<Subscription>> pending;
  {
    MutexLock l(mu);
    for (const auto& s : subs) {
      for (const std::string& f : s->filters) {
        if (TopicMatches(f, msg.topic)) {
          pending.push_back(s);
          break;
        }
      }
    }
  }
  bool matched = !pending.empty();
  if (!matched) {
    ++dropped_unmatched;
    spdlog::warn("mqtt {}: no subscription matches topic '{}'; message dropped", o.client_id,
                 msg.topic);
  }
  in_handler_of = this;
  int backoff_ms = 100;
  while (!pending.empty()) {
    for (auto it = pending.begin(); it != pending.end();) {
      Status s = (*it)->handler(msg);
      if (s.ok()) {
        it = pending.erase(it);
        continue;
      }
      ++handler_failures;
      if (handler_failures < 10 || handler_failures % 100 == 0) {
        spdlog::warn("mqtt {}: handler failed for a message on '{}' (retrying): {}", o.client_id,
                     msg.topic, s.ToString());
      }
      ++it;
    }
    if (pending.empty()) break;
    std::unique_lock<Mutex> l(mu);
    cv.wait_for(l, milliseconds(backoff_ms), [&] { return stopping.load(); });
    if (stopping) {
      // Not delivered: Paho queues it, persists it (fsynced) and then acknowledges it; the
      // next client on this persistence_dir delivers it first.
      in_handler_of = nullptr;
      spdlog::warn("mqtt {}: stopping with an unhandled message on '{}'; kept in {}", o.client_id,
                   msg.topic, o.persistence_dir);
      return 0;
    }
    backoff_ms = std::min(backoff_ms * 2, 5000);
  }
  in_handler_of = nullptr;
  if (matched) ++handled;
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic_name);
  return 1;
}

void MqttClient::Impl::Connector() {
  int backoff_ms = o.min_retry_ms;
  bool ever_connected = false;
  while (!stopping) {
    {
      MutexLock l(mu);
      attempt_done = false;
    }
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.keepAliveInterval = o.keepalive_s;
    co.cleansession = 0;
    co.connectTimeout = o.connect_timeout_s;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.automaticReconnect = 0;  // ours: also after a failed first connect, with our backoff
    co.onSuccess = &Impl::OnConnected;
    co.onFailure = &Impl::OnConnectFailed;
    co.context = this;
    if (!o.username.empty()) co.username = o.username.c_str();
    if (!o.password.empty()) co.password = o.password.c_str();
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    if (o.server_uri.compare(0, 6, "ssl://") == 0) {
      ssl.trustStore = o.ca_file.empty() ? nullptr : o.ca_file.c_str();
      ssl.enableServerCertAuth = o.verify_server ? 1 : 0;
      ssl.verify = o.verify_server ? 1 : 0;
      co.ssl = &ssl;
    }
    int rc = MQTTAsync_connect(handle, &co);
    {
      std::unique_lock<Mutex> l(mu);
      if (rc != MQTTASYNC_SUCCESS) {
        last_error = "connect to " + o.server_uri + ": " + PahoError(rc);
      } else {
        cv.wait_for(l, std::chrono::seconds(o.connect_timeout_s + 5),
                    [&]() NO_THREAD_SAFETY_ANALYSIS { return attempt_done || stopping; });
        if (!attempt_done && !stopping) last_error = "connect to " + o.server_uri + " timed out";
      }
    }
    if (stopping) return;
    if (link_up) {
      backoff_ms = o.min_retry_ms;
      ++connects;
      if (ever_connected) ++reconnects;
      ever_connected = true;
      spdlog::info("mqtt {}: connected to {}", o.client_id, o.server_uri);
      std::vector<std::shared_ptr<Subscription>> all;
      {
        MutexLock l(mu);
        all = subs;
      }
      for (const auto& s : all) {
        Status st = SubscribeNow(s->filters, s->qos);
        if (!st.ok()) spdlog::warn("mqtt {}: resubscribing: {}", o.client_id, st.ToString());
      }
      std::unique_lock<Mutex> l(mu);
      connected = link_up.load();
      cv.notify_all();
      cv.wait(l, [&] { return !link_up || stopping; });
      if (stopping) return;
      spdlog::warn("mqtt {}: {}; reconnecting", o.client_id, last_error);
    }
    std::unique_lock<Mutex> l(mu);
    cv.wait_for(l, milliseconds(backoff_ms), [&] { return stopping.load(); });
    backoff_ms = std::min(backoff_ms * 2, o.max_retry_ms);
  }
}

// One SUBSCRIBE for all filters of a subscription. A refused filter (SUBACK 0x80) comes as a
// failure when it is alone, as a grant of 0x80 otherwise.
Status MqttClient::Impl::SubscribeNow(const std::vector<std::string>& filters, int qos) {
  std::vector<char*> topics;
  for (const std::string& f : filters) topics.push_back(const_cast<char*>(f.c_str()));
  std::vector<int> qoss(filters.size(), qos);
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  void* ctx = Waiters::Get().Add(static_cast<int>(filters.size()));
  ro.context = ctx;
  ro.onSuccess = &OnSuccess;
  ro.onFailure = &OnFailure;
  std::string what =
      "mqtt subscribe to '" + filters[0] + "'" + (filters.size() > 1 ? " and others" : "");
  int rc = MQTTAsync_subscribeMany(handle, static_cast<int>(topics.size()), topics.data(),
                                   qoss.data(), &ro);
  if (rc != MQTTASYNC_SUCCESS) {
    (void)Waiters::Get().Wait(ctx, 0);
    return UnavailableError(what + ": " + PahoError(rc));
  }
  std::optional<Outcome> out =
      Waiters::Get().Wait(ctx, 10000, [this] { return !link_up || stopping; });
  if (!out) return UnavailableError(what + ": no answer (disconnected?)");
  if (!out->ok && out->code == 0x80) return PermissionDeniedError(what + ": refused by the broker");
  if (!out->ok) {
    return UnavailableError(
        what + " failed: " + (out->message.empty() ? PahoError(out->code) : out->message));
  }
  for (size_t k = 0; k < out->granted_qos.size() && k < filters.size(); ++k) {
    if (out->granted_qos[k] == 0x80) {
      return PermissionDeniedError("mqtt subscribe to '" + filters[k] + "': refused by the broker");
    }
  }
  return Status::Ok();
}

// ---- Public API. ----

MqttClient::MqttClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<MqttClient>> MqttClient::Create(MqttClientOptions o) {
  const std::string& u = o.server_uri;
  bool tcp = u.compare(0, 6, "tcp://") == 0, ssl = u.compare(0, 6, "ssl://") == 0;
  size_t colon = u.rfind(':');
  std::string host = (tcp || ssl) && colon > 6 ? u.substr(6, colon - 6) : "";
  std::string port = colon != std::string::npos ? u.substr(colon + 1) : "";
  int port_number = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port_number > 65535) {
      port_number = -1;
      break;
    }
    port_number = port_number * 10 + (c - '0');
  }
  if (host.empty() || port_number <= 0 || port_number > 65535 ||
      host.find_first_of("/ \n") != std::string::npos) {
    return InvalidArgumentError("mqtt server URI '" + u +
                                "' is not usable: want tcp://host:port or ssl://host:port");
  }
  if (o.client_id.empty() || o.client_id.size() > 128 ||
      o.client_id.find_first_of(std::string("+#/\n\0", 5)) != std::string::npos) {
    return InvalidArgumentError("mqtt client id '" + o.client_id + "' is not usable");
  }
  if (o.persistence_dir.empty()) return InvalidArgumentError("mqtt persistence_dir is required");
  if (o.keepalive_s < 2 || o.connect_timeout_s < 1 || o.min_retry_ms < 1 ||
      o.max_retry_ms < o.min_retry_ms) {
    return InvalidArgumentError("mqtt keepalive, timeout or retry intervals are out of range");
  }
  if (!o.ca_file.empty() && !platform::PathExists(o.ca_file)) {
    return InvalidArgumentError("mqtt CA file missing: " + o.ca_file);
  }
  if (!o.password.empty() && o.username.empty()) {
    return InvalidArgumentError("mqtt password without a user name");
  }
  FS_RETURN_IF_ERROR(platform::MakeDirs(o.persistence_dir));
  FS_ASSIGN_OR_RETURN(platform::LockFile lock,
                      platform::LockFile::Acquire(o.persistence_dir + "/LOCK"));

  auto impl = std::make_unique<Impl>();
  impl->o = std::move(o);
  impl->lock.emplace(std::move(lock));
  impl->persistence_dir.dir = impl->o.persistence_dir;
  MQTTClient_persistence& p = impl->persistence;
  p.context = &impl->persistence_dir;
  p.popen = &PersistOpen;
  p.pclose = &PersistClose;
  p.pput = &PersistPut;
  p.pget = &PersistGet;
  p.premove = &PersistRemove;
  p.pkeys = &PersistKeys;
  p.pclear = &PersistClear;
  p.pcontainskey = &PersistContainsKey;

  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  co.sendWhileDisconnected = 0;  // Publish says Unavailable instead of buffering in memory
  co.MQTTVersion = MQTTVERSION_3_1_1;
  co.restoreMessages = 1;
  co.persistQoS0 = 0;
  int rc = MQTTAsync_createWithOptions(&impl->handle, impl->o.server_uri.c_str(),
                                       impl->o.client_id.c_str(), MQTTCLIENT_PERSISTENCE_USER,
                                       &impl->persistence, &co);
  if (rc != MQTTASYNC_SUCCESS) {
    impl->handle = nullptr;
    if (rc == MQTTASYNC_BAD_PROTOCOL || rc == MQTTASYNC_BAD_STRUCTURE) {
      return InvalidArgumentError("mqtt client for " + impl->o.server_uri + ": " + PahoError(rc));
    }
    return InternalError("mqtt client for " + impl->o.server_uri + ": " + PahoError(rc));
  }
  rc = MQTTAsync_setCallbacks(impl->handle, impl.get(), &Impl::OnConnectionLost, &Impl::OnMessage,
                              nullptr);
  if (rc != MQTTASYNC_SUCCESS) {
    MQTTAsync_destroy(&impl->handle);
    return InternalError("mqtt client callbacks: " + PahoError(rc));
  }
  return std::unique_ptr<MqttClient>(new MqttClient(std::move(impl)));
}

Status MqttClient::Subscribe(std::vector<std::string> topic_filters, int qos,
                             MessageHandler handler) {
  if (in_handler_of != nullptr) return FailedPreconditionError("mqtt Subscribe from a handler");
  if (topic_filters.empty()) return InvalidArgumentError("mqtt subscribe: no topic filters");
  for (const std::string& f : topic_filters) {
    if (!ValidFilter(f)) return InvalidArgumentError("mqtt topic filter '" + f + "' is not valid");
  }
  if (qos != 0 && qos != 1) return InvalidArgumentError("mqtt subscribe: qos must be 0 or 1");
  if (!handler) return InvalidArgumentError("mqtt subscribe: no handler");
  if (impl_->stopping) return FailedPreconditionError("mqtt client is stopped");
  auto sub = std::make_shared<Subscription>();
  sub->filters = std::move(topic_filters);
  sub->qos = qos;
  sub->handler = std::move(handler);
  {
    MutexLock l(impl_->mu);
    impl_->subs.push_back(sub);
  }
  if (!impl_->link_up) return Status::Ok();  // made on connect
  Status s = impl_->SubscribeNow(sub->filters, qos);
  if (s.code() == StatusCode::kPermissionDenied) {
    MutexLock l(impl_->mu);
    std::erase(impl_->subs, sub);
  }
  return s;
}

Status MqttClient::Start() {
  if (impl_->stopping) return FailedPreconditionError("mqtt client is stopped");
  if (impl_->started.exchange(true)) return Status::Ok();
  impl_->connector = std::thread([i = impl_.get()] { i->Connector(); });
  return Status::Ok();
}

Status MqttClient::WaitConnected(int timeout_ms) {
  std::unique_lock<Mutex> l(impl_->mu);
  // Also done when the broker refused the credentials (until a later attempt succeeds).
  impl_->cv.wait_for(l, milliseconds(timeout_ms), [&]() NO_THREAD_SAFETY_ANALYSIS {
    return impl_->connected || impl_->stopping || impl_->refused_credentials;
  });
  if (impl_->connected) return Status::Ok();
  if (impl_->refused_credentials) return UnauthenticatedError(impl_->last_error);
  return UnavailableError(impl_->last_error.empty()
                              ? "mqtt: not connected to " + impl_->o.server_uri
                              : impl_->last_error);
}

Status MqttClient::Publish(const std::string& topic, std::string_view payload, int qos, bool retain,
                           int timeout_ms) {
  if (in_handler_of != nullptr) return FailedPreconditionError("mqtt Publish from a handler");
  if (!ValidTopic(topic)) return InvalidArgumentError("mqtt topic '" + topic + "' is not valid");
  if (qos != 0 && qos != 1) return InvalidArgumentError("mqtt publish: qos must be 0 or 1");
  if (payload.size() > 268435455) return InvalidArgumentError("mqtt payload too large");
  if (impl_->stopping) return FailedPreconditionError("mqtt client is stopped");
  if (!impl_->link_up) {
    ++impl_->publish_failures;
    return UnavailableError("mqtt: not connected to " + impl_->o.server_uri);
  }
  MQTTAsync_message m = MQTTAsync_message_initializer;
  m.payload = const_cast<char*>(payload.data());
  m.payloadlen = static_cast<int>(payload.size());
  m.qos = qos;
  m.retained = retain ? 1 : 0;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  void* ctx = Waiters::Get().Add();
  ro.context = ctx;
  ro.onSuccess = &OnSuccess;
  ro.onFailure = &OnFailure;
  int rc = MQTTAsync_sendMessage(impl_->handle, topic.c_str(), &m, &ro);
  if (rc != MQTTASYNC_SUCCESS) {
    (void)Waiters::Get().Wait(ctx, 0);
    ++impl_->publish_failures;
    return UnavailableError("mqtt publish to '" + topic + "': " + PahoError(rc));
  }
  std::optional<Outcome> out =
      Waiters::Get().Wait(ctx, timeout_ms, [i = impl_.get()] { return i->stopping.load(); });
  if (!out || !out->ok) {
    ++impl_->publish_failures;
    return UnavailableError("mqtt publish to '" + topic + "': " +
                            (!out                   ? "no acknowledgement in time"
                             : out->message.empty() ? PahoError(out->code)
                                                    : out->message));
  }
  ++impl_->published;
  return Status::Ok();
}

bool MqttClient::connected() const { return impl_->connected; }

MqttClientCounters MqttClient::counters() const {
  const Impl& i = *impl_;
  return {i.received,  i.handled,          i.handler_failures, i.dropped_unmatched,
          i.published, i.publish_failures, i.connects,         i.reconnects};
}

std::string MqttClient::last_error() const {
  MutexLock l(impl_->mu);
  return impl_->last_error;
}

void MqttClient::Stop() {
  Impl& i = *impl_;
  {
    MutexLock l(i.mu);
    if (i.stopping.exchange(true)) return;
    i.cv.notify_all();
  }
  if (in_handler_of == &i) return;  // the rest would wait for ourselves; the destructor does it
  if (i.connector.joinable()) i.connector.join();
  if (i.handle != nullptr && MQTTAsync_isConnected(i.handle)) {
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 2000;  // for in-flight acknowledgements
    void* ctx = Waiters::Get().Add();
    d.context = ctx;
    d.onSuccess = &OnSuccess;
    d.onFailure = &OnFailure;
    int rc = MQTTAsync_disconnect(i.handle, &d);
    (void)Waiters::Get().Wait(ctx, rc == MQTTASYNC_SUCCESS ? 4000 : 0);
  }
  i.connected = false;
  i.link_up = false;
}

MqttClient::~MqttClient() {
  Stop();
  if (impl_->connector.joinable()) impl_->connector.join();
  if (impl_->handle != nullptr) MQTTAsync_destroy(&impl_->handle);
}

bool MqttClient::ValidFilter(const std::string& filter) {
  if (filter.empty() || filter.size() > 65535 || filter.find('\0') != std::string::npos) {
    return false;
  }
  std::vector<std::string> levels = Levels(filter);
  for (size_t i = 0; i < levels.size(); ++i) {
    const std::string& l = levels[i];
    if (l.find_first_of("+#") == std::string::npos) continue;
    if (l == "+") continue;
    if (l == "#" && i + 1 == levels.size()) continue;
    return false;
  }
  return true;
}

bool MqttClient::TopicMatches(const std::string& filter, const std::string& topic) {
  std::vector<std::string> f = Levels(filter), t = Levels(topic);
  // Topics starting with '$' (broker internals) are not matched by a leading wildcard.
  if (!topic.empty() && topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // also matches the parent level: "a/#" matches "a"
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

}  // namespace fieldstack::compute
