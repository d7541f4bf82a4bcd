#pragma once

// MosquittoBroker: the box's own MQTT broker, a mosquitto process the daemon supervises (the
// way frontends/smb supervises smbd). Devices publish to it; pipelines subscribe through
// MqttClient (mqtt_client.h). A box may instead be configured with an external broker, in which
// case none of this runs and MqttClient points elsewhere.
//
// Everything lives under options.data_dir (never /etc/mosquitto or /var/lib/mosquitto):
//   mosquitto.conf   generated on every Start/Reload; edits are overwritten
//   passwd           users, hashed by `mosquitto_passwd -U` (0600; passwords are never logged
//                    and never on a command line)
//   db/mosquitto.db  the persistence file: retained messages, persistent sessions (clean
//                    session false) and the QoS 1/2 messages queued for them
//   mosquitto.log    the broker's log; mosquitto.out its stdout/stderr; mosquitto.pid
//
// Durability: persistence is on and the database is saved every autosave_interval_s seconds
// and when mosquitto stops. Messages queued for an offline persistent client therefore survive
// a Stop/Start or Reload; a SIGKILL or power loss of the broker loses what arrived since the
// last save (mosquitto's design: the window is autosave_interval_s).
//
// Authentication: with users configured, a password file is used and anonymous clients are
// refused. With no users, anonymous access is allowed only when every listener is bound to a
// loopback address (nothing off the box can connect); otherwise Start refuses the options
// (InvalidArgument), so the broker is never open to the network without passwords.
//
// When run as root, mosquitto drops to the `mosquitto` system user after reading its config,
// password file and TLS key, and db/ is handed to that user so that it can save; but only when
// that user can reach data_dir (every directory above it searchable, e.g. 0711). Otherwise it
// stays root (mosquitto.conf says `user root`).
//
// Thread safety: Start, Stop, Reload and the destructor from one thread; status(), Healthy()
// and port getters from any. The supervisor (platform::Supervised) restarts a mosquitto that
// exits, at most once a second. Destroying the broker stops mosquitto.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "platform/process.h"

namespace fieldstack::compute {

struct MqttUser {
  std::string name;      // no ':' or line break
  std::string password;  // no line break; not empty
};

struct BrokerTlsOptions {
  std::string cert_file;  // PEM server certificate (chain), e.g. the box's certificate
  std::string key_file;   // PEM private key
  std::string ca_file;    // optional: CA bundle sent with the chain / for client certificates
  uint16_t port = 8883;   // 0: a free port
};

struct BrokerOptions {
  std::string data_dir;                   // config, passwd, db/, logs (created 0700)
  std::string address = "127.0.0.1";      // IPv4/IPv6 address of both listeners; 0.0.0.0 for all
  uint16_t port = 1883;                   // plain MQTT; 0: a free port
  std::optional<BrokerTlsOptions> tls;    // a second listener speaking MQTT over TLS
  std::vector<MqttUser> users;            // empty: anonymous, only on loopback (see above)
  uint32_t max_queued_messages = 100000;  // per persistent client, beyond the in-flight ones
  uint32_t message_size_limit_bytes = 1 << 20;  // larger PUBLISH payloads are refused
  uint32_t autosave_interval_s = 1;             // persistence db save period
  std::string mosquitto = "/usr/sbin/mosquitto";
  std::string mosquitto_passwd = "/usr/bin/mosquitto_passwd";
};

struct BrokerStatus {
  bool running = false;  // a mosquitto process exists (see Healthy for "accepts connections")
  pid_t pid = -1;
  int restarts = 0;        // by the supervisor since Start
  std::string last_error;  // of the last Start/Reload, empty when it succeeded
};

class MosquittoBroker {
 public:
  // Validates the options, writes config and password file, stops a mosquitto an earlier run
  // left on this data_dir, starts mosquitto and waits (up to 10 s) until it accepts
  // connections. InvalidArgument for unusable options; FailedPrecondition when mosquitto is not
  // installed; Unavailable when it does not come up (see mosquitto.log).
  static Result<std::unique_ptr<MosquittoBroker>> Start(BrokerOptions options);
  ~MosquittoBroker();  // Stop()

  // Stops mosquitto (SIGTERM: it saves its database) and its supervisor. Idempotent.
  void Stop();

  // New settings: validates them (on InvalidArgument nothing changes), rewrites the files and
  // restarts mosquitto. Connected clients are disconnected and reconnect; persistent sessions
  // and their queued messages are kept. A port of 0 in `options` keeps the current port.
  Status Reload(BrokerOptions options);

  // Whether mosquitto runs and accepts TCP connections on the plain port.
  bool Healthy() const;
  BrokerStatus status() const;

  uint16_t port() const { return port_; }
  uint16_t tls_port() const { return tls_port_; }  // 0 without TLS
  const std::string& config_path() const { return config_; }
  // "tcp://127.0.0.1:PORT" (the listen address, or loopback for a wildcard address).
  std::string uri() const;

  // The mosquitto.conf text (exposed for tests). InvalidArgument for unusable options.
  static Result<std::string> RenderConfig(const BrokerOptions& options, uint16_t port,
                                          uint16_t tls_port);

 private:
  MosquittoBroker() = default;
  Status WriteFilesAndRun();

  BrokerOptions options_;
  std::string config_;
  uint16_t port_ = 0;
  uint16_t tls_port_ = 0;
  mutable Mutex mu_;
  std::string last_error_ GUARDED_BY(mu_);
  std::unique_ptr<platform::Supervised> mosquitto_ GUARDED_BY(mu_);
  int earlier_restarts_ GUARDED_BY(mu_) = 0;  // of supervisors replaced by Reload
};

}  // namespace fieldstack::compute
