#include "compute/pipeline.h"

#include <set>

#include "compute/cron.h"
#include "compute/infer_step.h"
#include "compute/record.h"
#include "compute/step.h"

namespace fieldstack::compute {
namespace {

using json = nlohmann::json;

Status CheckFields(const json& obj, std::string_view where,
                   std::initializer_list<const char*> known) {
  if (!obj.is_object()) return InvalidArgumentError(std::string(where) + ": must be an object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      return InvalidArgumentError(std::string(where) + ": unknown field '" + it.key() +
                                  "' (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> GetString(const json& obj, const char* key, std::string_view where,
                              bool required, std::string def = {}) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return InvalidArgumentError(std::string(where) + "." + key + ": required");
    return def;
  }
  if (!it->is_string())
    return InvalidArgumentError(std::string(where) + "." + key + ": must be a string");
  return it->get<std::string>();
}

Result<int64_t> GetInt(const json& obj, const char* key, std::string_view where, int64_t def,
                       int64_t lo, int64_t hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  if (!it->is_number_integer() &&
      !(it->is_number_float() && it->get<double>() == static_cast<int64_t>(it->get<double>())))
    return InvalidArgumentError(std::string(where) + "." + key + ": must be an integer");
  int64_t v = it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    v = INT64_MAX;
  if (v < lo || v > hi)
    return InvalidArgumentError(std::string(where) + "." + key + ": must be between " +
                                std::to_string(lo) + " and " + std::to_string(hi));
  return v;
}

Result<bool> GetBool(const json& obj, const char* key, std::string_view where, bool def) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  if (!it->is_boolean())
    return InvalidArgumentError(std::string(where) + "." + key + ": must be true or false");
  return it->get<bool>();
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_'));
    if (!ok) return false;
  }
  return true;
}

Status CheckTopicFilter(std::string_view f, std::string_view where) {
  if (f.empty() || f.size() > 1024)
    return InvalidArgumentError(std::string(where) + ": a topic filter must be 1 to 1024 bytes");
  size_t start = 0;
  while (true) {
    size_t slash = f.find('/', start);
    std::string_view level =
        f.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (level.find('#') != std::string_view::npos &&
        (level != "#" || slash != std::string_view::npos))
      return InvalidArgumentError(std::string(where) + ": '#' must be a whole last level in '" +
                                  std::string(f) + "'");
    if (level.find('+') != std::string_view::npos && level != "+")
      return InvalidArgumentError(std::string(where) + ": '+' must be a whole level in '" +
                                  std::string(f) + "'");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

Status CheckModuleStep(const json& s, std::string_view where, bool first) {
  FS_RETURN_IF_ERROR(CheckFields(s, where, {"type", "module", "mode", "args", "limits"}));
  FS_ASSIGN_OR_RETURN(std::string module, GetString(s, "module", where, true));
  if (module.empty() || module.size() > 128 || module[0] == '.' ||
      module.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
    return InvalidArgumentError(
        std::string(where) + ".module: '" + module +
        "' is not a module name (letters, digits, '.', '_', '-'; the modules stored on the box)");
  FS_ASSIGN_OR_RETURN(std::string mode, GetString(s, "mode", where, false, "jsonl"));
  if (mode != "jsonl" && mode != "files")
    return InvalidArgumentError(std::string(where) + ".mode: must be 'jsonl' or 'files'");
  if (mode == "files" && !first)
    return InvalidArgumentError(std::string(where) +
                                ".mode: a 'files' module must be the first step");
  if (auto it = s.find("args"); it != s.end()) {
    if (!it->is_array())
      return InvalidArgumentError(std::string(where) + ".args: must be a list of strings");
    for (const auto& a : *it)
      if (!a.is_string())
        return InvalidArgumentError(std::string(where) + ".args: must be a list of strings");
  }
  if (auto it = s.find("limits"); it != s.end()) {
    std::string w = std::string(where) + ".limits";
    FS_RETURN_IF_ERROR(
        CheckFields(*it, w, {"memory_mb", "cpus", "max_processes", "timeout_s", "network"}));
    FS_RETURN_IF_ERROR(GetInt(*it, "memory_mb", w, 512, 16, 1 << 20).status());
    FS_RETURN_IF_ERROR(GetInt(*it, "max_processes", w, 64, 1, 100000).status());
    FS_RETURN_IF_ERROR(GetInt(*it, "timeout_s", w, 300, 1, 7 * 86400).status());
    FS_RETURN_IF_ERROR(GetBool(*it, "network", w, false).status());
    if (auto c = it->find("cpus"); c != it->end() && !c->is_null()) {
      if (!c->is_number() || c->get<double>() < 0.01 || c->get<double>() > 1024)
        return InvalidArgumentError(w + ".cpus: must be a number between 0.01 and 1024");
    }
  }
  return Status::Ok();
}

Result<SinkDecl> ParseSink(const json& s, std::string_view where, bool mqtt_trigger) {
  SinkDecl d;
  FS_ASSIGN_OR_RETURN(std::string type, GetString(s, "type", where, true));
  if (type == "file") {
    d.kind = SinkDecl::Kind::kFile;
    FS_RETURN_IF_ERROR(
        CheckFields(s, where, {"type", "share", "path", "format", "compress", "roll"}));
    FS_ASSIGN_OR_RETURN(d.share, GetString(s, "share", where, true));
    FS_ASSIGN_OR_RETURN(d.path, GetString(s, "path", where, false,
                                          mqtt_trigger ? "{pipeline}/{batch}.{ext}"
                                                       : "{dir}/{stem}-v{version}.{ext}"));
    if (d.path.empty() || d.path.size() > 512)
      return InvalidArgumentError(std::string(where) + ".path: must be 1 to 512 bytes");
    FS_ASSIGN_OR_RETURN(d.format, GetString(s, "format", where, false));
    if (!d.format.empty())
      FS_RETURN_IF_ERROR(
          ParseFormat(d.format).status().WithContext(std::string(where) + ".format"));
    FS_ASSIGN_OR_RETURN(std::string compress, GetString(s, "compress", where, false, "none"));
    auto c = ParseCompression(compress);
    if (!c.ok()) return c.status().WithContext(std::string(where) + ".compress");
    d.compress = *c;
    if (auto it = s.find("roll"); it != s.end()) {
      std::string w = std::string(where) + ".roll";
      FS_RETURN_IF_ERROR(CheckFields(*it, w, {"max_records", "max_bytes", "max_age_s"}));
      FS_ASSIGN_OR_RETURN(int64_t r, GetInt(*it, "max_records", w, 10000, 1, 100000000));
      FS_ASSIGN_OR_RETURN(int64_t b, GetInt(*it, "max_bytes", w, 16 << 20, 1024, 1ll << 30));
      FS_ASSIGN_OR_RETURN(d.roll.max_age_s, GetInt(*it, "max_age_s", w, 60, 1, 86400));
      d.roll.max_records = static_cast<uint64_t>(r);
      d.roll.max_bytes = static_cast<uint64_t>(b);
    }
  } else if (type == "mqtt") {
    d.kind = SinkDecl::Kind::kMqtt;
    FS_RETURN_IF_ERROR(CheckFields(s, where, {"type", "topic", "retain"}));
    FS_ASSIGN_OR_RETURN(d.topic, GetString(s, "topic", where, true));
    if (d.topic.empty() || d.topic.find_first_of("+#") != std::string::npos)
      return InvalidArgumentError(std::string(where) +
                                  ".topic: must be a topic name without '+' or '#'");
    FS_ASSIGN_OR_RETURN(d.retain, GetBool(s, "retain", where, false));
  } else if (type == "webhook") {
    d.kind = SinkDecl::Kind::kWebhook;
    FS_RETURN_IF_ERROR(CheckFields(s, where, {"type", "url"}));
    FS_ASSIGN_OR_RETURN(d.url, GetString(s, "url", where, true));
    if (d.url.rfind("http://", 0) != 0 && d.url.rfind("https://", 0) != 0)
      return InvalidArgumentError(std::string(where) + ".url: must be an http:// or https:// URL");
  } else if (type == "alert") {
    d.kind = SinkDecl::Kind::kAlert;
    FS_RETURN_IF_ERROR(CheckFields(s, where, {"type", "message"}));
    FS_ASSIGN_OR_RETURN(
        d.message, GetString(s, "message", where, false, "pipeline {pipeline} matched a record"));
    if (d.message.size() > 1024)
      return InvalidArgumentError(std::string(where) + ".message: at most 1024 bytes");
  } else {
    return InvalidArgumentError(std::string(where) + ".type: unknown sink type '" + type +
                                "' (known: file, mqtt, webhook, alert)");
  }
  return d;
}

// Bounds what a declaration may hold: strings of at most 4 KiB, at most 64 KiB in all.
Status CheckSizes(const json& j, const std::string& where, size_t* total) {
  if (j.is_string()) {
    size_t n = j.get_ref<const std::string&>().size();
    *total += n;
    if (n > 4096) return InvalidArgumentError(where + ": at most 4096 bytes");
  } else if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      *total += it.key().size();
      FS_RETURN_IF_ERROR(
          CheckSizes(it.value(), where.empty() ? it.key() : where + "." + it.key(), total));
    }
  } else if (j.is_array()) {
    if (j.size() > 1024) return InvalidArgumentError(where + ": at most 1024 entries");
    for (size_t i = 0; i < j.size(); ++i)
      FS_RETURN_IF_ERROR(CheckSizes(j[i], where + "[" + std::to_string(i) + "]", total));
  }
  if (*total > 65536) return InvalidArgumentError("the declaration is larger than 64 KiB");
  return Status::Ok();
}

}  // namespace

Result<PipelineDecl> ParsePipeline(const json& doc) {
  PipelineDecl p;
  size_t total = 0;
  FS_RETURN_IF_ERROR(CheckSizes(doc, "", &total));
  FS_RETURN_IF_ERROR(CheckFields(
      doc, "pipeline", {"name", "enabled", "trigger", "input", "steps", "sinks", "retry"}));
  FS_ASSIGN_OR_RETURN(p.name, GetString(doc, "name", "pipeline", true));
  if (!ValidName(p.name))
    return InvalidArgumentError("name: '" + p.name +
                                "' is not a pipeline name (1 to 63 of a-z, 0-9, '-', '_', starting "
                                "with a letter or digit)");
  FS_ASSIGN_OR_RETURN(p.enabled, GetBool(doc, "enabled", "pipeline", true));

  auto tr = doc.find("trigger");
  if (tr == doc.end()) return InvalidArgumentError("trigger: required");
  FS_ASSIGN_OR_RETURN(std::string ttype, GetString(*tr, "type", "trigger", true));
  if (ttype == "file") {
    p.trigger.kind = TriggerDecl::Kind::kFile;
    FS_RETURN_IF_ERROR(CheckFields(*tr, "trigger", {"type", "share", "glob", "settle_ms"}));
    FS_ASSIGN_OR_RETURN(p.trigger.share, GetString(*tr, "share", "trigger", true));
    FS_ASSIGN_OR_RETURN(p.trigger.glob, GetString(*tr, "glob", "trigger", false, "**"));
    FS_ASSIGN_OR_RETURN(p.trigger.settle_ms, GetInt(*tr, "settle_ms", "trigger", 2000, 0, 3600000));
  } else if (ttype == "mqtt") {
    p.trigger.kind = TriggerDecl::Kind::kMqtt;
    FS_RETURN_IF_ERROR(CheckFields(*tr, "trigger", {"type", "topics"}));
    auto t = tr->find("topics");
    if (t == tr->end() || !t->is_array() || t->empty() || t->size() > 64)
      return InvalidArgumentError("trigger.topics: must be a list of 1 to 64 topic filters");
    for (size_t i = 0; i < t->size(); ++i) {
      std::string w = "trigger.topics[" + std::to_string(i) + "]";
      if (!(*t)[i].is_string()) return InvalidArgumentError(w + ": must be a string");
      FS_RETURN_IF_ERROR(CheckTopicFilter((*t)[i].get<std::string>(), w));
      p.trigger.topics.push_back((*t)[i].get<std::string>());
    }
  } else if (ttype == "schedule") {
    p.trigger.kind = TriggerDecl::Kind::kSchedule;
    FS_RETURN_IF_ERROR(CheckFields(*tr, "trigger", {"type", "cron", "share", "glob"}));
    FS_ASSIGN_OR_RETURN(p.trigger.cron, GetString(*tr, "cron", "trigger", true));
    auto c = CronSchedule::Parse(p.trigger.cron);
    if (!c.ok()) return c.status().WithContext("trigger.cron");
    FS_ASSIGN_OR_RETURN(p.trigger.share, GetString(*tr, "share", "trigger", false));
    FS_ASSIGN_OR_RETURN(p.trigger.glob, GetString(*tr, "glob", "trigger", false, "**"));
  } else {
    return InvalidArgumentError("trigger.type: unknown trigger '" + ttype +
                                "' (known: file, mqtt, schedule)");
  }
  if (p.trigger.glob.size() > 512) return InvalidArgumentError("trigger.glob: at most 512 bytes");

  if (auto in = doc.find("input"); in != doc.end()) {
    FS_RETURN_IF_ERROR(CheckFields(*in, "input", {"format", "delimiter", "infer_types"}));
    FS_ASSIGN_OR_RETURN(p.input.format, GetString(*in, "format", "input", false, "auto"));
    if (p.input.format != "auto")
      FS_RETURN_IF_ERROR(ParseFormat(p.input.format).status().WithContext("input.format"));
    FS_ASSIGN_OR_RETURN(std::string delim, GetString(*in, "delimiter", "input", false, ","));
    if (delim == "\\t" || delim == "tab") delim = "\t";
    if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
      return InvalidArgumentError(
          "input.delimiter: must be one character (not a quote or newline)");
    p.input.csv.delimiter = delim[0];
    FS_ASSIGN_OR_RETURN(p.input.csv.infer_types, GetBool(*in, "infer_types", "input", true));
  }

  auto steps = doc.find("steps");
  if (steps != doc.end() && !steps->is_null()) {
    if (!steps->is_array() || steps->size() > 64)
      return InvalidArgumentError("steps: must be a list of at most 64 steps");
    StepContext ctx;
    ctx.hash_key = "declaration-check";
    for (size_t i = 0; i < steps->size(); ++i) {
      const json& s = (*steps)[i];
      std::string w = "steps[" + std::to_string(i) + "]";
      if (!s.is_object()) return InvalidArgumentError(w + ": must be an object");
      auto t = s.find("type");
      if (t != s.end() && t->is_string() && (*t == "infer" || *t == "anonymize")) {
        Status c = *t == "infer" ? CheckInferDecl(s) : CheckAnonymizeDecl(s);
        if (!c.ok()) return c.WithContext(w);
        if (IsImageStep(s) && i != 0) {
          return InvalidArgumentError(w + ": a step that reads an image must be the first step");
        }
        if (*t == "anonymize" && steps->size() > 1) {
          return InvalidArgumentError(
              w + ": anonymize must be the only step (its image goes to the file sinks)");
        }
      } else if (t != s.end() && t->is_string() && *t == "module") {
        FS_RETURN_IF_ERROR(CheckModuleStep(s, w, i == 0));
        if (s.value("mode", "jsonl") == "files" && steps->size() > 1)
          return InvalidArgumentError(w +
                                      ".mode: a 'files' module must be the only step (its output "
                                      "files go to the file sinks)");
      } else {
        auto made = MakeStep(s, ctx);
        if (!made.ok()) return made.status().WithContext(w);
      }
      p.steps.push_back(s);
    }
  }
  if (p.trigger.kind == TriggerDecl::Kind::kMqtt) {
    for (const auto& s : p.steps)
      if (s.value("type", "") == "module" || IsImageStep(s))
        return InvalidArgumentError(
            "steps: MQTT pipelines cannot run module or image steps (feed a file pipeline with "
            "this "
            "pipeline's batches)");
  }

  auto sinks = doc.find("sinks");
  if (sinks == doc.end() || !sinks->is_array() || sinks->empty() || sinks->size() > 16)
    return InvalidArgumentError("sinks: must be a list of 1 to 16 sinks");
  for (size_t i = 0; i < sinks->size(); ++i) {
    std::string w = "sinks[" + std::to_string(i) + "]";
    auto s = ParseSink((*sinks)[i], w, p.trigger.kind == TriggerDecl::Kind::kMqtt);
    if (!s.ok()) return s.status();
    p.sinks.push_back(std::move(*s));
  }

  if (auto r = doc.find("retry"); r != doc.end()) {
    FS_RETURN_IF_ERROR(CheckFields(*r, "retry", {"max_attempts", "backoff_ms", "max_backoff_ms"}));
    FS_ASSIGN_OR_RETURN(int64_t a, GetInt(*r, "max_attempts", "retry", 5, 1, 1000));
    p.retry.max_attempts = static_cast<int>(a);
    FS_ASSIGN_OR_RETURN(p.retry.backoff_ms, GetInt(*r, "backoff_ms", "retry", 2000, 0, 86400000));
    FS_ASSIGN_OR_RETURN(p.retry.max_backoff_ms,
                        GetInt(*r, "max_backoff_ms", "retry", 300000, 0, 86400000));
  }
  p.doc = doc;
  return p;
}

namespace {
bool GlobSegment(std::string_view g, std::string_view s) {
  size_t gi = 0, si = 0, star_g = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (gi < g.size() && g[gi] == '[') {
      size_t close = g.find(']', gi + 1);
      if (close != std::string_view::npos) {
        bool neg = gi + 1 < close && (g[gi + 1] == '!' || g[gi + 1] == '^');
        bool hit = false;
        for (size_t k = gi + 1 + (neg ? 1 : 0); k < close; ++k) {
          if (k + 2 < close && g[k + 1] == '-') {
            hit = hit || (s[si] >= g[k] && s[si] <= g[k + 2]);
            k += 2;
          } else {
            hit = hit || s[si] == g[k];
          }
        }
        if (hit != neg) {
          gi = close + 1;
          ++si;
          continue;
        }
      }
    } else if (gi < g.size() && g[gi] != '*' && (g[gi] == '?' || g[gi] == s[si])) {
      // ('*' is never a literal: "a*" matched "a*" literally and then failed on "a*b".)
      ++gi;
      ++si;
      continue;
    }
    if (gi < g.size() && g[gi] == '*') {
      star_g = gi++;
      star_s = si;
      continue;
    }
    if (star_g != std::string_view::npos) {
      gi = star_g + 1;
      si = ++star_s;
      continue;
    }
    return false;
  }
  while (gi < g.size() && g[gi] == '*') ++gi;
  return gi == g.size();
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    out.push_back(
        s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool GlobParts(const std::vector<std::string_view>& g, size_t gi,
               const std::vector<std::string_view>& p, size_t pi) {
  while (gi < g.size()) {
    if (g[gi] == "**") {
      for (size_t k = pi; k <= p.size(); ++k)
        if (GlobParts(g, gi + 1, p, k)) return true;
      return false;
    }
    if (pi >= p.size() || !GlobSegment(g[gi], p[pi])) return false;
    ++gi;
    ++pi;
  }
  return pi == p.size();
}
}  // namespace

bool GlobMatch(std::string_view glob, std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!glob.empty() && glob.front() == '/') glob.remove_prefix(1);
  return GlobParts(Split(glob), 0, Split(path), 0);
}

bool TopicMatches(std::string_view filter, std::string_view topic) {
  auto f = Split(filter);
  auto t = Split(topic);
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#'))
    return false;
  size_t i = 0;
  for (; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return i == t.size();
}

std::string ExpandTemplate(std::string_view tmpl,
                           const std::vector<std::pair<std::string, std::string>>& vars,
                           const Record* rec) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '{') {
      size_t close = tmpl.find('}', i + 1);
      if (close != std::string_view::npos) {
        std::string_view key = tmpl.substr(i + 1, close - i - 1);
        bool found = false;
        for (const auto& [k, v] : vars) {
          if (k == key) {
            out += v;
            found = true;
            break;
          }
        }
        if (!found && rec != nullptr) {
          if (const Value* v = rec->Get(key)) AppendValue(*v, &out);
        }
        i = close + 1;
        continue;
      }
    }
    out += tmpl[i++];
  }
  return out;
}

}  // namespace fieldstack::compute
