#pragma once

// The workload of the compute crash test, shared by the child (which runs it) and the parent
// (which computes the expected outputs):
//  - "files": kFiles CSV inputs in/in/fNNN.csv (id,v; five rows each) -> filter v % 3 != 0 ->
//    select id, v -> out/files/fNNN.csv.
//  - "msgs": kMessages MQTT messages {"id", "g", "v", "ts"} on m/<g>, passed through to batch
//    files out/msgs/{batch}.jsonl rolling every 7 records.
//  - "agg": the same messages, counted and summed per group over 10 s tumbling windows of "ts"
//    (in 2100, so the wall clock never closes a window: only the watermark does), batch files
//    out/agg/{batch}.jsonl rolling every 3 records.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fieldstack::crashtest::compute_crash {

constexpr int kFiles = 200;
constexpr int kMessages = 400;
constexpr int64_t kTimeBase = 4102444800;  // 2100-01-01T00:00:00Z, a multiple of 10

inline std::string InputName(int k) {
  char b[32];
  std::snprintf(b, sizeof b, "f%03d.csv", k);
  return b;
}

inline std::string InputData(int k) {
  std::string s = "id,v\n";
  for (int j = 0; j < 5; ++j) s += std::to_string(k * 10 + j) + "," + std::to_string(k + j) + "\n";
  return s;
}

inline std::string ExpectedOutput(int k) {
  std::string s = "id,v\n";
  for (int j = 0; j < 5; ++j)
    if ((k + j) % 3 != 0) s += std::to_string(k * 10 + j) + "," + std::to_string(k + j) + "\n";
  return s;
}

inline std::string Topic(int i) { return "m/" + std::to_string(i % 4); }

inline std::string Message(int i) {
  return nlohmann::json({{"id", i}, {"g", i % 4}, {"v", i}, {"ts", kTimeBase + i}}).dump();
}

inline std::vector<nlohmann::json> Pipelines() {
  using json = nlohmann::json;
  return {
      {{"name", "files"},
       {"trigger", {{"type", "file"}, {"share", "in"}, {"glob", "in/*.csv"}, {"settle_ms", 0}}},
       {"steps", json::array({{{"type", "filter"}, {"where", "v % 3 != 0"}},
                              {{"type", "select"}, {"columns", {"id", "v"}}}})},
       {"sinks",
        json::array({{{"type", "file"}, {"share", "out"}, {"path", "files/{stem}.{ext}"}}})},
       {"retry", {{"backoff_ms", 10}}}},
      {{"name", "msgs"},
       {"trigger", {{"type", "mqtt"}, {"topics", {"m/#"}}}},
       {"sinks", json::array({{{"type", "file"},
                               {"share", "out"},
                               {"path", "msgs/{batch}.{ext}"},
                               {"roll", {{"max_records", 7}, {"max_age_s", 1}}}}})}},
      {{"name", "agg"},
       {"trigger", {{"type", "mqtt"}, {"topics", {"m/+"}}}},
       {"steps", json::array({{{"type", "aggregate"},
                               {"group_by", {"g"}},
                               {"time", "ts"},
                               {"window", {{"size_s", 10}}},
                               {"metrics", json::array({{{"op", "count"}},
                                                        {{"op", "sum"}, {"column", "v"}}})}}})},
       {"sinks", json::array({{{"type", "file"},
                               {"share", "out"},
                               {"path", "agg/{batch}.{ext}"},
                               {"roll", {{"max_records", 3}, {"max_age_s", 1}}}}})}},
  };
}

}  // namespace fieldstack::crashtest::compute_crash
