#include "sync/bandwidth.h"

#include <gtest/gtest.h>

namespace fieldstack::sync {
namespace {

constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;

// 2026-01-05 was a Monday; minutes from there.
int64_t MondayPlus(int day, int hour, int minute) {
  constexpr int64_t kMonday = 1767571200;  // 2026-01-05T00:00:00Z
  return (kMonday + day * 86400LL + hour * 3600LL + minute * 60LL) * 1'000'000'000LL;
}

TEST(ParseRateTest, UnitsAsRclone) {
  EXPECT_EQ(*ParseRate("512k"), 512 * kKiB);
  EXPECT_EQ(*ParseRate("512"), 512 * kKiB);
  EXPECT_EQ(*ParseRate("10M"), 10 * kMiB);
  EXPECT_EQ(*ParseRate("1.5G"), 1536 * kMiB);
  EXPECT_EQ(*ParseRate("100B"), 100u);
  EXPECT_EQ(*ParseRate("0"), 0u);
  EXPECT_FALSE(ParseRate("off")->has_value());
  std::string huge(400, '9');  // beyond a double: an error, never an exception
  for (const char* bad : {"", "fast", "10X", "1.2.3M", "-5k", ".", ".k", "k", huge.c_str()}) {
    EXPECT_EQ(ParseRate(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(BandwidthScheduleTest, ConstantRate) {
  auto s = BandwidthSchedule::ParseTimetable("10M");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->At(MondayPlus(3, 12, 0)), (Rates{10 * kMiB, 10 * kMiB}));
}

TEST(BandwidthScheduleTest, DailyAndWeeklyEntriesWrapAroundTheWeek) {
  auto s = BandwidthSchedule::ParseTimetable("Mon-08:00,512k:10M 18:00,off Sat-10:00,1M");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Rates unlimited{};
  // Monday before 08:00: the last entry of the previous week (Sun 18:00, off).
  EXPECT_EQ(s->At(MondayPlus(0, 7, 59)), unlimited);
  EXPECT_EQ(s->At(MondayPlus(0, 8, 0)), (Rates{512 * kKiB, 10 * kMiB}));
  EXPECT_EQ(s->At(MondayPlus(0, 17, 59)), (Rates{512 * kKiB, 10 * kMiB}));
  EXPECT_EQ(s->At(MondayPlus(0, 18, 0)), unlimited);
  // Tuesday morning: still Monday 18:00's "off" (the Mon entry applies on Mondays only).
  EXPECT_EQ(s->At(MondayPlus(1, 9, 0)), unlimited);
  EXPECT_EQ(s->At(MondayPlus(5, 10, 30)), (Rates{kMiB, kMiB}));
  EXPECT_EQ(s->At(MondayPlus(5, 19, 0)), unlimited);
}

TEST(BandwidthScheduleTest, UtcOffsetShiftsTheWindows) {
  auto s = BandwidthSchedule::ParseTimetable("08:00,1M 09:00,off", /*utc_offset_minutes=*/120);
  ASSERT_TRUE(s.ok());
  // 06:30 UTC is 08:30 at UTC+2.
  EXPECT_EQ(s->At(MondayPlus(2, 6, 30)), (Rates{kMiB, kMiB}));
  EXPECT_EQ(s->At(MondayPlus(2, 8, 30)), Rates{});
}

TEST(BandwidthScheduleTest, BadTimetablesNameTheEntry) {
  // ("08:00" alone is a valid constant "up:down" rate pair, as in rclone.)
  for (const char* bad :
       {"", "Mon-25:00,1M", "Xyz-08:00,1M", "08:00,fast", "1M 2M", "8:00,1M 09:00,1M"}) {
    auto s = BandwidthSchedule::ParseTimetable(bad);
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto s = BandwidthSchedule::ParseTimetable("08:00,1M Fri-09:00,xx");
  EXPECT_NE(s.status().message().find("Fri-09:00,xx"), std::string::npos) << s.status().message();
}

// Sends as fast as the bucket allows for 30 simulated seconds; the rate must be within 5 %.
uint64_t SendFor30s(FakeClock& clock, TokenBucket& bucket, uint64_t chunk) {
  int64_t end = clock.MonotonicNanos() + 30'000'000'000LL;
  uint64_t sent = 0;
  while (clock.MonotonicNanos() < end) {
    auto wait = bucket.Reserve(chunk);
    clock.Advance(wait);
    if (clock.MonotonicNanos() > end) break;
    sent += chunk;
  }
  return sent;
}

TEST(TokenBucketTest, HoldsTheRateWithinFivePercentOver30Seconds) {
  for (uint64_t rate : {64 * kKiB, 512 * kKiB, 10 * kMiB}) {
    FakeClock clock;
    TokenBucket bucket(clock, rate, rate / 4);
    uint64_t sent = SendFor30s(clock, bucket, 16 * kKiB);
    double measured = static_cast<double>(sent) / 30.0;
    EXPECT_NEAR(measured / static_cast<double>(rate), 1.0, 0.05) << "rate " << rate;
  }
}

TEST(TokenBucketTest, RateChangesAndPauses) {
  FakeClock clock;
  TokenBucket bucket(clock, 100 * kKiB, 0);
  bucket.SetRate(std::nullopt);
  EXPECT_EQ(bucket.Reserve(100 * kMiB).count(), 0);
  bucket.SetRate(0);
  EXPECT_EQ(bucket.Reserve(1), std::chrono::seconds(1));
  bucket.SetRate(kMiB);
  uint64_t sent = SendFor30s(clock, bucket, 64 * kKiB);
  EXPECT_NEAR(static_cast<double>(sent) / 30.0 / kMiB, 1.0, 0.05);
}

TEST(TokenBucketTest, IdleTimeEarnsAtMostTheBurst) {
  FakeClock clock;
  TokenBucket bucket(clock, kMiB, 256 * kKiB);
  clock.Advance(std::chrono::hours(1));
  EXPECT_EQ(bucket.Reserve(256 * kKiB).count(), 0);
  auto wait = bucket.Reserve(kMiB);
  EXPECT_NEAR(std::chrono::duration<double>(wait).count(), 1.0, 0.01);
}

}  // namespace
}  // namespace fieldstack::sync
