// MetricsHistory: rates per step from byte counters, the two windows, counter resets.

#include "management/history.h"

#include <gtest/gtest.h>

namespace fieldstack::management {
namespace {

TEST(MetricsHistoryTest, RatesAreCounterDifferencesOverTheStep) {
  MetricsHistory h;
  h.Sample(1000, 0, 0, 5);
  h.Sample(1005, 5000, 100, 4);  // within the first 10 s step: no point yet
  EXPECT_TRUE(h.Points("hour").empty());
  h.Sample(1010, 10000, 200, 3);
  auto points = h.Points("hour");
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].unix_s, 1010);
  EXPECT_DOUBLE_EQ(points[0].upload_bytes_per_s, 1000);
  EXPECT_DOUBLE_EQ(points[0].download_bytes_per_s, 20);
  EXPECT_EQ(points[0].pending_files, 3u);
  // The day window steps by a minute.
  EXPECT_TRUE(h.Points("day").empty());
  for (int64_t t = 1020; t <= 1060; t += 10) h.Sample(t, 10000 + (t - 1010) * 50, 200, 0);
  auto day = h.Points("day");
  ASSERT_EQ(day.size(), 1u);
  EXPECT_DOUBLE_EQ(day[0].upload_bytes_per_s, (10000 + 50 * 50) / 60.0);
  EXPECT_EQ(h.Points("hour").size(), 6u);
}

TEST(MetricsHistoryTest, KeepsAnHourAndADayAndSurvivesCounterResets) {
  MetricsHistory h;
  uint64_t up = 0;
  for (int64_t t = 0; t <= 2 * 86400; t += 10) {
    up += 100;
    if (t == 5000) up = 0;  // the daemon's counters reset (a service restart)
    h.Sample(100000 + t, up, 0, 0);
  }
  auto hour = h.Points("hour");
  ASSERT_EQ(hour.size(), 360u);
  EXPECT_EQ(hour.back().unix_s - hour.front().unix_s, 359 * 10);
  for (const auto& p : hour) EXPECT_DOUBLE_EQ(p.upload_bytes_per_s, 10);
  auto day = h.Points("day");
  ASSERT_EQ(day.size(), 1440u);
  for (const auto& p : day) EXPECT_NEAR(p.upload_bytes_per_s, 10, 1e-9);
}

}  // namespace
}  // namespace fieldstack::management
