#pragma once

// Inference: running ONNX models on the box (docs/inference.md). The seam between compute
// steps and an inference runtime; the ONNX Runtime adapter lives in onnxruntime/ and is the
// only code that names ONNX Runtime's API.
//
// A Runtime loads models into Sessions. A Session is loaded once and shared by every pipeline
// that uses the model (ModelCache), is safe to Run from several threads, and reports the
// device it runs on. Devices: "cpu", or "cuda:N" when an NVIDIA GPU and the CUDA execution
// provider are present; "auto" picks the GPU when there is one and says why not otherwise.
//
// Thread safety: Runtime and Session methods may be called from any thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace fieldstack::compute::inference {

enum class ElementType {
  kFloat32,
  kUint8,
  kInt8,
  kInt32,
  kInt64,
  kBool,
  kFloat16,
  kDouble,
  kOther
};
std::string_view ElementTypeName(ElementType t);
size_t ElementSize(ElementType t);  // bytes; 0 for kOther

// A tensor's name, element type and shape as the model declares them (-1: a dynamic
// dimension, e.g. the batch).
struct TensorInfo {
  std::string name;
  ElementType type = ElementType::kFloat32;
  std::vector<int64_t> shape;
};

// A dense tensor in row-major order. data.size() == ElementSize(type) * product(shape).
struct Tensor {
  std::string name;
  ElementType type = ElementType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  static Tensor Float(std::string name, std::vector<int64_t> shape,
                      const std::vector<float>& values);
  size_t elements() const;
  const float* floats() const { return reinterpret_cast<const float*>(data.data()); }
  float* mutable_floats() { return reinterpret_cast<float*>(data.data()); }
};

struct SessionOptions {
  std::string device = "auto";          // "auto", "cpu" or "cuda" (fails when no GPU can be used)
  int intra_op_threads = 0;             // 0: the box's cores
  uint64_t gpu_memory_limit_bytes = 0;  // 0: the provider's default
  // Batching across concurrent runs (batcher.h; ModelCache applies it): 1 = none.
  size_t max_batch = 1;
  int64_t max_batch_latency_ms = 5;
};

class Session {
 public:
  virtual ~Session() = default;
  virtual const std::vector<TensorInfo>& inputs() const = 0;
  virtual const std::vector<TensorInfo>& outputs() const = 0;
  // "cpu" or "cuda:0".
  virtual const std::string& device() const = 0;
  // Why the session is not on a GPU when "auto" was asked ("no NVIDIA GPU", "the CUDA provider
  // is not installed: ..."), empty otherwise.
  virtual const std::string& fallback_reason() const = 0;
  // Runs the model on `inputs` (by name, each matching its TensorInfo: type, rank, fixed
  // dimensions). InvalidArgument naming the input and the expected shape for a mismatch;
  // Internal for a runtime failure (its message included).
  virtual Result<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) = 0;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Loads the model at `path`. InvalidArgument for a file that is not a usable ONNX model (the
  // runtime's message included: corrupt protobuf, unsupported operator, bad shapes);
  // NotFound for a missing file. Never crashes on a bad model.
  virtual Result<std::shared_ptr<Session>> Load(const std::string& path,
                                                const SessionOptions& options) = 0;
  // One line: runtime and version, providers available, GPUs seen.
  virtual std::string Describe() const = 0;
};

}  // namespace fieldstack::compute::inference
