#include "compute/inference/onnxruntime/ort_runtime.h"

#include <dlfcn.h>
#include <onnxruntime_c_api.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <thread>
#include <unordered_map>

#include "common/mutex.h"

#ifndef FS_ONNXRUNTIME_DEFAULT_DIR
#define FS_ONNXRUNTIME_DEFAULT_DIR ".deps/onnxruntime"
#endif

namespace fieldstack::compute::inference::onnxruntime {
namespace {

constexpr const char* kCoreLibrary = "libonnxruntime.so.1";
constexpr const char* kCudaProvider = "libonnxruntime_providers_cuda.so";
constexpr const char* kSharedProvider = "libonnxruntime_providers_shared.so";
constexpr const char* kCudaEpName = "CUDAExecutionProvider";
// What the pinned CUDA provider (ORT 1.29, CUDA 13) needs beyond the driver: its DT_NEEDED
// entries. Dependencies first, so that each later library finds the ones before it loaded.
constexpr const char* kCudaRuntimeLibraries[] = {"libcudart.so.13", "libcublasLt.so.13",
                                                 "libcublas.so.13", "libcurand.so.10"};

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string DlError() {
  const char* e = ::dlerror();
  return e ? e : "unknown dlopen error";
}

// The ORT status as ours (and releases it). A missing file is NotFound whatever `code` says.
Status OrtError(const OrtApi* api, OrtStatus* st, StatusCode code, std::string_view what) {
  std::string msg = std::string(what) + ": " + api->GetErrorMessage(st);
  if (api->GetErrorCode(st) == ORT_NO_SUCHFILE) code = StatusCode::kNotFound;
  api->ReleaseStatus(st);
  return Status(code, std::move(msg));
}

#define FS_ORT_RETURN_IF_ERROR(api, expr, code, what)                                 \
  do {                                                                                \
    if (OrtStatus* fs_ort_st_ = (expr)) return OrtError(api, fs_ort_st_, code, what); \
  } while (0)

struct OrtDeleter {
  const OrtApi* api;
  void operator()(OrtSession* p) const { api->ReleaseSession(p); }
  void operator()(OrtSessionOptions* p) const { api->ReleaseSessionOptions(p); }
  void operator()(OrtValue* p) const { api->ReleaseValue(p); }
  void operator()(OrtTypeInfo* p) const { api->ReleaseTypeInfo(p); }
  void operator()(OrtTensorTypeAndShapeInfo* p) const { api->ReleaseTensorTypeAndShapeInfo(p); }
  void operator()(OrtMemoryInfo* p) const { api->ReleaseMemoryInfo(p); }
};
template <typename T>
using OrtPtr = std::unique_ptr<T, OrtDeleter>;

ElementType FromOnnx(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return ElementType::kFloat32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      return ElementType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      return ElementType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      return ElementType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      return ElementType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
      return ElementType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      return ElementType::kFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      return ElementType::kDouble;
    default:
      return ElementType::kOther;
  }
}

ONNXTensorElementDataType ToOnnx(ElementType t) {
  switch (t) {
    case ElementType::kFloat32:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case ElementType::kUint8:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case ElementType::kInt8:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case ElementType::kInt32:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case ElementType::kInt64:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case ElementType::kBool:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case ElementType::kFloat16:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case ElementType::kDouble:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case ElementType::kOther:
      break;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += shape[i] < 0 ? "?" : std::to_string(shape[i]);
  }
  return s + "]";
}

std::string Describe(const TensorInfo& info) {
  return std::string(ElementTypeName(info.type)) + ShapeString(info.shape);
}

Result<OrtLoggingLevel> ParseLogLevel(std::string_view level) {
  if (level == "verbose") return ORT_LOGGING_LEVEL_VERBOSE;
  if (level == "info") return ORT_LOGGING_LEVEL_INFO;
  if (level == "warning") return ORT_LOGGING_LEVEL_WARNING;
  if (level == "error") return ORT_LOGGING_LEVEL_ERROR;
  if (level == "fatal") return ORT_LOGGING_LEVEL_FATAL;
  return InvalidArgumentError(
      "onnxruntime: log_level must be verbose, info, warning, error or "
      "fatal, not '" +
      std::string(level) + "'");
}

// ORT's messages into our log. Called from ORT's threads; spdlog's default logger is
// thread-safe.
void LogFromOrt(void* /*param*/, OrtLoggingLevel severity, const char* category,
                const char* /*logid*/, const char* /*code_location*/, const char* message) {
  spdlog::level::level_enum level = spdlog::level::debug;
  if (severity >= ORT_LOGGING_LEVEL_FATAL) {
    level = spdlog::level::critical;
  } else if (severity >= ORT_LOGGING_LEVEL_ERROR) {
    level = spdlog::level::err;
  } else if (severity >= ORT_LOGGING_LEVEL_WARNING) {
    level = spdlog::level::warn;
  }
  spdlog::log(level, "onnxruntime [{}]: {}", category ? category : "", message ? message : "");
}

// One ORT core library in this process: opened once, never closed. Its OrtEnv is shared by
// every Runtime over it (ORT keeps one environment per process anyway).
struct OrtLibrary {
  std::string path;
  const OrtApi* api = nullptr;
  std::string version;
  OrtEnv* env = nullptr;

  Mutex mu;
  // The CUDA provider, registered at most once per library (a second registration under the
  // same name fails). Empty `cuda_error` and no devices: not tried yet.
  bool cuda_tried GUARDED_BY(mu) = false;
  std::string cuda_error GUARDED_BY(mu);
  std::vector<const OrtEpDevice*> cuda_devices GUARDED_BY(mu);
};

Result<OrtLibrary*> OpenLibrary(const std::string& path, OrtLoggingLevel level) {
  static Mutex* mu = new Mutex;
  static auto* libraries = new std::map<std::string, OrtLibrary*>;
  MutexLock l(*mu);
  auto it = libraries->find(path);
  if (it != libraries->end()) {
    OrtLibrary* lib = it->second;
    if (OrtStatus* st = lib->api->UpdateEnvWithCustomLogLevel(lib->env, level)) {
      lib->api->ReleaseStatus(st);  // The old level stays; not worth failing for.
    }
    return lib;
  }
  if (!IsFile(path)) {
    return FailedPreconditionError("ONNX Runtime is not installed: no " + path +
                                   " (run scripts/install-deps)");
  }
  // RTLD_LOCAL: ORT's symbols stay out of the global scope, so a second core (the CUDA one)
  // cannot bind to the first one's.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return FailedPreconditionError("ONNX Runtime is not installed: " + DlError());
  using GetApiBaseFn = const OrtApiBase* (*)();
  auto get_api_base = reinterpret_cast<GetApiBaseFn>(::dlsym(handle, "OrtGetApiBase"));
  if (!get_api_base) {
    ::dlclose(handle);
    return FailedPreconditionError("ONNX Runtime is not installed: " + path +
                                   " has no OrtGetApiBase");
  }
  const OrtApiBase* base = get_api_base();
  const OrtApi* api = base->GetApi(ORT_API_VERSION);
  std::string version = base->GetVersionString();
  if (!api) {
    // Keep it loaded: ORT may have started threads in its constructors.
    return FailedPreconditionError("ONNX Runtime is not installed: " + path + " is version " +
                                   version + ", older than API version " +
                                   std::to_string(ORT_API_VERSION));
  }
  OrtEnv* env = nullptr;
  FS_ORT_RETURN_IF_ERROR(
      api, api->CreateEnvWithCustomLogger(LogFromOrt, nullptr, level, "fieldstack", &env),
      StatusCode::kFailedPrecondition, "onnxruntime: creating the environment");
  auto* lib = new OrtLibrary;
  lib->path = path;
  lib->api = api;
  lib->version = std::move(version);
  lib->env = env;
  (*libraries)[path] = lib;
  return lib;
}

// Registers the CUDA provider in `lib` (once) and returns its devices, or why not.
Result<std::vector<const OrtEpDevice*>> RegisterCuda(OrtLibrary* lib,
                                                     const std::string& provider_path) {
  MutexLock l(lib->mu);
  if (!lib->cuda_tried) {
    lib->cuda_tried = true;
    const OrtApi* api = lib->api;
    if (OrtStatus* st =
            api->RegisterExecutionProviderLibrary(lib->env, "CUDA", provider_path.c_str())) {
      lib->cuda_error =
          std::string("registering the CUDA provider failed: ") + api->GetErrorMessage(st);
      api->ReleaseStatus(st);
    } else {
      const OrtEpDevice* const* devices = nullptr;
      size_t n = 0;
      if (OrtStatus* st2 = api->GetEpDevices(lib->env, &devices, &n)) {
        lib->cuda_error =
            std::string("listing the CUDA provider's devices failed: ") + api->GetErrorMessage(st2);
        api->ReleaseStatus(st2);
        n = 0;
      }
      for (size_t i = 0; i < n; ++i) {
        if (std::strcmp(api->EpDevice_EpName(devices[i]), kCudaEpName) != 0) continue;
        const OrtHardwareDevice* hw = api->EpDevice_Device(devices[i]);
        if (hw && api->HardwareDevice_Type(hw) == OrtHardwareDeviceType_GPU) {
          lib->cuda_devices.push_back(devices[i]);
        }
      }
      if (lib->cuda_devices.empty() && lib->cuda_error.empty()) {
        lib->cuda_error = "the CUDA provider found no device";
      }
    }
  }
  if (!lib->cuda_error.empty()) return FailedPreconditionError(lib->cuda_error);
  return lib->cuda_devices;
}

// A counting semaphore: at most `limit` holders at once (0: no limit).
class RunSlots {
 public:
  explicit RunSlots(int limit) : limit_(limit), free_(limit) {}
  void Acquire() {
    if (limit_ == 0) return;
    MutexLock l(mu_);
    cv_.wait(mu_, [&]() NO_THREAD_SAFETY_ANALYSIS { return free_ > 0; });
    --free_;
  }
  void Release() {
    if (limit_ == 0) return;
    {
      MutexLock l(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  const int limit_;
  Mutex mu_;
  CondVar cv_;
  int free_ GUARDED_BY(mu_);
};

class SlotHold {
 public:
  explicit SlotHold(RunSlots& s) : s_(s) { s_.Acquire(); }
  ~SlotHold() { s_.Release(); }
  SlotHold(const SlotHold&) = delete;
  SlotHold& operator=(const SlotHold&) = delete;

 private:
  RunSlots& s_;
};

// What a runtime and its sessions share. Immutable after MakeOnnxRuntime, except the slots.
struct RuntimeState {
  OrtLibrary* lib = nullptr;
  OrtRuntimeOptions options;
  std::vector<const OrtEpDevice*> cuda_devices;  // index N is "cuda:N"
  std::string gpu_reason;                        // why cuda_devices is empty
  std::string provider_dir;                      // where the CUDA provider came from
  std::unique_ptr<RunSlots> cpu_slots;
  std::vector<std::unique_ptr<RunSlots>> gpu_slots;  // per cuda device
};

class OrtSessionImpl final : public Session {
 public:
  OrtSessionImpl(std::shared_ptr<RuntimeState> state, OrtPtr<OrtSession> session,
                 std::string device, std::string fallback_reason, RunSlots* slots)
      : state_(std::move(state)),
        session_(std::move(session)),
        device_(std::move(device)),
        fallback_reason_(std::move(fallback_reason)),
        slots_(slots) {}

  // Reads the declared inputs and outputs.
  Status Introspect() {
    const OrtApi* api = state_->lib->api;
    FS_ORT_RETURN_IF_ERROR(api, api->GetAllocatorWithDefaultOptions(&allocator_),
                           StatusCode::kInternal, "onnxruntime: allocator");
    OrtMemoryInfo* mem = nullptr;
    FS_ORT_RETURN_IF_ERROR(api,
                           api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem),
                           StatusCode::kInternal, "onnxruntime: memory info");
    cpu_memory_ = OrtPtr<OrtMemoryInfo>(mem, OrtDeleter{api});
    size_t n = 0;
    FS_ORT_RETURN_IF_ERROR(api, api->SessionGetInputCount(session_.get(), &n),
                           StatusCode::kInternal, "onnxruntime: input count");
    for (size_t i = 0; i < n; ++i) {
      FS_ASSIGN_OR_RETURN(TensorInfo info, Declared(i, /*input=*/true));
      input_index_[info.name] = inputs_.size();
      inputs_.push_back(std::move(info));
    }
    FS_ORT_RETURN_IF_ERROR(api, api->SessionGetOutputCount(session_.get(), &n),
                           StatusCode::kInternal, "onnxruntime: output count");
    for (size_t i = 0; i < n; ++i) {
      FS_ASSIGN_OR_RETURN(TensorInfo info, Declared(i, /*input=*/false));
      outputs_.push_back(std::move(info));
    }
    for (const auto& i : inputs_) input_names_.push_back(i.name.c_str());
    for (const auto& o : outputs_) output_names_.push_back(o.name.c_str());
    return Status::Ok();
  }

  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }
  const std::string& device() const override { return device_; }
  const std::string& fallback_reason() const override { return fallback_reason_; }

  Result<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) override {
    const OrtApi* api = state_->lib->api;
    FS_RETURN_IF_ERROR(Check(inputs));

    // The values borrow the callers' buffers: ORT does not write to inputs.
    std::vector<OrtPtr<OrtValue>> owned;
    std::vector<const OrtValue*> values(inputs_.size(), nullptr);
    static uint8_t empty_buffer[8];
    for (const Tensor& t : inputs) {
      size_t idx = input_index_.at(t.name);
      void* data = t.data.empty() ? empty_buffer : const_cast<uint8_t*>(t.data.data());
      OrtValue* v = nullptr;
      FS_ORT_RETURN_IF_ERROR(
          api,
          api->CreateTensorWithDataAsOrtValue(cpu_memory_.get(), data, t.data.size(),
                                              t.shape.data(), t.shape.size(), ToOnnx(t.type), &v),
          StatusCode::kInvalidArgument, "onnxruntime: input '" + t.name + "'");
      owned.emplace_back(v, OrtDeleter{api});
      values[idx] = v;
    }
    std::vector<OrtValue*> out(outputs_.size(), nullptr);
    {
      SlotHold hold(*slots_);
      OrtStatus* st =
          api->Run(session_.get(), nullptr, input_names_.data(), values.data(), values.size(),
                   output_names_.data(), output_names_.size(), out.data());
      if (st) return OrtError(api, st, StatusCode::kInternal, "onnxruntime: run");
    }
    std::vector<OrtPtr<OrtValue>> results;
    for (OrtValue* v : out) results.emplace_back(v, OrtDeleter{api});

    std::vector<Tensor> tensors;
    tensors.reserve(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      FS_ASSIGN_OR_RETURN(Tensor t, CopyOut(outputs_[i].name, results[i].get()));
      tensors.push_back(std::move(t));
    }
    return tensors;
  }

 private:
  Result<TensorInfo> Declared(size_t i, bool input) {
    const OrtApi* api = state_->lib->api;
    const char* kind = input ? "input" : "output";
    char* name_raw = nullptr;
    OrtStatus* st = input ? api->SessionGetInputName(session_.get(), i, allocator_, &name_raw)
                          : api->SessionGetOutputName(session_.get(), i, allocator_, &name_raw);
    if (st) return OrtError(api, st, StatusCode::kInternal, std::string("onnxruntime: ") + kind);
    TensorInfo info;
    info.name = name_raw;
    if (OrtStatus* free_st = api->AllocatorFree(allocator_, name_raw)) api->ReleaseStatus(free_st);

    OrtTypeInfo* ti_raw = nullptr;
    st = input ? api->SessionGetInputTypeInfo(session_.get(), i, &ti_raw)
               : api->SessionGetOutputTypeInfo(session_.get(), i, &ti_raw);
    if (st) return OrtError(api, st, StatusCode::kInternal, std::string("onnxruntime: ") + kind);
    OrtPtr<OrtTypeInfo> ti(ti_raw, OrtDeleter{api});
    ONNXType onnx_type = ONNX_TYPE_UNKNOWN;
    FS_ORT_RETURN_IF_ERROR(api, api->GetOnnxTypeFromTypeInfo(ti.get(), &onnx_type),
                           StatusCode::kInternal, "onnxruntime: type of " + info.name);
    if (onnx_type != ONNX_TYPE_TENSOR) {
      // Sequences, maps, optionals: declared, but Run refuses them.
      info.type = ElementType::kOther;
      return info;
    }
    const OrtTensorTypeAndShapeInfo* tti = nullptr;  // owned by `ti`
    FS_ORT_RETURN_IF_ERROR(api, api->CastTypeInfoToTensorInfo(ti.get(), &tti),
                           StatusCode::kInternal, "onnxruntime: tensor of " + info.name);
    ONNXTensorElementDataType et = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    FS_ORT_RETURN_IF_ERROR(api, api->GetTensorElementType(tti, &et), StatusCode::kInternal,
                           "onnxruntime: element type of " + info.name);
    info.type = FromOnnx(et);
    size_t rank = 0;
    FS_ORT_RETURN_IF_ERROR(api, api->GetDimensionsCount(tti, &rank), StatusCode::kInternal,
                           "onnxruntime: rank of " + info.name);
    info.shape.resize(rank);
    FS_ORT_RETURN_IF_ERROR(api, api->GetDimensions(tti, info.shape.data(), rank),
                           StatusCode::kInternal, "onnxruntime: shape of " + info.name);
    for (int64_t& d : info.shape) {
      if (d < 0) d = -1;
    }
    return info;
  }

  // Checks the request against the declared inputs so that nothing wrong reaches ORT.
  Status Check(const std::vector<Tensor>& inputs) const {
    std::vector<bool> seen(inputs_.size(), false);
    for (const Tensor& t : inputs) {
      auto it = input_index_.find(t.name);
      if (it == input_index_.end()) {
        std::string names;
        for (const auto& i : inputs_) names += (names.empty() ? "" : ", ") + i.name;
        return InvalidArgumentError("inference: the model has no input '" + t.name +
                                    "' (inputs: " + names + ")");
      }
      if (seen[it->second]) {
        return InvalidArgumentError("inference: input '" + t.name + "' given twice");
      }
      seen[it->second] = true;
      const TensorInfo& want = inputs_[it->second];
      const std::string expected = " (expected " + Describe(want) + ")";
      if (want.type == ElementType::kOther) {
        return InvalidArgumentError("inference: input '" + t.name +
                                    "' has an element type or kind this runtime does not "
                                    "convert (sequence, map, string, ...)");
      }
      TensorInfo got{t.name, t.type, t.shape};
      if (t.type != want.type) {
        return InvalidArgumentError("inference: input '" + t.name + "' is " + Describe(got) +
                                    expected);
      }
      if (t.shape.size() != want.shape.size()) {
        return InvalidArgumentError("inference: input '" + t.name + "' has rank " +
                                    std::to_string(t.shape.size()) + expected);
      }
      size_t elements = 1;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        if (t.shape[d] < 0 || (want.shape[d] >= 0 && t.shape[d] != want.shape[d])) {
          return InvalidArgumentError("inference: input '" + t.name + "' has shape " +
                                      ShapeString(t.shape) + expected);
        }
        if (__builtin_mul_overflow(elements, static_cast<size_t>(t.shape[d]), &elements)) {
          return InvalidArgumentError("inference: input '" + t.name + "' shape " +
                                      ShapeString(t.shape) + " overflows");
        }
      }
      size_t bytes = 0;
      if (__builtin_mul_overflow(elements, ElementSize(t.type), &bytes)) {
        return InvalidArgumentError("inference: input '" + t.name + "' shape " +
                                    ShapeString(t.shape) + " overflows");
      }
      if (bytes != t.data.size()) {
        return InvalidArgumentError(
            "inference: input '" + t.name + "' has " + std::to_string(t.data.size()) +
            " bytes of data; shape " + ShapeString(t.shape) + " of " +
            std::string(ElementTypeName(t.type)) + " needs " + std::to_string(bytes));
      }
    }
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!seen[i]) {
        return InvalidArgumentError("inference: input '" + inputs_[i].name + "' is missing" +
                                    " (expected " + Describe(inputs_[i]) + ")");
      }
    }
    return Status::Ok();
  }

  Result<Tensor> CopyOut(const std::string& name, OrtValue* v) const {
    const OrtApi* api = state_->lib->api;
    if (!v) return InternalError("inference: output '" + name + "' was not produced");
    ONNXType kind = ONNX_TYPE_UNKNOWN;
    FS_ORT_RETURN_IF_ERROR(api, api->GetValueType(v, &kind), StatusCode::kInternal,
                           "onnxruntime: output '" + name + "'");
    if (kind != ONNX_TYPE_TENSOR) {
      return InvalidArgumentError("inference: output '" + name +
                                  "' is not a tensor (a sequence, map or optional); not "
                                  "supported");
    }
    OrtTensorTypeAndShapeInfo* tti_raw = nullptr;
    FS_ORT_RETURN_IF_ERROR(api, api->GetTensorTypeAndShape(v, &tti_raw), StatusCode::kInternal,
                           "onnxruntime: output '" + name + "'");
    OrtPtr<OrtTensorTypeAndShapeInfo> tti(tti_raw, OrtDeleter{api});
    ONNXTensorElementDataType et = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    FS_ORT_RETURN_IF_ERROR(api, api->GetTensorElementType(tti.get(), &et), StatusCode::kInternal,
                           "onnxruntime: output '" + name + "'");
    Tensor t;
    t.name = name;
    t.type = FromOnnx(et);
    if (t.type == ElementType::kOther) {
      return InvalidArgumentError("inference: output '" + name +
                                  "' has an element type this runtime does not convert (ONNX "
                                  "type " +
                                  std::to_string(static_cast<int>(et)) + ")");
    }
    size_t rank = 0;
    FS_ORT_RETURN_IF_ERROR(api, api->GetDimensionsCount(tti.get(), &rank), StatusCode::kInternal,
                           "onnxruntime: output '" + name + "'");
    t.shape.resize(rank);
    FS_ORT_RETURN_IF_ERROR(api, api->GetDimensions(tti.get(), t.shape.data(), rank),
                           StatusCode::kInternal, "onnxruntime: output '" + name + "'");
    size_t bytes = t.elements() * ElementSize(t.type);
    t.data.resize(bytes);
    if (bytes > 0) {
      void* src = nullptr;
      FS_ORT_RETURN_IF_ERROR(api, api->GetTensorMutableData(v, &src), StatusCode::kInternal,
                             "onnxruntime: output '" + name + "'");
      std::memcpy(t.data.data(), src, bytes);
    }
    return t;
  }

  const std::shared_ptr<RuntimeState> state_;
  const OrtPtr<OrtSession> session_;
  const std::string device_;
  const std::string fallback_reason_;
  RunSlots* const slots_;                                           // owned by state_
  OrtAllocator* allocator_ = nullptr;                               // ORT's default; not owned
  OrtPtr<OrtMemoryInfo> cpu_memory_{nullptr, OrtDeleter{nullptr}};  // where inputs live
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
  std::unordered_map<std::string, size_t> input_index_;
  std::vector<const char*> input_names_;   // point into inputs_
  std::vector<const char*> output_names_;  // point into outputs_
};

class OrtRuntime final : public Runtime {
 public:
  explicit OrtRuntime(std::shared_ptr<RuntimeState> state) : state_(std::move(state)) {}

  Result<std::shared_ptr<Session>> Load(const std::string& path,
                                        const SessionOptions& options) override {
    // Which device: "cuda:N" when asked for and usable; "cpu" otherwise, with the reason.
    int cuda_index = -1;
    std::string fallback_reason;
    const std::string& dev = options.device;
    if (dev == "cuda" || dev.starts_with("cuda:")) {
      cuda_index = 0;
      if (dev != "cuda") {
        std::string n = dev.substr(5);
        if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos) {
          return InvalidArgumentError("inference: bad device '" + dev + "'");
        }
        cuda_index = std::stoi(n);
      }
      if (state_->cuda_devices.empty()) {
        return FailedPreconditionError("inference: device " + dev +
                                       " asked for, but no GPU can be used: " + state_->gpu_reason);
      }
      if (cuda_index >= static_cast<int>(state_->cuda_devices.size())) {
        return FailedPreconditionError("inference: device " + dev + " asked for, but only " +
                                       std::to_string(state_->cuda_devices.size()) +
                                       " CUDA device(s) are present");
      }
    } else if (dev == "auto") {
      if (!state_->cuda_devices.empty()) {
        cuda_index = 0;
      } else {
        fallback_reason = state_->gpu_reason;
      }
    } else if (dev != "cpu") {
      return InvalidArgumentError("inference: device must be auto, cpu, cuda or cuda:N, not '" +
                                  dev + "'");
    }
    if (options.intra_op_threads < 0) {
      return InvalidArgumentError("inference: intra_op_threads must be >= 0");
    }

    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "inference: model " + path);
    if (!S_ISREG(st.st_mode)) {
      return InvalidArgumentError("inference: model " + path + " is not a regular file");
    }

    if (cuda_index >= 0) {
      auto s = Create(path, options, cuda_index);
      if (s.ok() || dev != "auto") return s;
      if (s.status().code() == StatusCode::kNotFound) return s;
      // The model may still load on CPU (e.g. an operator the CUDA provider rejects).
      fallback_reason = "the CUDA session failed: " + s.status().message();
      spdlog::warn("inference: {} runs on cpu: {}", path, fallback_reason);
    }
    return Create(path, options, -1, fallback_reason);
  }

  std::string Describe() const override {
    const OrtApi* api = state_->lib->api;
    std::string s = "onnxruntime " + state_->lib->version + " (" + state_->lib->path + ")";
    char** providers = nullptr;
    int n = 0;
    if (OrtStatus* st = api->GetAvailableProviders(&providers, &n)) {
      api->ReleaseStatus(st);
    } else {
      s += "; providers built in:";
      for (int i = 0; i < n; ++i) s += std::string(i ? ", " : " ") + providers[i];
      if (OrtStatus* rel = api->ReleaseAvailableProviders(providers, n)) api->ReleaseStatus(rel);
    }
    if (state_->cuda_devices.empty()) {
      s += "; GPU: none (" + state_->gpu_reason + ")";
    } else {
      s += "; GPU: " + std::to_string(state_->cuda_devices.size()) + " CUDA device(s) via " +
           state_->provider_dir;
    }
    return s;
  }

 private:
  Result<std::shared_ptr<Session>> Create(const std::string& path, const SessionOptions& options,
                                          int cuda_index, std::string fallback_reason = "") {
    const OrtApi* api = state_->lib->api;
    OrtSessionOptions* so_raw = nullptr;
    FS_ORT_RETURN_IF_ERROR(api, api->CreateSessionOptions(&so_raw), StatusCode::kInternal,
                           "onnxruntime: session options");
    OrtPtr<OrtSessionOptions> so(so_raw, OrtDeleter{api});
    int threads = options.intra_op_threads;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    FS_ORT_RETURN_IF_ERROR(api, api->SetIntraOpNumThreads(so.get(), threads), StatusCode::kInternal,
                           "onnxruntime: threads");
    FS_ORT_RETURN_IF_ERROR(api, api->SetInterOpNumThreads(so.get(), 1), StatusCode::kInternal,
                           "onnxruntime: threads");
    FS_ORT_RETURN_IF_ERROR(api,
                           api->AddSessionConfigEntry(so.get(), "session.intra_op.allow_spinning",
                                                      state_->options.allow_spinning ? "1" : "0"),
                           StatusCode::kInternal, "onnxruntime: spinning");
    std::string device = "cpu";
    RunSlots* slots = state_->cpu_slots.get();
    if (cuda_index >= 0) {
      // Provider options of the CUDA execution provider (its OrtCUDAProviderOptionsV2 keys).
      std::vector<std::string> keys = {"device_id"};
      std::vector<std::string> values = {std::to_string(cuda_index)};
      if (options.gpu_memory_limit_bytes > 0) {
        keys.push_back("gpu_mem_limit");
        values.push_back(std::to_string(options.gpu_memory_limit_bytes));
        // Grow the arena by what is asked for, not by doubling: a limit then means what it says.
        keys.push_back("arena_extend_strategy");
        values.push_back("kSameAsRequested");
      }
      std::vector<const char*> k, v;
      for (size_t i = 0; i < keys.size(); ++i) {
        k.push_back(keys[i].c_str());
        v.push_back(values[i].c_str());
      }
      const OrtEpDevice* ep = state_->cuda_devices[cuda_index];
      FS_ORT_RETURN_IF_ERROR(api,
                             api->SessionOptionsAppendExecutionProvider_V2(
                                 so.get(), state_->lib->env, &ep, 1, k.data(), v.data(), k.size()),
                             StatusCode::kFailedPrecondition, "onnxruntime: CUDA provider");
      device = "cuda:" + std::to_string(cuda_index);
      slots = state_->gpu_slots[cuda_index].get();
    }
    OrtSession* session_raw = nullptr;
    FS_ORT_RETURN_IF_ERROR(
        api, api->CreateSession(state_->lib->env, path.c_str(), so.get(), &session_raw),
        StatusCode::kInvalidArgument, "inference: loading " + path);
    auto session =
        std::make_shared<OrtSessionImpl>(state_, OrtPtr<OrtSession>(session_raw, OrtDeleter{api}),
                                         std::move(device), std::move(fallback_reason), slots);
    FS_RETURN_IF_ERROR(session->Introspect());
    return std::shared_ptr<Session>(std::move(session));
  }

  const std::shared_ptr<RuntimeState> state_;
};

// dlopen of one CUDA runtime library, from `dirs` first, then the loader's path.
Status LoadCudaLibrary(const std::string& name, const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    std::string path = dir + "/" + name;
    if (IsFile(path) && ::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) return Status::Ok();
  }
  if (::dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL)) return Status::Ok();
  return FailedPreconditionError(DlError());
}

}  // namespace

std::string DefaultOnnxRuntimeDir() { return FS_ONNXRUNTIME_DEFAULT_DIR; }

GpuProbe ProbeCudaGpu(const OrtRuntimeOptions& options) {
  GpuProbe probe;
  if (::access("/dev/nvidia0", F_OK) != 0) {
    probe.reason = "no NVIDIA GPU: /dev/nvidia0 is missing";
    return probe;
  }
  // The driver library stays loaded: ORT's CUDA provider needs it too.
  void* cuda = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!cuda) {
    probe.reason = "no NVIDIA driver: " + DlError();
    return probe;
  }
  using CuInitFn = int (*)(unsigned);
  using CuDeviceGetCountFn = int (*)(int*);
  auto cu_init = reinterpret_cast<CuInitFn>(::dlsym(cuda, "cuInit"));
  auto cu_count = reinterpret_cast<CuDeviceGetCountFn>(::dlsym(cuda, "cuDeviceGetCount"));
  if (!cu_init || !cu_count) {
    probe.reason = "libcuda.so.1 lacks cuInit or cuDeviceGetCount";
    return probe;
  }
  if (int rc = cu_init(0); rc != 0) {
    probe.reason = "the NVIDIA driver did not start (cuInit returned " + std::to_string(rc) + ")";
    return probe;
  }
  int count = 0;
  if (int rc = cu_count(&count); rc != 0 || count <= 0) {
    probe.reason = "the NVIDIA driver reports no CUDA device (cuDeviceGetCount returned " +
                   std::to_string(rc) + ")";
    return probe;
  }
  if (options.provider_dir.empty()) {
    probe.reason = "the CUDA provider is not configured (no provider directory)";
    return probe;
  }
  for (const char* f : {kCudaProvider, kSharedProvider, kCoreLibrary}) {
    if (!IsFile(options.provider_dir + "/" + f)) {
      probe.reason = "the CUDA provider is not installed: no " + options.provider_dir + "/" + f;
      return probe;
    }
  }
  for (const char* lib : kCudaRuntimeLibraries) {
    if (Status s = LoadCudaLibrary(lib, options.cuda_library_dirs); !s.ok()) {
      probe.reason = "the CUDA runtime libraries the provider needs are missing: " + s.message();
      return probe;
    }
  }
  probe.cuda_devices = count;
  return probe;
}

Result<std::unique_ptr<Runtime>> MakeOnnxRuntime(const OrtRuntimeOptions& options) {
  FS_ASSIGN_OR_RETURN(OrtLoggingLevel level, ParseLogLevel(options.log_level));
  if (options.max_concurrent_cpu_runs < 0 || options.max_concurrent_gpu_runs < 0) {
    return InvalidArgumentError("onnxruntime: run limits must be >= 0");
  }
  auto state = std::make_shared<RuntimeState>();
  state->options = options;

  std::string cpu_core =
      options.library_path.empty() ? DefaultOnnxRuntimeDir() + "/lib" : options.library_path;
  if (IsDirectory(cpu_core)) cpu_core += std::string("/") + kCoreLibrary;

  GpuProbe probe = ProbeCudaGpu(options);
  state->gpu_reason = probe.reason;
  if (probe.cuda_devices > 0) {
    // The provider's own core: a provider only works with the core it was built with.
    std::string core = options.provider_dir + "/" + kCoreLibrary;
    auto lib = OpenLibrary(core, level);
    if (!lib.ok()) {
      state->gpu_reason =
          "the CUDA provider's core library did not load: " + lib.status().message();
    } else {
      auto devices = RegisterCuda(*lib, options.provider_dir + "/" + kCudaProvider);
      if (devices.ok()) {
        state->lib = *lib;
        state->cuda_devices = *devices;
        state->gpu_reason.clear();
        state->provider_dir = options.provider_dir;
      } else {
        // That core serves CPU sessions as well as the CPU one would.
        state->lib = *lib;
        state->gpu_reason = devices.status().message();
      }
    }
  }
  if (!state->lib) {
    FS_ASSIGN_OR_RETURN(state->lib, OpenLibrary(cpu_core, level));
  }
  state->cpu_slots = std::make_unique<RunSlots>(options.max_concurrent_cpu_runs);
  for (size_t i = 0; i < state->cuda_devices.size(); ++i) {
    state->gpu_slots.push_back(std::make_unique<RunSlots>(options.max_concurrent_gpu_runs));
  }
  if (state->cuda_devices.empty() && probe.cuda_devices > 0) {
    // A GPU is there but cannot be used: a degraded mode.
    spdlog::warn("inference: ONNX Runtime {} on CPU only: {}", state->lib->version,
                 state->gpu_reason);
  } else if (state->cuda_devices.empty()) {
    spdlog::info("inference: ONNX Runtime {} on CPU only: {}", state->lib->version,
                 state->gpu_reason);
  } else {
    spdlog::info("inference: ONNX Runtime {} with {} CUDA device(s)", state->lib->version,
                 state->cuda_devices.size());
  }
  return std::unique_ptr<Runtime>(std::make_unique<OrtRuntime>(std::move(state)));
}

}  // namespace fieldstack::compute::inference::onnxruntime
