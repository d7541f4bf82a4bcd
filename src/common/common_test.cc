#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_pool.h"

#include <atomic>
#include <thread>
#include <vector>

namespace fieldstack {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Status UseHalf(int x, int* out) {
  FS_ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = NotFoundError("no such file 'a'");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NotFound: no such file 'a'");
  EXPECT_EQ(s.WithContext("open").message(), "open: no such file 'a'");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, ResultPropagatesThroughMacros) {
  int v = 0;
  EXPECT_TRUE(UseHalf(8, &v).ok());
  EXPECT_EQ(v, 4);
  Status s = UseHalf(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, ErrnoMapsToStableCodes) {
  EXPECT_EQ(ErrnoStatus(ENOSPC, "write").code(), StatusCode::kNoSpace);
  EXPECT_EQ(ErrnoStatus(ENOENT, "open").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EIO, "fsync").code(), StatusCode::kInternal);
  EXPECT_NE(ErrnoStatus(EIO, "fsync x").message().find("fsync x"), std::string::npos);
}

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock;
  int64_t t0 = clock.NowUnixNanos();
  EXPECT_EQ(clock.NowUnixNanos(), t0);
  clock.Advance(std::chrono::seconds(2));
  EXPECT_EQ(clock.NowUnixNanos() - t0, 2'000'000'000);
  EXPECT_EQ(clock.MonotonicNanos(), 2'000'000'000);
}

TEST(LoggingTest, RejectsUnknownLevel) {
  EXPECT_EQ(ConfigureLogging(LogFormat::kText, "loud").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ConfigureLogging(LogFormat::kJson, "info").ok());
  EXPECT_TRUE(ConfigureLogging(LogFormat::kText, "warn").ok());
}

TEST(MetricsTest, SerializesCounters) {
  Metrics m;
  auto& c =
      prometheus::BuildCounter().Name("fieldstack_test_total").Help("t").Register(m.registry());
  c.Add({}).Increment(3);
  std::string text = m.Serialize();
  EXPECT_NE(text.find("fieldstack_test_total 3"), std::string::npos) << text;
}

}  // namespace
}  // namespace fieldstack

namespace fieldstack {
namespace {

// Many callers at once, each with a few items, as the Store's writers use the shared pool.
TEST(ThreadPoolTest, RunsEveryItemOnceUnderConcurrentCallers) {
  ThreadPool pool(2);
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 8; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 2000; ++round) {
        std::vector<int> hits(3, 0);
        pool.ParallelFor(hits.size(), [&](size_t i) {
          ++hits[i];
          ++total;
        });
        for (int h : hits) ASSERT_EQ(h, 1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 8 * 2000 * 3);
}

}  // namespace
}  // namespace fieldstack
