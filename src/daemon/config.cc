#include "daemon/config.h"

#include <toml++/toml.h>

#include <set>
#include <sstream>

#include "compute/pipeline.h"
#include "platform/file.h"
#include "store/names.h"
#include "sync/bandwidth.h"
#include "sync/evictor.h"

namespace fieldstack::daemon {
namespace {

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  Status Error(const std::string& key, const std::string& what) const {
    return InvalidArgumentError("config " + source_ + ": key '" + key + "' " + what);
  }

  // Refuses keys of `table` not in `known`.
  Status Known(const toml::table& table, const std::string& prefix,
               std::initializer_list<std::string_view> known) const {
    for (auto& [k, v] : table) {
      std::string_view key = k.str();
      bool ok = false;
      for (auto n : known) ok = ok || n == key;
      if (!ok) {
        std::string full = prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
        return InvalidArgumentError("config " + source_ + ": unknown key '" + full + "'");
      }
    }
    return Status::Ok();
  }

  Status String(const toml::table& t, const std::string& prefix, const char* key,
                std::string& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::Ok();
    if (!n->is_string()) return Error(prefix + key, "must be a string");
    out = n->as_string()->get();
    return Status::Ok();
  }

  Status Bool(const toml::table& t, const std::string& prefix, const char* key, bool& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::Ok();
    if (!n->is_boolean()) return Error(prefix + key, "must be true or false");
    out = n->as_boolean()->get();
    return Status::Ok();
  }

  Status Int(const toml::table& t, const std::string& prefix, const char* key, int64_t lo,
             int64_t hi, int64_t& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::Ok();
    if (!n->is_integer()) return Error(prefix + key, "must be an integer");
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) {
      return Error(prefix + key, "must be between " + std::to_string(lo) + " and " +
                                     std::to_string(hi) + " (got " + std::to_string(v) + ")");
    }
    out = v;
    return Status::Ok();
  }

  // A [cache] or [shares.cache] table.
  Status Cache(const toml::table& t, const std::string& prefix, CacheConfig& out) const {
    FS_RETURN_IF_ERROR(
        Known(t, prefix,
              {"high_watermark", "low_watermark", "hard_cap", "max_age_days", "pinned",
               "interval_s", "backpressure_timeout_s", "recall_timeout_s"}));
    for (auto [key, field] : {std::pair{"high_watermark", &out.high_watermark},
                              {"low_watermark", &out.low_watermark},
                              {"hard_cap", &out.hard_cap}}) {
      FS_RETURN_IF_ERROR(String(t, prefix + ".", key, *field));
      if (field->empty()) continue;
      auto size = sync::CacheSize::Parse(*field);
      if (!size.ok()) return Error(prefix + "." + key, size.status().message());
    }
    int64_t age = out.max_age_days;
    FS_RETURN_IF_ERROR(Int(t, prefix + ".", "max_age_days", 0, 36500, age));
    out.max_age_days = static_cast<uint32_t>(age);
    return Strings(t, prefix + ".", "pinned", "[\"projects/**/*.db\"]", out.pinned);
  }

  // An array of non-empty strings; `example` shows one in the error.
  Status Strings(const toml::table& t, const std::string& prefix, const char* key,
                 const char* example, std::vector<std::string>& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::Ok();
    const toml::array* a = n->as_array();
    std::string msg = std::string("must be an array of non-empty strings like ") + example;
    if (a == nullptr) return Error(prefix + key, msg);
    out.clear();
    for (const toml::node& e : *a) {
      if (!e.is_string() || e.as_string()->get().empty()) return Error(prefix + key, msg);
      out.push_back(e.as_string()->get());
    }
    return Status::Ok();
  }

  const toml::table* Table(const toml::table& t, const char* key, Status& st) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) {
      st = Error(key, "must be a table ([" + std::string(key) + "])");
      return nullptr;
    }
    return n->as_table();
  }

 private:
  std::string source_;
};

nlohmann::json TomlNodeToJson(const toml::node& n) {
  if (const toml::table* t = n.as_table()) {
    nlohmann::json o = nlohmann::json::object();
    for (auto& [k, v] : *t) o[std::string(k.str())] = TomlNodeToJson(v);
    return o;
  }
  if (const toml::array* a = n.as_array()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const toml::node& e : *a) arr.push_back(TomlNodeToJson(e));
    return arr;
  }
  if (n.is_string()) return n.as_string()->get();
  if (n.is_integer()) return n.as_integer()->get();
  if (n.is_floating_point()) return n.as_floating_point()->get();
  if (n.is_boolean()) return n.as_boolean()->get();
  std::ostringstream out;  // dates and times: their TOML text
  n.visit([&](auto&& v) { out << v; });
  return out.str();
}

// JSON (no nulls) as a TOML node; nulls are dropped.
std::unique_ptr<toml::node> JsonToTomlNode(const nlohmann::json& j) {
  if (j.is_object()) {
    auto t = std::make_unique<toml::table>();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_null()) continue;
      auto child = JsonToTomlNode(it.value());
      t->insert_or_assign(it.key(), std::move(*child));
    }
    return t;
  }
  if (j.is_array()) {
    auto a = std::make_unique<toml::array>();
    for (const auto& e : j) {
      if (e.is_null()) continue;
      auto child = JsonToTomlNode(e);
      a->push_back(std::move(*child));
    }
    return a;
  }
  if (j.is_string()) return std::make_unique<toml::value<std::string>>(j.get<std::string>());
  if (j.is_boolean()) return std::make_unique<toml::value<bool>>(j.get<bool>());
  if (j.is_number_integer()) return std::make_unique<toml::value<int64_t>>(j.get<int64_t>());
  if (j.is_number_float()) return std::make_unique<toml::value<double>>(j.get<double>());
  return std::make_unique<toml::value<std::string>>(std::string());
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return InvalidArgumentError("config " + source + ": line " +
                                std::to_string(e.source().begin.line) + ": " +
                                std::string(e.description()));
  }
  Parser p(source);
  Config c;
  FS_RETURN_IF_ERROR(p.Known(root, "",
                             {"data_dir",
                              "http",
                              "log",
                              "encryption",
                              "store",
                              "shares",
                              "upload",
                              "cache",
                              "smb",
                              "nfs",
                              "mountpoint",
                              "s3",
                              "blob",
                              "tls",
                              "access_keys",
                              "buckets",
                              "device",
                              "alerts",
                              "storage_accounts",
                              "mqtt",
                              "compute",
                              "pipelines"}));
  FS_RETURN_IF_ERROR(p.String(root, "", "mountpoint", c.mountpoint));
  FS_RETURN_IF_ERROR(p.String(root, "", "data_dir", c.data_dir));
  if (c.data_dir.empty()) return p.Error("data_dir", "must not be empty");
  Status st;
  if (const toml::table* t = p.Table(root, "http", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "http", {"address", "port", "public", "ui_dir"}));
    FS_RETURN_IF_ERROR(p.String(*t, "http.", "ui_dir", c.ui_dir));
    FS_RETURN_IF_ERROR(p.String(*t, "http.", "address", c.http_address));
    FS_RETURN_IF_ERROR(p.Strings(*t, "http.", "public", "[\"/healthz\"]", c.http_public));
    for (const std::string& path : c.http_public) {
      if (path != "/healthz" && path != "/metrics") {
        return p.Error("http.public", "may hold only \"/healthz\" and \"/metrics\"");
      }
    }
    int64_t port = c.http_port;
    FS_RETURN_IF_ERROR(p.Int(*t, "http.", "port", 0, 65535, port));
    c.http_port = static_cast<uint16_t>(port);
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "log", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "log", {"format", "level"}));
    std::string format = "text";
    FS_RETURN_IF_ERROR(p.String(*t, "log.", "format", format));
    if (format == "json") {
      c.log_format = LogFormat::kJson;
    } else if (format != "text") {
      return p.Error("log.format", "must be \"text\" or \"json\"");
    }
    FS_RETURN_IF_ERROR(p.String(*t, "log.", "level", c.log_level));
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (!kLevels.count(c.log_level)) {
      return p.Error("log.level", "must be one of trace, debug, info, warn, error, critical, off");
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "device", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "device", {"name", "host_power"}));
    FS_RETURN_IF_ERROR(p.String(*t, "device.", "name", c.device_name));
    if (c.device_name.size() > 63 ||
        c.device_name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-.") != std::string::npos) {
      return p.Error("device.name", "must be up to 63 letters, digits, '-' or '.'");
    }
    FS_RETURN_IF_ERROR(p.Bool(*t, "device.", "host_power", c.host_power));
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "alerts", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "alerts", {"webhook", "webhook_ca_file", "health_interval_s"}));
    int64_t interval = c.health_interval_s;
    FS_RETURN_IF_ERROR(p.Int(*t, "alerts.", "health_interval_s", 1, 3600, interval));
    c.health_interval_s = static_cast<uint32_t>(interval);
    FS_RETURN_IF_ERROR(p.String(*t, "alerts.", "webhook", c.alerts_webhook));
    FS_RETURN_IF_ERROR(p.String(*t, "alerts.", "webhook_ca_file", c.alerts_webhook_ca_file));
    if (!c.alerts_webhook.empty() && !c.alerts_webhook.starts_with("http://") &&
        !c.alerts_webhook.starts_with("https://")) {
      return p.Error("alerts.webhook", "must be an http:// or https:// URL");
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "compute", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "compute",
                               {"workers", "cuda_provider_dir", "cuda_library_dirs",
                                "inference_threads", "gpu_concurrency", "gpu_memory_limit_mib"}));
    FS_RETURN_IF_ERROR(
        p.String(*t, "compute.", "cuda_provider_dir", c.inference_cuda_provider_dir));
    FS_RETURN_IF_ERROR(p.Strings(*t, "compute.", "cuda_library_dirs", "[\"/opt/cuda/lib64\"]",
                                 c.inference_cuda_library_dirs));
    int64_t workers = c.compute_workers;
    FS_RETURN_IF_ERROR(p.Int(*t, "compute.", "workers", 1, 64, workers));
    c.compute_workers = static_cast<uint32_t>(workers);
    int64_t threads = c.inference_threads;
    FS_RETURN_IF_ERROR(p.Int(*t, "compute.", "inference_threads", 0, 256, threads));
    c.inference_threads = static_cast<uint32_t>(threads);
    int64_t gpu_runs = c.inference_gpu_concurrency;
    FS_RETURN_IF_ERROR(p.Int(*t, "compute.", "gpu_concurrency", 1, 64, gpu_runs));
    c.inference_gpu_concurrency = static_cast<uint32_t>(gpu_runs);
    int64_t gpu_mib = 0;
    FS_RETURN_IF_ERROR(p.Int(*t, "compute.", "gpu_memory_limit_mib", 0, 1 << 24, gpu_mib));
    c.inference_gpu_memory_limit = static_cast<uint64_t>(gpu_mib) << 20;
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "mqtt", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "mqtt",
                               {"broker", "address", "port", "tls_port", "users", "url", "username",
                                "password_file", "ca_file", "client_id"}));
    MqttConfig& m = c.mqtt;
    for (auto [key, field] : {std::pair{"broker", &m.broker},
                              {"address", &m.address},
                              {"url", &m.url},
                              {"username", &m.username},
                              {"password_file", &m.password_file},
                              {"ca_file", &m.ca_file},
                              {"client_id", &m.client_id}}) {
      FS_RETURN_IF_ERROR(p.String(*t, "mqtt.", key, *field));
    }
    if (m.broker != "builtin" && m.broker != "external" && m.broker != "off") {
      return p.Error("mqtt.broker", "must be \"builtin\", \"external\" or \"off\"");
    }
    int64_t port = m.port, tls_port = m.tls_port;
    FS_RETURN_IF_ERROR(p.Int(*t, "mqtt.", "port", 0, 65535, port));
    FS_RETURN_IF_ERROR(p.Int(*t, "mqtt.", "tls_port", 0, 65535, tls_port));
    m.port = static_cast<uint16_t>(port);
    m.tls_port = static_cast<uint16_t>(tls_port);
    if (const toml::node* un = t->get("users")) {
      const toml::array* arr = un->as_array();
      if (arr == nullptr)
        return p.Error("mqtt.users", "must be an array of tables ([[mqtt.users]])");
      for (size_t i = 0; i < arr->size(); ++i) {
        std::string prefix = "mqtt.users[" + std::to_string(i) + "]";
        const toml::table* ut = arr->get(i)->as_table();
        if (ut == nullptr) return p.Error(prefix, "must be a table");
        FS_RETURN_IF_ERROR(p.Known(*ut, prefix, {"name", "password_file"}));
        MqttUserConfig u;
        FS_RETURN_IF_ERROR(p.String(*ut, prefix + ".", "name", u.name));
        FS_RETURN_IF_ERROR(p.String(*ut, prefix + ".", "password_file", u.password_file));
        if (u.name.empty() || u.name.find_first_of(":\n\r") != std::string::npos ||
            u.name == "fieldstack") {
          return p.Error(prefix + ".name",
                         "must be a user name without ':' (\"fieldstack\" is the box's own)");
        }
        if (u.password_file.empty()) return p.Error(prefix + ".password_file", "is required");
        m.users.push_back(std::move(u));
      }
    }
    if (m.broker == "external" && !m.url.starts_with("tcp://") && !m.url.starts_with("ssl://")) {
      return p.Error("mqtt.url",
                     "must be tcp://host:port or ssl://host:port with broker = \"external\"");
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::node* n = root.get("storage_accounts")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) {
      return p.Error("storage_accounts", "must be an array of tables ([[storage_accounts]])");
    }
    std::set<std::string> names;
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string prefix = "storage_accounts[" + std::to_string(i) + "]";
      const toml::table* at = arr->get(i)->as_table();
      if (at == nullptr) return p.Error(prefix, "must be a table");
      FS_RETURN_IF_ERROR(p.Known(*at, prefix,
                                 {"name", "type", "endpoint", "account", "key_file", "sas_file",
                                  "region", "credentials_file", "addressing", "path"}));
      StorageAccountConfig a;
      for (auto [key, field] : {std::pair{"name", &a.name},
                                {"type", &a.type},
                                {"endpoint", &a.endpoint},
                                {"account", &a.account},
                                {"key_file", &a.key_file},
                                {"sas_file", &a.sas_file},
                                {"region", &a.region},
                                {"credentials_file", &a.credentials_file},
                                {"addressing", &a.addressing},
                                {"path", &a.path}}) {
        FS_RETURN_IF_ERROR(p.String(*at, prefix + ".", key, *field));
      }
      Status valid = store::ValidateName(a.name);
      if (!valid.ok()) return p.Error(prefix + ".name", "is not a valid name: " + valid.message());
      if (!names.insert(a.name).second) {
        return p.Error(prefix + ".name", "repeats storage account '" + a.name + "'");
      }
      if (a.type != "azure" && a.type != "s3" && a.type != "localfs") {
        return p.Error(prefix + ".type", "must be \"azure\", \"s3\" or \"localfs\"");
      }
      c.storage_accounts.push_back(std::move(a));
    }
  }
  if (const toml::table* t = p.Table(root, "encryption", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "encryption", {"enabled", "key_file", "passphrase_file"}));
    FS_RETURN_IF_ERROR(p.Bool(*t, "encryption.", "enabled", c.encryption));
    FS_RETURN_IF_ERROR(p.String(*t, "encryption.", "key_file", c.key_file));
    FS_RETURN_IF_ERROR(p.String(*t, "encryption.", "passphrase_file", c.passphrase_file));
    if (!c.key_file.empty() && !c.passphrase_file.empty()) {
      return p.Error("encryption.passphrase_file", "cannot be set together with key_file");
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "store", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "store", {"chunk_size_kib"}));
    int64_t cs = c.chunk_size_kib;
    FS_RETURN_IF_ERROR(p.Int(*t, "store.", "chunk_size_kib", 64, 4096, cs));
    if ((cs & (cs - 1)) != 0) return p.Error("store.chunk_size_kib", "must be a power of two");
    c.chunk_size_kib = static_cast<uint32_t>(cs);
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "upload", st)) {
    FS_RETURN_IF_ERROR(
        p.Known(*t, "upload",
                {"bandwidth", "part_size_mib", "transfers", "daily_budget", "monthly_budget"}));
    FS_RETURN_IF_ERROR(p.String(*t, "upload.", "bandwidth", c.upload_bandwidth));
    if (!c.upload_bandwidth.empty()) {
      auto sched = sync::BandwidthSchedule::ParseTimetable(c.upload_bandwidth);
      if (!sched.ok()) {
        return p.Error("upload.bandwidth", "is not a timetable: " + sched.status().message());
      }
    }
    int64_t part = c.upload_part_size_mib;
    FS_RETURN_IF_ERROR(p.Int(*t, "upload.", "part_size_mib", 1, 4000, part));
    c.upload_part_size_mib = static_cast<uint32_t>(part);
    int64_t transfers = c.upload_transfers;
    FS_RETURN_IF_ERROR(p.Int(*t, "upload.", "transfers", 1, 64, transfers));
    c.upload_transfers = static_cast<uint32_t>(transfers);
    for (auto [key, out] : {std::pair{"daily_budget", &c.upload_daily_budget},
                            {"monthly_budget", &c.upload_monthly_budget}}) {
      std::string text;
      FS_RETURN_IF_ERROR(p.String(*t, "upload.", key, text));
      if (text.empty()) continue;
      auto size = sync::ParseRate(text);
      std::string name = std::string("upload.") + key;
      if (!size.ok())
        return p.Error(name, "is not a size like \"10G\": " + size.status().message());
      *out = *size;
      if (*out && **out < (uint64_t{c.upload_part_size_mib} << 20)) {
        return p.Error(name, "is smaller than one upload part (upload.part_size_mib)");
      }
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "cache", st)) {
    FS_RETURN_IF_ERROR(p.Cache(*t, "cache", c.cache));
    for (auto [key, field] : {std::pair{"interval_s", &c.cache_interval_s},
                              {"backpressure_timeout_s", &c.backpressure_timeout_s},
                              {"recall_timeout_s", &c.recall_timeout_s}}) {
      int64_t v = *field;
      FS_RETURN_IF_ERROR(p.Int(*t, "cache.", key, 1, 86400, v));
      *field = static_cast<uint32_t>(v);
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "smb", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "smb", {"enabled", "address", "port", "users"}));
    FS_RETURN_IF_ERROR(p.Bool(*t, "smb.", "enabled", c.smb_enabled));
    FS_RETURN_IF_ERROR(p.String(*t, "smb.", "address", c.smb_address));
    int64_t port = c.smb_port;
    FS_RETURN_IF_ERROR(p.Int(*t, "smb.", "port", 0, 65535, port));
    c.smb_port = static_cast<uint16_t>(port);
    if (const toml::node* un = t->get("users")) {
      const toml::array* users = un->as_array();
      if (users == nullptr)
        return p.Error("smb.users", "must be an array of tables ([[smb.users]])");
      for (size_t i = 0; i < users->size(); ++i) {
        std::string prefix = "smb.users[" + std::to_string(i) + "]";
        const toml::table* ut = users->get(i)->as_table();
        if (ut == nullptr) return p.Error(prefix, "must be a table");
        FS_RETURN_IF_ERROR(p.Known(*ut, prefix, {"name", "password_file", "read_only"}));
        SmbUserConfig u;
        FS_RETURN_IF_ERROR(p.String(*ut, prefix + ".", "name", u.name));
        FS_RETURN_IF_ERROR(p.String(*ut, prefix + ".", "password_file", u.password_file));
        FS_RETURN_IF_ERROR(p.Bool(*ut, prefix + ".", "read_only", u.read_only));
        if (u.name.empty() || u.password_file.empty()) {
          return p.Error(prefix, "needs name and password_file");
        }
        c.smb_users.push_back(u);
      }
    }
    if (c.smb_enabled && c.smb_users.empty()) {
      return p.Error("smb.users", "needs at least one user when smb is enabled");
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::table* t = p.Table(root, "nfs", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "nfs", {"enabled", "address", "port"}));
    FS_RETURN_IF_ERROR(p.Bool(*t, "nfs.", "enabled", c.nfs_enabled));
    FS_RETURN_IF_ERROR(p.String(*t, "nfs.", "address", c.nfs_address));
    int64_t port = c.nfs_port;
    FS_RETURN_IF_ERROR(p.Int(*t, "nfs.", "port", 0, 65535, port));
    c.nfs_port = static_cast<uint16_t>(port);
  }
  FS_RETURN_IF_ERROR(st);
  for (auto [name, ep] : {std::pair{"s3", &c.s3}, {"blob", &c.blob}}) {
    const toml::table* t = p.Table(root, name, st);
    FS_RETURN_IF_ERROR(st);
    if (t == nullptr) continue;
    std::string prefix = std::string(name) + ".";
    if (std::string_view(name) == "s3") {
      FS_RETURN_IF_ERROR(p.Known(*t, name, {"enabled", "address", "port", "create_buckets"}));
      FS_RETURN_IF_ERROR(p.Bool(*t, prefix, "create_buckets", c.create_buckets));
    } else {
      FS_RETURN_IF_ERROR(p.Known(*t, name, {"enabled", "address", "port"}));
    }
    FS_RETURN_IF_ERROR(p.Bool(*t, prefix, "enabled", ep->enabled));
    FS_RETURN_IF_ERROR(p.String(*t, prefix, "address", ep->address));
    int64_t port = ep->port;
    FS_RETURN_IF_ERROR(p.Int(*t, prefix, "port", 0, 65535, port));
    ep->port = static_cast<uint16_t>(port);
  }
  if (const toml::table* t = p.Table(root, "tls", st)) {
    FS_RETURN_IF_ERROR(p.Known(*t, "tls", {"cert_file", "key_file", "names", "allow_http"}));
    FS_RETURN_IF_ERROR(p.String(*t, "tls.", "cert_file", c.tls_cert_file));
    FS_RETURN_IF_ERROR(p.String(*t, "tls.", "key_file", c.tls_key_file));
    FS_RETURN_IF_ERROR(p.Strings(*t, "tls.", "names", "[\"box.example\"]", c.tls_names));
    FS_RETURN_IF_ERROR(p.Bool(*t, "tls.", "allow_http", c.allow_http));
    if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
      return p.Error("tls.cert_file", "and tls.key_file must be set together");
    }
  }
  FS_RETURN_IF_ERROR(st);
  if (const toml::node* n = root.get("access_keys")) {
    const toml::array* keys = n->as_array();
    if (keys == nullptr)
      return p.Error("access_keys", "must be an array of tables ([[access_keys]])");
    std::set<std::string> ids;
    for (size_t i = 0; i < keys->size(); ++i) {
      std::string prefix = "access_keys[" + std::to_string(i) + "]";
      const toml::table* kt = keys->get(i)->as_table();
      if (kt == nullptr) return p.Error(prefix, "must be a table");
      FS_RETURN_IF_ERROR(p.Known(*kt, prefix, {"user", "id", "secret_file", "read", "write"}));
      AccessKeyConfig k;
      FS_RETURN_IF_ERROR(p.String(*kt, prefix + ".", "user", k.user));
      FS_RETURN_IF_ERROR(p.String(*kt, prefix + ".", "id", k.id));
      FS_RETURN_IF_ERROR(p.String(*kt, prefix + ".", "secret_file", k.secret_file));
      FS_RETURN_IF_ERROR(p.Strings(*kt, prefix + ".", "read", "[\"archive\"]", k.read));
      FS_RETURN_IF_ERROR(p.Strings(*kt, prefix + ".", "write", "[\"ingest\"]", k.write));
      if (k.user.empty() || k.id.empty() || k.secret_file.empty()) {
        return p.Error(prefix, "needs user, id and secret_file");
      }
      if (k.id.size() < 3 || k.id.size() > 128 ||
          k.id.find_first_of("/:, \t") != std::string::npos) {
        return p.Error(prefix + ".id",
                       "must be 3 to 128 characters without '/', ':', ',' or spaces");
      }
      if (!ids.insert(k.id).second) return p.Error(prefix + ".id", "repeats key '" + k.id + "'");
      c.access_keys.push_back(std::move(k));
    }
  }
  if (const toml::node* n = root.get("buckets")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return p.Error("buckets", "must be an array of tables ([[buckets]])");
    std::set<std::string> names;
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string prefix = "buckets[" + std::to_string(i) + "]";
      const toml::table* bt = arr->get(i)->as_table();
      if (bt == nullptr) return p.Error(prefix, "must be a table");
      FS_RETURN_IF_ERROR(p.Known(*bt, prefix, {"name", "share", "path"}));
      BucketConfig b;
      FS_RETURN_IF_ERROR(p.String(*bt, prefix + ".", "name", b.name));
      FS_RETURN_IF_ERROR(p.String(*bt, prefix + ".", "share", b.share));
      FS_RETURN_IF_ERROR(p.String(*bt, prefix + ".", "path", b.path));
      while (!b.path.empty() && b.path.back() == '/') b.path.pop_back();
      while (!b.path.empty() && b.path.front() == '/') b.path.erase(0, 1);
      bool valid_name =
          b.name.size() >= 3 && b.name.size() <= 63 &&
          b.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") == std::string::npos;
      if (!valid_name) {
        return p.Error(prefix + ".name", "must be an S3 bucket name (3-63 of a-z 0-9 - .)");
      }
      if (b.share.empty() || b.path.empty()) return p.Error(prefix, "needs share and path");
      bool bad_path =
          b.path.find("//") != std::string::npos || b.path.find('\0') != std::string::npos;
      for (size_t pos = 0; !bad_path && pos <= b.path.size();) {
        size_t slash = std::min(b.path.find('/', pos), b.path.size());
        std::string seg = b.path.substr(pos, slash - pos);
        bad_path = seg == "." || seg == ".." || (pos == 0 && seg == store::kStagingDir);
        pos = slash + 1;
      }
      if (bad_path) return p.Error(prefix + ".path", "must be a folder path without . or .. parts");
      if (!names.insert(b.name).second)
        return p.Error(prefix + ".name", "repeats bucket '" + b.name + "'");
      c.buckets.push_back(std::move(b));
    }
  }
  if (const toml::node* n = root.get("shares")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return p.Error("shares", "must be an array of tables ([[shares]])");
    c.shares.clear();
    std::set<std::string> seen;
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string prefix = "shares[" + std::to_string(i) + "]";
      const toml::table* t = arr->get(i)->as_table();
      if (t == nullptr) return p.Error(prefix, "must be a table");
      FS_RETURN_IF_ERROR(
          p.Known(*t, prefix,
                  {"name", "kind", "target", "smb", "smb_encrypt", "nfs", "nfs_clients",
                   "nfs_read_only", "nfs_squash", "cache", "refresh_ttl_s"}));
      ShareConfig share;
      FS_RETURN_IF_ERROR(p.String(*t, prefix + ".", "name", share.name));
      Status valid = store::ValidateName(share.name);
      if (!valid.ok()) return p.Error(prefix + ".name", "is not a valid name: " + valid.message());
      if (!seen.insert(share.name).second) {
        return p.Error(prefix + ".name", "repeats share '" + share.name + "'");
      }
      if (const toml::node* cn = t->get("cache")) {
        if (!cn->is_table()) return p.Error(prefix + ".cache", "must be a table");
        FS_RETURN_IF_ERROR(p.Cache(*cn->as_table(), prefix + ".cache", share.cache));
        for (const char* box_only : {"interval_s", "backpressure_timeout_s", "recall_timeout_s"}) {
          if (cn->as_table()->contains(box_only)) {
            return p.Error(prefix + ".cache." + box_only, "is set for the box in [cache] only");
          }
        }
      }
      int64_t ttl = 0;
      FS_RETURN_IF_ERROR(p.Int(*t, prefix + ".", "refresh_ttl_s", 0, 365 * 86400, ttl));
      share.refresh_ttl_s = static_cast<uint32_t>(ttl);
      FS_RETURN_IF_ERROR(p.Bool(*t, prefix + ".", "smb", share.smb));
      FS_RETURN_IF_ERROR(p.String(*t, prefix + ".", "smb_encrypt", share.smb_encrypt));
      if (share.smb_encrypt != "off" && share.smb_encrypt != "desired" &&
          share.smb_encrypt != "required") {
        return p.Error(prefix + ".smb_encrypt", "must be \"off\", \"desired\" or \"required\"");
      }
      FS_RETURN_IF_ERROR(p.Bool(*t, prefix + ".", "nfs", share.nfs));
      FS_RETURN_IF_ERROR(
          p.Strings(*t, prefix + ".", "nfs_clients", "[\"10.0.0.0/24\"]", share.nfs_clients));
      FS_RETURN_IF_ERROR(p.Bool(*t, prefix + ".", "nfs_read_only", share.nfs_read_only));
      FS_RETURN_IF_ERROR(p.String(*t, prefix + ".", "nfs_squash", share.nfs_squash));
      if (share.nfs_squash != "root" && share.nfs_squash != "all" && share.nfs_squash != "none") {
        return p.Error(prefix + ".nfs_squash", "must be \"root\", \"all\" or \"none\"");
      }
      std::string kind = "local";
      FS_RETURN_IF_ERROR(p.String(*t, prefix + ".", "kind", kind));
      if (kind == "cloud") {
        share.kind = store::ShareKind::kCloud;
      } else if (kind != "local") {
        return p.Error(prefix + ".kind", "must be \"local\" or \"cloud\"");
      }
      if (const toml::node* tn = t->get("target")) {
        const toml::table* tt = tn->as_table();
        std::string tp = prefix + ".target";
        if (tt == nullptr) return p.Error(tp, "must be a table");
        FS_RETURN_IF_ERROR(p.Known(*tt, tp,
                                   {"storage_account", "type", "endpoint", "account", "key_file",
                                    "sas_file", "container", "bucket", "region", "credentials_file",
                                    "addressing", "path", "policy", "page_blob_suffixes"}));
        TargetConfig& tc = share.target;
        for (auto [key, field] : {std::pair{"type", &tc.type},
                                  {"endpoint", &tc.endpoint},
                                  {"account", &tc.account},
                                  {"key_file", &tc.key_file},
                                  {"sas_file", &tc.sas_file},
                                  {"container", &tc.container},
                                  {"bucket", &tc.bucket},
                                  {"region", &tc.region},
                                  {"credentials_file", &tc.credentials_file},
                                  {"addressing", &tc.addressing},
                                  {"path", &tc.path},
                                  {"policy", &tc.policy},
                                  {"storage_account", &tc.storage_account}}) {
          FS_RETURN_IF_ERROR(p.String(*tt, tp + ".", key, *field));
        }
        if (!tc.storage_account.empty()) {
          const StorageAccountConfig* acct = nullptr;
          for (const auto& a : c.storage_accounts) {
            if (a.name == tc.storage_account) acct = &a;
          }
          if (acct == nullptr) {
            return p.Error(tp + ".storage_account",
                           "names no [[storage_accounts]] entry ('" + tc.storage_account + "')");
          }
          for (const char* own : {"type", "endpoint", "account", "key_file", "sas_file", "region",
                                  "credentials_file", "addressing", "path"}) {
            if (tt->contains(own)) {
              return p.Error(tp + "." + own, "comes from storage account '" + tc.storage_account +
                                                 "'; do not set it here");
            }
          }
          tc.type = acct->type;
          tc.endpoint = acct->endpoint;
          tc.account = acct->account;
          tc.key_file = acct->key_file;
          tc.sas_file = acct->sas_file;
          tc.region = acct->region;
          tc.credentials_file = acct->credentials_file;
          tc.addressing = acct->addressing;
          tc.path = acct->path;
        }
        if (share.kind != store::ShareKind::kCloud) {
          return p.Error(tp, "is only for kind = \"cloud\" shares");
        }
        FS_RETURN_IF_ERROR(
            p.Strings(*tt, tp + ".", "page_blob_suffixes", "[\".vhd\"]", tc.page_blob_suffixes));
        if (tc.type != "azure" && !tc.page_blob_suffixes.empty()) {
          return p.Error(tp + ".page_blob_suffixes", "is only for azure targets");
        }
        if (tc.type == "localfs") {
          if (tc.path.empty()) return p.Error(tp + ".path", "is required for a localfs target");
        } else if (tc.type == "azure") {
          if (tc.endpoint.empty() || tc.container.empty()) {
            return p.Error(tp, "needs endpoint and container for an azure target");
          }
          if (tc.sas_file.empty() && (tc.account.empty() || tc.key_file.empty())) {
            return p.Error(tp, "needs account and key_file, or sas_file");
          }
        } else if (tc.type == "s3") {
          if (tc.endpoint.empty() || tc.bucket.empty() || tc.credentials_file.empty()) {
            return p.Error(tp, "needs endpoint, bucket and credentials_file for an s3 target");
          }
          if (c.upload_part_size_mib < 5) {
            return p.Error("upload.part_size_mib",
                           "must be at least 5 with an s3 target (S3's smallest part)");
          }
          if (tc.addressing != "path" && tc.addressing != "virtual") {
            return p.Error(tp + ".addressing", "must be \"path\" or \"virtual\"");
          }
        } else {
          return p.Error(tp + ".type", "must be \"azure\", \"s3\" or \"localfs\"");
        }
        if (tc.policy != "keep" && tc.policy != "mirror") {
          return p.Error(tp + ".policy", "must be \"keep\" or \"mirror\"");
        }
      }
      if (share.kind != store::ShareKind::kCloud) {
        if (share.refresh_ttl_s != 0) {
          return p.Error(prefix + ".refresh_ttl_s", "is only for kind = \"cloud\" shares");
        }
        if (t->contains("cache")) {
          return p.Error(prefix + ".cache", "is only for kind = \"cloud\" shares");
        }
      }
      c.shares.push_back(share);
    }
  }
  for (size_t i = 0; i < c.buckets.size(); ++i) {
    std::string prefix = "buckets[" + std::to_string(i) + "]";
    bool found = false;
    for (const ShareConfig& sh : c.shares) {
      if (sh.name == c.buckets[i].name) {
        return p.Error(prefix + ".name",
                       "is already the name of a share (every share is a bucket)");
      }
      found = found || sh.name == c.buckets[i].share;
    }
    if (!found) return p.Error(prefix + ".share", "names no share in [[shares]]");
  }
  if (const toml::node* n = root.get("pipelines")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return p.Error("pipelines", "must be an array of tables ([[pipelines]])");
    std::set<std::string> names;
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string prefix = "pipelines[" + std::to_string(i) + "]";
      const toml::table* pt = arr->get(i)->as_table();
      if (pt == nullptr) return p.Error(prefix, "must be a table");
      nlohmann::json doc = PipelineTomlToJson(pt);
      auto decl = compute::ParsePipeline(doc);
      if (!decl.ok()) {
        // One line (an expression error's caret line is for the API and CLI).
        std::string msg = decl.status().message();
        return InvalidArgumentError("config " + source + ": " + prefix + ": " +
                                    msg.substr(0, msg.find('\n')));
      }
      if (!names.insert(decl->name).second)
        return p.Error(prefix + ".name", "is the name of another pipeline");
      c.pipelines.push_back(std::move(doc));
    }
    for (size_t i = 0; i < c.pipelines.size(); ++i) {
      Status ps = CheckPipeline(c, c.pipelines[i]);
      if (!ps.ok())
        return InvalidArgumentError("config " + source + ": pipelines[" + std::to_string(i) +
                                    "]: " + ps.message());
    }
  }
  return c;
}

namespace {

toml::array Array(const std::vector<std::string>& v) {
  toml::array a;
  for (const auto& s : v) a.push_back(s);
  return a;
}

// Sets `key` unless `value` is empty.
void Put(toml::table& t, std::string_view key, const std::string& value) {
  if (!value.empty()) t.insert_or_assign(key, value);
}

// How to reach a cloud: the fields a storage account and an inline share target share.
template <typename T>
void PutConnection(toml::table& t, const T& c) {
  Put(t, "type", c.type);
  Put(t, "endpoint", c.endpoint);
  Put(t, "account", c.account);
  Put(t, "key_file", c.key_file);
  Put(t, "sas_file", c.sas_file);
  Put(t, "region", c.region);
  Put(t, "credentials_file", c.credentials_file);
  Put(t, "addressing", c.addressing);
  Put(t, "path", c.path);
}

toml::table CacheTable(const CacheConfig& c) {
  toml::table t;
  Put(t, "high_watermark", c.high_watermark);
  Put(t, "low_watermark", c.low_watermark);
  Put(t, "hard_cap", c.hard_cap);
  if (c.max_age_days != 0) t.insert_or_assign("max_age_days", int64_t{c.max_age_days});
  if (!c.pinned.empty()) t.insert_or_assign("pinned", Array(c.pinned));
  return t;
}

std::string SizeText(uint64_t bytes) { return std::to_string(bytes) + "B"; }

}  // namespace

std::string ManagedSettingsToml(const Config& c) {
  toml::table root;
  toml::table device;
  Put(device, "name", c.device_name);
  device.insert_or_assign("host_power", c.host_power);
  root.insert_or_assign("device", device);
  toml::table upload;
  Put(upload, "bandwidth", c.upload_bandwidth);
  upload.insert_or_assign("part_size_mib", int64_t{c.upload_part_size_mib});
  upload.insert_or_assign("transfers", int64_t{c.upload_transfers});
  if (c.upload_daily_budget)
    upload.insert_or_assign("daily_budget", SizeText(*c.upload_daily_budget));
  if (c.upload_monthly_budget) {
    upload.insert_or_assign("monthly_budget", SizeText(*c.upload_monthly_budget));
  }
  root.insert_or_assign("upload", upload);
  toml::table cache = CacheTable(c.cache);
  cache.insert_or_assign("interval_s", int64_t{c.cache_interval_s});
  cache.insert_or_assign("backpressure_timeout_s", int64_t{c.backpressure_timeout_s});
  cache.insert_or_assign("recall_timeout_s", int64_t{c.recall_timeout_s});
  root.insert_or_assign("cache", cache);
  toml::table alerts;
  Put(alerts, "webhook", c.alerts_webhook);
  Put(alerts, "webhook_ca_file", c.alerts_webhook_ca_file);
  alerts.insert_or_assign("health_interval_s", int64_t{c.health_interval_s});
  root.insert_or_assign("alerts", alerts);
  toml::array accounts;
  for (const StorageAccountConfig& a : c.storage_accounts) {
    toml::table t;
    Put(t, "name", a.name);
    PutConnection(t, a);
    accounts.push_back(std::move(t));
  }
  root.insert_or_assign("storage_accounts", accounts);
  toml::array shares;
  for (const ShareConfig& sh : c.shares) {
    toml::table t;
    t.insert_or_assign("name", sh.name);
    t.insert_or_assign("kind", std::string(store::ShareKindName(sh.kind)));
    t.insert_or_assign("smb", sh.smb);
    t.insert_or_assign("smb_encrypt", sh.smb_encrypt);
    t.insert_or_assign("nfs", sh.nfs);
    t.insert_or_assign("nfs_clients", Array(sh.nfs_clients));
    t.insert_or_assign("nfs_read_only", sh.nfs_read_only);
    t.insert_or_assign("nfs_squash", sh.nfs_squash);
    if (sh.kind == store::ShareKind::kCloud) {
      if (sh.refresh_ttl_s != 0) t.insert_or_assign("refresh_ttl_s", int64_t{sh.refresh_ttl_s});
      toml::table cache_t = CacheTable(sh.cache);
      if (!cache_t.empty()) t.insert_or_assign("cache", cache_t);
      const TargetConfig& tc = sh.target;
      if (!tc.type.empty() || !tc.storage_account.empty()) {
        toml::table target;
        if (!tc.storage_account.empty()) {
          Put(target, "storage_account", tc.storage_account);
        } else {
          PutConnection(target, tc);
        }
        Put(target, "container", tc.container);
        Put(target, "bucket", tc.bucket);
        Put(target, "policy", tc.policy);
        if (!tc.page_blob_suffixes.empty()) {
          target.insert_or_assign("page_blob_suffixes", Array(tc.page_blob_suffixes));
        }
        t.insert_or_assign("target", target);
      }
    }
    shares.push_back(std::move(t));
  }
  root.insert_or_assign("shares", shares);
  toml::array keys;
  for (const AccessKeyConfig& k : c.access_keys) {
    toml::table t;
    t.insert_or_assign("user", k.user);
    t.insert_or_assign("id", k.id);
    t.insert_or_assign("secret_file", k.secret_file);
    t.insert_or_assign("read", Array(k.read));
    t.insert_or_assign("write", Array(k.write));
    keys.push_back(std::move(t));
  }
  root.insert_or_assign("access_keys", keys);
  toml::array buckets;
  for (const BucketConfig& b : c.buckets) {
    toml::table t;
    t.insert_or_assign("name", b.name);
    t.insert_or_assign("share", b.share);
    t.insert_or_assign("path", b.path);
    buckets.push_back(std::move(t));
  }
  root.insert_or_assign("buckets", buckets);
  toml::array pipelines;
  for (const nlohmann::json& doc : c.pipelines) {
    auto node = JsonToTomlNode(doc);
    if (node->is_table()) pipelines.push_back(std::move(*node->as_table()));
  }
  root.insert_or_assign("pipelines", pipelines);
  std::ostringstream out;
  out << "# Written by the fieldstack daemon: the settings changed through its API.\n"
         "# They replace these sections of the config file. Edit through the API or CLI.\n\n"
      << root << "\n";
  return out.str();
}

void OverlayManagedSettings(Config& base, const Config& m) {
  base.device_name = m.device_name;
  base.host_power = m.host_power;
  base.upload_bandwidth = m.upload_bandwidth;
  base.upload_part_size_mib = m.upload_part_size_mib;
  base.upload_transfers = m.upload_transfers;
  base.upload_daily_budget = m.upload_daily_budget;
  base.upload_monthly_budget = m.upload_monthly_budget;
  base.cache = m.cache;
  base.cache_interval_s = m.cache_interval_s;
  base.backpressure_timeout_s = m.backpressure_timeout_s;
  base.recall_timeout_s = m.recall_timeout_s;
  base.alerts_webhook = m.alerts_webhook;
  base.alerts_webhook_ca_file = m.alerts_webhook_ca_file;
  base.health_interval_s = m.health_interval_s;
  base.storage_accounts = m.storage_accounts;
  base.shares = m.shares;
  base.access_keys = m.access_keys;
  base.buckets = m.buckets;
  base.pipelines = m.pipelines;
}

Result<Config> ValidateManaged(const Config& c) {
  std::string text = ManagedSettingsToml(c);
  FS_ASSIGN_OR_RETURN(Config m, ParseConfig(text, "(settings)"));
  Config out = c;
  OverlayManagedSettings(out, m);
  FS_RETURN_IF_ERROR(CheckComplete(out));
  return out;
}

Status CheckComplete(const Config& c) {
  if (c.mqtt.broker == "off") {
    for (const nlohmann::json& doc : c.pipelines) {
      auto d = compute::ParsePipeline(doc);
      if (!d.ok()) return d.status();
      bool mqtt = d->trigger.kind == compute::TriggerDecl::Kind::kMqtt;
      for (const auto& s : d->sinks) mqtt = mqtt || s.kind == compute::SinkDecl::Kind::kMqtt;
      if (mqtt) {
        return InvalidArgumentError("pipeline '" + d->name +
                                    "' uses MQTT: set [mqtt] broker = \"builtin\" or \"external\"");
      }
    }
  }
  if ((c.s3.enabled || c.blob.enabled) && c.access_keys.empty()) {
    return InvalidArgumentError(
        "key 'access_keys' needs at least one key when s3 or blob is enabled (in the config "
        "file or made through the API)");
  }
  return Status::Ok();
}

Status ApplyManagedSettings(Config& c) {
  std::string path = c.data_dir + "/settings.toml";
  if (!platform::PathExists(path)) return Status::Ok();
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) return InvalidArgumentError("settings " + path + ": " + text.status().message());
  FS_ASSIGN_OR_RETURN(Config m, ParseConfig(*text, path));
  OverlayManagedSettings(c, m);
  return Status::Ok();
}

Result<Config> LoadConfig(const std::string& path) {
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) return InvalidArgumentError("config " + path + ": " + text.status().message());
  return ParseConfig(*text, path);
}

Result<std::string> ReadSecret(const std::string& path, const std::string& key) {
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) return InvalidArgumentError("key '" + key + "': " + text.status().message());
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

nlohmann::json PipelineTomlToJson(const void* toml_table) {
  return TomlNodeToJson(*static_cast<const toml::table*>(toml_table));
}

std::string PipelineJsonToToml(const nlohmann::json& doc) {
  auto node = JsonToTomlNode(doc);
  std::ostringstream out;
  if (node->is_table()) out << *node->as_table();
  return out.str();
}

Status CheckPipeline(const Config& c, const nlohmann::json& doc) {
  FS_ASSIGN_OR_RETURN(compute::PipelineDecl d, compute::ParsePipeline(doc));
  auto has_share = [&](const std::string& name) {
    for (const ShareConfig& sh : c.shares) {
      if (sh.name == name) return true;
    }
    return false;
  };
  if (!d.trigger.share.empty() && !has_share(d.trigger.share)) {
    return InvalidArgumentError("trigger.share: no share named '" + d.trigger.share + "'");
  }
  for (size_t i = 0; i < d.sinks.size(); ++i) {
    const compute::SinkDecl& s = d.sinks[i];
    std::string w = "sinks[" + std::to_string(i) + "]";
    if (s.kind == compute::SinkDecl::Kind::kFile && !has_share(s.share)) {
      return InvalidArgumentError(w + ".share: no share named '" + s.share + "'");
    }
  }
  return Status::Ok();
}

}  // namespace fieldstack::daemon
