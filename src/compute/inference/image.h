#pragma once

// Images for inference steps: decoding, resizing, tensors in and out, and the anonymisation
// edits (docs/inference.md). Pure functions over an 8-bit RGB(A) buffer; no runtime involved.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "compute/inference/inference.h"

namespace fieldstack::compute::inference {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;           // 3 (RGB) or 4 (RGBA), interleaved, row-major
  std::vector<uint8_t> pixels;  // width * height * channels
};

// Decodes JPEG, PNG, BMP, GIF (first frame) or PPM/PGM bytes to RGB (channels 3). InvalidArgument
// for what is not an image or is larger than `max_pixels` (decompression bombs).
Result<Image> DecodeImage(std::string_view bytes, uint64_t max_pixels = 100'000'000);
// Encodes as "png" or "jpeg" (quality 1-100).
Result<std::string> EncodeImage(const Image& img, std::string_view format, int jpeg_quality = 90);
// The format of encoded bytes by their signature: "png", "jpeg", "bmp", "gif", "ppm" or "".
std::string_view SniffImageFormat(std::string_view bytes);

// Bilinear resize to exactly w x h.
Image Resize(const Image& img, int w, int h);
// Resize keeping the aspect ratio into w x h, padding with `pad` (letterbox). `scale`, `pad_x`
// and `pad_y` say how to map a point of the result back: x_orig = (x - pad_x) / scale.
struct Letterbox {
  Image image;
  float scale = 1;
  int pad_x = 0;
  int pad_y = 0;
};
Letterbox ResizeLetterbox(const Image& img, int w, int h, uint8_t pad = 0);

// How pixels become a float tensor.
struct TensorLayout {
  bool nchw = true;           // else NHWC
  bool bgr = false;           // channel order
  float scale = 1.0f / 255;   // value = (pixel * scale - mean[c]) / std[c]
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
};
// A [1, 3, h, w] (or [1, h, w, 3]) float tensor of `img` (RGB; alpha dropped).
Tensor ToTensor(const Image& img, const TensorLayout& layout, std::string name = "input");

// Post-processing.
std::vector<float> Softmax(const float* logits, size_t n);
// The k largest (index, value), largest first; ties by lower index.
std::vector<std::pair<int, float>> TopK(const float* values, size_t n, size_t k);

struct Box {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // pixels of the original image, x1/y1 exclusive
  float score = 0;
  int label = 0;
  std::vector<float> keypoints;  // x, y pairs (detectors that give them, e.g. BlazeFace's 6)
};
float IoU(const Box& a, const Box& b);
// Greedy non-maximum suppression: boxes by score, dropping those with IoU > iou_threshold with a
// kept one (per label). Keeps at most max_boxes.
std::vector<Box> NonMaxSuppression(std::vector<Box> boxes, float iou_threshold, size_t max_boxes);

// BlazeFace (MediaPipe short-range front model, 128x128 input): decodes the model's regressors
// [1, 896, 16] and classificators [1, 896, 1] with MediaPipe's SSD anchors into face boxes of
// the ORIGINAL image (through `lb`), score = sigmoid(logit) >= min_score, then NMS.
struct BlazeFaceOptions {
  int input_size = 128;
  float min_score = 0.5f;
  float iou_threshold = 0.3f;
  size_t max_faces = 100;
};
Result<std::vector<Box>> DecodeBlazeFace(const Tensor& regressors, const Tensor& scores,
                                         const Letterbox& lb, const BlazeFaceOptions& options);

// Anonymisation edits, in place, on a region grown by `margin` (a fraction of its size) and
// clipped to the image: a strong blur (the region is unrecognisable: several box-blur passes
// with a radius of a quarter of the region's smaller side, at least 8 px), or black.
void BlurRegion(Image& img, const Box& region, float margin = 0.15f);
void FillRegion(Image& img, const Box& region, float margin = 0.15f, uint8_t value = 0);

}  // namespace fieldstack::compute::inference
