#pragma once

// DataBudget: data caps for metered links (satellite, cellular). At most `daily_bytes` per day
// and `monthly_bytes` per calendar month go up, days and months counted in the box's local time
// (UTC + utc_offset_minutes, as the bandwidth schedule). A transfer that does not fit is
// refused with ResourceExhausted and the time the next period starts; the uploader then pauses
// (files keep their place and their multi-part progress) and raises the alert: a warning in
// the log, error code 1011 in the share's errors.log, and the gauge
// fieldstack_upload_budget_spent = 1.
//
// Every byte handed to the network counts, retries included: that is what a metered link
// bills. Usage is saved in the Store with each charge, so a restart does not hand out a fresh
// budget.
//
// Thread safety: all methods may be called concurrently.

#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "store/store.h"

namespace fieldstack::sync {

struct BudgetLimits {
  std::optional<uint64_t> daily_bytes;
  std::optional<uint64_t> monthly_bytes;
  int utc_offset_minutes = 0;
  bool any() const { return daily_bytes.has_value() || monthly_bytes.has_value(); }
};

class DataBudget {
 public:
  DataBudget(BudgetLimits limits, store::Store& store, Clock& clock)
      : limits_(limits), store_(store), clock_(clock) {}

  // Takes `bytes` when they fit both budgets. Otherwise ResourceExhausted naming the budget,
  // with the Unix time (ns) at which the next period starts in *resume_at_ns.
  Status Charge(uint64_t bytes, int64_t* resume_at_ns = nullptr);

  struct Usage {
    std::string day;    // 2026-11-27
    std::string month;  // 2026-11
    uint64_t day_bytes = 0;
    uint64_t month_bytes = 0;
  };
  Usage Current();

  static constexpr char kStoreKey[] = "upload.budget";

 private:
  // Loads the saved usage on first use and starts a new day or month when one began.
  void Roll(int64_t now_ns) REQUIRES(mu_);
  Status Save() REQUIRES(mu_);

  const BudgetLimits limits_;
  store::Store& store_;
  Clock& clock_;
  Mutex mu_;
  bool loaded_ GUARDED_BY(mu_) = false;
  Usage usage_ GUARDED_BY(mu_);
};

}  // namespace fieldstack::sync
