#include "compute/inference/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace fieldstack::compute::inference {
namespace {

// y = 2x over [N, 3], N dynamic; counts runs and the largest batch it saw.
class Doubler final : public Session {
 public:
  Doubler() {
    in_ = {{"x", ElementType::kFloat32, {-1, 3}}};
    out_ = {{"y", ElementType::kFloat32, {-1, 3}}};
  }
  const std::vector<TensorInfo>& inputs() const override { return in_; }
  const std::vector<TensorInfo>& outputs() const override { return out_; }
  const std::string& device() const override { return device_; }
  const std::string& fallback_reason() const override { return reason_; }
  Result<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) override {
    ++runs;
    int64_t n = inputs[0].shape[0];
    int64_t seen = largest.load();
    while (n > seen && !largest.compare_exchange_weak(seen, n)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    Tensor y = inputs[0];
    y.name = "y";
    for (size_t i = 0; i < y.elements(); ++i) y.mutable_floats()[i] *= 2;
    return std::vector<Tensor>{y};
  }
  std::atomic<int> runs{0};
  std::atomic<int64_t> largest{0};

 private:
  std::vector<TensorInfo> in_, out_;
  std::string device_ = "cpu", reason_;
};

TEST(BatcherTest, ConcurrentRunsShareBatchesAndGetTheirOwnOutputs) {
  auto inner = std::make_shared<Doubler>();
  auto s = MakeBatchingSession(inner, {8, 20});
  constexpr int kThreads = 16;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        float v = static_cast<float>(t * 100 + i);
        auto out = s->Run({Tensor::Float("x", {1, 3}, {v, v + 1, v + 2})});
        if (!out.ok() || (*out)[0].shape != std::vector<int64_t>{1, 3} ||
            (*out)[0].floats()[0] != 2 * v || (*out)[0].floats()[2] != 2 * (v + 2)) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LT(inner->runs.load(), kThreads * 5) << "some runs were batched";
  EXPECT_GT(inner->largest.load(), 1);
  EXPECT_LE(inner->largest.load(), 8);
}

TEST(BatcherTest, BatchesOfOneAndOddShapesRunAlone) {
  auto inner = std::make_shared<Doubler>();
  auto s = MakeBatchingSession(inner, {8, 1});
  auto out = s->Run({Tensor::Float("x", {2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ((*out)[0].floats()[5], 12);
  out = s->Run({Tensor::Float("x", {1, 3}, {1, 1, 1})});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].floats()[1], 2);
  EXPECT_EQ(inner->largest.load(), 2);
}

}  // namespace
}  // namespace fieldstack::compute::inference
