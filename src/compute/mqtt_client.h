#pragma once

// MqttClient: a pipeline's connection to an MQTT broker (the box's MosquittoBroker or an
// external one) over the Paho C asynchronous client (MQTTAsync, libpaho-mqtt 1.3.12).
//
// The delivery contract: a QoS 1 message is acknowledged to the broker (PUBACK) only after a
// handler has returned OK for it; the handler writes it to the engine's durable buffer. A
// process killed before that, at any point, gets the message again from the broker after it
// restarts with the same client_id (a persistent session: clean session false). This is how
// Paho behaves, verified in its source (v1.3.12): MQTTProtocol_handlePublishes
// (MQTTProtocolClient.c) calls Protocol_processPublication, which calls messageArrived
// directly when Paho's receive queue is empty (MQTTAsyncUtils.c), and sends the PUBACK only
// when that returns. Our messageArrived calls the handlers there, so the queue stays empty and
// the order is: handler OK, then PUBACK.
//
// A handler that fails (disk full, buffer closed) is retried in place with backoff (100 ms
// doubling to 5 s) until it succeeds: the message is not acknowledged meanwhile, and later
// messages wait behind it (order is kept). Paho has one receive thread for all clients of a
// process, so meanwhile no MqttClient of this process receives anything or gets PUBACKs
// (Publish times out): a degraded mode, warned about and counted in handler_failures; the
// broker queues. Should Stop() come first, messageArrived returns
// "not delivered": Paho then keeps the message in its queue, writes it to the client
// persistence (persistence_dir; every write fsynced before it returns) and acknowledges it;
// the next Start() on the same persistence_dir restores it and hands it to the handlers first
// (MQTTPersistence_restoreMessageQueue at create). So a failing handler delays messages but
// never drops them. A handler must therefore fail only for conditions that pass; a message it
// can never take (unparseable, too large) it must accept and dead-letter itself.
// Delivery is at least once: a message may be handled twice (a crash between the handler and
// the PUBACK); the engine dedupes if it cares.
//
// Paho C++ (mqtt::async_client 1.2.0) is not used because its messageArrived wrapper always
// returns true (async_client::on_message_arrived), which would acknowledge a message whose
// handler failed.
//
// Outgoing: Publish waits for the PUBACK (QoS 1) or the write (QoS 0). Paho also persists
// outgoing QoS 1 messages in persistence_dir and resends them after a reconnect or restart, so
// a Publish that timed out may still be delivered (callers that retry cause duplicates, which
// QoS 1 allows).
//
// Connection: Start() connects in the background and keeps reconnecting with backoff
// (min_retry_ms doubling to max_retry_ms) for as long as the client lives; subscriptions are
// made again on every connect. Register subscriptions before Start(): messages the broker kept
// for the session arrive right after connecting, and a message no subscription matches is
// acknowledged and dropped (counted in dropped_unmatched, warned about).
//
// Threading: handlers run on Paho's receive thread, one message at a time, while Paho holds
// its global lock: a handler must be quick (it blocks every MQTTAsync client in the process)
// and must not call Publish, Subscribe or Stop (FailedPrecondition). Other methods may be
// called from any thread. A reconnect thread of ours makes the connections. Paho's callbacks
// take mu_ briefly; nothing holds mu_ while calling into Paho, except handler lookup.
//
// Ownership: one client per persistence_dir (a lock file there refuses a second one:
// AlreadyExists). The destructor calls Stop().

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fieldstack::compute {

struct MqttMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retained = false;
  bool duplicate = false;  // the broker sent it before (DUP flag); may have been handled
};

// Returns OK once the message is durably taken; anything else is retried (see above).
using MessageHandler = std::function<Status(const MqttMessage& message)>;

struct MqttClientOptions {
  std::string server_uri;       // "tcp://host:port" or "ssl://host:port"
  std::string client_id;        // stable across restarts: names the broker-side session
  std::string persistence_dir;  // Paho's durable state for this client (created 0700)
  std::string username;         // empty: none
  std::string password;
  std::string ca_file;        // ssl://: PEM CAs to trust; empty: the system's
  bool verify_server = true;  // ssl://: check the chain and the host name
  int keepalive_s = 20;
  int connect_timeout_s = 5;
  int min_retry_ms = 250;
  int max_retry_ms = 10000;
};

struct MqttClientCounters {
  uint64_t received = 0;           // deliveries to messageArrived (redeliveries included)
  uint64_t handled = 0;            // messages all matching handlers took
  uint64_t handler_failures = 0;   // handler calls that returned an error
  uint64_t dropped_unmatched = 0;  // acknowledged without a matching subscription
  uint64_t published = 0;          // Publish calls that completed
  uint64_t publish_failures = 0;
  uint64_t connects = 0;    // successful connects (the first one included)
  uint64_t reconnects = 0;  // connects after a lost connection
};

class MqttClient {
 public:
  // Validates the options and creates the client (restoring what persistence_dir holds); does
  // not connect yet. InvalidArgument for a bad URI, client id or options; AlreadyExists when
  // another client uses persistence_dir; Internal when Paho refuses.
  static Result<std::unique_ptr<MqttClient>> Create(MqttClientOptions options);
  ~MqttClient();

  // Registers `handler` for the messages matching any of `topic_filters` (MQTT filters: '+'
  // one level, '#' the rest) at `qos` (0 or 1). A message matching several subscriptions goes
  // to each. When connected, sends SUBSCRIBE and waits up to 10 s for the grant; otherwise the
  // subscription is made on connect. InvalidArgument for a bad filter or qos; PermissionDenied
  // when the broker refuses (the registration is dropped); Unavailable when the grant did not
  // come (it stays registered and is made again on the next connect).
  Status Subscribe(std::vector<std::string> topic_filters, int qos, MessageHandler handler);

  // Starts connecting in the background (returns at once). FailedPrecondition after Stop.
  Status Start();
  // Waits until connected. OK; Unauthenticated when the broker refused the credentials;
  // Unavailable (with the last connection error) after `timeout_ms`.
  Status WaitConnected(int timeout_ms);

  // Publishes and waits up to `timeout_ms` for completion (PUBACK at QoS 1). InvalidArgument
  // for an empty topic, wildcards or qos not 0/1; Unavailable when disconnected or on timeout
  // (QoS 1: it may still be delivered); FailedPrecondition from a handler or after Stop.
  Status Publish(const std::string& topic, std::string_view payload, int qos, bool retain,
                 int timeout_ms = 10000);

  bool connected() const;
  MqttClientCounters counters() const;
  // The last connection failure, empty when none since the last connect.
  std::string last_error() const;

  // Stops reconnecting, finishes the handler in progress and disconnects cleanly (the session
  // and its queued messages stay at the broker). Idempotent.
  void Stop();

  // Whether `filter` is a valid MQTT topic filter, and `topic` matches it.
  static bool ValidFilter(const std::string& filter);
  static bool TopicMatches(const std::string& filter, const std::string& topic);

 private:
  struct Impl;
  explicit MqttClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldstack::compute
