#pragma once

// The box's configuration, from fieldstack.toml. Every setting has a default, so no file at
// all is a valid configuration. Unknown keys and wrong types are errors that name the key.
// The annotated default file is docs/fieldstack.example.toml.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/status.h"
#include "store/types.h"

namespace fieldstack::daemon {

// Where a cloud share uploads to. Secrets live in files named here, never in the config.
struct TargetConfig {
  // A [[storage_accounts]] entry by name: its type, endpoint and secrets fill the fields below
  // (only container or bucket, policy and page_blob_suffixes are then set here).
  std::string storage_account;
  std::string type;       // "azure", "s3" or "localfs"; empty: no target (files wait)
  std::string endpoint;   // azure: up to the account, e.g. https://ACCOUNT.blob.core.windows.net;
                          // s3: https://s3.REGION.amazonaws.com or any S3-compatible service
  std::string account;    // azure Shared Key
  std::string key_file;   // azure: file holding the base64 account key
  std::string sas_file;   // azure: file holding a container SAS (instead of a key)
  std::string container;  // azure
  std::string bucket;     // s3
  std::string region;     // s3 (default us-east-1)
  std::string credentials_file;     // s3: access key id on the first line, secret key on the
                                    // second, an optional session token on the third
  std::string addressing = "path";  // s3: "path" or "virtual" (bucket.host)
  std::string path;                 // localfs: directory
  std::vector<std::string> page_blob_suffixes;  // azure: files uploaded as page blobs (".vhd")
  // Renames and deletes in the share: "keep" (the cloud keeps old objects) or "mirror" (they
  // are deleted there, unless someone else changed them).
  std::string policy = "keep";
};

// A cloud storage account that shares upload to ([[storage_accounts]]); the fields mean what
// they mean in TargetConfig. Secrets are in the files named, never in the config.
struct StorageAccountConfig {
  std::string name;
  std::string type;  // "azure", "s3" or "localfs"
  std::string endpoint;
  std::string account;
  std::string key_file;
  std::string sas_file;
  std::string region;
  std::string credentials_file;
  std::string addressing = "path";
  std::string path;
};

// Cache limits (sync::CachePolicy); sizes are bytes, "500GiB" or "20%" of the data volume,
// checked by sync::CacheSize::Parse. Empty: unset.
struct CacheConfig {
  std::string high_watermark;
  std::string low_watermark;
  std::string hard_cap;
  uint32_t max_age_days = 0;  // 0: no age limit
  std::vector<std::string> pinned;
};

struct ShareConfig {
  std::string name;
  store::ShareKind kind = store::ShareKind::kLocal;
  TargetConfig target;
  bool smb = true;                       // served over SMB when [smb] is enabled
  std::string smb_encrypt = "desired";   // "off", "desired" or "required"
  bool nfs = true;                       // exported over NFS when [nfs] is enabled
  std::vector<std::string> nfs_clients;  // addresses or CIDR prefixes allowed, or "*"
  bool nfs_read_only = false;
  std::string nfs_squash = "root";  // "root", "all" or "none"
  CacheConfig cache;                // [shares.cache]: this share's own limits
  uint32_t refresh_ttl_s = 0;       // refresh from the cloud this often; 0: only on demand
};

struct SmbUserConfig {
  std::string name;
  std::string password_file;  // the password on its first line
  bool read_only = false;
};

// A box user's access key for the S3 and Blob endpoints.
struct AccessKeyConfig {
  std::string user;
  std::string id;           // S3 access key id
  std::string secret_file;  // the secret (base64 text, so Blob can use it too) on its first line
  std::vector<std::string> read;   // shares it may read ("*": all)
  std::vector<std::string> write;  // shares it may write and read ("*": all)
};

// An S3 bucket that is a folder of a share (every share is a bucket too).
struct BucketConfig {
  std::string name;
  std::string share;
  std::string path;  // folder in the share, e.g. "incoming/field"
};

// One object endpoint (S3 or Blob).
struct EndpointConfig {
  bool enabled = false;
  std::string address = "127.0.0.1";
  uint16_t port = 0;
};

struct MqttUserConfig {
  std::string name;
  std::string password_file;  // the password on its first line
};

// [mqtt]: the box's MQTT broker (mosquitto, supervised) or an external one, and the box's own
// client, which feeds the MQTT pipelines and publishes for their mqtt sinks.
struct MqttConfig {
  std::string broker = "off";  // "builtin", "external" or "off"
  // builtin
  std::string address = "127.0.0.1";
  uint16_t port = 1883;   // 0: a free port
  uint16_t tls_port = 0;  // 0: no TLS listener; otherwise MQTT over TLS with the box's certificate
  std::vector<MqttUserConfig> users;
  // external
  std::string url;  // tcp://host:port or ssl://host:port
  std::string username;
  std::string password_file;
  std::string ca_file;
  std::string client_id;  // empty: "fieldstack-<device name>"
};

struct Config {
  std::string data_dir = "./fieldstack-data";
  std::string http_address = "127.0.0.1";
  uint16_t http_port = 8480;
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
  bool encryption = true;
  std::string key_file;         // empty: <data_dir>/master.key
  std::string passphrase_file;  // non-empty: derive the master key from its first line
  uint32_t chunk_size_kib = 256;
  std::vector<ShareConfig> shares = {{"default", store::ShareKind::kLocal, {}}};
  std::string upload_bandwidth;  // rclone timetable; empty: unlimited
  uint32_t upload_part_size_mib = 8;
  uint32_t upload_transfers = 4;  // files, and parts of one file, in flight at once
  // Data caps for metered links, in bytes; nullopt: none.
  std::optional<uint64_t> upload_daily_budget;
  std::optional<uint64_t> upload_monthly_budget;
  // [cache]: the box's limits on the data of all shares, and recall.
  CacheConfig cache{"90%", "80%", "95%", 0, {}};
  uint32_t cache_interval_s = 5;
  uint32_t backpressure_timeout_s = 30;
  uint32_t recall_timeout_s = 60;
  // File shares: the FUSE mount of every share (empty: <data_dir>/mnt) and Samba on it.
  std::string mountpoint;
  bool smb_enabled = false;
  std::string smb_address = "127.0.0.1";
  uint16_t smb_port = 445;  // 0: a free port
  std::vector<SmbUserConfig> smb_users;
  // nfs-ganesha on the same mount; NFSv3 also needs rpcbind on port 111 (started if missing).
  bool nfs_enabled = false;
  std::string nfs_address = "127.0.0.1";
  uint16_t nfs_port = 2049;  // 0: a free port (clients find it through the portmapper)
  // Object endpoints on the Store: buckets and storage accounts are shares.
  EndpointConfig s3{false, "127.0.0.1", 9000};
  EndpointConfig blob{false, "127.0.0.1", 10000};
  bool create_buckets = false;  // S3 CreateBucket makes a local share (keys writing "*")
  std::vector<BucketConfig> buckets;
  std::vector<AccessKeyConfig> access_keys;
  // TLS of the box's HTTP endpoints. Empty files: <data_dir>/tls/box.{crt,key}, self-signed on
  // first start for localhost, the box's host name, its addresses and `tls_names`.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::vector<std::string> tls_names;
  bool allow_http = false;  // serve the API, S3 and Blob over plain HTTP instead
  // [device]
  std::string device_name;  // empty: the host name
  bool host_power = false;  // restart and shutdown may act on the host (systemctl), not only
                            // on the daemon
  // [http] public: paths answered without a token ("/healthz", "/metrics").
  std::vector<std::string> http_public;
  // [http] ui_dir: the web UI's built files; empty: the build's web/dist, or
  // <bin>/../share/fieldstack/web when installed.
  std::string ui_dir;
  // [alerts]
  std::string alerts_webhook;
  std::string alerts_webhook_ca_file;
  uint32_t health_interval_s = 30;  // how often the box checks clouds, space, certificate
  std::vector<StorageAccountConfig> storage_accounts;
  MqttConfig mqtt;
  uint32_t compute_workers = 2;  // [compute] workers: pipeline runs at once
  // [compute] cuda_provider_dir: ONNX Runtime's CUDA provider (and the core it was built
  // with); empty: inference on CPU only. cuda_library_dirs: where its CUDA runtime libraries are.
  std::string inference_cuda_provider_dir;
  std::vector<std::string> inference_cuda_library_dirs;
  uint32_t inference_gpu_concurrency = 2;  // [compute] gpu_concurrency: model runs at once per GPU
  uint64_t inference_gpu_memory_limit =
      0;                           // [compute] gpu_memory_limit_mib: per session; 0: no limit
  uint32_t inference_threads = 0;  // [compute] inference_threads: per model run; 0: the box's cores
  // [[pipelines]]: each a checked declaration (compute/pipeline.h) in its JSON form.
  std::vector<nlohmann::json> pipelines;
};

// The settings the management API changes, as TOML that ParseConfig reads back: [device],
// [upload], [cache], [[storage_accounts]], [[shares]], [[access_keys]], [[buckets]] and
// [alerts] and [[pipelines]]. Kept in <data_dir>/settings.toml; see ApplyManagedSettings.
std::string ManagedSettingsToml(const Config& c);
// Replaces the sections above in `base` by those of `managed` (a Config parsed from
// ManagedSettingsToml text); the rest of `base` (ports, paths, TLS...) stays.
void OverlayManagedSettings(Config& base, const Config& managed);
// The checks that need the whole configuration, after settings.toml is applied (keys for
// the object endpoints). InvalidArgument naming the key.
Status CheckComplete(const Config& c);
// Loads <data_dir>/settings.toml over `c` when it exists. InvalidArgument naming the file.
Status ApplyManagedSettings(Config& c);
// Checks a Config as ParseConfig would (by writing its managed sections out and reading them
// back) and returns the result with storage accounts resolved.
Result<Config> ValidateManaged(const Config& c);

// Parses TOML text. `source` names the file in error messages. Relative paths stay relative to
// the working directory. InvalidArgument with one line naming the key on any problem.
Result<Config> ParseConfig(std::string_view text, const std::string& source);
Result<Config> LoadConfig(const std::string& path);

// Reads a secret (key, password) kept in a file named by the config: the file's text without
// trailing line breaks and spaces. InvalidArgument naming `key` when it cannot be read.
Result<std::string> ReadSecret(const std::string& path, const std::string& key);

// A pipeline declaration between its TOML table form and its JSON form (the API's).
nlohmann::json PipelineTomlToJson(const void* toml_table);
std::string PipelineJsonToToml(const nlohmann::json& doc);
// Checks a pipeline's JSON declaration against the config (its shares exist).
// InvalidArgument naming the field.
Status CheckPipeline(const Config& c, const nlohmann::json& doc);

}  // namespace fieldstack::daemon
