#pragma once

// Pipeline declarations (docs/compute.md): what triggers a pipeline, the chain of steps, where
// the results go and how failures are retried. Declared in the config file ([[pipelines]]),
// or as JSON through the management API; both become the same JSON document, checked here.
//
//   {"name": "sensors", "enabled": true,
//    "trigger": {"type": "file", "share": "drop", "glob": "incoming/**/*.csv", "settle_ms": 2000},
//             | {"type": "mqtt", "topics": ["sensors/+/temp"]}
//             | {"type": "schedule", "cron": "*/15 * * * *", "share": "drop", "glob": "*.csv"},
//    "input": {"format": "auto" | "csv" | "jsonl", "delimiter": ",", "infer_types": true},
//    "steps": [{"type": "filter", "where": "temp > 30"}, ...],
//    "sinks": [{"type": "file", "share": "out", "path": "{dir}/{stem}-v{version}.{ext}",
//               "format": "csv" | "jsonl", "compress": "none" | "zstd" | "gzip",
//               "roll": {"max_records": 10000, "max_bytes": 16777216, "max_age_s": 60}},
//              {"type": "mqtt", "topic": "alerts/{site}", "retain": false},
//              {"type": "webhook", "url": "https://..."},
//              {"type": "alert", "message": "temperature {temp} at {site}"}],
//    "retry": {"max_attempts": 5, "backoff_ms": 2000, "max_backoff_ms": 300000}}
//
// Thread safety: declarations are values.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "compute/io.h"

namespace fieldstack::compute {

struct TriggerDecl {
  enum class Kind { kFile, kMqtt, kSchedule };
  Kind kind = Kind::kFile;
  std::string share;         // file; schedule (optional: the files the run reads)
  std::string glob;          // matched against the share-relative path ('**' crosses folders)
  int64_t settle_ms = 2000;  // file: a version is processed once no newer one came for this long
  std::vector<std::string> topics;  // mqtt topic filters
  std::string cron;                 // schedule
};

struct InputDecl {
  std::string format = "auto";  // auto: by the file's extension (csv, jsonl; .gz/.zst stripped)
  CsvOptions csv;
};

struct RollDecl {
  uint64_t max_records = 10000;
  uint64_t max_bytes = 16ull << 20;
  int64_t max_age_s = 60;
};

struct SinkDecl {
  enum class Kind { kFile, kMqtt, kWebhook, kAlert };
  Kind kind = Kind::kFile;
  // file
  std::string share;
  std::string path;    // template: {pipeline} {path} {dir} {name} {stem} {ext} {version} {node}
                       // {batch} {time} (see docs/compute.md)
  std::string format;  // empty: the input's format (jsonl for MQTT)
  Compression compress = Compression::kNone;
  RollDecl roll;  // MQTT pipelines' file sinks
  // mqtt
  std::string topic;  // template: {field} of the record, {pipeline}
  bool retain = false;
  // webhook
  std::string url;
  // alert
  std::string message;  // template: {field} of the record, {pipeline}
};

struct RetryDecl {
  int max_attempts = 5;
  int64_t backoff_ms = 2000;
  int64_t max_backoff_ms = 300000;
};

struct PipelineDecl {
  std::string name;  // [a-z0-9][a-z0-9_-]{0,62}
  bool enabled = true;
  TriggerDecl trigger;
  InputDecl input;
  std::vector<nlohmann::json> steps;  // each checked by MakeStep (or the module step's rules)
  std::vector<SinkDecl> sinks;
  RetryDecl retry;
  nlohmann::json doc;  // the declaration as given (normalized), for the API and settings
};

// Checks a declaration; InvalidArgument naming the field ("trigger.glob: ...",
// "steps[1].where: ..."). Steps are checked by building them once.
Result<PipelineDecl> ParsePipeline(const nlohmann::json& doc);
// A [[pipelines]] TOML table's JSON form, as ParsePipeline expects (toml++ tables converted by
// the config parser).

// True when `path` (share-relative, '/'-separated) matches `glob`: '*' and '?' within one
// path segment, '**' any number of segments (including none), '[abc]' a class.
bool GlobMatch(std::string_view glob, std::string_view path);

// True when an MQTT topic matches a filter with '+' and '#' wildcards.
bool TopicMatches(std::string_view filter, std::string_view topic);

// Expands a sink template: "{name}" etc. from `vars`, then record fields "{field}" from `rec`
// (may be null). Unknown names expand to "". Path templates refuse ".." segments afterwards.
std::string ExpandTemplate(std::string_view tmpl,
                           const std::vector<std::pair<std::string, std::string>>& vars,
                           const struct Record* rec);

}  // namespace fieldstack::compute
