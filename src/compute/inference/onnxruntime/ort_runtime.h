#pragma once

// The ONNX Runtime adapter of the inference seam (inference.h), through ORT's versioned C API.
//
// Loading. The ORT core library is opened with dlopen at MakeOnnxRuntime, not linked, so that
//   - a box without ONNX Runtime still starts (MakeOnnxRuntime says FailedPrecondition and the
//     daemon runs without inference), and
//   - the core can be chosen at run time: the CUDA provider is only usable with the core library
//     it was built with (the pinned ones: ORT 1.29 core + CUDA 13 provider in `provider_dir`),
//     while the CPU path uses the newer core in `library_path` (ORT 1.30). The headers are 1.29
//     (ORT_API_VERSION 29); a newer core serves an older API version.
// A process loads one core library per path and never unloads it (ORT keeps threads and
// globals); every Runtime over that path shares one OrtEnv.
//
// GPU. Detected once, at MakeOnnxRuntime, before ORT is asked anything about CUDA (creating a
// CUDA session without a GPU throws inside ORT): /dev/nvidia0 exists, libcuda.so.1 loads and
// cuInit + cuDeviceGetCount report a device, the provider files are in `provider_dir`, and the
// CUDA runtime libraries the provider needs load (from `cuda_library_dirs` or the loader's
// path). Then the provider library is registered as a plugin execution provider
// (RegisterExecutionProviderLibrary) and its devices become "cuda:0", "cuda:1", ... When any
// step fails the reason is kept: "auto" sessions run on CPU and report it as fallback_reason
// (and log it once per runtime), "cuda" sessions fail with FailedPrecondition naming it.
//
// Running. Inputs are checked against the model's declared inputs before ORT sees them (name,
// element type, rank, fixed dimensions, byte size), so a bad request never reaches ORT's
// allocator. Each device has a run limit (a counting semaphore shared by the runtime's
// sessions): several pipelines share one GPU without each claiming its memory at once.
//
// Thread safety: MakeOnnxRuntime, Runtime and Session methods may be called from any thread.
// Sessions keep the loaded library alive and may outlive the Runtime that made them.

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "compute/inference/inference.h"

namespace fieldstack::compute::inference::onnxruntime {

// Where scripts/install-deps unpacks ONNX Runtime: the source tree's .deps/onnxruntime, with
// lib/ (the CPU core) and cuda/ (the CUDA provider and its core).
std::string DefaultOnnxRuntimeDir();

struct OrtRuntimeOptions {
  // The ORT core library: a libonnxruntime.so.1 file, or a directory holding one.
  // Empty: DefaultOnnxRuntimeDir() + "/lib".
  std::string library_path;
  // A directory with libonnxruntime_providers_cuda.so, libonnxruntime_providers_shared.so and
  // the core library they were built with (libonnxruntime.so.1); that core replaces
  // `library_path` when a GPU is usable. Empty: CPU only.
  std::string provider_dir;
  // Directories searched first for the CUDA runtime libraries the provider needs (libcudart,
  // libcublas, libcublasLt, libcurand); the loader's path (LD_LIBRARY_PATH) after them.
  std::vector<std::string> cuda_library_dirs;
  // ORT's own messages at or above this level go to our log: "verbose", "info", "warning",
  // "error" or "fatal".
  std::string log_level = "warning";
  // Runs in flight at once per device, over all sessions of this runtime; 0: no limit.
  int max_concurrent_cpu_runs = 0;
  int max_concurrent_gpu_runs = 2;
  // ORT's intra-op threads spin while waiting for work: lower latency, but they burn cores
  // that other pipelines on the box could use. Off by default.
  bool allow_spinning = false;
};

// What GPU detection found; nothing is loaded into ORT. `reason` says why no GPU can be used
// and is empty when `cuda_devices` > 0 (the driver's device count).
struct GpuProbe {
  int cuda_devices = 0;
  std::string reason;
};
GpuProbe ProbeCudaGpu(const OrtRuntimeOptions& options);

// Loads ONNX Runtime as `options` say. FailedPrecondition "ONNX Runtime is not installed: ..."
// when the core library is missing or unusable (too old for API version 29); InvalidArgument
// for a bad option. A missing GPU is not an error: the runtime serves CPU sessions.
Result<std::unique_ptr<Runtime>> MakeOnnxRuntime(const OrtRuntimeOptions& options = {});

}  // namespace fieldstack::compute::inference::onnxruntime
