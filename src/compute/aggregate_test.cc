#include "compute/aggregate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "compute/step_test_records.h"
#include "compute/timefmt.h"

namespace fieldstack::compute {
namespace {

using json = nlohmann::json;

std::unique_ptr<AggregateStep> Make(const json& decl) {
  auto s = MakeAggregateStep(decl);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// "name=value|name=value" with typed values: ints as 5, floats as 5.0 or 5.25, strings quoted.
std::string Dump(const Record& r) {
  std::string s;
  for (size_t i = 0; i < r.values.size(); ++i) {
    if (i > 0) s += "|";
    s += r.schema->names()[i] + "=";
    const Value& v = r.values[i];
    switch (v.type()) {
      case Value::Type::kNull:
        s += "null";
        break;
      case Value::Type::kString:
        s += "'" + v.text() + "'";
        break;
      case Value::Type::kFloat: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v.as_double());
        s += buf;
        s += "f";
        break;
      }
      default:
        s += FormatValue(v);
    }
  }
  return s;
}

std::vector<std::string> DumpAll(const std::vector<Record>& recs) {
  std::vector<std::string> out;
  for (const Record& r : recs) out.push_back(Dump(r));
  return out;
}

TEST(AggregateTest, WholeInputGroupsAndMetrics) {
  auto step = Make({{"type", "aggregate"},
                    {"group_by", {"site"}},
                    {"metrics",
                     {{{"op", "count"}, {"as", "n"}},
                      {{"op", "count"}, {"column", "temp"}},
                      {{"op", "sum"}, {"column", "temp"}},
                      {{"op", "avg"}, {"column", "temp"}},
                      {{"op", "min"}, {"column", "temp"}},
                      {{"op", "max"}, {"column", "note"}},
                      {{"op", "p50"}, {"column", "temp"}},
                      {{"op", "sum"}, {"column", "ticks"}}}}});
  auto schema = MakeSchema({"site", "temp", "note", "ticks"});
  Collect c;
  std::vector<Record> in;
  in.push_back(Rec(schema, {Str("north"), Value::Int(10), Str("b"), Value::Int(1)}));
  in.push_back(Rec(schema, {Str("south"), Value::Float(2.5), Str("a"), Value::Int(2)}));
  in.push_back(Rec(schema, {Str("north"), Value(), Str("c"), Value::Int(3)}));
  in.push_back(Rec(schema, {Str("north"), Value::Int(20), Value(), Value::Int(4)}));
  in.push_back(Rec(schema, {Str("north"), Value::Int(30), Str("a"), Value::Float(0.5)}));
  in.push_back(Rec(schema, {Value(), Value(), Value(), Value()}));
  for (Record& r : in) ASSERT_TRUE(step->Push(r, c).ok());
  EXPECT_TRUE(c.out.empty());
  ASSERT_TRUE(step->Finish(c).ok());
  EXPECT_EQ(DumpAll(c.out),
            (std::vector<std::string>{
                "site='north'|n=4|count_temp=3|sum_temp=60|avg_temp=20f|min_temp=10|max_note='c'|"
                "p50_temp=20f|sum_ticks=8.5f",
                "site='south'|n=1|count_temp=1|sum_temp=2.5f|avg_temp=2.5f|min_temp=2.5f|"
                "max_note='a'|p50_temp=2.5f|sum_ticks=2",
                "site=null|n=1|count_temp=0|sum_temp=null|avg_temp=null|min_temp=null|"
                "max_note=null|p50_temp=null|sum_ticks=null"}));
}

TEST(AggregateTest, GroupKeysUseValueEquality) {
  auto step = Make({{"type", "aggregate"}, {"group_by", {"k"}}, {"metrics", {{{"op", "count"}}}}});
  auto schema = MakeSchema({"k"});
  Collect c;
  for (Value v : {Value::Int(1), Value::Float(1.0), Str("1"), Value::Int(2), Value::Bool(true)}) {
    Record r = Rec(schema, {v});
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  ASSERT_TRUE(step->Finish(c).ok());
  EXPECT_EQ(DumpAll(c.out), (std::vector<std::string>{"k=1|count=2", "k='1'|count=1", "k=2|count=1",
                                                      "k=true|count=1"}));
}

TEST(AggregateTest, PercentilesInterpolateLikeNumpy) {
  auto step = Make({{"type", "aggregate"},
                    {"metrics",
                     {{{"op", "p0"}, {"column", "x"}},
                      {{"op", "p50"}, {"column", "x"}},
                      {{"op", "p95"}, {"column", "x"}},
                      {{"op", "p99.9"}, {"column", "x"}},
                      {{"op", "p100"}, {"column", "x"}}}}});
  auto schema = MakeSchema({"x"});
  Collect c;
  // 1..10 shuffled: numpy.percentile gives 1, 5.5, 9.55, 9.991, 10.
  for (int x : {7, 3, 10, 1, 5, 9, 2, 8, 4, 6}) {
    Record r = Rec(schema, {Value::Int(x)});
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  ASSERT_TRUE(step->Finish(c).ok());
  ASSERT_EQ(c.out.size(), 1u);
  const auto& v = c.out[0].values;
  EXPECT_DOUBLE_EQ(v[0].as_double(), 1);
  EXPECT_DOUBLE_EQ(v[1].as_double(), 5.5);
  EXPECT_NEAR(v[2].as_double(), 9.55, 1e-12);
  EXPECT_NEAR(v[3].as_double(), 9.991, 1e-12);
  EXPECT_DOUBLE_EQ(v[4].as_double(), 10);
  EXPECT_EQ(c.out[0].schema->names()[3], "p99.9_x");
}

TEST(AggregateTest, NonNumericValueFailsNamingColumnAndValue) {
  auto step = Make({{"type", "aggregate"}, {"metrics", {{{"op", "avg"}, {"column", "temp"}}}}});
  auto schema = MakeSchema({"temp"});
  Collect c;
  Record ok = Rec(schema, {Str("21.5")});  // a string that reads as a number is one
  ASSERT_TRUE(step->Push(ok, c).ok());
  Record bad = Rec(schema, {Str("n/a")});
  Status s = step->Push(bad, c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'temp'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'n/a'"), std::string::npos) << s.message();
}

TEST(AggregateTest, TumblingWindowsByHand) {
  auto step =
      Make({{"type", "aggregate"},
            {"group_by", {"site"}},
            {"time", "ts"},
            {"window", {{"size_s", 60}}},
            {"metrics", {{{"op", "count"}, {"as", "n"}}, {{"op", "max"}, {"column", "v"}}}}});
  auto schema = MakeSchema({"ts", "site", "v"});
  Collect c;
  auto push = [&](const char* ts, const char* site, int v) {
    Record r = Rec(schema, {Str(ts), Str(site), Value::Int(v)});
    ASSERT_TRUE(step->Push(r, c).ok());
  };
  push("2026-11-27T13:00:05Z", "b", 1);
  push("2026-11-27T13:00:59Z", "a", 2);
  push("2026-11-27T13:00:10Z", "b", 3);
  EXPECT_TRUE(c.out.empty());
  push("2026-11-27T13:01:00Z", "a", 4);  // watermark reaches 13:01: the first window closes
  ASSERT_EQ(c.out.size(), 2u);
  push("2026-11-27T13:00:30Z", "a", 5);  // late: its window was emitted
  EXPECT_EQ(step->late_records(), 1u);
  push("2026-11-27T13:03:10Z", "a", 6);  // closes [13:01, 13:02); [13:02, 13:03) never opened
  ASSERT_TRUE(step->Finish(c).ok());
  EXPECT_EQ(DumpAll(c.out),
            (std::vector<std::string>{
                "window_start='2026-11-27T13:00:00Z'|window_end='2026-11-27T13:01:00Z'|site='b'|"
                "n=2|max_v=3",
                "window_start='2026-11-27T13:00:00Z'|window_end='2026-11-27T13:01:00Z'|site='a'|"
                "n=1|max_v=2",
                "window_start='2026-11-27T13:01:00Z'|window_end='2026-11-27T13:02:00Z'|site='a'|"
                "n=1|max_v=4",
                "window_start='2026-11-27T13:03:00Z'|window_end='2026-11-27T13:04:00Z'|site='a'|"
                "n=1|max_v=6"}));
}

TEST(AggregateTest, TickClosesWindowsByWallClock) {
  auto step = Make({{"type", "aggregate"},
                    {"time", "ts"},
                    {"window", {{"size_s", 10}, {"lateness_s", 5}}},
                    {"metrics", {{{"op", "count"}}}}});
  auto schema = MakeSchema({"ts"});
  Collect c;
  Record r = Rec(schema, {Value::Int(100)}, 7);  // epoch seconds
  ASSERT_TRUE(step->Push(r, c).ok());
  ASSERT_TRUE(step->Tick(114'000'000'000, c).ok());  // end 110 + 5 > 114
  EXPECT_TRUE(c.out.empty());
  EXPECT_EQ(step->OldestNeededSeq(), 7u);
  ASSERT_TRUE(step->Tick(115'000'000'000, c).ok());
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(step->OldestNeededSeq(), UINT64_MAX);
  // A record for the closed window is late, even though the event watermark is behind.
  Record late = Rec(schema, {Value::Int(105)}, 8);
  ASSERT_TRUE(step->Push(late, c).ok());
  EXPECT_EQ(step->late_records(), 1u);
  ASSERT_TRUE(step->Finish(c).ok());
  EXPECT_EQ(c.out.size(), 1u);
}

// ---- randomized checks against a brute-force reference -----------------------------------

struct Event {
  int64_t t_s;
  std::string site;
  double v;
  uint64_t seq;
};

// A stream in mostly increasing time with jitter; `late_jitter_s` > lateness makes some late.
std::vector<Event> RandomStream(uint32_t seed, int n, int64_t jitter_s) {
  std::mt19937_64 rng(seed);
  std::vector<Event> ev;
  int64_t t = 1'800'000'000;
  const char* sites[] = {"n", "s", "e", "w"};
  for (int i = 0; i < n; ++i) {
    t += static_cast<int64_t>(rng() % 3);
    int64_t jitter = static_cast<int64_t>(rng() % static_cast<uint64_t>(jitter_s + 1));
    ev.push_back({t - jitter, sites[rng() % 4], static_cast<double>(rng() % 1000) / 10.0,
                  static_cast<uint64_t>(i + 1)});
  }
  return ev;
}

struct RefRow {
  int64_t start;
  std::string site;
  int64_t count = 0;
  double sum = 0;
  double max = -1;
  std::vector<double> values;
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q / 100 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// The reference: a record is in window [s, s+size) when s <= t < s+size and, at its arrival,
// s+size > max(earlier event times) - lateness. Rows ordered by window start, then by the
// first accepted record of each group.
std::vector<std::string> Reference(const std::vector<Event>& ev, int64_t size, int64_t hop,
                                   int64_t lateness, uint64_t* late) {
  std::vector<std::pair<int64_t, const Event*>> accepted;  // (window start, event)
  int64_t max_t = INT64_MIN;
  *late = 0;
  for (const Event& e : ev) {
    int64_t bound = max_t == INT64_MIN ? INT64_MIN : max_t - lateness;
    bool any = false;
    // Brute force over every window start near t.
    for (int64_t s = (e.t_s / hop - size / hop - 1) * hop; s <= e.t_s; s += hop) {
      if (s <= e.t_s && e.t_s < s + size && s + size > bound) {
        accepted.emplace_back(s, &e);
        any = true;
      }
    }
    if (!any) ++*late;
    max_t = std::max(max_t, e.t_s);
  }
  std::map<int64_t, std::vector<RefRow>> rows;
  for (const auto& [s, e] : accepted) {
    auto& list = rows[s];
    auto it =
        std::find_if(list.begin(), list.end(), [&](const RefRow& r) { return r.site == e->site; });
    if (it == list.end()) {
      list.push_back({s, e->site});
      it = list.end() - 1;
    }
    it->count++;
    it->sum += e->v;
    it->max = std::max(it->max, e->v);
    it->values.push_back(e->v);
  }
  std::vector<std::string> out;
  for (const auto& [s, list] : rows) {
    for (const RefRow& r : list) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%lld|%s|%lld|%.6f|%.6f|%.6f|%.6f", static_cast<long long>(s),
                    r.site.c_str(), static_cast<long long>(r.count), r.sum, r.max,
                    Percentile(r.values, 95), Percentile(r.values, 50));
      out.push_back(buf);
    }
  }
  return out;
}

std::string Row(const Record& r) {
  char buf[256];
  Result<int64_t> start = ParseTimestampNs(r.values[0]);
  std::snprintf(buf, sizeof buf, "%lld|%s|%lld|%.6f|%.6f|%.6f|%.6f",
                static_cast<long long>(*start / 1'000'000'000), r.values[2].text().c_str(),
                static_cast<long long>(r.values[3].as_int()), r.values[4].as_double(),
                r.values[5].as_double(), r.values[6].as_double(), r.values[7].as_double());
  return buf;
}

json WindowDecl(int64_t size, int64_t hop, int64_t lateness) {
  return {{"type", "aggregate"},
          {"group_by", {"site"}},
          {"time", "ts"},
          {"window", {{"size_s", size}, {"hop_s", hop}, {"lateness_s", lateness}}},
          {"metrics",
           {{{"op", "count"}},
            {{"op", "sum"}, {"column", "v"}},
            {{"op", "max"}, {"column", "v"}},
            {{"op", "p95"}, {"column", "v"}},
            {{"op", "p50"}, {"column", "v"}}}}};
}

Record EventRecord(const std::shared_ptr<const Schema>& schema, const Event& e) {
  Value v;
  v.SetFloat(e.v);
  return Rec(schema, {Value::Int(e.t_s), Value::String(e.site), v}, e.seq);
}

void CheckAgainstReference(uint32_t seed, int64_t size, int64_t hop, int64_t lateness,
                           int64_t jitter) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " size " + std::to_string(size) + " hop " +
               std::to_string(hop) + " lateness " + std::to_string(lateness));
  std::vector<Event> ev = RandomStream(seed, 3000, jitter);
  auto step = Make(WindowDecl(size, hop, lateness));
  auto schema = MakeSchema({"ts", "site", "v"});
  Collect c;
  int64_t max_t = INT64_MIN;
  for (const Event& e : ev) {
    Record r = EventRecord(schema, e);
    ASSERT_TRUE(step->Push(r, c).ok());
    max_t = std::max(max_t, e.t_s);
    // Everything emitted so far ended at or before the watermark.
    if (!c.out.empty()) {
      Result<int64_t> end = ParseTimestampNs(c.out.back().values[1]);
      ASSERT_LE(*end / 1'000'000'000, max_t - lateness);
    }
  }
  size_t before_finish = c.out.size();
  ASSERT_TRUE(step->Finish(c).ok());
  uint64_t late = 0;
  std::vector<std::string> ref = Reference(ev, size, hop, lateness, &late);
  std::vector<std::string> got;
  for (const Record& r : c.out) got.push_back(Row(r));
  EXPECT_EQ(got, ref);
  EXPECT_EQ(step->late_records(), late);
  EXPECT_GT(before_finish, 0u);
  if (jitter > lateness) {
    EXPECT_GT(late, 0u);
  }
}

TEST(AggregateTest, TumblingMatchesBruteForce) {
  CheckAgainstReference(1, 60, 60, 30, 30);  // out of order within the bound: nothing late
  CheckAgainstReference(2, 60, 60, 10, 40);  // some late
  CheckAgainstReference(3, 17, 17, 0, 5);
}

TEST(AggregateTest, HoppingMatchesBruteForce) {
  CheckAgainstReference(4, 60, 20, 30, 30);
  CheckAgainstReference(5, 60, 15, 5, 80);
  CheckAgainstReference(6, 30, 30, 0, 0);
}

// A run checkpointed midway and restored, replaying from OldestNeededSeq, emits what one
// uninterrupted run does.
TEST(AggregateTest, SaveRestoreAndReplayFromOldestNeededSeq) {
  for (int64_t hop : {60, 20}) {
    SCOPED_TRACE("hop " + std::to_string(hop));
    std::vector<Event> ev = RandomStream(11, 2000, 20);
    auto schema = MakeSchema({"ts", "site", "v"});
    Collect whole;
    {
      auto step = Make(WindowDecl(60, hop, 25));
      for (const Event& e : ev) {
        Record r = EventRecord(schema, e);
        ASSERT_TRUE(step->Push(r, whole).ok());
      }
      ASSERT_TRUE(step->Finish(whole).ok());
    }
    for (size_t cut : {size_t{1}, size_t{500}, size_t{1234}, size_t{1999}}) {
      SCOPED_TRACE("cut " + std::to_string(cut));
      Collect parts;
      json state;
      uint64_t oldest;
      {
        auto step = Make(WindowDecl(60, hop, 25));
        EXPECT_EQ(step->OldestNeededSeq(), UINT64_MAX);
        for (size_t i = 0; i < cut; ++i) {
          Record r = EventRecord(schema, ev[i]);
          ASSERT_TRUE(step->Push(r, parts).ok());
        }
        state = step->SaveState();
        oldest = step->OldestNeededSeq();
        ASSERT_LE(oldest, ev[cut - 1].seq);
        ASSERT_TRUE(state.contains("watermark_ns"));
        ASSERT_TRUE(state.contains("emitted_through_ns"));
      }
      auto step = Make(WindowDecl(60, hop, 25));
      ASSERT_TRUE(step->RestoreState(json::parse(state.dump())).ok());
      for (const Event& e : ev) {
        if (e.seq < oldest) continue;
        Record r = EventRecord(schema, e);
        ASSERT_TRUE(step->Push(r, parts).ok());
      }
      ASSERT_TRUE(step->Finish(parts).ok());
      EXPECT_EQ(DumpAll(parts.out), DumpAll(whole.out));
    }
  }
}

TEST(AggregateTest, OldestNeededSeqTracksOpenWindows) {
  auto step = Make({{"type", "aggregate"},
                    {"time", "ts"},
                    {"window", {{"size_s", 10}}},
                    {"metrics", {{{"op", "count"}}}}});
  auto schema = MakeSchema({"ts"});
  Collect c;
  auto push = [&](int64_t t, uint64_t seq) {
    Record r = Rec(schema, {Value::Int(t)}, seq);
    ASSERT_TRUE(step->Push(r, c).ok());
  };
  EXPECT_EQ(step->OldestNeededSeq(), UINT64_MAX);
  push(1000, 5);
  push(1005, 6);
  EXPECT_EQ(step->OldestNeededSeq(), 5u);
  push(1012, 7);  // closes [1000, 1010)
  EXPECT_EQ(step->OldestNeededSeq(), 7u);
  EXPECT_EQ(step->SaveState(),
            json({{"watermark_ns", 1012'000'000'000}, {"emitted_through_ns", 1010'000'000'000}}));
  ASSERT_TRUE(step->Finish(c).ok());
  EXPECT_EQ(step->OldestNeededSeq(), UINT64_MAX);
}

TEST(AggregateTest, RestoredClosedWindowsNeverReopen) {
  json d = {{"type", "aggregate"},
            {"time", "ts"},
            {"window", {{"size_s", 10}}},
            {"metrics", {{{"op", "count"}}}}};
  auto step = Make(d);
  ASSERT_TRUE(step->RestoreState(
                      {{"watermark_ns", 995'000'000'000}, {"emitted_through_ns", 1010'000'000'000}})
                  .ok());
  auto schema = MakeSchema({"ts"});
  Collect c;
  Record r = Rec(schema, {Value::Int(1005)});
  ASSERT_TRUE(step->Push(r, c).ok());
  EXPECT_EQ(step->late_records(), 1u);
  Record r2 = Rec(schema, {Value::Int(1010)});
  ASSERT_TRUE(step->Push(r2, c).ok());
  ASSERT_TRUE(step->Finish(c).ok());
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].values[0].text(), FormatTimestamp(1010'000'000'000));
  EXPECT_FALSE(step->RestoreState({{"watermark_ns", "soon"}}).ok());
}

TEST(AggregateTest, BadDeclarationsNameTheField) {
  auto err = [](const json& d) {
    auto s = MakeAggregateStep(d);
    EXPECT_FALSE(s.ok());
    return s.ok() ? std::string() : s.status().message();
  };
  auto starts = [](const std::string& msg, const std::string& prefix) {
    return msg.compare(0, prefix.size(), prefix) == 0;
  };
  json count = {{{"op", "count"}}};
  EXPECT_TRUE(starts(err({{"type", "aggregate"}}), "aggregate.metrics:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"}, {"metrics", count}, {"groupby", {"a"}}}),
                     "aggregate.groupby:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"}, {"metrics", {{{"op", "median"}}}}}),
                     "aggregate.metrics[0].op:"));
  EXPECT_TRUE(
      starts(err({{"type", "aggregate"}, {"metrics", {{{"op", "count"}}, {{"op", "avg"}}}}}),
             "aggregate.metrics[1].column:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"}, {"metrics", {{{"op", "p101"}, {"column", "x"}}}}}),
                     "aggregate.metrics[0].op:"));
  EXPECT_TRUE(starts(
      err({{"type", "aggregate"},
           {"metrics",
            {{{"op", "count"}, {"as", "n"}}, {{"op", "sum"}, {"column", "x"}, {"as", "n"}}}}}),
      "aggregate.metrics[1].as:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"}, {"metrics", count}, {"time", "ts"}}),
                     "aggregate.window:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"},
                          {"metrics", count},
                          {"time", "ts"},
                          {"window", {{"size_s", 60}, {"hop_s", 25}}}}),
                     "aggregate.window.size_s:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"},
                          {"metrics", count},
                          {"time", "ts"},
                          {"window", {{"size_s", "60"}}}}),
                     "aggregate.window.size_s:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"},
                          {"metrics", count},
                          {"time", "ts"},
                          {"window", {{"size_s", 60}, {"slide_s", 10}}}}),
                     "aggregate.window.slide_s:"));
  EXPECT_TRUE(starts(err({{"type", "aggregate"}, {"metrics", count}, {"group_by", {"a", 3}}}),
                     "aggregate.group_by[1]:"));
}

TEST(AggregateTest, BadTimeFailsNamingTheColumn) {
  auto step = Make({{"type", "aggregate"},
                    {"time", "ts"},
                    {"window", {{"size_s", 10}}},
                    {"metrics", {{{"op", "count"}}}}});
  Collect c;
  Record r = Rec(MakeSchema({"ts"}), {Str("yesterday")});
  Status s = step->Push(r, c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'ts'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fieldstack::compute
