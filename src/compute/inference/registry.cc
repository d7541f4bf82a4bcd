#include "compute/inference/registry.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "compute/inference/batcher.h"
#include "crypto/hash.h"
#include "crypto/key_store.h"
#include "platform/file.h"

namespace fieldstack::compute::inference {
namespace {

using json = nlohmann::json;

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 63) return false;
  if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9'))) return false;
  return n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos;
}

json InfoJson(const TensorInfo& t) {
  return {{"name", t.name}, {"type", std::string(ElementTypeName(t.type))}, {"shape", t.shape}};
}

TensorInfo InfoFrom(const json& j) {
  TensorInfo t;
  t.name = j.value("name", "");
  std::string type = j.value("type", "");
  for (ElementType e :
       {ElementType::kFloat32, ElementType::kUint8, ElementType::kInt8, ElementType::kInt32,
        ElementType::kInt64, ElementType::kBool, ElementType::kFloat16, ElementType::kDouble}) {
    if (ElementTypeName(e) == type) t.type = e;
  }
  if (j.contains("shape") && j["shape"].is_array())
    t.shape = j["shape"].get<std::vector<int64_t>>();
  return t;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string TensorInfoJson(const TensorInfo& t) { return InfoJson(t).dump(); }

Result<std::unique_ptr<ModelRegistry>> ModelRegistry::Open(const std::string& dir,
                                                           Runtime* runtime) {
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir, 0711));
  // Temporary files of an Add a crash interrupted.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().starts_with(".tmp-"))
      std::filesystem::remove_all(e.path(), ec);
  }
  return std::unique_ptr<ModelRegistry>(new ModelRegistry(dir, runtime));
}

Result<ModelVersion> ModelRegistry::Add(const std::string& name, std::string_view bytes) {
  if (!ValidName(name)) {
    return InvalidArgumentError(
        "name: '" + name +
        "' is not a model name (1 to 63 of a-z, 0-9, '.', '_', '-', starting with a "
        "letter or digit)");
  }
  if (bytes.empty()) return InvalidArgumentError("the model file is empty");
  if (runtime_ == nullptr) return FailedPreconditionError("no inference runtime on this box");
  MutexLock l(mu_);
  // Written whole and checked by the runtime before it gets a version.
  std::string tmp_dir = dir_ + "/.tmp-" + name;
  std::error_code ec;
  std::filesystem::remove_all(tmp_dir, ec);
  FS_RETURN_IF_ERROR(platform::MakeDirs(tmp_dir, 0711));
  std::string tmp = tmp_dir + "/model.onnx";
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(tmp, bytes, 0644));
  SessionOptions cpu;
  cpu.device = "cpu";
  cpu.intra_op_threads = 1;
  auto session = runtime_->Load(tmp, cpu);
  if (!session.ok()) {
    std::filesystem::remove_all(tmp_dir, ec);
    return InvalidArgumentError("not a usable ONNX model: " + session.status().message());
  }
  int version = 1;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/" + name, ec)) {
    std::string v = e.path().filename().string();
    if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos && v.size() < 9) {
      version = std::max(version, std::stoi(v) + 1);
    }
  }
  ec.clear();
  ModelVersion m;
  m.name = name;
  m.version = version;
  m.sha256 = crypto::ToHex(crypto::Digest::Sha256(bytes));
  m.size_bytes = bytes.size();
  m.created_ns = NowNs();
  m.inputs = (*session)->inputs();
  m.outputs = (*session)->outputs();
  json meta = {{"name", name},
               {"version", version},
               {"sha256", m.sha256},
               {"size_bytes", m.size_bytes},
               {"created_ns", m.created_ns}};
  meta["inputs"] = json::array();
  for (const auto& t : m.inputs) meta["inputs"].push_back(InfoJson(t));
  meta["outputs"] = json::array();
  for (const auto& t : m.outputs) meta["outputs"].push_back(InfoJson(t));
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(tmp_dir + "/meta.json", meta.dump(2) + "\n", 0644));
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir_ + "/" + name, 0711));
  std::string final_dir = dir_ + "/" + name + "/" + std::to_string(version);
  std::filesystem::rename(tmp_dir, final_dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "install model " + name);
  FS_RETURN_IF_ERROR(platform::SyncDir(dir_ + "/" + name));
  m.path = final_dir + "/model.onnx";
  return m;
}

Result<ModelVersion> ModelRegistry::AddFile(const std::string& name, const std::string& path) {
  // The model is read whole (ONNX Runtime loads it whole too); bounded so that a mistyped path
  // to a disk image cannot exhaust memory.
  constexpr uint64_t kMaxModelBytes = 4ull << 30;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) > kMaxModelBytes) {
    return InvalidArgumentError("'" + path +
                                "' is larger than 4 GiB; that is not a model this box can load");
  }
  FS_ASSIGN_OR_RETURN(std::string bytes, platform::ReadFileToString(path));
  return Add(name, bytes);
}

Result<ModelVersion> ModelRegistry::ReadMeta(const std::string& name, int version) {
  std::string d = dir_ + "/" + name + "/" + std::to_string(version);
  auto text = platform::ReadFileToString(d + "/meta.json");
  if (!text.ok())
    return NotFoundError("no model '" + name + "' version " + std::to_string(version));
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object())
    return CorruptionError("model '" + name + "' version " + std::to_string(version) +
                           ": bad meta.json");
  ModelVersion m;
  m.name = name;
  m.version = version;
  m.sha256 = j.value("sha256", "");
  m.size_bytes = j.value("size_bytes", uint64_t{0});
  m.created_ns = j.value("created_ns", int64_t{0});
  for (const auto& t : j.value("inputs", json::array())) m.inputs.push_back(InfoFrom(t));
  for (const auto& t : j.value("outputs", json::array())) m.outputs.push_back(InfoFrom(t));
  m.path = d + "/model.onnx";
  return m;
}

Result<std::vector<ModelVersion>> ModelRegistry::List() {
  std::vector<ModelVersion> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_directory() || !ValidName(name)) continue;
    std::error_code ec2;
    for (const auto& v : std::filesystem::directory_iterator(e.path(), ec2)) {
      std::string vs = v.path().filename().string();
      if (vs.empty() || vs.size() > 8 || vs.find_first_not_of("0123456789") != std::string::npos)
        continue;
      auto m = ReadMeta(name, std::stoi(vs));
      if (m.ok()) out.push_back(std::move(*m));
    }
  }
  std::sort(out.begin(), out.end(), [](const ModelVersion& a, const ModelVersion& b) {
    return a.name != b.name ? a.name < b.name : a.version < b.version;
  });
  return out;
}

Result<ModelVersion> ModelRegistry::Get(const std::string& name, int version) {
  if (!ValidName(name)) return NotFoundError("no model '" + name + "'");
  if (version > 0) return ReadMeta(name, version);
  // The newest: the highest version folder of this name only (called for every run).
  int newest = 0;
  std::error_code ec;
  for (const auto& v : std::filesystem::directory_iterator(dir_ + "/" + name, ec)) {
    std::string vs = v.path().filename().string();
    if (vs.empty() || vs.size() > 8 || vs.find_first_not_of("0123456789") != std::string::npos)
      continue;
    newest = std::max(newest, std::stoi(vs));
  }
  if (newest == 0) return NotFoundError("no model '" + name + "'");
  return ReadMeta(name, newest);
}

Status ModelRegistry::Remove(const std::string& name, int version) {
  if (!ValidName(name)) return NotFoundError("no model '" + name + "'");
  MutexLock l(mu_);
  std::error_code ec;
  std::string d = dir_ + "/" + name + (version > 0 ? "/" + std::to_string(version) : "");
  if (!std::filesystem::exists(d, ec)) {
    return NotFoundError("no model '" + name + "'" +
                         (version > 0 ? " version " + std::to_string(version) : ""));
  }
  std::filesystem::remove_all(d, ec);
  if (ec) return ErrnoStatus(ec.value(), "remove model " + name);
  return Status::Ok();
}

Result<std::shared_ptr<Session>> ModelCache::Get(const ModelVersion& model,
                                                 const SessionOptions& options) {
  std::string key =
      model.path + "|" + options.device + "|" + std::to_string(options.intra_op_threads) + "|" +
      std::to_string(options.gpu_memory_limit_bytes) + "|" + std::to_string(options.max_batch) +
      "|" + std::to_string(options.max_batch_latency_ms);
  {
    MutexLock l(mu_);
    auto it = sessions_.find(key);
    if (it != sessions_.end()) return it->second;
  }
  // Loaded outside the lock (it can take seconds); a concurrent first use may load twice and
  // one copy wins.
  FS_ASSIGN_OR_RETURN(std::shared_ptr<Session> s, runtime_->Load(model.path, options));
  if (options.max_batch > 1) {
    s = MakeBatchingSession(std::move(s), {options.max_batch, options.max_batch_latency_ms});
  }
  MutexLock l(mu_);
  auto [it, inserted] = sessions_.emplace(key, s);
  return it->second;
}

void ModelCache::Forget(const std::string& path) {
  MutexLock l(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->first.starts_with(path + "|")) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace fieldstack::compute::inference
