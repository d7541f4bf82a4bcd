// Inference benchmark (issue 10): the BlazeFace face detector through our "infer" pipeline step
// against a bare loop over ONNX Runtime's C API, in the same process and run.
//
//   inference_bench [--images N] [--rounds N] [--threads N]
//
// The model: .deps/models/blazeface/face_detection_front_128x128_barracuda.onnx (input
// `input:0`, float NHWC [1,128,128,3] in [-1, 1]; outputs split by anchor grid). Its batch
// dimension is fixed at 1 (checked at start), so "batch 8" is 8 images run as 8 calls, in both
// paths, and its latency is that of the whole group.
//
// The images: 8 of scikit-image's sample photos (PNG and JPEG, 451x300 to 1411x1411), held encoded
// in memory; every measure cycles through them. Each image is decoded, letterboxed to 128x128
// (aspect kept, black padding), normalised, run, and its boxes decoded, by:
//   - ours: compute::InferImage, what the engine calls for an `infer` step with an image input
//     and `decode: blazeface`, over a ModelRegistry and ModelCache in a temp dir (as the daemon
//     builds them): registry lookup, the shared session, DecodeImage, ResizeLetterbox, ToTensor,
//     Session::Run (input checks, ORT run, outputs copied out), joining the split outputs,
//     DecodeBlazeFace (anchors, sigmoid, NMS) and one record per face;
//   - bare: the least code that does the same work: stbi_load_from_memory, stbir_resize (the
//     same triangle filter as ours) straight into the letterbox, one normalising loop into an
//     input buffer bound once to an OrtValue, OrtApi::Run, then threshold, box decoding and NMS
//     over the raw outputs.
// The machine's limit: OrtApi::Run alone on a pre-made tensor (and our Session::Run on the same
// tensor, which adds the input checks and the output copies).
// Both sessions: intra-op threads = --threads (0: the box's cores), inter-op 1, no spinning
// (our runtime's default; ORT's own default spins, measured once at the end for comparison),
// ORT's default graph optimisations. The same ORT library file (.deps/onnxruntime/lib), opened
// once (dlopen returns the same handle to both).
//
// Ours and bare run interleaved, one image (or group of 8) each in turn, the one going first
// alternating, so that load from outside falls on both alike; each path's images/s is its
// images over its own time. Every figure is the median over rounds of that round's value. The
// astronaut photo's face is checked in both paths before anything is timed.
//
// Prints markdown tables (bench/RESULTS.md records them).

#include <dlfcn.h>
#include <onnxruntime_c_api.h>
#include <stb_image.h>
#include <stb_image_resize.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine.h"
#include "compute/infer_step.h"
#include "compute/inference/image.h"
#include "compute/inference/onnxruntime/ort_runtime.h"
#include "compute/inference/registry.h"
#include "platform/file.h"

using namespace fieldstack;
using json = nlohmann::json;
namespace inf = fieldstack::compute::inference;
namespace fsys = std::filesystem;

namespace {

constexpr const char* kModel =
    FS_SOURCE_DIR "/.deps/models/blazeface/face_detection_front_128x128_barracuda.onnx";
constexpr const char* kOrtLibrary = FS_SOURCE_DIR "/.deps/onnxruntime/lib/libonnxruntime.so.1";
constexpr const char* kImageDir = "/usr/lib/python3/dist-packages/skimage/data/";
// Colour photos (grey ones are expanded to RGB by both decoders); astronaut.png first.
constexpr const char* kImages[] = {"astronaut.png", "chelsea.png",          "coffee.png",
                                   "rocket.jpg",    "motorcycle_left.png",  "ihc.png",
                                   "retina.jpg",    "hubble_deep_field.jpg"};
constexpr int kSize = 128;
constexpr float kMinScore = 0.5f;
constexpr float kIou = 0.3f;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "inference_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

// ---- Bare: ONNX Runtime's C API, stb for the image ----

const OrtApi* g_api = nullptr;

void OrtCheck(OrtStatus* st, const char* what) {
  if (st == nullptr) return;
  std::string msg = std::string(what) + ": " + g_api->GetErrorMessage(st);
  g_api->ReleaseStatus(st);
  Die(msg);
}

struct BareFace {
  float x0, y0, x1, y1, score;
};

class BareDetector {
 public:
  // `spinning`: ORT's session.intra_op.allow_spinning.
  BareDetector(OrtEnv* env, int threads, bool spinning) {
    OrtSessionOptions* so = nullptr;
    OrtCheck(g_api->CreateSessionOptions(&so), "session options");
    OrtCheck(g_api->SetIntraOpNumThreads(so, threads), "threads");
    OrtCheck(g_api->SetInterOpNumThreads(so, 1), "threads");
    OrtCheck(
        g_api->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", spinning ? "1" : "0"),
        "spinning");
    OrtCheck(g_api->CreateSession(env, kModel, so, &session_), "create session");
    g_api->ReleaseSessionOptions(so);
    OrtMemoryInfo* mem = nullptr;
    OrtCheck(g_api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "memory");
    const int64_t shape[] = {1, kSize, kSize, 3};
    OrtCheck(g_api->CreateTensorWithDataAsOrtValue(mem, input_.data(),
                                                   input_.size() * sizeof(float), shape, 4,
                                                   ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &value_),
             "input tensor");
    g_api->ReleaseMemoryInfo(mem);
    // Anchors as MediaPipe makes them for this model: 16x16 cells x 2, then 8x8 cells x 6.
    for (auto [cells, per] : {std::pair{16, 2}, std::pair{8, 6}}) {
      for (int y = 0; y < cells; ++y)
        for (int x = 0; x < cells; ++x)
          for (int a = 0; a < per; ++a)
            anchors_.push_back({(x + 0.5f) / cells, (y + 0.5f) / cells});
    }
  }
  ~BareDetector() {
    Drop();
    g_api->ReleaseValue(value_);
    g_api->ReleaseSession(session_);
  }

  // Decode, letterbox and normalise into the bound input buffer. Returns false for bad bytes.
  bool Prepare(const std::string& bytes) {
    int w = 0, h = 0, comp = 0;
    stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                        static_cast<int>(bytes.size()), &w, &h, &comp, 3);
    if (px == nullptr) return false;
    scale_ = std::min(static_cast<float>(kSize) / w, static_cast<float>(kSize) / h);
    const int rw = std::clamp(static_cast<int>(std::lround(w * scale_)), 1, kSize);
    const int rh = std::clamp(static_cast<int>(std::lround(h * scale_)), 1, kSize);
    pad_x_ = (kSize - rw) / 2;
    pad_y_ = (kSize - rh) / 2;
    std::memset(box_.data(), 0, box_.size());
    stbir_resize_uint8_generic(px, w, h, w * 3, box_.data() + (pad_y_ * kSize + pad_x_) * 3, rw, rh,
                               kSize * 3, 3, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                               STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
    stbi_image_free(px);
    for (size_t i = 0; i < box_.size(); ++i) input_[i] = box_[i] * (2.0f / 255) - 1.0f;
    return true;
  }

  // Runs the model on the input buffer; the outputs are held until Decode or Drop.
  void Run() {
    Drop();
    const OrtValue* in = value_;
    OrtCheck(g_api->Run(session_, nullptr, kInputNames, &in, 1, kOutputNames, 4, out_), "run");
  }

  // The faces in the held outputs (then dropped).
  std::vector<BareFace> Decode() {
    float* part[4];
    for (int i = 0; i < 4; ++i) {
      OrtCheck(g_api->GetTensorMutableData(out_[i], reinterpret_cast<void**>(&part[i])), "out");
    }
    // Scores [1,512,1] + [1,384,1], boxes [1,512,16] + [1,384,16]: the 16x16 grid first.
    std::vector<BareFace> faces;
    for (int i = 0; i < 896; ++i) {
      const float logit = i < 512 ? part[0][i] : part[1][i - 512];
      const float score = 1.0f / (1.0f + std::exp(-std::clamp(logit, -100.0f, 100.0f)));
      if (score < kMinScore) continue;
      const float* r = i < 512 ? part[2] + i * 16 : part[3] + (i - 512) * 16;
      const float cx = anchors_[i].first * kSize + r[0], cy = anchors_[i].second * kSize + r[1];
      faces.push_back({(cx - r[2] / 2 - pad_x_) / scale_, (cy - r[3] / 2 - pad_y_) / scale_,
                       (cx + r[2] / 2 - pad_x_) / scale_, (cy + r[3] / 2 - pad_y_) / scale_,
                       score});
    }
    Drop();
    return Nms(std::move(faces));
  }

  void Drop() {
    for (OrtValue*& v : out_) {
      if (v != nullptr) g_api->ReleaseValue(v);
      v = nullptr;
    }
  }

 private:
  static std::vector<BareFace> Nms(std::vector<BareFace> faces) {
    std::sort(faces.begin(), faces.end(), [](auto& a, auto& b) { return a.score > b.score; });
    std::vector<BareFace> kept;
    for (const BareFace& f : faces) {
      bool keep = true;
      for (const BareFace& k : kept) {
        const float iw = std::min(f.x1, k.x1) - std::max(f.x0, k.x0);
        const float ih = std::min(f.y1, k.y1) - std::max(f.y0, k.y0);
        const float inter = iw > 0 && ih > 0 ? iw * ih : 0;
        const float uni = (f.x1 - f.x0) * (f.y1 - f.y0) + (k.x1 - k.x0) * (k.y1 - k.y0) - inter;
        keep = keep && !(uni > 0 && inter / uni > kIou);
      }
      if (keep) kept.push_back(f);
    }
    return kept;
  }

  static constexpr const char* kInputNames[] = {"input:0"};
  static constexpr const char* kOutputNames[] = {"Identity:0", "Identity_1:0", "Identity_2:0",
                                                 "Identity_3:0"};
  OrtSession* session_ = nullptr;
  OrtValue* value_ = nullptr;
  OrtValue* out_[4] = {};
  std::vector<float> input_ = std::vector<float>(kSize * kSize * 3);
  std::vector<uint8_t> box_ = std::vector<uint8_t>(kSize * kSize * 3);
  std::vector<std::pair<float, float>> anchors_;
  float scale_ = 1;
  int pad_x_ = 0, pad_y_ = 0;
};

// ---- Measures ----

struct Measure {
  double images_per_s = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// Calls `one(i)` for images 0..n-1 in groups of `batch`; a latency is one group's.
Measure Time(int n, int batch, const std::function<void(int)>& one) {
  std::vector<double> lat;
  lat.reserve(n / batch);
  double t0 = Now();
  for (int i = 0; i + batch <= n; i += batch) {
    double g0 = Now();
    for (int k = 0; k < batch; ++k) one(i + k);
    lat.push_back((Now() - g0) * 1000);
  }
  double wall = Now() - t0;
  return {static_cast<double>(lat.size() * batch) / wall, Percentile(lat, 50), Percentile(lat, 95),
          Percentile(lat, 99)};
}

// Ours and bare interleaved group by group (who goes first alternates), so that load from
// outside the benchmark falls on both alike; each path's images/s counts its own time only.
std::pair<Measure, Measure> TimePair(int n, int batch, const std::function<void(int)>& a,
                                     const std::function<void(int)>& b) {
  std::vector<double> lat[2];
  double total[2] = {0, 0};
  for (int i = 0, g = 0; i + batch <= n; i += batch, ++g) {
    for (int side : {g % 2, 1 - g % 2}) {
      const auto& one = side == 0 ? a : b;
      double g0 = Now();
      for (int k = 0; k < batch; ++k) one(i + k);
      double t = Now() - g0;
      lat[side].push_back(t * 1000);
      total[side] += t;
    }
  }
  auto measure = [&](int side) {
    return Measure{static_cast<double>(lat[side].size() * batch) / total[side],
                   Percentile(lat[side], 50), Percentile(lat[side], 95), Percentile(lat[side], 99)};
  };
  return {measure(0), measure(1)};
}

Measure MedianOf(const std::vector<Measure>& rounds) {
  auto med = [&](double Measure::*f) {
    std::vector<double> v;
    for (const auto& r : rounds) v.push_back(r.*f);
    return bench::Median(v);
  };
  return {med(&Measure::images_per_s), med(&Measure::p50_ms), med(&Measure::p95_ms),
          med(&Measure::p99_ms)};
}

std::string Range(const std::vector<Measure>& rounds) {
  double lo = 1e300, hi = 0;
  for (const auto& r : rounds) {
    lo = std::min(lo, r.images_per_s);
    hi = std::max(hi, r.images_per_s);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f-%.0f", lo, hi);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int images = 400, rounds = 3, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--images") {
      images = std::atoi(argv[i + 1]);
    } else if (a == "--rounds") {
      rounds = std::atoi(argv[i + 1]);
    } else if (a == "--threads") {
      threads = std::atoi(argv[i + 1]);
    } else {
      Die("usage: inference_bench [--images N] [--rounds N] [--threads N]");
    }
  }
  images = std::max(8, images / 8 * 8);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int intra = threads > 0 ? threads : cores;
  const double run_t0 = Now();

  char tmpl[] = "/tmp/inference-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  const std::string dir = tmpl;

  // The images, encoded.
  std::vector<std::string> encoded;
  std::string sizes;
  for (const char* name : kImages) {
    auto r = platform::ReadFileToString(std::string(kImageDir) + name);
    Check(r.status(), std::string("read ") + name);
    auto img = inf::DecodeImage(*r);
    Check(img.status(), std::string("decode ") + name);
    sizes += std::string(sizes.empty() ? "" : ", ") + name + " " + std::to_string(img->width) +
             "x" + std::to_string(img->height);
    encoded.push_back(std::move(*r));
  }

  // Ours: the runtime, registry and session cache the daemon builds.
  inf::onnxruntime::OrtRuntimeOptions ro;
  ro.log_level = "error";  // the model's unused initialisers would warn at every session
  auto runtime = inf::onnxruntime::MakeOnnxRuntime(ro);
  Check(runtime.status(), "onnx runtime");
  auto registry = inf::ModelRegistry::Open(dir + "/models", runtime->get());
  Check(registry.status(), "registry");
  auto model = (*registry)->AddFile("blazeface", kModel);
  Check(model.status(), "register model");
  inf::ModelCache cache(runtime->get());
  compute::InferenceContext ctx{registry->get(), &cache, threads};
  const json decl = {
      {"type", "infer"},
      {"model", "blazeface"},
      {"device", "cpu"},
      {"input",
       {{"image",
         {{"layout", "nhwc"}, {"scale", 2.0 / 255}, {"mean", {1, 1, 1}}, {"std", {1, 1, 1}}}}}},
      {"output", {{"decode", "blazeface"}, {"min_score", kMinScore}, {"iou", kIou}}}};
  Check(compute::CheckInferDecl(decl), "declaration");
  inf::SessionOptions so;
  so.device = "cpu";
  so.intra_op_threads = threads;
  auto session = cache.Get(*model, so);  // the session InferImage uses
  Check(session.status(), "session");
  const inf::TensorInfo& in = (*session)->inputs()[0];
  std::string in_shape;
  for (int64_t d : in.shape) in_shape += (in_shape.empty() ? "" : ",") + std::to_string(d);
  const bool batch_fixed = !in.shape.empty() && in.shape[0] == 1;

  // Bare: the same library file; dlopen hands back the handle our runtime opened.
  void* lib = ::dlopen(kOrtLibrary, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) Die(std::string("dlopen: ") + ::dlerror());
  auto get_base = reinterpret_cast<const OrtApiBase* (*)()>(::dlsym(lib, "OrtGetApiBase"));
  if (get_base == nullptr) Die("no OrtGetApiBase");
  g_api = get_base()->GetApi(ORT_API_VERSION);
  if (g_api == nullptr) Die("ORT too old for the headers");
  OrtEnv* env = nullptr;
  OrtCheck(g_api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "bench", &env), "env");
  BareDetector bare(env, intra, /*spinning=*/false);

  std::printf("# Inference: BlazeFace through the infer step vs bare ONNX Runtime\n\n");
  std::printf("Machine: %s.\n", bench::Machine(dir).c_str());
  std::printf("Runtime: %s.\n", (*runtime)->Describe().c_str());
  std::printf("Session: device %s, intra-op threads %d, inter-op 1, no spinning (both paths).\n",
              (*session)->device().c_str(), intra);
  std::printf("Model input %s [%s]: batch %s.\n", in.name.c_str(), in_shape.c_str(),
              batch_fixed ? "fixed at 1, so batch 8 = 8 calls of one image" : "dynamic");
  std::printf("Images (cycled): %s.\n", sizes.c_str());
  std::printf("%d images per measure, %d rounds.\n\n", images, rounds);

  // Correctness first: the astronaut's face in both paths.
  auto ours_one = [&](int i) {
    const std::string& b = encoded[static_cast<size_t>(i) % encoded.size()];
    auto recs = compute::InferImage(decl, ctx, b, "bench.png");
    Check(recs.status(), "infer");
    return std::move(*recs);
  };
  auto bare_one = [&](int i) {
    if (!bare.Prepare(encoded[static_cast<size_t>(i) % encoded.size()])) Die("stb decode");
    bare.Run();
    return bare.Decode();
  };
  {
    auto recs = ours_one(0);
    auto faces = bare_one(0);
    if (recs.size() != 1 || faces.size() != 1) {
      Die("astronaut: ours found " + std::to_string(recs.size()) + " faces, bare " +
          std::to_string(faces.size()) + "; expected 1");
    }
    auto v = [&](const char* c) { return recs[0].Get(c)->as_double(); };
    const BareFace& f = faces[0];
    double worst = std::max({std::abs(v("x0") - f.x0), std::abs(v("y0") - f.y0),
                             std::abs(v("x1") - f.x1), std::abs(v("y1") - f.y1)});
    std::printf(
        "Check, astronaut.png: ours (%.0f,%.0f)-(%.0f,%.0f) score %.3f; bare "
        "(%.0f,%.0f)-(%.0f,%.0f) score %.3f; corners differ by at most %.1f px (verified by "
        "eye: about (179,82)-(274,177)).\n",
        v("x0"), v("y0"), v("x1"), v("y1"), v("score"), f.x0, f.y0, f.x1, f.y1, f.score, worst);
    if (worst > 4 || std::abs(v("x0") - 179) > 12 || std::abs(v("y1") - 177) > 12) {
      Die("the two paths disagree on the astronaut's face");
    }
    size_t ours_total = 0, bare_total = 0;
    for (int i = 0; i < static_cast<int>(encoded.size()); ++i) {
      ours_total += ours_one(i).size();
      bare_total += bare_one(i).size();
    }
    std::printf("Faces over the 8 images: ours %zu, bare %zu.\n\n", ours_total, bare_total);
  }

  // The pre-made tensor for the limit: the astronaut's.
  inf::Tensor premade;
  {
    auto img = inf::DecodeImage(encoded[0]);
    Check(img.status(), "decode");
    inf::TensorLayout layout;
    layout.nchw = false;
    layout.scale = 2.0f / 255;
    for (int c = 0; c < 3; ++c) layout.mean[c] = 1;
    premade = inf::ToTensor(inf::ResizeLetterbox(*img, kSize, kSize).image, layout, in.name);
  }
  if (!bare.Prepare(encoded[0])) Die("stb decode");
  auto ours_run = [&](int) { Check((*session)->Run({premade}).status(), "run"); };
  auto bare_run = [&](int) { bare.Run(); };
  auto ours_step = [&](int i) { ours_one(i); };
  auto bare_step = [&](int i) { bare_one(i); };

  // Warm-up: sessions, allocators, caches.
  for (int i = 0; i < 40; ++i) {
    ours_step(i);
    bare_step(i);
  }

  enum { kOurs1, kBare1, kOurs8, kBare8, kOursRun, kBareRun, kCount };
  std::vector<std::vector<Measure>> m(kCount);
  for (int r = 0; r < rounds; ++r) {
    auto pair = [&](int ours_idx, int bare_idx, int batch, const std::function<void(int)>& o,
                    const std::function<void(int)>& b) {
      auto [x, y] = r % 2 == 0 ? TimePair(images, batch, o, b) : TimePair(images, batch, b, o);
      m[ours_idx].push_back(r % 2 == 0 ? x : y);
      m[bare_idx].push_back(r % 2 == 0 ? y : x);
    };
    pair(kOurs1, kBare1, 1, ours_step, bare_step);
    pair(kOurs8, kBare8, 8, ours_step, bare_step);
    if (!bare.Prepare(encoded[0])) Die("stb decode");
    pair(kOursRun, kBareRun, 1, ours_run, bare_run);
    std::fprintf(stderr, "round %d done (%.0f s into the run)\n", r + 1, Now() - run_t0);
  }

  std::printf(
      "| measure (CPU, %d intra-op threads; median of %d rounds) | images/s (range) | p50 ms | p95 "
      "ms | p99 ms | overhead |\n|---|---|---|---|---|---|\n",
      intra, rounds);
  auto row = [&](const char* what, int idx, int peer) {
    Measure x = MedianOf(m[idx]);
    std::string over = "-";
    if (peer >= 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%+.1f %%",
                    (MedianOf(m[peer]).images_per_s / x.images_per_s - 1) * 100);
      over = buf;
    }
    std::printf("| %s | %.0f (%s) | %.2f | %.2f | %.2f | %s |\n", what, x.images_per_s,
                Range(m[idx]).c_str(), x.p50_ms, x.p95_ms, x.p99_ms, over.c_str());
  };
  row("batch 1, bare loop (stb decode + resize, normalise, OrtApi::Run, boxes)", kBare1, -1);
  row("batch 1, ours: infer step (compute::InferImage)", kOurs1, kBare1);
  row("batch 8 (8 calls), bare loop; latency of the group", kBare8, -1);
  row("batch 8 (8 calls), ours: infer step; latency of the group", kOurs8, kBare8);
  row("model alone, pre-made tensor: OrtApi::Run", kBareRun, -1);
  row("model alone, pre-made tensor: our Session::Run", kOursRun, kBareRun);
  std::printf(
      "\nOverhead: how much longer ours takes per image than the bare loop in the same rounds "
      "(bare images/s / ours images/s - 1).\n");

  // One-off: where an image's time goes, in each path (the astronaut, 512x512 PNG, and the
  // rocket, 640x427 JPEG); ours and bare alternate image by image, medians of each stage.
  const int reps = std::max(50, images / 4);
  std::printf("\nWhere the time goes: median ms per image over %d runs of each (interleaved):\n\n",
              reps);
  std::printf(
      "| stage | ours: astronaut.png | bare: astronaut.png | ours: rocket.jpg | bare: rocket.jpg "
      "|\n|---|---|---|---|---|\n");
  enum { kLookup, kDecode, kResize, kTensor, kRun, kPost, kWhole, kStages };
  using Samples = std::vector<std::vector<double>>;  // [stage][rep], ms
  inf::TensorLayout layout;
  layout.nchw = false;
  layout.scale = 2.0f / 255;
  for (int c = 0; c < 3; ++c) layout.mean[c] = 1;
  auto ours_once = [&](const std::string& bytes, Samples& s) {
    double t0 = Now();
    auto mv = (*registry)->Get("blazeface");
    Check(mv.status(), "lookup");
    auto sess = cache.Get(*mv, so);
    Check(sess.status(), "lookup");
    double t1 = Now();
    auto img = inf::DecodeImage(bytes);
    Check(img.status(), "decode");
    double t2 = Now();
    auto lb = inf::ResizeLetterbox(*img, kSize, kSize);
    double t3 = Now();
    auto t = inf::ToTensor(lb.image, layout, in.name);
    double t4 = Now();
    auto outs = (*sess)->Run({t});
    Check(outs.status(), "run");
    double t5 = Now();
    // JoinByLastDim's work (the 512 part, then the 384 part), then the decoding.
    inf::Tensor reg, score;
    reg.name = "boxes";
    score.name = "scores";
    reg.shape = {1, 896, 16};
    score.shape = {1, 896, 1};
    for (int k : {2, 3}) {
      reg.data.insert(reg.data.end(), (*outs)[k].data.begin(), (*outs)[k].data.end());
    }
    for (int k : {0, 1}) {
      score.data.insert(score.data.end(), (*outs)[k].data.begin(), (*outs)[k].data.end());
    }
    inf::BlazeFaceOptions bo;
    bo.min_score = kMinScore;
    bo.iou_threshold = kIou;
    auto faces = inf::DecodeBlazeFace(reg, score, lb, bo);
    Check(faces.status(), "decode boxes");
    double t6 = Now();
    auto recs = compute::InferImage(decl, ctx, bytes, "bench.png");
    Check(recs.status(), "infer");
    double t7 = Now();
    for (auto [k, v] : {std::pair{kLookup, t1 - t0},
                        {kDecode, t2 - t1},
                        {kResize, t3 - t2},
                        {kTensor, t4 - t3},
                        {kRun, t5 - t4},
                        {kPost, t6 - t5},
                        {kWhole, t7 - t6}}) {
      s[k].push_back(v * 1000);
    }
  };
  auto bare_once = [&](const std::string& bytes, Samples& s) {
    // Prepare is decode + resize + normalise: a decode alone is timed first to split them.
    double t0 = Now();
    int w, h, c;
    stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                        static_cast<int>(bytes.size()), &w, &h, &c, 3);
    stbi_image_free(px);
    double t1 = Now();
    if (!bare.Prepare(bytes)) Die("stb decode");
    double t2 = Now();
    bare.Run();
    double t3 = Now();
    bare.Decode();
    double t4 = Now();
    if (!bare.Prepare(bytes)) Die("stb decode");
    bare.Run();
    bare.Decode();
    double t5 = Now();
    for (auto [k, v] : {std::pair{kDecode, t1 - t0},
                        {kResize, (t2 - t1) - (t1 - t0)},
                        {kRun, t3 - t2},
                        {kPost, t4 - t3},
                        {kWhole, t5 - t4}}) {
      s[k].push_back(v * 1000);
    }
  };
  Samples oa(kStages), ba(kStages), orr(kStages), br(kStages);
  for (int i = 0; i < reps; ++i) {
    if (i % 2 == 0) {
      ours_once(encoded[0], oa);
      bare_once(encoded[0], ba);
      ours_once(encoded[3], orr);
      bare_once(encoded[3], br);
    } else {
      bare_once(encoded[0], ba);
      ours_once(encoded[0], oa);
      bare_once(encoded[3], br);
      ours_once(encoded[3], orr);
    }
  }
  auto ms = [&](const Samples& s, int k) {
    if (s[k].empty()) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", bench::Median(s[k]));
    return std::string(buf);
  };
  auto stage = [&](const char* what, int k) {
    std::printf("| %s | %s | %s | %s | %s |\n", what, ms(oa, k).c_str(), ms(ba, k).c_str(),
                ms(orr, k).c_str(), ms(br, k).c_str());
  };
  stage("model lookup (registry + session cache)", kLookup);
  stage("decode (stb_image)", kDecode);
  stage("letterbox resize to 128x128 (bare: stbir, + normalise)", kResize);
  stage("normalise into the tensor", kTensor);
  stage("model run (ours: Session::Run, with input checks and output copies)", kRun);
  stage("box decoding + NMS (ours: + joining the split outputs)", kPost);
  stage("whole path (ours: InferImage), timed apart", kWhole);

  // ORT's own default: intra-op threads spin while they wait for work.
  {
    BareDetector spinning(env, intra, /*spinning=*/true);
    if (!spinning.Prepare(encoded[0])) Die("stb decode");
    for (int i = 0; i < 40; ++i) spinning.Run();
    auto [spin, calm] = TimePair(
        images, 1, [&](int) { spinning.Run(); }, bare_run);
    std::printf(
        "\nSpinning (ORT's default, off in our runtime), model alone, %d runs interleaved: "
        "spinning %.0f images/s (p50 %.2f ms, p99 %.2f ms), not spinning %.0f images/s (p50 "
        "%.2f ms, p99 %.2f ms).\n",
        images, spin.images_per_s, spin.p50_ms, spin.p99_ms, calm.images_per_s, calm.p50_ms,
        calm.p99_ms);
  }

  // The anonymize step, for scale (blur, then PNG/JPEG encoding): no bare counterpart.
  {
    json an = {
        {"type", "anonymize"},
        {"model", "blazeface"},
        {"device", "cpu"},
        {"image",
         {{"layout", "nhwc"}, {"scale", 2.0 / 255}, {"mean", {1, 1, 1}}, {"std", {1, 1, 1}}}}};
    Check(compute::CheckAnonymizeDecl(an), "anonymize declaration");
    const int n = std::max(8, images / 8);
    Measure a = Time(n, 1, [&](int i) {
      auto r = compute::AnonymizeImage(an, ctx, encoded[static_cast<size_t>(i) % encoded.size()]);
      Check(r.status(), "anonymize");
    });
    std::printf(
        "\nThe anonymize step (detect, blur, encode as the input's format), %d images: %.1f "
        "images/s, p50 %.1f ms, p95 %.1f ms.\n",
        n, a.images_per_s, a.p50_ms, a.p95_ms);
  }

  g_api->ReleaseEnv(env);
  std::error_code ec;
  fsys::remove_all(dir, ec);
  std::printf("\nWhole run: %.0f s.\n", Now() - run_t0);
  return 0;
}
