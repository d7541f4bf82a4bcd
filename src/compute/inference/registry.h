#pragma once

// ModelRegistry: the ONNX models stored on the box, by name and version (docs/inference.md).
//
// Layout: <dir>/<name>/<version>/model.onnx and meta.json (sha256, size, time, the inputs and
// outputs the runtime found). A model is registered only after the runtime loaded it (a file
// that is not a usable model is refused and nothing is kept); it is written to a temporary
// file, fsynced and renamed into place, so a crash never leaves half a model. Versions count
// up from 1 per name; old versions stay until removed.
//
// ModelCache: sessions loaded once per (model file, device options) and shared by every
// pipeline that uses them; a removed version's session is dropped from the cache.
//
// Thread safety: all methods may be called from any thread.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "compute/inference/inference.h"

namespace fieldstack::compute::inference {

struct ModelVersion {
  std::string name;
  int version = 0;
  std::string sha256;  // hex of the .onnx file
  uint64_t size_bytes = 0;
  int64_t created_ns = 0;
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::string path;  // of model.onnx
};

class ModelRegistry {
 public:
  // `runtime` checks and introspects models (may be null: then Add refuses with
  // FailedPrecondition).
  static Result<std::unique_ptr<ModelRegistry>> Open(const std::string& dir, Runtime* runtime);

  // Registers `bytes` as the next version of `name` ([a-z0-9][a-z0-9._-]{0,62}).
  // InvalidArgument for a bad name or a file that is not a usable model (the runtime's reason).
  Result<ModelVersion> Add(const std::string& name, std::string_view bytes);
  // Registers a file already on the box (copied in).
  Result<ModelVersion> AddFile(const std::string& name, const std::string& path);
  Result<std::vector<ModelVersion>> List();
  // Version 0: the newest. NotFound when missing.
  Result<ModelVersion> Get(const std::string& name, int version = 0);
  // Removes one version (or every version with 0). NotFound when missing.
  Status Remove(const std::string& name, int version);

 private:
  ModelRegistry(std::string dir, Runtime* runtime) : dir_(std::move(dir)), runtime_(runtime) {}
  Result<ModelVersion> ReadMeta(const std::string& name, int version);
  std::string dir_;
  Runtime* runtime_;
  Mutex mu_;  // serialises Add and Remove
};

class ModelCache {
 public:
  explicit ModelCache(Runtime* runtime) : runtime_(runtime) {}
  // The shared session of `model` on `options`' device, loading it on first use.
  Result<std::shared_ptr<Session>> Get(const ModelVersion& model, const SessionOptions& options);
  // Drops sessions of `path` (after a version is removed).
  void Forget(const std::string& path);

 private:
  Runtime* runtime_;
  Mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_ GUARDED_BY(mu_);
};

std::string TensorInfoJson(const TensorInfo& t);  // {"name":..,"type":..,"shape":[..]}

}  // namespace fieldstack::compute::inference
