#include "compute/sample.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>
#include <vector>

#include "compute/step.h"
#include "compute/step_test_records.h"

namespace fieldstack::compute {
namespace {

using json = nlohmann::json;

template <typename T>
T Made(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

std::string ErrorOf(const json& d) {
  StepContext ctx;
  auto s = MakeStep(d, ctx);
  EXPECT_FALSE(s.ok()) << d.dump();
  return s.ok() ? std::string() : s.status().message();
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

TEST(SampleTest, EveryKeepsOneInN) {
  auto step = Made(MakeSampleStep({{"type", "sample"}, {"every", 10}}));
  auto schema = MakeSchema({"x"});
  Collect c;
  for (uint64_t i = 1; i <= 25; ++i) {
    Record r = Rec(schema, {Value::Int(static_cast<int64_t>(i))}, i);
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  EXPECT_EQ(c.seqs(), (std::vector<uint64_t>{1, 11, 21}));
  EXPECT_EQ(step->SaveState(), json({{"seen", 25}}));
  // A restored count continues where it was.
  auto again = Made(MakeSampleStep({{"type", "sample"}, {"every", 10}}));
  ASSERT_TRUE(again->RestoreState({{"seen", 25}}).ok());
  Collect c2;
  for (uint64_t i = 26; i <= 40; ++i) {
    Record r = Rec(schema, {Value::Int(0)}, i);
    ASSERT_TRUE(again->Push(r, c2).ok());
  }
  EXPECT_EQ(c2.seqs(), (std::vector<uint64_t>{31}));
}

TEST(SampleTest, FractionIsADeterministicFunctionOfSeq) {
  auto schema = MakeSchema({"x"});
  auto run = [&](double fraction, uint64_t seed, bool reverse) {
    auto step = Made(MakeSampleStep({{"type", "sample"}, {"fraction", fraction}, {"seed", seed}}));
    Collect c;
    for (uint64_t k = 1; k <= 10000; ++k) {
      uint64_t seq = reverse ? 10001 - k : k;
      Record r = Rec(schema, {Value()}, seq);
      EXPECT_TRUE(step->Push(r, c).ok());
    }
    std::vector<uint64_t> s = c.seqs();
    std::sort(s.begin(), s.end());
    return s;
  };
  std::vector<uint64_t> a = run(0.1, 42, false);
  EXPECT_EQ(a, run(0.1, 42, true));  // replay order does not matter
  EXPECT_GT(a.size(), 850u);
  EXPECT_LT(a.size(), 1150u);
  EXPECT_NE(a, run(0.1, 43, false));
  for (uint64_t seq : a) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(seq >> (8 * i));
    EXPECT_LT(static_cast<double>(XXH3_64bits_withSeed(b, 8, 42)) * 0x1p-64, 0.1);
  }
  EXPECT_TRUE(run(0, 1, false).empty());
  EXPECT_EQ(run(1, 1, false).size(), 10000u);
}

TEST(SampleTest, BadDeclarations) {
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "sample"}}), "sample:"));
  EXPECT_TRUE(
      StartsWith(ErrorOf({{"type", "sample"}, {"every", 2}, {"fraction", 0.5}}), "sample:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "sample"}, {"every", 0}}), "sample.every:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "sample"}, {"every", "10"}}), "sample.every:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "sample"}, {"fraction", 1.5}}), "sample.fraction:"));
  EXPECT_TRUE(
      StartsWith(ErrorOf({{"type", "sample"}, {"fraction", 0.5}, {"seed", "x"}}), "sample.seed:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "sample"}, {"every", 3}, {"rate", 1}}), "sample.rate:"));
}

TEST(SubsetTest, TimeRangeIsHalfOpen) {
  auto step = Made(MakeSubsetStep(
      {{"type", "subset"},
       {"time",
        {{"column", "ts"}, {"from", "2026-01-01T00:00:00Z"}, {"to", "2026-02-01T00:00:00Z"}}}}));
  auto schema = MakeSchema({"ts"});
  Collect c;
  std::vector<Value> ts = {Str("2025-12-31T23:59:59Z"),
                           Str("2026-01-01T00:00:00Z"),
                           Str("2026-01-15"),
                           Value::Int(1769904000),  // 2026-02-01
                           Str("2026-01-31T23:59:59.999Z"),
                           Value(),
                           Str("garbage")};
  uint64_t seq = 0;
  for (Value& v : ts) {
    Record r = Rec(schema, {v}, ++seq);
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  EXPECT_EQ(c.seqs(), (std::vector<uint64_t>{2, 3, 5}));
  EXPECT_EQ(step->unreadable_records(), 2u);
  // A record without the column is unreadable too.
  Record other = Rec(MakeSchema({"x"}), {Value::Int(1)});
  ASSERT_TRUE(step->Push(other, c).ok());
  EXPECT_EQ(step->unreadable_records(), 3u);
}

TEST(SubsetTest, OpenEndedTime) {
  auto step =
      Made(MakeSubsetStep({{"type", "subset"}, {"time", {{"column", "ts"}, {"from", 1000}}}}));
  auto schema = MakeSchema({"ts"});
  Collect c;
  for (int64_t t : {999, 1000, 5000}) {
    Record r = Rec(schema, {Value::Int(t)}, static_cast<uint64_t>(t));
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  EXPECT_EQ(c.seqs(), (std::vector<uint64_t>{1000, 5000}));
}

TEST(SubsetTest, BoundingBoxes) {
  auto schema = MakeSchema({"lat", "lon"});
  auto run = [&](json bbox, std::vector<std::pair<Value, Value>> points) {
    bbox["lat"] = "lat";
    bbox["lon"] = "lon";
    auto step = Made(MakeSubsetStep({{"type", "subset"}, {"bbox", bbox}}));
    Collect c;
    uint64_t seq = 0;
    for (auto& [lat, lon] : points) {
      Record r = Rec(schema, {lat, lon}, ++seq);
      EXPECT_TRUE(step->Push(r, c).ok());
    }
    return std::make_pair(c.seqs(), step->unreadable_records());
  };
  json sf = {{"min_lat", 37.7}, {"max_lat", 37.8}, {"min_lon", -122.5}, {"max_lon", -122.4}};
  auto [kept, bad] = run(sf, {{Value::Float(37.75), Value::Float(-122.45)},
                              {Value::Float(37.7), Value::Float(-122.4)},  // edges inclusive
                              {Value::Float(37.81), Value::Float(-122.45)},
                              {Value::Float(37.75), Value::Float(-122.39)},
                              {Str("37.75"), Str("-122.45")},  // numbers in text
                              {Str("north"), Value::Float(-122.45)},
                              {Value(), Value::Float(-122.45)}});
  EXPECT_EQ(kept, (std::vector<uint64_t>{1, 2, 5}));
  EXPECT_EQ(bad, 2u);
  // Across the antimeridian: lon >= 170 or lon <= -170.
  json fiji = {{"min_lat", -20}, {"max_lat", -15}, {"min_lon", 170}, {"max_lon", -170}};
  auto [kept2, bad2] = run(fiji, {{Value::Int(-18), Value::Int(178)},
                                  {Value::Int(-18), Value::Int(-179)},
                                  {Value::Int(-18), Value::Int(0)},
                                  {Value::Int(-18), Value::Int(169)},
                                  {Value::Int(-18), Value::Int(-170)}});
  EXPECT_EQ(kept2, (std::vector<uint64_t>{1, 2, 5}));
  EXPECT_EQ(bad2, 0u);
}

TEST(SubsetTest, BadDeclarations) {
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "subset"}}), "subset:"));
  EXPECT_TRUE(
      StartsWith(ErrorOf({{"type", "subset"}, {"time", {{"column", "ts"}}}}), "subset.time:"));
  EXPECT_TRUE(StartsWith(
      ErrorOf({{"type", "subset"}, {"time", {{"column", "ts"}, {"from", "last tuesday"}}}}),
      "subset.time.from:"));
  EXPECT_TRUE(StartsWith(
      ErrorOf({{"type", "subset"},
               {"time", {{"column", "ts"}, {"from", "2026-02-01"}, {"to", "2026-01-01"}}}}),
      "subset.time.to:"));
  json box = {{"lat", "lat"}, {"lon", "lon"}, {"min_lat", 0},
              {"max_lat", 1}, {"min_lon", 0}, {"max_lon", 1}};
  json b = box;
  b["min_lat"] = 91;
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "subset"}, {"bbox", b}}), "subset.bbox.min_lat:"));
  b = box;
  b.erase("max_lon");
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "subset"}, {"bbox", b}}), "subset.bbox.max_lon:"));
  b = box;
  b["lat"] = 5;
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "subset"}, {"bbox", b}}), "subset.bbox.lat:"));
  b = box;
  b["alt"] = 5;
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "subset"}, {"bbox", b}}), "subset.bbox.alt:"));
}

TEST(DedupeTest, FirstRecordOfEachKeyPasses) {
  auto step = Made(MakeDedupeStep({{"type", "dedupe"}, {"columns", {"id", "site"}}}));
  auto schema = MakeSchema({"id", "site", "v"});
  Collect c;
  std::vector<std::vector<Value>> rows = {
      {Value::Int(1), Str("n"), Value::Int(10)},
      {Value::Int(1), Str("n"), Value::Int(11)},
      {Value::Float(1.0), Str("n"), Value::Int(12)},  // 1.0 == 1
      {Str("1"), Str("n"), Value::Int(13)},           // a string is another key
      {Value::Int(1), Str("s"), Value::Int(14)},
      {Value(), Str("n"), Value::Int(15)},
      {Value(), Str("n"), Value::Int(16)}};
  uint64_t seq = 100;
  for (auto& row : rows) {
    Record r = Rec(schema, row, ++seq);
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  EXPECT_EQ(c.seqs(), (std::vector<uint64_t>{101, 104, 105, 106}));
  // The key set does not hold the engine's message buffer (see sample.cc).
  EXPECT_EQ(step->OldestNeededSeq(), UINT64_MAX);
}

TEST(DedupeTest, DefaultKeyIsTheWholeRecord) {
  auto step = Made(MakeDedupeStep({{"type", "dedupe"}}));
  auto ab = MakeSchema({"a", "b"});
  auto ba = MakeSchema({"b", "a"});
  Collect c;
  std::vector<Record> in = {Rec(ab, {Value::Int(1), Value::Int(2)}, 1),
                            Rec(ab, {Value::Int(1), Value::Int(2)}, 2),
                            Rec(ab, {Value::Int(1), Value::Int(3)}, 3),
                            Rec(ba, {Value::Int(1), Value::Int(2)}, 4),  // other names
                            Rec(MakeSchema({"a", "b"}), {Value::Int(1), Value::Int(3)}, 5)};
  for (Record& r : in) ASSERT_TRUE(step->Push(r, c).ok());
  EXPECT_EQ(c.seqs(), (std::vector<uint64_t>{1, 3, 4}));
}

TEST(DedupeTest, MaxKeysBoundsMemory) {
  auto step = Made(MakeDedupeStep({{"type", "dedupe"}, {"columns", {"id"}}, {"max_keys", 3}}));
  auto schema = MakeSchema({"id"});
  Collect c;
  for (int64_t id : {1, 2, 1, 3, 2}) {
    Record r = Rec(schema, {Value::Int(id)});
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  Record r = Rec(schema, {Value::Int(4)});
  Status s = step->Push(r, c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "dedupe: more than 3 distinct keys; raise max_keys");
  EXPECT_EQ(c.out.size(), 3u);
  // Many keys grow the set.
  auto big = Made(MakeDedupeStep({{"type", "dedupe"}, {"columns", {"id"}}}));
  Collect c2;
  for (int64_t id = 0; id < 100000; ++id) {
    Record rr = Rec(schema, {Value::Int(id % 50000)});
    ASSERT_TRUE(big->Push(rr, c2).ok());
  }
  EXPECT_EQ(c2.out.size(), 50000u);
}

TEST(DedupeTest, BadDeclarations) {
  EXPECT_TRUE(
      StartsWith(ErrorOf({{"type", "dedupe"}, {"columns", json::array()}}), "dedupe.columns:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "dedupe"}, {"columns", {""}}}), "dedupe.columns[0]:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "dedupe"}, {"max_keys", 0}}), "dedupe.max_keys:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", "dedupe"}, {"key", "id"}}), "dedupe.key:"));
}

TEST(StepFactoryTest, DispatchesOnType) {
  StepContext ctx;
  for (const json& d :
       {json{{"type", "sample"}, {"every", 2}}, json{{"type", "dedupe"}}, json{{"type", "redact"}},
        json{{"type", "subset"}, {"time", {{"column", "t"}, {"to", 5}}}},
        json{{"type", "aggregate"}, {"metrics", {{{"op", "count"}}}}},
        json{{"type", "filter"}, {"where", "x > 1"}},
        json{{"type", "select"}, {"columns", {"x"}}}}) {
    auto s = MakeStep(d, ctx);
    EXPECT_TRUE(s.ok()) << d.dump() << ": " << s.status().ToString();
  }
}

TEST(StepFactoryTest, RefusesUnknownAndEngineTypes) {
  std::string msg = ErrorOf({{"type", "sort"}});
  EXPECT_NE(msg.find("unknown step type 'sort'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("known: filter, select, redact"), std::string::npos) << msg;
  EXPECT_NE(ErrorOf({{"type", "module"}, {"name", "m"}}).find("handled by the engine"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"type", "infer"}}).find("handled by the engine"), std::string::npos);
  EXPECT_TRUE(StartsWith(ErrorOf({{"every", 3}}), "type:"));
  EXPECT_TRUE(StartsWith(ErrorOf({{"type", 3}}), "type:"));
  EXPECT_FALSE(MakeStep(json::array(), StepContext{}).ok());
}

}  // namespace
}  // namespace fieldstack::compute
