#include "compute/inference/image.h"

// Decoding and encoding go through stb_image / stb_image_write (Debian's libstb). Everything
// else is plain loops over the interleaved 8-bit buffer.
//
// Resize is a separable triangle ("bilinear") filter sampled at pixel centres: when enlarging it
// is exactly bilinear interpolation (src = (dst + 0.5) * in / out - 0.5, edges clamped); when
// shrinking the triangle widens with the scale factor (as PIL and torchvision's antialiased
// bilinear do), so a 4000 px photo letterboxed to 128 px does not alias into noise.
//
// BlazeFace decoding follows MediaPipe's face_detection_short_range graph: SsdAnchorsCalculator
// with num_layers 4, strides {8, 16, 16, 16}, anchor offset 0.5, aspect ratio 1.0 plus the
// interpolated one and fixed anchor size (w = h = 1), so layers of equal stride merge into one
// grid: 16x16 cells x 2 anchors then 8x8 cells x 6 anchors = 896, ordered row, column, anchor.
// TensorsToDetectionsCalculator with reverse_output_order (x, y, w, h then 6 (x, y) keypoints)
// and all scales 128: centre = anchor + raw / 128, size = raw / 128, score = sigmoid of the logit
// clipped to [-100, 100].

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <numeric>

namespace fieldstack::compute::inference {
namespace {

std::string StbReason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown error";
}

// One output sample of a 1-D resampling: a run of source indices and their weights.
struct Tap {
  int first = 0;
  std::vector<float> weights;
};

// Triangle-filter taps mapping `in` samples to `out` samples, pixel centres aligned.
std::vector<Tap> TriangleTaps(int in, int out) {
  std::vector<Tap> taps(out);
  const double scale = static_cast<double>(in) / out;
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // the triangle's half-width in source pixels
  for (int i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    int lo = static_cast<int>(std::floor(center - support));
    int hi = static_cast<int>(std::ceil(center + support));
    lo = std::max(lo, 0);
    hi = std::min(hi, in);
    Tap& tap = taps[i];
    tap.first = lo;
    double total = 0;
    std::vector<double> w;
    for (int j = lo; j < hi; ++j) {
      const double d = std::abs((j + 0.5 - center) / filter_scale);
      w.push_back(d < 1 ? 1 - d : 0);
      total += w.back();
    }
    if (total <= 0) {  // only when `center` falls outside the source: take the nearest edge
      tap.first = std::clamp(static_cast<int>(center), 0, in - 1);
      tap.weights = {1.0f};
      continue;
    }
    for (double x : w) tap.weights.push_back(static_cast<float>(x / total));
  }
  return taps;
}

uint8_t ToByte(float v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

// A box grown by `margin` of its size on every side, in whole pixels, clipped to the image.
struct PixelRect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool empty() const { return x1 <= x0 || y1 <= y0; }
};

PixelRect GrownRegion(const Image& img, const Box& box, float margin) {
  const double gx = (box.x1 - box.x0) * static_cast<double>(margin);
  const double gy = (box.y1 - box.y0) * static_cast<double>(margin);
  auto clip = [](double v, int limit) {
    if (!(v > 0)) return 0;  // also NaN
    return v >= limit ? limit : static_cast<int>(v);
  };
  // Outwards to whole pixels, ignoring float noise (0.15f * 80 is not quite 12).
  constexpr double kSnap = 1e-3;
  PixelRect r;
  r.x0 = clip(std::floor(box.x0 - gx + kSnap), img.width);
  r.y0 = clip(std::floor(box.y0 - gy + kSnap), img.height);
  r.x1 = clip(std::ceil(box.x1 + gx - kSnap), img.width);
  r.y1 = clip(std::ceil(box.y1 + gy - kSnap), img.height);
  return r;
}

// One box-blur pass of radius `r` along a line of `n` samples spaced `stride` apart, edges
// clamped. `tmp` holds a copy of the line.
void BoxBlurLine(float* line, int n, int stride, int r, std::vector<float>& tmp) {
  tmp.resize(n);
  for (int i = 0; i < n; ++i) tmp[i] = line[static_cast<size_t>(i) * stride];
  auto at = [&](int i) { return tmp[std::clamp(i, 0, n - 1)]; };
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += at(i);
  const double inv = 1.0 / (2 * r + 1);
  for (int i = 0; i < n; ++i) {
    line[static_cast<size_t>(i) * stride] = static_cast<float>(sum * inv);
    sum += at(i + r + 1) - at(i - r);
  }
}

struct Anchor {
  float x = 0, y = 0;
};

// MediaPipe's SSD anchors for the BlazeFace front model at `input_size` (see the file comment).
std::vector<Anchor> BlazeFaceAnchors(int input_size) {
  constexpr int kStrides[] = {8, 16, 16, 16};
  constexpr int kAnchorsPerLayer = 2;  // aspect ratio 1.0 and the interpolated scale
  constexpr int kNumLayers = 4;
  std::vector<Anchor> anchors;
  int layer = 0;
  while (layer < kNumLayers) {
    int same = layer;
    while (same < kNumLayers && kStrides[same] == kStrides[layer]) ++same;
    const int per_cell = (same - layer) * kAnchorsPerLayer;
    const int cells = (input_size + kStrides[layer] - 1) / kStrides[layer];
    for (int y = 0; y < cells; ++y) {
      for (int x = 0; x < cells; ++x) {
        for (int a = 0; a < per_cell; ++a) {
          anchors.push_back({(x + 0.5f) / cells, (y + 0.5f) / cells});
        }
      }
    }
    layer = same;
  }
  return anchors;
}

}  // namespace

Result<Image> DecodeImage(std::string_view bytes, uint64_t max_pixels) {
  if (bytes.empty()) return InvalidArgumentError("not an image: no bytes");
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return InvalidArgumentError("image of " + std::to_string(bytes.size()) + " bytes is too large");
  }
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  // Headers only: the declared size is checked before a single pixel buffer is allocated.
  if (!stbi_info_from_memory(data, len, &w, &h, &comp)) {
    // stb tries every format in turn, so its last reason is only useful for a known signature.
    const std::string_view format = SniffImageFormat(bytes);
    if (format.empty()) return InvalidArgumentError("not an image");
    return InvalidArgumentError("unreadable " + std::string(format) + " header (" + StbReason() +
                                ")");
  }
  if (w <= 0 || h <= 0) return InvalidArgumentError("image declares no pixels");
  const uint64_t pixels = static_cast<uint64_t>(w) * static_cast<uint64_t>(h);
  if (pixels > max_pixels) {
    return InvalidArgumentError("image of " + std::to_string(w) + "x" + std::to_string(h) +
                                " pixels exceeds the limit of " + std::to_string(max_pixels));
  }
  int dw = 0, dh = 0;
  stbi_uc* decoded = stbi_load_from_memory(data, len, &dw, &dh, &comp, 3);
  if (!decoded) return InvalidArgumentError("corrupt image (" + StbReason() + ")");
  Image img;
  img.width = dw;
  img.height = dh;
  img.channels = 3;
  img.pixels.assign(decoded, decoded + static_cast<size_t>(dw) * dh * 3);
  stbi_image_free(decoded);
  return img;
}

Result<std::string> EncodeImage(const Image& img, std::string_view format, int jpeg_quality) {
  if (img.width <= 0 || img.height <= 0)
    return InvalidArgumentError("cannot encode an empty image");
  if (img.channels != 3 && img.channels != 4) {
    return InvalidArgumentError("cannot encode " + std::to_string(img.channels) + " channels");
  }
  if (img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels) {
    return InvalidArgumentError("pixel buffer does not match the image's size");
  }
  std::string out;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size);
  };
  int ok = 0;
  if (format == "png") {
    ok = stbi_write_png_to_func(append, &out, img.width, img.height, img.channels,
                                img.pixels.data(), img.width * img.channels);
  } else if (format == "jpeg" || format == "jpg") {
    if (jpeg_quality < 1 || jpeg_quality > 100) {
      return InvalidArgumentError("jpeg quality must be 1-100, not " +
                                  std::to_string(jpeg_quality));
    }
    ok = stbi_write_jpg_to_func(append, &out, img.width, img.height, img.channels,
                                img.pixels.data(), jpeg_quality);
  } else {
    return InvalidArgumentError("unknown image format '" + std::string(format) + "' (png or jpeg)");
  }
  if (!ok) return InternalError("encoding " + std::string(format) + " failed");
  return out;
}

std::string_view SniffImageFormat(std::string_view bytes) {
  auto starts = [&](std::string_view magic) { return bytes.substr(0, magic.size()) == magic; };
  if (starts("\x89PNG\r\n\x1a\n")) return "png";
  if (starts("\xff\xd8\xff")) return "jpeg";
  if (starts("GIF87a") || starts("GIF89a")) return "gif";
  if (starts("BM") && bytes.size() >= 14) return "bmp";
  if ((starts("P5") || starts("P6")) && bytes.size() >= 3 &&
      std::strchr(" \t\r\n", bytes[2]) != nullptr && bytes[2] != '\0') {
    return "ppm";
  }
  return "";
}

Image Resize(const Image& img, int w, int h) {
  Image out;
  out.width = std::max(w, 0);
  out.height = std::max(h, 0);
  out.channels = img.channels;
  const int c = img.channels;
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * c, 0);
  if (out.pixels.empty() || img.width <= 0 || img.height <= 0) return out;

  // Horizontal pass into floats (img.height x w), then vertical into bytes.
  const std::vector<Tap> xt = TriangleTaps(img.width, w);
  const std::vector<Tap> yt = TriangleTaps(img.height, h);
  std::vector<float> mid(static_cast<size_t>(img.height) * w * c);
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* src = &img.pixels[static_cast<size_t>(y) * img.width * c];
    float* dst = &mid[static_cast<size_t>(y) * w * c];
    for (int x = 0; x < w; ++x) {
      const Tap& t = xt[x];
      for (int ch = 0; ch < c; ++ch) {
        float v = 0;
        for (size_t k = 0; k < t.weights.size(); ++k) {
          v += t.weights[k] * src[(t.first + k) * c + ch];
        }
        dst[x * c + ch] = v;
      }
    }
  }
  const size_t row = static_cast<size_t>(w) * c;
  std::vector<float> acc(row);
  for (int y = 0; y < h; ++y) {
    const Tap& t = yt[y];
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (size_t k = 0; k < t.weights.size(); ++k) {
      const float* src = &mid[(t.first + k) * row];
      for (size_t i = 0; i < row; ++i) acc[i] += t.weights[k] * src[i];
    }
    uint8_t* dst = &out.pixels[y * row];
    for (size_t i = 0; i < row; ++i) dst[i] = ToByte(acc[i]);
  }
  return out;
}

Letterbox ResizeLetterbox(const Image& img, int w, int h, uint8_t pad) {
  Letterbox lb;
  lb.image.width = std::max(w, 0);
  lb.image.height = std::max(h, 0);
  lb.image.channels = img.channels;
  const int c = img.channels;
  lb.image.pixels.assign(static_cast<size_t>(lb.image.width) * lb.image.height * c, pad);
  if (lb.image.pixels.empty() || img.width <= 0 || img.height <= 0) return lb;

  lb.scale = std::min(static_cast<float>(w) / img.width, static_cast<float>(h) / img.height);
  const int rw = std::clamp(static_cast<int>(std::lround(img.width * lb.scale)), 1, w);
  const int rh = std::clamp(static_cast<int>(std::lround(img.height * lb.scale)), 1, h);
  lb.pad_x = (w - rw) / 2;
  lb.pad_y = (h - rh) / 2;
  const Image resized = Resize(img, rw, rh);
  for (int y = 0; y < rh; ++y) {
    std::memcpy(&lb.image.pixels[((static_cast<size_t>(y) + lb.pad_y) * w + lb.pad_x) * c],
                &resized.pixels[static_cast<size_t>(y) * rw * c], static_cast<size_t>(rw) * c);
  }
  return lb;
}

Tensor ToTensor(const Image& img, const TensorLayout& layout, std::string name) {
  Tensor t;
  t.name = std::move(name);
  t.type = ElementType::kFloat32;
  const int64_t h = img.height, w = img.width;
  t.shape = layout.nchw ? std::vector<int64_t>{1, 3, h, w} : std::vector<int64_t>{1, h, w, 3};
  const size_t plane = static_cast<size_t>(h) * w;
  t.data.resize(plane * 3 * sizeof(float));
  float* out = t.mutable_floats();
  // mean and std are per tensor channel, i.e. in BGR order when `bgr` is set.
  float mul[3], add[3];
  for (int c = 0; c < 3; ++c) {
    mul[c] = layout.scale / layout.std[c];
    add[c] = -layout.mean[c] / layout.std[c];
  }
  const int ic = img.channels;
  for (size_t p = 0; p < plane; ++p) {
    const uint8_t* px = &img.pixels[p * ic];
    for (int c = 0; c < 3; ++c) {
      const int src = layout.bgr ? 2 - c : c;
      const float v = px[src] * mul[c] + add[c];
      if (layout.nchw) {
        out[c * plane + p] = v;
      } else {
        out[p * 3 + c] = v;
      }
    }
  }
  return t;
}

std::vector<float> Softmax(const float* logits, size_t n) {
  std::vector<float> out(n);
  if (n == 0) return out;
  const float max = *std::max_element(logits, logits + n);
  if (std::isinf(max)) {
    // All -inf: nothing to prefer. Some +inf: they share everything.
    const bool all_neg = max < 0;
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) count += all_neg || logits[i] == max;
    for (size_t i = 0; i < n; ++i) out[i] = (all_neg || logits[i] == max) ? 1.0f / count : 0.0f;
    return out;
  }
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i] = std::exp(logits[i] - max);  // <= 1: no overflow
    sum += out[i];
  }
  for (float& v : out) v = static_cast<float>(v / sum);
  return out;
}

std::vector<std::pair<int, float>> TopK(const float* values, size_t n, size_t k) {
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, n);
  auto before = [values](int a, int b) {
    const float va = values[a], vb = values[b];
    if (std::isnan(va) != std::isnan(vb)) return std::isnan(vb);  // NaN sorts last
    if (va != vb && !std::isnan(va)) return va > vb;
    return a < b;
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
  std::vector<std::pair<int, float>> out;
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) out.emplace_back(idx[i], values[idx[i]]);
  return out;
}

float IoU(const Box& a, const Box& b) {
  const float iw = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  const float ih = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  if (!(iw > 0) || !(ih > 0)) return 0;
  const float inter = iw * ih;
  const float area_a = std::max(0.0f, a.x1 - a.x0) * std::max(0.0f, a.y1 - a.y0);
  const float area_b = std::max(0.0f, b.x1 - b.x0) * std::max(0.0f, b.y1 - b.y0);
  const float uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0;
}

std::vector<Box> NonMaxSuppression(std::vector<Box> boxes, float iou_threshold, size_t max_boxes) {
  std::stable_sort(boxes.begin(), boxes.end(),
                   [](const Box& a, const Box& b) { return a.score > b.score; });
  std::vector<Box> kept;
  for (Box& b : boxes) {
    if (kept.size() >= max_boxes) break;
    const bool suppressed = std::any_of(kept.begin(), kept.end(), [&](const Box& k) {
      return k.label == b.label && IoU(k, b) > iou_threshold;
    });
    if (!suppressed) kept.push_back(std::move(b));
  }
  return kept;
}

Result<std::vector<Box>> DecodeBlazeFace(const Tensor& regressors, const Tensor& scores,
                                         const Letterbox& lb, const BlazeFaceOptions& options) {
  if (options.input_size < 16 || options.input_size % 16 != 0) {
    return InvalidArgumentError("BlazeFace input size must be a multiple of 16, not " +
                                std::to_string(options.input_size));
  }
  if (!(lb.scale > 0)) return InvalidArgumentError("letterbox scale must be positive");
  const std::vector<Anchor> anchors = BlazeFaceAnchors(options.input_size);
  const size_t n = anchors.size();
  constexpr size_t kCoords = 16;  // x, y, w, h, then 6 keypoints (x, y)
  auto shape_str = [](const Tensor& t) {
    std::string s = "[";
    for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? "," : "") + std::to_string(t.shape[i]);
    return s + "]";
  };
  if (regressors.type != ElementType::kFloat32 || regressors.elements() != n * kCoords ||
      regressors.data.size() != n * kCoords * sizeof(float)) {
    return InvalidArgumentError("BlazeFace regressors '" + regressors.name + "' must be float [1," +
                                std::to_string(n) + ",16], not " + shape_str(regressors));
  }
  if (scores.type != ElementType::kFloat32 || scores.elements() != n ||
      scores.data.size() != n * sizeof(float)) {
    return InvalidArgumentError("BlazeFace scores '" + scores.name + "' must be float [1," +
                                std::to_string(n) + ",1], not " + shape_str(scores));
  }
  const float size = static_cast<float>(options.input_size);
  // A point of the normalised model input -> pixels of the original image.
  auto to_x = [&](float v) { return (v * size - lb.pad_x) / lb.scale; };
  auto to_y = [&](float v) { return (v * size - lb.pad_y) / lb.scale; };
  const float* raw = regressors.floats();
  const float* logits = scores.floats();
  std::vector<Box> boxes;
  for (size_t i = 0; i < n; ++i) {
    const float logit = std::clamp(logits[i], -100.0f, 100.0f);
    const float score = 1.0f / (1.0f + std::exp(-logit));
    if (!(score >= options.min_score)) continue;
    const float* r = raw + i * kCoords;
    const float cx = anchors[i].x + r[0] / size;
    const float cy = anchors[i].y + r[1] / size;
    const float w = r[2] / size;
    const float h = r[3] / size;
    Box b;
    b.x0 = to_x(cx - w / 2);
    b.y0 = to_y(cy - h / 2);
    b.x1 = to_x(cx + w / 2);
    b.y1 = to_y(cy + h / 2);
    b.score = score;
    b.keypoints.reserve(12);
    for (int k = 0; k < 6; ++k) {
      b.keypoints.push_back(to_x(anchors[i].x + r[4 + 2 * k] / size));
      b.keypoints.push_back(to_y(anchors[i].y + r[5 + 2 * k] / size));
    }
    boxes.push_back(std::move(b));
  }
  return NonMaxSuppression(std::move(boxes), options.iou_threshold, options.max_faces);
}

void BlurRegion(Image& img, const Box& region, float margin) {
  const PixelRect r = GrownRegion(img, region, margin);
  if (r.empty()) return;
  const int rw = r.x1 - r.x0, rh = r.y1 - r.y0, c = img.channels;
  const int radius = std::max(8, std::min(rw, rh) / 4);
  constexpr int kPasses = 3;  // three box passes approximate a Gaussian of sigma ~ radius

  std::vector<float> buf(static_cast<size_t>(rw) * rh * c);
  for (int y = 0; y < rh; ++y) {
    for (int i = 0; i < rw * c; ++i) {
      buf[static_cast<size_t>(y) * rw * c + i] =
          img.pixels[(static_cast<size_t>(y + r.y0) * img.width + r.x0) * c + i];
    }
  }
  std::vector<float> tmp;
  for (int pass = 0; pass < kPasses; ++pass) {
    for (int y = 0; y < rh; ++y) {
      for (int ch = 0; ch < c; ++ch) {
        BoxBlurLine(&buf[static_cast<size_t>(y) * rw * c + ch], rw, c, radius, tmp);
      }
    }
    for (int x = 0; x < rw; ++x) {
      for (int ch = 0; ch < c; ++ch) {
        BoxBlurLine(&buf[static_cast<size_t>(x) * c + ch], rh, rw * c, radius, tmp);
      }
    }
  }
  for (int y = 0; y < rh; ++y) {
    for (int i = 0; i < rw * c; ++i) {
      img.pixels[(static_cast<size_t>(y + r.y0) * img.width + r.x0) * c + i] =
          ToByte(buf[static_cast<size_t>(y) * rw * c + i]);
    }
  }
}

void FillRegion(Image& img, const Box& region, float margin, uint8_t value) {
  const PixelRect r = GrownRegion(img, region, margin);
  if (r.empty()) return;
  const int c = img.channels;
  const int color = std::min(c, 3);  // alpha stays as it was
  for (int y = r.y0; y < r.y1; ++y) {
    for (int x = r.x0; x < r.x1; ++x) {
      uint8_t* px = &img.pixels[(static_cast<size_t>(y) * img.width + x) * c];
      std::fill(px, px + color, value);
    }
  }
}

}  // namespace fieldstack::compute::inference
