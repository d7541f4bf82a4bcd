#pragma once

// Inference steps of pipelines (docs/inference.md): "infer" runs a registered ONNX model on an
// image file or on columns of each record; "anonymize" finds faces in an image and blurs or
// blacks them out.
//
//   {"type": "infer", "model": "blazeface", "version": 0, "device": "auto",
//    "input": {"image": {"width": 128, "height": 128, "letterbox": true, "layout": "nchw",
//                        "order": "rgb", "scale": 0.00784314, "mean": [1, 1, 1], "std": [1, 1, 1]}}
//           | {"columns": ["a", "b"]},
//    "output": {"decode": "blazeface", "min_score": 0.5, "iou": 0.3}
//            | {"decode": "classes", "softmax": true, "top_k": 5, "labels": ["cat", "dog"]}
//            | {"decode": "tensor"},
//    "batch": {"max_size": 8, "max_latency_ms": 5}}   (concurrent runs merged: batcher.h)
//   {"type": "anonymize", "model": "blazeface", "mode": "blur" | "black", "min_score": 0.5,
//    "margin": 0.15, "format": "same" | "png" | "jpeg", "device": "auto"}
//
// An image step is the first step of its pipeline and reads the whole input file (at most
// 64 MiB). "infer" on an image gives one record per detection or class (with the input's
// path), which the following record steps and the sinks take; "anonymize" gives the edited
// image to the file sinks and one summary record ({path, faces}) to the other sinks. "infer"
// on columns is a record step: it appends "class", "label" and "score" (classes) or "output"
// (the tensor as a JSON array) to each record.
//
// Thread safety: a step is used by one run at a time; sessions are shared (ModelCache).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "compute/inference/image.h"
#include "compute/inference/registry.h"
#include "compute/record.h"
#include "compute/step.h"

namespace fieldstack::compute {

struct InferenceContext {
  inference::ModelRegistry* models = nullptr;
  inference::ModelCache* sessions = nullptr;
  int intra_op_threads = 0;
  uint64_t gpu_memory_limit_bytes = 0;  // per session on a GPU; 0: the provider's default
};

// Checks a declaration without loading the model (pipeline.cc): InvalidArgument naming the
// field.
Status CheckInferDecl(const nlohmann::json& decl);
Status CheckAnonymizeDecl(const nlohmann::json& decl);
// True when the step reads an image file (anonymize, or infer with input.image).
bool IsImageStep(const nlohmann::json& decl);

// "infer" on an image: the records it gives.
Result<std::vector<Record>> InferImage(const nlohmann::json& decl, const InferenceContext& ctx,
                                       std::string_view image_bytes, const std::string& path);
struct AnonymizedImage {
  std::string bytes;
  std::string format;  // "png" or "jpeg"
  size_t faces = 0;
};
Result<AnonymizedImage> AnonymizeImage(const nlohmann::json& decl, const InferenceContext& ctx,
                                       std::string_view image_bytes);
// "infer" on record columns, as a record step.
Result<std::unique_ptr<Step>> MakeInferRecordStep(const nlohmann::json& decl,
                                                  const InferenceContext& ctx);

}  // namespace fieldstack::compute
