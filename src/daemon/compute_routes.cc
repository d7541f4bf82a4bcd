// The management API's compute routes: pipelines, their runs and dead letters, stored modules
// and the compute service's state (api/openapi.yaml, docs/compute.md).

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "compute/inference/registry.h"
#include "compute/pipeline.h"
#include "crypto/hash.h"
#include "daemon/api_routes.h"
#include "daemon/box.h"
#include "daemon/compute_service.h"

namespace fieldstack::daemon {
namespace {

using json = nlohmann::json;
using management::Access;
using management::ApiRequest;
using management::ApiResponse;
using management::Verb;

std::string TriggerKind(const json& doc) {
  const json& t = doc.value("trigger", json::object());
  return t.is_object() ? t.value("type", std::string()) : std::string();
}

Result<ComputeService*> Compute(ApiContext* cx) {
  ComputeService* c = cx->box.compute();
  if (c == nullptr) return UnavailableError("compute is not running on this box");
  return c;
}

json StatusJson(const compute::PipelineStatus& s) {
  return {
      {"pending", s.pending},   {"dead_letters", s.dead},       {"buffered_messages", s.buffered},
      {"runs_ok", s.runs_ok},   {"runs_failed", s.runs_failed}, {"rows_in", s.rows_in},
      {"rows_out", s.rows_out}, {"last_run_ns", s.last_run_ns}, {"last_error", s.last_error}};
}

json PipelineJson(ApiContext* cx, const json& doc) {
  json j;
  std::string name = doc.value("name", std::string());
  j["name"] = name;
  j["enabled"] = doc.value("enabled", true);
  j["trigger"] = TriggerKind(doc);
  j["declaration"] = doc;
  if (ComputeService* c = cx->box.compute()) {
    auto st = c->engine().GetStatus(name);
    if (st.ok()) j["status"] = StatusJson(*st);
  }
  return j;
}

// What the API refuses in a declaration and ParsePipeline (which also reads the config file's
// TOML, where neither can occur) lets through: JSON null, read there as "left out", and
// control characters other than tab in strings. InvalidArgument naming the field.
Status CheckApiValues(const json& j, const std::string& where) {
  if (j.is_null()) return InvalidArgumentError(where + ": must not be null (leave it out)");
  if (j.is_string()) {
    for (unsigned char c : j.get_ref<const std::string&>()) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return InvalidArgumentError(where + ": must be text without control characters");
      }
    }
  } else if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      FS_RETURN_IF_ERROR(
          CheckApiValues(it.value(), where.empty() ? it.key() : where + "." + it.key()));
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      FS_RETURN_IF_ERROR(CheckApiValues(j[i], where + "[" + std::to_string(i) + "]"));
    }
  }
  return Status::Ok();
}

// A declaration from a request body, checked against the settings.
Result<json> Declaration(ApiContext* cx, const ApiRequest& req, const std::string& name) {
  if (!req.body.is_object()) {
    return InvalidArgumentError("the body must be a pipeline declaration (a JSON object)");
  }
  FS_RETURN_IF_ERROR(CheckApiValues(req.body, ""));
  json doc = req.body;
  if (!name.empty()) {
    if (doc.contains("name") && doc["name"] != name) {
      return InvalidArgumentError("field 'name' must be '" + name + "' (the pipeline in the path)");
    }
    doc["name"] = name;
  }
  auto parsed = compute::ParsePipeline(doc);
  if (!parsed.ok()) return InvalidArgumentError(parsed.status().message());
  Status s = CheckPipeline(cx->box.config(), doc);
  if (!s.ok()) return InvalidArgumentError(s.message());
  return doc;
}

Result<int64_t> IdParam(const ApiRequest& req) {
  const std::string& v = req.params.at("id");
  int64_t id = 0;
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgumentError("the dead letter id '" + v + "' is not a number");
  }
  id = std::stoll(v);
  return id;
}

Status KnownPipeline(ApiContext* cx, const std::string& name) {
  for (const auto& d : cx->box.config().pipelines) {
    if (d.value("name", std::string()) == name) return Status::Ok();
  }
  return NotFoundError("no pipeline '" + name + "'");
}

json ModelJson(const compute::inference::ModelVersion& m) {
  auto tensors = [](const std::vector<compute::inference::TensorInfo>& ts) {
    json a = json::array();
    for (const auto& t : ts) a.push_back(json::parse(compute::inference::TensorInfoJson(t)));
    return a;
  };
  return {{"name", m.name},
          {"version", m.version},
          {"sha256", m.sha256},
          {"size_bytes", m.size_bytes},
          {"created_ns", m.created_ns},
          {"inputs", tensors(m.inputs)},
          {"outputs", tensors(m.outputs)}};
}

Result<compute::inference::ModelRegistry*> Models(ApiContext* cx) {
  ComputeService* c = cx->box.compute();
  if (c == nullptr) return UnavailableError("compute is not running on this box");
  if (c->models() == nullptr) {
    return FailedPreconditionError("inference is not available on this box: " +
                                   c->inference_error());
  }
  return c->models();
}

Result<int> VersionParam(const ApiRequest& req) {
  const std::string& v = req.params.at("version");
  if (v.empty() || v.size() > 8 || v.find_first_not_of("0123456789") != std::string::npos ||
      v == "0") {
    return InvalidArgumentError("the version '" + v + "' is not a version number");
  }
  return std::stoi(v);
}

}  // namespace

void RegisterComputeRoutes(ApiContext& ctx) {
  ApiContext* cx = &ctx;
  auto& api = ctx.api;

  api.Add(Verb::get, "/api/v1/compute", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
    json j = c->Describe();
    j["pipelines"] = cx->box.config().pipelines.size();
    return ApiResponse::Json(j);
  });

  api.Add(Verb::get, "/api/v1/pipelines", Access::kReader,
          [cx](ApiRequest&) -> Result<ApiResponse> {
            json out = json::array();
            for (const auto& d : cx->box.config().pipelines) out.push_back(PipelineJson(cx, d));
            return ApiResponse::Json({{"pipelines", out}});
          });
  api.Add(Verb::post, "/api/v1/pipelines", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(json doc, Declaration(cx, req, ""));
            std::string name = doc["name"];
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
              for (const auto& d : c.pipelines) {
                if (d.value("name", std::string()) == name) {
                  return AlreadyExistsError("pipeline '" + name + "' exists");
                }
              }
              c.pipelines.push_back(doc);
              return Status::Ok();
            }));
            return ApiResponse::Json(PipelineJson(cx, doc), 201);
          });
  api.Add(Verb::get, "/api/v1/pipelines/{name}", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            for (const auto& d : cx->box.config().pipelines) {
              if (d.value("name", std::string()) == req.params["name"]) {
                return ApiResponse::Json(PipelineJson(cx, d));
              }
            }
            return NotFoundError("no pipeline '" + req.params["name"] + "'");
          });
  api.Add(Verb::put, "/api/v1/pipelines/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            const std::string name = req.params["name"];
            FS_RETURN_IF_ERROR(KnownPipeline(cx, name));
            FS_ASSIGN_OR_RETURN(json doc, Declaration(cx, req, name));
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
              for (auto& d : c.pipelines) {
                if (d.value("name", std::string()) == name) {
                  d = doc;
                  return Status::Ok();
                }
              }
              return NotFoundError("no pipeline '" + name + "'");
            }));
            return ApiResponse::Json(PipelineJson(cx, doc));
          });
  api.Add(Verb::delete_, "/api/v1/pipelines/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            const std::string name = req.params["name"];
            FS_RETURN_IF_ERROR(cx->box.Update([&](Config& c) -> Status {
              auto it = std::find_if(c.pipelines.begin(), c.pipelines.end(), [&](const json& d) {
                return d.value("name", std::string()) == name;
              });
              if (it == c.pipelines.end()) return NotFoundError("no pipeline '" + name + "'");
              c.pipelines.erase(it);
              return Status::Ok();
            }));
            return ApiResponse::NoContent();
          });
  api.Add(Verb::post, "/api/v1/pipelines/{name}/run", Access::kOperator,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(
                management::CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            FS_RETURN_IF_ERROR(KnownPipeline(cx, req.params["name"]));
            FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
            FS_RETURN_IF_ERROR(c->engine().RunNow(req.params["name"]));
            return ApiResponse::Json({{"queued", true}}, 202);
          });
  api.Add(Verb::get, "/api/v1/pipelines/{name}/runs", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(KnownPipeline(cx, req.params["name"]));
            FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
            FS_ASSIGN_OR_RETURN(int64_t limit, req.QueryInt("limit", 50, 1, 1000));
            FS_ASSIGN_OR_RETURN(int64_t before, req.QueryInt("before", 0, 0, INT64_MAX));
            FS_ASSIGN_OR_RETURN(auto runs, c->engine().Runs(req.params["name"], before,
                                                            static_cast<size_t>(limit)));
            json out = json::array();
            for (const auto& r : runs) {
              out.push_back({{"id", r.id},
                             {"item", r.item},
                             {"started_ns", r.started_ns},
                             {"duration_ms", r.duration_ms},
                             {"rows_in", r.rows_in},
                             {"rows_out", r.rows_out},
                             {"result", r.result},
                             {"error", r.error},
                             {"log", r.log}});
            }
            return ApiResponse::Json({{"runs", out}});
          });
  api.Add(Verb::get, "/api/v1/pipelines/{name}/dead-letters", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(KnownPipeline(cx, req.params["name"]));
            FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
            FS_ASSIGN_OR_RETURN(int64_t limit, req.QueryInt("limit", 100, 1, 1000));
            FS_ASSIGN_OR_RETURN(
                auto dead, c->engine().DeadLetters(req.params["name"], static_cast<size_t>(limit)));
            json out = json::array();
            for (const auto& d : dead) {
              out.push_back({{"id", d.id},
                             {"item", d.item},
                             {"attempts", d.attempts},
                             {"error", d.error},
                             {"failed_ns", d.failed_ns}});
            }
            return ApiResponse::Json({{"dead_letters", out}});
          });
  api.Add(Verb::post, "/api/v1/pipelines/{name}/dead-letters/{id}/retry", Access::kOperator,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(
                management::CheckBody(req.body.is_null() ? json::object() : req.body, {}));
            FS_RETURN_IF_ERROR(KnownPipeline(cx, req.params["name"]));
            FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
            FS_ASSIGN_OR_RETURN(int64_t id, IdParam(req));
            FS_RETURN_IF_ERROR(c->engine().RetryDead(req.params["name"], id));
            return ApiResponse::Json({{"queued", true}}, 202);
          });
  api.Add(Verb::delete_, "/api/v1/pipelines/{name}/dead-letters/{id}", Access::kOperator,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(KnownPipeline(cx, req.params["name"]));
            FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
            FS_ASSIGN_OR_RETURN(int64_t id, IdParam(req));
            FS_RETURN_IF_ERROR(c->engine().DiscardDead(req.params["name"], id));
            return ApiResponse::NoContent();
          });

  api.Add(Verb::get, "/api/v1/modules", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
    FS_ASSIGN_OR_RETURN(auto mods, c->Modules());
    json out = json::array();
    for (const auto& m : mods) {
      out.push_back({{"name", m.name},
                     {"size_bytes", m.size_bytes},
                     {"modified_ns", m.mtime_ns},
                     {"sha256", m.sha256}});
    }
    return ApiResponse::Json({{"modules", out}});
  });
  api.Add(Verb::put, "/api/v1/modules/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(management::CheckBody(
                req.body, {{"content_base64", management::FieldType::kString, true, 48 << 20}}));
            FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
            std::string b64 = req.body["content_base64"];
            std::string content = crypto::Base64Decode(b64);
            if (content.empty()) {
              return InvalidArgumentError(
                  "field 'content_base64' must be the module's bytes in base64");
            }
            FS_RETURN_IF_ERROR(c->PutModule(req.params["name"], content));
            return ApiResponse::Json({{"name", req.params["name"]},
                                      {"size_bytes", content.size()},
                                      {"sha256", crypto::ToHex(crypto::Digest::Sha256(content))}});
          });
  api.Add(Verb::delete_, "/api/v1/modules/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(ComputeService * c, Compute(cx));
            for (const auto& d : cx->box.config().pipelines) {
              for (const auto& s : d.value("steps", json::array())) {
                if (s.is_object() && s.value("module", std::string()) == req.params["name"]) {
                  return FailedPreconditionError("pipeline '" + d.value("name", std::string()) +
                                                 "' uses this module; change it first");
                }
              }
            }
            FS_RETURN_IF_ERROR(c->DeleteModule(req.params["name"]));
            return ApiResponse::NoContent();
          });
  // ---- models (inference) ----
  api.Add(Verb::get, "/api/v1/models", Access::kReader, [cx](ApiRequest&) -> Result<ApiResponse> {
    FS_ASSIGN_OR_RETURN(auto* models, Models(cx));
    FS_ASSIGN_OR_RETURN(auto all, models->List());
    json out = json::array();
    for (const auto& m : all) out.push_back(ModelJson(m));
    return ApiResponse::Json({{"models", out}});
  });
  api.Add(Verb::get, "/api/v1/models/{name}", Access::kReader,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(auto* models, Models(cx));
            FS_ASSIGN_OR_RETURN(auto all, models->List());
            json versions = json::array();
            for (const auto& m : all) {
              if (m.name == req.params["name"]) versions.push_back(ModelJson(m));
            }
            if (versions.empty()) return NotFoundError("no model '" + req.params["name"] + "'");
            return ApiResponse::Json({{"name", req.params["name"]}, {"versions", versions}});
          });
  api.Add(Verb::post, "/api/v1/models/{name}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_RETURN_IF_ERROR(management::CheckBody(
                req.body, {{"content_base64", management::FieldType::kString, false, 48 << 20},
                           {"path", management::FieldType::kString, false, 1024}}));
            FS_ASSIGN_OR_RETURN(auto* models, Models(cx));
            bool has_content = req.body.contains("content_base64");
            bool has_path = req.body.contains("path");
            if (has_content == has_path) {
              return InvalidArgumentError(
                  "give exactly one of field 'content_base64' (the .onnx file) and field 'path' (a "
                  "file on the box)");
            }
            Result<compute::inference::ModelVersion> added = InvalidArgumentError("unset");
            if (has_content) {
              std::string content =
                  crypto::Base64Decode(req.body["content_base64"].get<std::string>());
              if (content.empty()) {
                return InvalidArgumentError(
                    "field 'content_base64' must be the model's bytes in base64");
              }
              added = models->Add(req.params["name"], content);
            } else {
              std::string path = req.body["path"];
              if (path.empty() || path[0] != '/')
                return InvalidArgumentError("field 'path' must be an absolute path on the box");
              // Only a regular file the daemon can read: a folder fails the read (500), and a
              // FIFO or a device would block it or read without end.
              std::error_code ec;
              auto type = std::filesystem::status(path, ec).type();
              if (type == std::filesystem::file_type::not_found) {
                return InvalidArgumentError("field 'path': no file " + path + " on the box");
              }
              if (ec) return InvalidArgumentError("field 'path': " + path + ": " + ec.message());
              if (type != std::filesystem::file_type::regular) {
                return InvalidArgumentError("field 'path': " + path + " is not a regular file");
              }
              if (::access(path.c_str(), R_OK) != 0) {
                return InvalidArgumentError("field 'path': the daemon cannot read " + path);
              }
              added = models->AddFile(req.params["name"], path);
              if (added.status().code() == StatusCode::kNotFound) {
                return InvalidArgumentError("field 'path': " + added.status().message());
              }
            }
            if (!added.ok()) return added.status();
            return ApiResponse::Json(ModelJson(*added), 201);
          });
  api.Add(Verb::delete_, "/api/v1/models/{name}/{version}", Access::kAdmin,
          [cx](ApiRequest& req) -> Result<ApiResponse> {
            FS_ASSIGN_OR_RETURN(auto* models, Models(cx));
            FS_ASSIGN_OR_RETURN(int version, VersionParam(req));
            FS_ASSIGN_OR_RETURN(auto m, models->Get(req.params["name"], version));
            FS_ASSIGN_OR_RETURN(auto newest, models->Get(req.params["name"], 0));
            for (const auto& d : cx->box.config().pipelines) {
              for (const auto& s : d.value("steps", json::array())) {
                int wants = !s.is_object() ? -1
                            : s.contains("version") && s["version"].is_number_integer()
                                ? s["version"].get<int>()
                                : 0;
                if (s.is_object() && s.value("model", std::string()) == m.name &&
                    (wants == version || (wants == 0 && newest.version == version))) {
                  return FailedPreconditionError("pipeline '" + d.value("name", std::string()) +
                                                 "' uses this model; change it first");
                }
              }
            }
            FS_RETURN_IF_ERROR(models->Remove(m.name, version));
            cx->box.compute()->ForgetModel(m.path);
            return ApiResponse::NoContent();
          });
}

}  // namespace fieldstack::daemon
