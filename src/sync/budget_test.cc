#include "sync/budget.h"

#include <gtest/gtest.h>

#include "test/support/temp_dir.h"

namespace fieldstack::sync {
namespace {

constexpr int64_t kDay = int64_t{86400} * 1'000'000'000;

class DataBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.clock = &clock_;
    auto s = store::Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  testing::TempDir dir_;
  FakeClock clock_;  // starts 2026-01-01 00:00 UTC
  std::unique_ptr<store::Store> store_;
};

TEST_F(DataBudgetTest, DailyAndMonthlyCapsRenewEachPeriodAndSurviveARestart) {
  BudgetLimits limits{1000, 2500, 0};
  {
    DataBudget b(limits, *store_, clock_);
    EXPECT_TRUE(b.Charge(600).ok());
    int64_t resume = 0;
    Status s = b.Charge(500, &resume);
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
    EXPECT_NE(s.message().find("daily upload budget"), std::string::npos) << s.message();
    EXPECT_EQ(resume, FakeClock::kStartUnixNanos + kDay);  // next midnight
    EXPECT_TRUE(b.Charge(400).ok());                       // exactly the cap
    EXPECT_FALSE(b.Charge(1).ok());
    clock_.Advance(std::chrono::hours(24));
    EXPECT_TRUE(b.Charge(1000).ok());
  }
  // A restart does not reset the usage.
  DataBudget b(limits, *store_, clock_);
  auto u = b.Current();
  EXPECT_EQ(u.day, "2026-01-02");
  EXPECT_EQ(u.day_bytes, 1000u);
  EXPECT_EQ(u.month, "2026-01");
  EXPECT_EQ(u.month_bytes, 2000u);
  clock_.Advance(std::chrono::hours(24));
  int64_t resume = 0;
  Status s = b.Charge(600, &resume);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("monthly"), std::string::npos) << s.message();
  EXPECT_EQ(resume, FakeClock::kStartUnixNanos + 31 * kDay);  // 2026-02-01
  EXPECT_TRUE(b.Charge(500).ok());
  clock_.Advance(std::chrono::hours(24 * 29));  // 2026-02-01
  EXPECT_TRUE(b.Charge(1000).ok());
  EXPECT_EQ(b.Current().month_bytes, 1000u);
}

TEST_F(DataBudgetTest, PeriodsFollowTheLocalUtcOffset) {
  DataBudget b({100, std::nullopt, 120}, *store_, clock_);  // UTC+2
  clock_.Advance(std::chrono::minutes(21 * 60 + 30));       // 21:30 UTC = 23:30 local
  EXPECT_TRUE(b.Charge(100).ok());
  EXPECT_EQ(b.Current().day, "2026-01-01");
  int64_t resume = 0;
  EXPECT_FALSE(b.Charge(1, &resume).ok());
  EXPECT_EQ(resume, FakeClock::kStartUnixNanos + 22 * int64_t{3600} * 1'000'000'000);
  clock_.Advance(std::chrono::minutes(31));  // 00:01 local
  EXPECT_EQ(b.Current().day, "2026-01-02");
  EXPECT_TRUE(b.Charge(100).ok());
}

TEST_F(DataBudgetTest, NoLimitsChargeNothing) {
  DataBudget b({}, *store_, clock_);
  EXPECT_TRUE(b.Charge(uint64_t{1} << 50).ok());
  EXPECT_EQ(store_->GetValue(DataBudget::kStoreKey).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fieldstack::sync
