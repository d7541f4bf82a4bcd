// Tests of the compute Engine against a real Store in a temp dir: file, schedule and MQTT
// pipelines end to end (exact output bytes), retries and dead letters, restarts mid-stream,
// sandboxed modules, declaration errors, and the small helpers (globs, topics, templates,
// cron).

#include "compute/engine.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <thread>

#include "compute/cron.h"
#include "compute/inference/onnxruntime/ort_runtime.h"
#include "compute/inference/registry.h"
#include "compute/io.h"
#include "compute/sandbox.h"
#include "onnx_proto/onnx.pb.h"
#include "store/store.h"
#include "test/support/temp_dir.h"

namespace fieldstack::compute {
namespace {

using json = nlohmann::json;
using store::Attr;
using store::NodeId;
using store::NodeType;
using store::Store;

std::string Decompressed(const std::string& data, Compression c) {
  auto src = Decompress(StringSource(data), c);
  std::string out;
  uint8_t buf[4096];
  while (true) {
    auto n = src->Read(buf);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) break;
    out.append(reinterpret_cast<const char*>(buf), *n);
  }
  return out;
}

std::string Compressed(const std::string& data, Compression c) {
  auto inner = std::make_unique<StringSink>();
  StringSink* raw = inner.get();
  struct Borrow final : ByteSink {
    explicit Borrow(StringSink* t) : t(t) {}
    Status Write(std::string_view d) override { return t->Write(d); }
    Status Close() override { return Status::Ok(); }
    StringSink* t;
  };
  auto sink = Compress(std::make_unique<Borrow>(raw), c);
  EXPECT_TRUE(sink->Write(data).ok());
  EXPECT_TRUE(sink->Close().ok());
  return raw->data();
}

// Polls `pred` (real time) until true or `timeout_ms` passes.
template <typename F>
bool WaitFor(F pred, int64_t timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The module sandbox runs as uid 65534: it must traverse every parent of the engine's dir.
    ::chmod(dir_.path().c_str(), 0755);
    store::StoreOptions so;
    so.data_dir = dir_.path() + "/data";
    so.encryption = false;
    auto s = Store::Open(so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    for (const char* name : {"in", "out"}) {
      auto sh = store_->CreateShare(name, store::ShareKind::kLocal);
      ASSERT_TRUE(sh.ok()) << sh.status().ToString();
    }
  }

  void TearDown() override {
    engine_.reset();
    store_.reset();
  }

  EngineOptions Options() {
    EngineOptions o;
    o.dir = dir_.path() + "/compute";
    o.store = store_.get();
    o.clock = clock_;
    o.modules = runner_;
    o.hash_key = "k";
    o.workers = 2;
    o.poll_ms = 20;
    o.tick_ms = 20;
    return o;
  }

  static PipelineDecl Parse(const json& doc) {
    auto p = ParsePipeline(doc);
    EXPECT_TRUE(p.ok()) << p.status().ToString() << "\n" << doc.dump();
    return p.ok() ? *p : PipelineDecl{};
  }

  // Opens the engine with `decls`; starts it unless `start` is false.
  void OpenEngine(const std::vector<json>& decls, bool start = true) {
    engine_.reset();
    auto e = Engine::Open(Options());
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    std::vector<PipelineDecl> ps;
    for (const auto& d : decls) ps.push_back(Parse(d));
    ASSERT_TRUE(engine_->SetPipelines(ps).ok());
    if (start) {
      ASSERT_TRUE(engine_->Start().ok());
    }
  }

  void Idle() {
    Status s = engine_->WaitIdle(20000);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Idle with the fake clock moving: a roll holding records closes by age, counted from when
  // the runner last checkpointed (which may be after any one Advance).
  void IdleAging() {
    bool idle = false;
    for (int i = 0; i < 100 && !idle; ++i) {
      fake_clock_.Advance(std::chrono::seconds(61));
      idle = engine_->WaitIdle(100).ok();
    }
    ASSERT_TRUE(idle);
  }

  NodeId Dirs(const std::string& share, const std::string& dir) {
    auto sh = store_->GetShare(share);
    EXPECT_TRUE(sh.ok());
    NodeId cur = sh->root;
    size_t start = 0;
    while (start < dir.size()) {
      size_t slash = dir.find('/', start);
      std::string seg =
          dir.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      start = slash == std::string::npos ? dir.size() : slash + 1;
      auto a = store_->Lookup(cur, seg);
      if (!a.ok()) a = store_->Mkdir(cur, seg, {0755, 0, 0});
      EXPECT_TRUE(a.ok()) << a.status().ToString();
      cur = a->id;
    }
    return cur;
  }

  // Writes (creates or replaces the content of) share/path; returns the node's version after.
  uint64_t Put(const std::string& share, const std::string& path, const std::string& data) {
    size_t slash = path.rfind('/');
    NodeId parent = Dirs(share, slash == std::string::npos ? "" : path.substr(0, slash));
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    std::unique_ptr<store::FileHandle> h;
    auto existing = store_->Lookup(parent, name);
    if (existing.ok()) {
      // A truncate would commit a version of its own (an empty file a pipeline may see).
      EXPECT_GE(data.size(), existing->size) << "Put replaces content by overwriting it";
      auto o = store_->OpenFile(existing->id, true);
      EXPECT_TRUE(o.ok()) << o.status().ToString();
      h = std::move(*o);
    } else {
      auto c = store_->Create(parent, name, {0644, 0, 0});
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      h = std::move(*c);
    }
    EXPECT_TRUE(h->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}).ok());
    EXPECT_TRUE(h->Close().ok());
    auto a = store_->GetAttr(h->node());
    EXPECT_TRUE(a.ok());
    return a->version;
  }

  // The committed content of share/path; NotFound when missing.
  Result<std::string> Get(const std::string& share, const std::string& path) {
    FS_ASSIGN_OR_RETURN(Attr a, store_->Resolve(share, path));
    FS_ASSIGN_OR_RETURN(auto h, store_->OpenFile(a.id, false));
    std::string out(a.size, '\0');
    FS_ASSIGN_OR_RETURN(size_t n, h->Read(0, {reinterpret_cast<uint8_t*>(out.data()), out.size()}));
    out.resize(n);
    return out;
  }

  std::string MustGet(const std::string& share, const std::string& path) {
    auto r = Get(share, path);
    EXPECT_TRUE(r.ok()) << share << "/" << path << ": " << r.status().ToString();
    return r.ok() ? *r : std::string();
  }

  // Every file of a share (share-relative paths), the staging folder included.
  std::set<std::string> Files(const std::string& share) {
    std::set<std::string> out;
    auto sh = store_->GetShare(share);
    EXPECT_TRUE(sh.ok());
    std::vector<std::pair<NodeId, std::string>> dirs = {{sh->root, ""}};
    while (!dirs.empty()) {
      auto [d, prefix] = dirs.back();
      dirs.pop_back();
      auto page = store_->ReadDir(d, "", 100000);
      EXPECT_TRUE(page.ok());
      for (const auto& a : *page) {
        std::string rel = prefix.empty() ? a.name : prefix + "/" + a.name;
        if (a.type == NodeType::kDirectory) {
          dirs.emplace_back(a.id, rel);
        } else {
          out.insert(rel);
        }
      }
    }
    return out;
  }

  std::set<std::string> FilesUnder(const std::string& share, const std::string& prefix) {
    std::set<std::string> out;
    for (const auto& f : Files(share))
      if (f.rfind(prefix, 0) == 0) out.insert(f);
    return out;
  }

  std::vector<RunInfo> Runs(const std::string& p) {
    auto r = engine_->Runs(p, 0, 1000);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<RunInfo>{};
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  Clock* clock_ = nullptr;
  FakeClock fake_clock_;  // outlives engine_ (TearDown)
  ModuleRunner* runner_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

json FilePipeline(const std::string& name, json steps, json sinks, json trigger_extra = {}) {
  json t = {{"type", "file"}, {"share", "in"}, {"glob", "data/**/*.csv"}, {"settle_ms", 0}};
  for (auto it = trigger_extra.begin(); it != trigger_extra.end(); ++it) t[it.key()] = it.value();
  return {{"name", name}, {"trigger", t}, {"steps", steps}, {"sinks", sinks}};
}

// --- file pipelines ---------------------------------------------------------------------------

TEST_F(EngineTest, FilePipelineFiltersSelectsAndWritesVersionedOutputs) {
  OpenEngine({FilePipeline(
      "hot",
      json::array({{{"type", "filter"}, {"where", "temp > 30"}},
                   {{"type", "select"}, {"columns", {"site", "temp"}}}}),
      json::array(
          {{{"type", "file"}, {"share", "out"}, {"path", "{dir}/{stem}-v{version}.{ext}"}}}))});
  uint64_t v1 = Put("in", "data/a/x.csv",
                    "site,temp,note\nnorth,31.5,hot\nsouth,20,cold\n\"east, far\",40,\"x,y\"\n");
  Idle();
  EXPECT_EQ(Files("out"), (std::set<std::string>{"data/a/x-v" + std::to_string(v1) + ".csv"}));
  EXPECT_EQ(MustGet("out", "data/a/x-v" + std::to_string(v1) + ".csv"),
            "site,temp\nnorth,31.5\n\"east, far\",40\n");
  auto runs = Runs("hot");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].result, "ok");
  EXPECT_EQ(runs[0].rows_in, 3u);
  EXPECT_EQ(runs[0].rows_out, 2u);
  EXPECT_EQ(runs[0].item, "file:data/a/x.csv@v" + std::to_string(v1));

  // Paths the glob does not match produce nothing.
  Put("in", "data/a/x.txt", "site,temp\nnorth,99\n");
  Put("in", "other/y.csv", "site,temp\nnorth,99\n");
  Put("in", "x.csv", "site,temp\nnorth,99\n");
  Idle();
  EXPECT_EQ(Files("out").size(), 1u);

  // A new version of the same file: a second output, the first one stays.
  uint64_t v2 = Put("in", "data/a/x.csv",
                    "site,temp,note\nwest,55,a long note to make this version the longer one\n");
  ASSERT_GT(v2, v1);
  Idle();
  EXPECT_EQ(Files("out"), (std::set<std::string>{"data/a/x-v" + std::to_string(v1) + ".csv",
                                                 "data/a/x-v" + std::to_string(v2) + ".csv"}));
  EXPECT_EQ(MustGet("out", "data/a/x-v" + std::to_string(v2) + ".csv"), "site,temp\nwest,55\n");
  auto st = engine_->GetStatus("hot");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->runs_ok, 2u);
  EXPECT_EQ(st->rows_in, 4u);
  EXPECT_EQ(st->rows_out, 3u);
  EXPECT_EQ(st->pending, 0u);
  EXPECT_EQ(st->dead, 0u);
}

TEST_F(EngineTest, FilesWrittenBeforeTheFirstScanAreProcessed) {
  // The engine acts on what happens after Open, even if its scanner has not run yet.
  OpenEngine(
      {FilePipeline("p", json::array(), json::array({{{"type", "file"}, {"share", "out"}}}))},
      /*start=*/false);
  uint64_t v = Put("in", "data/x.csv", "a\n1\n");
  ASSERT_TRUE(engine_->Start().ok());
  Idle();
  EXPECT_EQ(MustGet("out", "data/x-v" + std::to_string(v) + ".csv"), "a\n1\n");
}

TEST_F(EngineTest, NeverTriggersOnItsOwnOutputs) {
  json decl = FilePipeline(
      "self", json::array({{{"type", "select"}, {"drop", {"b"}}}}),
      json::array({{{"type", "file"}, {"share", "in"}, {"path", "data/{stem}-out.{ext}"}}}));
  decl["trigger"]["glob"] = "data/*.csv";
  OpenEngine({decl});
  Put("in", "data/x.csv", "a,b\n1,2\n");
  Idle();
  // Give the scanner a few more rounds: nothing else may appear.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Idle();
  EXPECT_EQ(FilesUnder("in", "data/"), (std::set<std::string>{"data/x.csv", "data/x-out.csv"}));
  EXPECT_EQ(MustGet("in", "data/x-out.csv"), "a\n1\n");
  EXPECT_EQ(Runs("self").size(), 1u);
}

TEST_F(EngineTest, JsonlToCsvWithZstdAndGzipOutputsAndGzipInput) {
  OpenEngine({FilePipeline("conv", json::array({{{"type", "filter"}, {"where", "n >= 2"}}}),
                           json::array({{{"type", "file"},
                                         {"share", "out"},
                                         {"path", "csv/{stem}.{ext}"},
                                         {"format", "csv"},
                                         {"compress", "zstd"}},
                                        {{"type", "file"},
                                         {"share", "out"},
                                         {"path", "jsonl/{stem}.{ext}"},
                                         {"compress", "gzip"}}}),
                           {{"glob", "data/*"}})});
  std::string input =
      "{\"n\":1,\"s\":\"a\",\"o\":{\"k\":true}}\n"
      "{\"n\":2,\"s\":\"b, c\",\"o\":{\"k\":false}}\n"
      "\n"
      "{\"n\":3,\"s\":\"d\",\"o\":{\"k\":null}}\n";
  Put("in", "data/r.jsonl.gz", Compressed(input, Compression::kGzip));
  Idle();
  EXPECT_EQ(Files("out"), (std::set<std::string>{"csv/r.csv.zst", "jsonl/r.jsonl.gz"}));
  EXPECT_EQ(Decompressed(MustGet("out", "csv/r.csv.zst"), Compression::kZstd),
            "n,s,o.k\n2,\"b, c\",false\n3,d,\n");
  std::string jl = Decompressed(MustGet("out", "jsonl/r.jsonl.gz"), Compression::kGzip);
  std::vector<json> lines;
  size_t start = 0;
  while (start < jl.size()) {
    size_t nl = jl.find('\n', start);
    ASSERT_NE(nl, std::string::npos) << jl;
    lines.push_back(json::parse(jl.substr(start, nl - start)));
    start = nl + 1;
  }
  ASSERT_EQ(lines.size(), 2u) << jl;
  EXPECT_EQ(lines[0], json({{"n", 2}, {"s", "b, c"}, {"o.k", false}}));
  EXPECT_EQ(lines[1], json({{"n", 3}, {"s", "d"}, {"o.k", nullptr}}));
  // The whole zstd frame decodes with the zstd CLI too.
  auto runs = Runs("conv");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].rows_in, 3u);
  EXPECT_EQ(runs[0].rows_out, 2u);
}

TEST_F(EngineTest, StepErrorRetriesWithBackoffThenBecomesADeadLetter) {
  json decl = FilePipeline("bad", json::array({{{"type", "filter"}, {"where", "temp * 2 > 10"}}}),
                           json::array({{{"type", "file"}, {"share", "out"}}}));
  decl["retry"] = {{"max_attempts", 3}, {"backoff_ms", 20}, {"max_backoff_ms", 50}};
  OpenEngine({decl});
  // The first row passes (an output is being staged) before the second fails.
  uint64_t v = Put("in", "data/t.csv", "site,temp\nnorth,9\nsouth,n/a\n");
  Idle();
  auto dead = engine_->DeadLetters("bad", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  const DeadLetter& d = (*dead)[0];
  EXPECT_EQ(d.pipeline, "bad");
  EXPECT_EQ(d.item, "file:data/t.csv@v" + std::to_string(v));
  EXPECT_EQ(d.attempts, 3);
  EXPECT_NE(d.error.find("not a number"), std::string::npos) << d.error;
  EXPECT_NE(d.error.find("line 3"), std::string::npos) << d.error;
  auto runs = Runs("bad");
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].result, "dead");  // newest first
  EXPECT_EQ(runs[1].result, "failed");
  EXPECT_EQ(runs[2].result, "failed");
  EXPECT_GE(runs[0].started_ns - runs[1].started_ns, 40 * 1000000);  // 20 ms, then 40 ms
  EXPECT_GE(runs[1].started_ns - runs[2].started_ns, 20 * 1000000);
  EXPECT_NE(runs[0].error.find("not a number"), std::string::npos);
  auto st = engine_->GetStatus("bad");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->dead, 1u);
  EXPECT_EQ(st->pending, 0u);
  EXPECT_EQ(st->runs_failed, 3u);
  EXPECT_EQ(st->runs_ok, 0u);
  EXPECT_NE(st->last_error.find("not a number"), std::string::npos);
  // Nothing reached the output share, and failed runs left no staged files behind.
  EXPECT_EQ(Files("out"), std::set<std::string>{});

  // Unknown ids and pipelines.
  EXPECT_EQ(engine_->RetryDead("bad", d.id + 100).code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->DiscardDead("bad", d.id + 100).code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->RetryDead("other", d.id).code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetStatus("other").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->RunNow("other").code(), StatusCode::kNotFound);

  // Retry: it runs again (and fails again, three more times).
  ASSERT_TRUE(engine_->RetryDead("bad", d.id).ok());
  ASSERT_TRUE(WaitFor([&] { return Runs("bad").size() == 6; }));
  Idle();
  dead = engine_->DeadLetters("bad", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  // Discard: gone for good.
  ASSERT_TRUE(engine_->DiscardDead("bad", (*dead)[0].id).ok());
  EXPECT_EQ(engine_->DiscardDead("bad", (*dead)[0].id).code(), StatusCode::kNotFound);
  dead = engine_->DeadLetters("bad", 10);
  ASSERT_TRUE(dead.ok());
  EXPECT_TRUE(dead->empty());
  st = engine_->GetStatus("bad");
  EXPECT_EQ(st->dead, 0u);
  EXPECT_EQ(st->runs_failed, 6u);
}

TEST_F(EngineTest, RunNowOfAFilePipelineRetriesItsDeadLetters) {
  json decl = FilePipeline("bad", json::array({{{"type", "filter"}, {"where", "temp * 2 > 10"}}}),
                           json::array({{{"type", "file"}, {"share", "out"}}}));
  decl["retry"] = {{"max_attempts", 1}, {"backoff_ms", 0}};
  OpenEngine({decl});
  Put("in", "data/t.csv", "temp\nx\n");
  Idle();
  ASSERT_EQ(engine_->DeadLetters("bad", 10)->size(), 1u);
  ASSERT_TRUE(engine_->RunNow("bad").ok());
  ASSERT_TRUE(WaitFor([&] { return Runs("bad").size() == 2; }));
  Idle();
  EXPECT_EQ(engine_->DeadLetters("bad", 10)->size(), 1u);
}

// --- schedules ------------------------------------------------------------------------------

json SchedulePipeline(const std::string& name, const std::string& cron) {
  return {
      {"name", name},
      {"trigger", {{"type", "schedule"}, {"cron", cron}, {"share", "in"}, {"glob", "logs/*.csv"}}},
      {"sinks",
       json::array(
           {{{"type", "file"}, {"share", "out"}, {"path", "reports/{pipeline}-{time}.{ext}"}}})}};
}

TEST_F(EngineTest, RunNowReadsTheMatchingFilesOfASchedulePipeline) {
  FakeClock& clock = fake_clock_;
  clock_ = &clock;
  OpenEngine({SchedulePipeline("daily", "0 3 * * *")});
  Put("in", "logs/b.csv", "x,y\n3,4\n");
  Put("in", "logs/a.csv", "x,y\n1,2\n");
  Put("in", "logs/c.txt", "x,y\n5,6\n");
  Put("in", "logs/sub/d.csv", "x,y\n7,8\n");
  Idle();
  EXPECT_TRUE(FilesUnder("out", "reports/").empty());
  ASSERT_TRUE(engine_->RunNow("daily").ok());
  ASSERT_TRUE(WaitFor([&] { return Runs("daily").size() == 1; }));
  Idle();
  // FakeClock starts at 2026-01-01T00:00:00Z; inputs in path order.
  EXPECT_EQ(FilesUnder("out", "reports/"),
            std::set<std::string>{"reports/daily-20260101T000000Z.csv"});
  EXPECT_EQ(MustGet("out", "reports/daily-20260101T000000Z.csv"), "x,y\n1,2\n3,4\n");
  auto runs = Runs("daily");
  EXPECT_EQ(runs[0].rows_in, 2u);
  EXPECT_EQ(runs[0].result, "ok");
}

TEST_F(EngineTest, CronFiresOnceAndCoalescesMissedFirings) {
  FakeClock& clock = fake_clock_;
  clock_ = &clock;
  OpenEngine({SchedulePipeline("tick", "*/10 * * * *")});
  Put("in", "logs/a.csv", "x\n1\n");
  Idle();
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // the scheduler's first look
  EXPECT_TRUE(Runs("tick").empty());
  clock.Advance(std::chrono::minutes(10) + std::chrono::seconds(1));
  ASSERT_TRUE(WaitFor([&] { return Runs("tick").size() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  Idle();
  EXPECT_EQ(Runs("tick").size(), 1u);
  // 00:20, 00:30 and 00:40 are missed: one run, named by the latest.
  clock.Advance(std::chrono::minutes(35));
  ASSERT_TRUE(WaitFor([&] { return Runs("tick").size() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  Idle();
  EXPECT_EQ(Runs("tick").size(), 2u);
  EXPECT_EQ(FilesUnder("out", "reports/"),
            (std::set<std::string>{"reports/tick-20260101T001000Z.csv",
                                   "reports/tick-20260101T004000Z.csv"}));
  EXPECT_EQ(MustGet("out", "reports/tick-20260101T004000Z.csv"), "x\n1\n");
}

// --- MQTT streams -----------------------------------------------------------------------------

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(json::parse(text.substr(start, nl - start)));
    start = nl + 1;
  }
  return out;
}

json AggregatePipeline() {
  return {{"name", "agg"},
          {"trigger", {{"type", "mqtt"}, {"topics", {"sensors/+/temp"}}}},
          {"steps", json::array({{{"type", "aggregate"},
                                  {"group_by", {"site"}},
                                  {"time", "ts"},
                                  {"window", {{"size_s", 60}}},
                                  {"metrics", json::array({{{"op", "count"}},
                                                           {{"op", "sum"}, {"column", "v"}},
                                                           {{"op", "max"}, {"column", "v"}}})}}})},
          {"sinks", json::array({{{"type", "file"},
                                  {"share", "out"},
                                  {"roll", {{"max_records", 2}, {"max_age_s", 60}}}}})}};
}

// Event times in 2030: later than the FakeClock's "now", so only the watermark closes windows.
std::vector<std::pair<std::string, std::string>> AggregateMessages() {
  return {
      {"sensors/1/temp", R"({"site":"a","ts":"2030-01-01T00:00:05Z","v":1})"},
      {"sensors/2/temp", R"({"site":"b","ts":"2030-01-01T00:00:10Z","v":2})"},
      {"sensors/1/temp", R"({"site":"a","ts":"2030-01-01T00:00:50Z","v":3})"},
      {"sensors/1/temp", R"(garbage)"},
      {"sensors/1/temp", R"({"site":"a","ts":"2030-01-01T00:01:10Z","v":4})"},
      {"sensors/2/temp", R"({"site":"b","ts":"2030-01-01T00:02:30Z","v":5})"},
      {"sensors/1/temp", R"({"site":"a","ts":"2030-01-01T00:03:00Z","v":6})"},
  };
}

json Agg(const std::string& start, const std::string& end, const std::string& site, int count,
         int sum, int max) {
  return {{"window_start", start}, {"window_end", end}, {"site", site},
          {"count", count},        {"sum_v", sum},      {"max_v", max}};
}

void ExpectAggregateBatches(EngineTest* t,
                            const std::function<std::string(const std::string&)>& get,
                            const std::set<std::string>& files) {
  (void)t;
  EXPECT_EQ(files, (std::set<std::string>{"agg/00000001-000000000001-000000000005.jsonl",
                                          "agg/00000002-000000000006-000000000007.jsonl"}));
  EXPECT_EQ(JsonLines(get("agg/00000001-000000000001-000000000005.jsonl")),
            (std::vector<json>{Agg("2030-01-01T00:00:00Z", "2030-01-01T00:01:00Z", "a", 2, 4, 3),
                               Agg("2030-01-01T00:00:00Z", "2030-01-01T00:01:00Z", "b", 1, 2, 2)}));
  EXPECT_EQ(JsonLines(get("agg/00000002-000000000006-000000000007.jsonl")),
            (std::vector<json>{Agg("2030-01-01T00:01:00Z", "2030-01-01T00:02:00Z", "a", 1, 4, 4),
                               Agg("2030-01-01T00:02:00Z", "2030-01-01T00:03:00Z", "b", 1, 5, 5)}));
}

TEST_F(EngineTest, MqttAggregateWritesBatchesAndDeadLettersBadPayloads) {
  FakeClock& clock = fake_clock_;
  clock_ = &clock;
  OpenEngine({AggregatePipeline()}, /*start=*/false);
  EXPECT_EQ(engine_->Topics(), std::vector<std::string>{"sensors/+/temp"});
  for (const auto& [topic, payload] : AggregateMessages())
    ASSERT_TRUE(engine_->OnMessage(topic, payload).ok());
  ASSERT_TRUE(engine_->OnMessage("other/topic", "{}").ok());  // matches nothing
  auto st = engine_->GetStatus("agg");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->buffered, 7u);
  ASSERT_TRUE(engine_->Start().ok());
  Idle();
  ExpectAggregateBatches(
      this, [&](const std::string& p) { return MustGet("out", p); }, FilesUnder("out", "agg/"));
  EXPECT_EQ(FilesUnder("out", ".fieldstack-staging"), std::set<std::string>{});

  auto dead = engine_->DeadLetters("agg", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].item, "message:4 (sensors/1/temp)");
  EXPECT_NE((*dead)[0].error.find("JSON"), std::string::npos) << (*dead)[0].error;
  st = engine_->GetStatus("agg");
  EXPECT_EQ(st->buffered, 0u);
  EXPECT_EQ(st->dead, 1u);
  EXPECT_EQ(st->rows_out, 4u);
  auto runs = Runs("agg");
  ASSERT_GE(runs.size(), 2u);
  EXPECT_EQ(runs.back().item, "messages:1-5");
  EXPECT_EQ(runs.back().rows_out, 2u);
  EXPECT_EQ(runs.back().rows_in, 4u);  // the garbage message is not a row

  // Retry puts the payload back into the buffer (as a new message): still garbage, so it is a
  // dead letter again, under its new sequence number; the stream goes on.
  ASSERT_TRUE(engine_->RetryDead("agg", (*dead)[0].id).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto d = engine_->DeadLetters("agg", 10);
    return d.ok() && d->size() == 1 && (*d)[0].item == "message:8 (sensors/1/temp)";
  }));
  ASSERT_TRUE(
      engine_->OnMessage("sensors/1/temp", R"({"site":"a","ts":"2030-01-01T00:04:00Z","v":7})")
          .ok());
  // Message 9 closes the 00:03 window: one more batch, not full (1 record) until it ages.
  IdleAging();
  dead = engine_->DeadLetters("agg", 10);
  ASSERT_EQ(dead->size(), 1u);
  ASSERT_TRUE(engine_->DiscardDead("agg", (*dead)[0].id).ok());
  EXPECT_TRUE(engine_->DeadLetters("agg", 10)->empty());
  auto files = FilesUnder("out", "agg/");
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(JsonLines(MustGet("out", *files.rbegin())),
            (std::vector<json>{Agg("2030-01-01T00:03:00Z", "2030-01-01T00:04:00Z", "a", 1, 6, 6)}));
  EXPECT_EQ(files.rbegin()->rfind("agg/00000003-", 0), 0u) << *files.rbegin();
}

TEST_F(EngineTest, MqttAggregateSurvivesRestartsAtEveryMessage) {
  // Stop and reopen the engine after each message: the outputs equal an uninterrupted run.
  FakeClock& clock = fake_clock_;
  clock_ = &clock;
  for (const auto& [topic, payload] : AggregateMessages()) {
    OpenEngine({AggregatePipeline()});
    ASSERT_TRUE(engine_->OnMessage(topic, payload).ok());
    IdleAging();
    engine_->Stop();
  }
  OpenEngine({AggregatePipeline()});
  Idle();
  // Batches close where the records count says, whatever the restarts.
  auto files = FilesUnder("out", "agg/");
  std::vector<json> all;
  for (const auto& f : files)
    for (auto& j : JsonLines(MustGet("out", f))) all.push_back(j);
  EXPECT_EQ(all,
            (std::vector<json>{Agg("2030-01-01T00:00:00Z", "2030-01-01T00:01:00Z", "a", 2, 4, 3),
                               Agg("2030-01-01T00:00:00Z", "2030-01-01T00:01:00Z", "b", 1, 2, 2),
                               Agg("2030-01-01T00:01:00Z", "2030-01-01T00:02:00Z", "a", 1, 4, 4),
                               Agg("2030-01-01T00:02:00Z", "2030-01-01T00:03:00Z", "b", 1, 5, 5)}));
  EXPECT_EQ(engine_->DeadLetters("agg", 10)->size(), 1u);
}

json PassThrough(uint64_t max_records) {
  return {{"name", "raw"},
          {"trigger", {{"type", "mqtt"}, {"topics", {"dev/#"}}}},
          {"sinks", json::array({{{"type", "file"},
                                  {"share", "out"},
                                  {"roll", {{"max_records", max_records}, {"max_age_s", 1}}}}})}};
}

// Message id -> how many times it appears in the batch files of `raw`.
std::map<int, int> CountIds(EngineTest* t, const std::set<std::string>& files,
                            const std::function<std::string(const std::string&)>& get) {
  (void)t;
  std::map<int, int> seen;
  for (const auto& f : files) {
    for (const auto& j : JsonLines(get(f))) {
      EXPECT_EQ(j.at("_topic"), "dev/" + std::to_string(j.at("id").get<int>() % 3));
      seen[j.at("id").get<int>()]++;
    }
  }
  return seen;
}

TEST_F(EngineTest, MqttPassThroughWritesEveryMessageExactlyOnce) {
  OpenEngine({PassThrough(7)});
  for (int i = 1; i <= 100; ++i) {
    ASSERT_TRUE(
        engine_
            ->OnMessage("dev/" + std::to_string(i % 3),
                        "{\"id\":" + std::to_string(i) + ",\"x\":\"m" + std::to_string(i) + "\"}")
            .ok());
  }
  Idle();
  auto files = FilesUnder("out", "raw/");
  auto seen = CountIds(this, files, [&](const std::string& p) { return MustGet("out", p); });
  ASSERT_EQ(seen.size(), 100u);
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << "message " << id;
  EXPECT_GE(files.size(), 15u);
  EXPECT_EQ(engine_->GetStatus("raw")->buffered, 0u);
}

TEST_F(EngineTest, MqttStreamLosesAndDuplicatesNothingAcrossStops) {
  int next = 1;
  for (int round = 0; round < 4; ++round) {
    OpenEngine({PassThrough(5)});
    for (int i = 0; i < 60; ++i, ++next) {
      ASSERT_TRUE(engine_
                      ->OnMessage("dev/" + std::to_string(next % 3),
                                  "{\"id\":" + std::to_string(next) + "}")
                      .ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(round * 7));
    engine_->Stop();  // mid-stream
    engine_.reset();
  }
  OpenEngine({PassThrough(5)});
  Idle();
  auto seen = CountIds(this, FilesUnder("out", "raw/"),
                       [&](const std::string& p) { return MustGet("out", p); });
  std::string files;
  for (const auto& f : FilesUnder("out", "raw/")) files += f + " ";
  for (int i = 1; i <= 240; ++i)
    if (!seen.count(i)) files += "missing " + std::to_string(i) + " ";
  ASSERT_EQ(seen.size(), 240u) << files;
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << "message " << id;
  EXPECT_EQ(FilesUnder("out", ".fieldstack-staging"), std::set<std::string>{});
}

TEST_F(EngineTest, MqttMessagesAfterTheBufferEmptiedAreProcessed) {
  // Once a checkpoint has trimmed the whole buffer, new messages still get new sequence numbers.
  OpenEngine({PassThrough(2)});
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i <= 4; ++i) {
      int id = round * 4 + i;
      ASSERT_TRUE(
          engine_->OnMessage("dev/" + std::to_string(id % 3), "{\"id\":" + std::to_string(id) + "}")
              .ok());
    }
    Idle();
    EXPECT_EQ(engine_->GetStatus("raw")->buffered, 0u);
  }
  auto seen = CountIds(this, FilesUnder("out", "raw/"),
                       [&](const std::string& p) { return MustGet("out", p); });
  ASSERT_EQ(seen.size(), 12u);
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << "message " << id;
}

TEST_F(EngineTest, StreamStepErrorBecomesADeadLetterAndTheStreamGoesOn) {
  json decl = PassThrough(1);
  decl["steps"] = json::array({{{"type", "select"},
                                {"compute", json::array({{{"name", "y"}, {"expr", "x * 2"}}})},
                                {"columns", {"id", "y"}}}});
  OpenEngine({decl});
  ASSERT_TRUE(engine_->OnMessage("dev/1", R"({"id":1,"x":2})").ok());
  ASSERT_TRUE(engine_->OnMessage("dev/1", R"({"id":2,"x":"oops"})").ok());
  ASSERT_TRUE(engine_->OnMessage("dev/1", R"({"id":3,"x":5})").ok());
  Idle();
  std::vector<json> all;
  for (const auto& f : FilesUnder("out", "raw/"))
    for (auto& j : JsonLines(MustGet("out", f))) all.push_back(j);
  EXPECT_EQ(all, (std::vector<json>{{{"id", 1}, {"y", 4}}, {{"id", 3}, {"y", 10}}}));
  auto dead = engine_->DeadLetters("raw", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_NE((*dead)[0].error.find("oops"), std::string::npos) << (*dead)[0].error;
}

// --- modules ---------------------------------------------------------------------------------

class EngineModuleTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    BwrapOptions bo;
    bo.require_cgroups = false;
    auto r = MakeBwrapRunner(bo);
    if (!r.ok()) GTEST_SKIP() << "no sandbox: " << r.status().ToString();
    bwrap_ = std::move(*r);
    runner_ = bwrap_.get();
    spdlog::set_level(spdlog::level::err);  // the no-cgroups warning
  }
  void TearDown() override {
    EngineTest::TearDown();
    spdlog::set_level(spdlog::level::info);
  }

  void StoreModule(const std::string& name, const std::string& text) {
    std::string path = engine_->modules_dir() + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0755);
  }

  std::unique_ptr<ModuleRunner> bwrap_;
};

TEST_F(EngineModuleTest, JsonlModuleTransformsRecords) {
  // An engine dir made private by someone else: Open lets the sandbox uid traverse it.
  std::filesystem::create_directories(Options().dir);
  ::chmod(Options().dir.c_str(), 0700);
  OpenEngine({FilePipeline(
      "up", json::array({{{"type", "module"}, {"module", "upper.py"}}}),
      json::array(
          {{{"type", "file"}, {"share", "out"}, {"path", "{stem}.{ext}"}, {"format", "csv"}}}))});
  StoreModule("upper.py",
              "#!/usr/bin/python3\n"
              "import sys, json\n"
              "for line in sys.stdin:\n"
              "    r = json.loads(line)\n"
              "    r['site'] = r['site'].upper()\n"
              "    print(json.dumps(r))\n"
              "print('done', file=sys.stderr)\n");
  Put("in", "data/s.csv", "site,n\nnorth,1\nsouth,2\n");
  Idle();
  EXPECT_EQ(MustGet("out", "s.csv"), "site,n\nNORTH,1\nSOUTH,2\n");
  auto runs = Runs("up");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].result, "ok") << runs[0].error;
  EXPECT_NE(runs[0].log.find("done"), std::string::npos) << runs[0].log;
}

TEST_F(EngineModuleTest, FilesModuleWritesIntoTheOutputFolder) {
  OpenEngine({FilePipeline(
      "sum",
      json::array({{{"type", "module"},
                    {"module", "summary.py"},
                    {"mode", "files"},
                    {"args", {"--title", "T"}}}}),
      json::array({{{"type", "file"}, {"share", "out"}, {"path", "{dir}/{pipeline}-{name}"}}}))});
  StoreModule("summary.py",
              "#!/usr/bin/python3\n"
              "import sys, os\n"
              "args = sys.argv[1:]\n"
              "out = args[-1]\n"
              "ins = args[2:-1]\n"
              "with open(os.path.join(out, 'summary.txt'), 'w') as f:\n"
              "    f.write(args[1] + '\\n')\n"
              "    for p in ins:\n"
              "        f.write(os.path.basename(p) + ' ' + str(len(open(p).read().splitlines()))"
              " + '\\n')\n");
  Put("in", "data/a/r.csv", "x\n1\n2\n");
  Idle();
  EXPECT_EQ(MustGet("out", "data/a/sum-summary.txt"), "T\nr.csv 3\n");
  auto runs = Runs("sum");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].result, "ok") << runs[0].error << runs[0].log;
  EXPECT_EQ(runs[0].rows_in, 1u);
  EXPECT_EQ(runs[0].rows_out, 1u);
  // The run's private folder is gone.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(Options().dir + "/tmp", ec));
}

TEST_F(EngineModuleTest, FailingModuleFailsTheRunWithItsStderr) {
  json decl = FilePipeline("fail", json::array({{{"type", "module"}, {"module", "exit3.py"}}}),
                           json::array({{{"type", "file"}, {"share", "out"}}}));
  decl["retry"] = {{"max_attempts", 1}};
  OpenEngine({decl});
  StoreModule("exit3.py",
              "#!/usr/bin/python3\n"
              "import sys\n"
              "sys.stdin.read()\n"
              "print('cannot cope with this input', file=sys.stderr)\n"
              "sys.exit(3)\n");
  Put("in", "data/s.csv", "a\n1\n");
  Idle();
  auto runs = Runs("fail");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].result, "dead");
  EXPECT_NE(runs[0].error.find("exit code 3"), std::string::npos) << runs[0].error;
  EXPECT_NE(runs[0].log.find("cannot cope with this input"), std::string::npos) << runs[0].log;
  EXPECT_EQ(Files("out"), std::set<std::string>{});
}

TEST_F(EngineModuleTest, MissingModuleFailsTheRun) {
  json decl = FilePipeline("none", json::array({{{"type", "module"}, {"module", "nope"}}}),
                           json::array({{{"type", "file"}, {"share", "out"}}}));
  decl["retry"] = {{"max_attempts", 1}};
  OpenEngine({decl});
  Put("in", "data/s.csv", "a\n1\n");
  Idle();
  auto runs = Runs("none");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_NE(runs[0].error.find("not stored"), std::string::npos) << runs[0].error;
}

// --- declarations ----------------------------------------------------------------------------

std::string ParseError(json doc) {
  auto p = ParsePipeline(doc);
  EXPECT_FALSE(p.ok()) << doc.dump();
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  return p.status().message();
}

json Good() {
  return {{"name", "p"},
          {"trigger", {{"type", "file"}, {"share", "in"}, {"glob", "*.csv"}}},
          {"steps", json::array({{{"type", "filter"}, {"where", "a > 1"}}})},
          {"sinks", json::array({{{"type", "file"}, {"share", "out"}}})}};
}

// --- inference steps --------------------------------------------------------------------------

class EngineInferenceTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    auto rt = inference::onnxruntime::MakeOnnxRuntime({});
    if (!rt.ok()) GTEST_SKIP() << "no ONNX Runtime: " << rt.status().ToString();
    runtime_ = std::move(*rt);
    auto reg = inference::ModelRegistry::Open(dir_.path() + "/models", runtime_.get());
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    registry_ = std::move(*reg);
    cache_ = std::make_unique<inference::ModelCache>(runtime_.get());
    inference_.models = registry_.get();
    inference_.sessions = cache_.get();
  }
  void TearDown() override {
    EngineTest::TearDown();  // the engine goes before the sessions it uses
    cache_.reset();
    registry_.reset();
    runtime_.reset();
  }
  void OpenWithInference(const std::vector<json>& decls) {
    engine_.reset();
    EngineOptions o = Options();
    o.inference = inference_;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    std::vector<PipelineDecl> ps;
    for (const auto& d : decls) ps.push_back(Parse(d));
    ASSERT_TRUE(engine_->SetPipelines(ps).ok());
    ASSERT_TRUE(engine_->Start().ok());
  }
  // Y = Softmax(X) over X [1, 3]: a classifier of three columns, made by hand.
  static std::string SoftmaxModel() {
    onnx::ModelProto m;
    m.set_ir_version(8);
    auto* opset = m.add_opset_import();
    opset->set_domain("");
    opset->set_version(13);
    auto* g = m.mutable_graph();
    g->set_name("softmax");
    auto* n = g->add_node();
    n->set_op_type("Softmax");
    n->add_input("X");
    n->add_output("Y");
    for (auto [vi, name] : {std::pair{g->add_input(), "X"}, {g->add_output(), "Y"}}) {
      vi->set_name(name);
      auto* tt = vi->mutable_type()->mutable_tensor_type();
      tt->set_elem_type(onnx::TensorProto::FLOAT);
      tt->mutable_shape()->add_dim()->set_dim_value(1);
      tt->mutable_shape()->add_dim()->set_dim_value(3);
    }
    return m.SerializeAsString();
  }

  std::unique_ptr<inference::Runtime> runtime_;
  std::unique_ptr<inference::ModelRegistry> registry_;
  std::unique_ptr<inference::ModelCache> cache_;
  InferenceContext inference_;
};

TEST_F(EngineInferenceTest, InferOnColumnsAddsClassLabelAndScore) {
  auto m = registry_->Add("three", SoftmaxModel());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->version, 1);
  ASSERT_EQ(m->inputs.size(), 1u);
  EXPECT_EQ(m->inputs[0].shape, (std::vector<int64_t>{1, 3}));
  OpenWithInference({FilePipeline(
      "cls",
      json::array({{{"type", "infer"},
                    {"model", "three"},
                    {"input", {{"columns", {"a", "b", "c"}}}},
                    {"output", {{"decode", "classes"}, {"labels", {"low", "mid", "high"}}}}},
                   {{"type", "select"}, {"drop", {"score"}}}}),
      json::array({{{"type", "file"}, {"share", "out"}, {"path", "{stem}.{ext}"}}}))});
  Put("in", "data/x.csv", "id,a,b,c\n1,1,2,3\n2,3,1,0\n3,0,5,1\n");
  Idle();
  EXPECT_EQ(MustGet("out", "x.csv"),
            "id,a,b,c,class,label\n1,1,2,3,2,high\n2,3,1,0,0,low\n3,0,5,1,1,mid\n");
}

TEST_F(EngineInferenceTest, InferOnAnImageGivesDetectionRecords) {
  const char* model =
      FS_SOURCE_DIR "/.deps/models/blazeface/face_detection_front_128x128_barracuda.onnx";
  const char* image = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";
  if (!std::filesystem::exists(model) || !std::filesystem::exists(image)) {
    GTEST_SKIP() << "BlazeFace or the test image is missing (scripts/install-deps)";
  }
  ASSERT_TRUE(registry_->AddFile("blazeface", model).ok());
  std::ifstream f(image, std::ios::binary);
  std::string png((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  json decl = FilePipeline(
      "faces",
      json::array(
          {{{"type", "infer"},
            {"model", "blazeface"},
            {"input", {{"image", {{"layout", "nhwc"}, {"scale", 2.0 / 255}, {"mean", {1, 1, 1}}}}}},
            {"output", {{"decode", "blazeface"}, {"min_score", 0.6}}}},
           {{"type", "filter"}, {"where", "score > 0.8"}}}),
      json::array(
          {{{"type", "file"}, {"share", "out"}, {"path", "{stem}.{ext}"}, {"format", "csv"}}}),
      {{"glob", "photos/*.png"}});
  OpenWithInference({decl});
  Put("in", "photos/astronaut.png", png);
  Idle();
  std::string out = MustGet("out", "astronaut.csv");
  auto reader = MakeCsvReader(StringSource(out));
  Record r;
  auto more = reader->Next(r);
  ASSERT_TRUE(more.ok() && *more) << out;
  EXPECT_EQ(r.Get("label")->text(), "face");
  EXPECT_EQ(r.Get("path")->text(), "photos/astronaut.png");
  EXPECT_NEAR(r.Get("x0")->as_double(), 179, 8) << out;
  EXPECT_NEAR(r.Get("y0")->as_double(), 82, 8) << out;
  EXPECT_NEAR(r.Get("x1")->as_double(), 274, 8) << out;
  EXPECT_NEAR(r.Get("y1")->as_double(), 177, 8) << out;
  // Six keypoints, the first two on the eyes (verified by eye at about (204,103) and (249,110)).
  auto kp = json::parse(r.Get("keypoints")->text(), nullptr, false);
  ASSERT_TRUE(kp.is_array()) << out;
  ASSERT_EQ(kp.size(), 6u) << out;
  EXPECT_NEAR(kp[0][0].get<double>() + kp[1][0].get<double>(), 204 + 249, 12) << out;
  more = reader->Next(r);
  EXPECT_TRUE(more.ok() && !*more) << "one face: " << out;
}

TEST_F(EngineInferenceTest, AMissingModelOrABadImageIsADeadLetterWithTheReason) {
  json decl =
      FilePipeline("nomodel", json::array({{{"type", "anonymize"}, {"model", "not-there"}}}),
                   json::array({{{"type", "file"}, {"share", "out"}, {"path", "{stem}.{ext}"}}}),
                   {{"glob", "photos/*.png"}});
  decl["retry"] = {{"max_attempts", 1}};
  OpenWithInference({decl});
  Put("in", "photos/a.png", "not a png at all");
  Idle();
  auto dead = engine_->DeadLetters("nomodel", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_NE((*dead)[0].error.find("no model 'not-there'"), std::string::npos) << (*dead)[0].error;
  // With the model there, a file that is not an image fails with that reason.
  ASSERT_TRUE(registry_->Add("not-there", SoftmaxModel()).ok());
  ASSERT_TRUE(engine_->RetryDead("nomodel", (*dead)[0].id).ok());
  Idle();
  dead = engine_->DeadLetters("nomodel", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_NE((*dead)[0].error.find("not an image"), std::string::npos) << (*dead)[0].error;
  EXPECT_TRUE(Files("out").empty());
}

TEST_F(EngineInferenceTest, ABadModelIsRefusedWhenRegistered) {
  auto bad = registry_->Add("junk", std::string(1000, 'x'));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("not a usable ONNX model"), std::string::npos);
  EXPECT_FALSE(registry_->Get("junk").ok());
  EXPECT_EQ(registry_->Add("Bad Name", SoftmaxModel()).status().code(),
            StatusCode::kInvalidArgument);
  // Versions count up and stay until removed.
  ASSERT_TRUE(registry_->Add("m", SoftmaxModel()).ok());
  ASSERT_TRUE(registry_->Add("m", SoftmaxModel()).ok());
  auto newest = registry_->Get("m");
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->version, 2);
  ASSERT_TRUE(registry_->Remove("m", 2).ok());
  EXPECT_EQ(registry_->Get("m")->version, 1);
  EXPECT_EQ(registry_->Remove("m", 7).code(), StatusCode::kNotFound);
}

TEST(PipelineDeclTest, ParsesAGoodDeclarationWithDefaults) {
  auto p = ParsePipeline(Good());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->trigger.settle_ms, 2000);
  EXPECT_EQ(p->sinks[0].path, "{dir}/{stem}-v{version}.{ext}");
  EXPECT_EQ(p->retry.max_attempts, 5);
  json m = Good();
  m["trigger"] = {{"type", "mqtt"}, {"topics", {"a/+/b", "c/#"}}};
  p = ParsePipeline(m);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->sinks[0].path, "{pipeline}/{batch}.{ext}");
}

TEST(PipelineDeclTest, ErrorsNameTheField) {
  json d = Good();
  d["colour"] = "red";
  EXPECT_NE(ParseError(d).find("unknown field 'colour'"), std::string::npos);
  d = Good();
  d["trigger"]["glob"] = 5;
  EXPECT_NE(ParseError(d).find("trigger.glob"), std::string::npos);
  d = Good();
  d["trigger"]["extra"] = 1;
  EXPECT_NE(ParseError(d).find("trigger: unknown field 'extra'"), std::string::npos);
  d = Good();
  d["trigger"] = {{"type", "schedule"}, {"cron", "61 * * * *"}};
  EXPECT_NE(ParseError(d).find("trigger.cron"), std::string::npos);
  EXPECT_NE(ParseError(d).find("minute"), std::string::npos);
  d = Good();
  d["trigger"] = {{"type", "mqtt"}, {"topics", {"ok/+", "#/x"}}};
  EXPECT_NE(ParseError(d).find("trigger.topics[1]"), std::string::npos);
  d["trigger"] = {{"type", "mqtt"}, {"topics", {"a+/x"}}};
  EXPECT_NE(ParseError(d).find("trigger.topics[0]"), std::string::npos);
  d["trigger"] = {{"type", "mqtt"}, {"topics", json::array()}};
  EXPECT_NE(ParseError(d).find("trigger.topics"), std::string::npos);
  d = Good();
  d["trigger"]["type"] = "carrier-pigeon";
  EXPECT_NE(ParseError(d).find("trigger.type"), std::string::npos);
  d = Good();
  d["sinks"][0]["type"] = "fax";
  EXPECT_NE(ParseError(d).find("sinks[0].type: unknown sink type 'fax'"), std::string::npos);
  d = Good();
  d["sinks"][0]["compress"] = "lzma";
  EXPECT_NE(ParseError(d).find("sinks[0].compress"), std::string::npos);
  d = Good();
  d["sinks"][0]["roll"] = {{"max_records", 0}};
  EXPECT_NE(ParseError(d).find("sinks[0].roll.max_records"), std::string::npos);
  d = Good();
  d.erase("sinks");
  EXPECT_NE(ParseError(d).find("sinks"), std::string::npos);
  d["sinks"] = json::array();
  EXPECT_NE(ParseError(d).find("sinks"), std::string::npos);
  d = Good();
  d["steps"].push_back({{"type", "module"}, {"module", "m"}, {"mode", "files"}});
  EXPECT_NE(ParseError(d).find("steps[1].mode"), std::string::npos);
  d = Good();
  d["steps"] = json::array({{{"type", "module"}, {"module", "../etc/passwd"}}});
  EXPECT_NE(ParseError(d).find("steps[0].module"), std::string::npos);
  d = Good();
  d["steps"][0]["where"] = "a >";
  EXPECT_NE(ParseError(d).find("steps[0]"), std::string::npos);
  d = Good();
  d["steps"][0]["type"] = "teleport";
  EXPECT_NE(ParseError(d).find("steps[0]"), std::string::npos);
  d = Good();
  d["name"] = "Bad Name";
  EXPECT_NE(ParseError(d).find("name"), std::string::npos);
  d = Good();
  d["retry"] = {{"max_attempts", 0}};
  EXPECT_NE(ParseError(d).find("retry.max_attempts"), std::string::npos);
  d = Good();
  d["input"] = {{"delimiter", "ab"}};
  EXPECT_NE(ParseError(d).find("input.delimiter"), std::string::npos);
  d = Good();
  d["trigger"] = {{"type", "mqtt"}, {"topics", {"a"}}};
  d["steps"] = json::array({{{"type", "module"}, {"module", "m"}, {"mode", "files"}}});
  EXPECT_NE(ParseError(d).find("MQTT"), std::string::npos);
}

// --- helpers ---------------------------------------------------------------------------------

TEST(GlobMatchTest, SegmentsStarsAndClasses) {
  EXPECT_TRUE(GlobMatch("*.csv", "a.csv"));
  EXPECT_FALSE(GlobMatch("*.csv", "d/a.csv"));
  EXPECT_TRUE(GlobMatch("**/*.csv", "a.csv"));
  EXPECT_TRUE(GlobMatch("**/*.csv", "d/e/a.csv"));
  EXPECT_TRUE(GlobMatch("in/**/*.csv", "in/a.csv"));
  EXPECT_TRUE(GlobMatch("in/**/*.csv", "in/x/y/a.csv"));
  EXPECT_FALSE(GlobMatch("in/**/*.csv", "out/a.csv"));
  EXPECT_TRUE(GlobMatch("**", "anything/at/all"));
  EXPECT_TRUE(GlobMatch("d/**", "d/x"));
  EXPECT_TRUE(GlobMatch("a?c.txt", "abc.txt"));
  EXPECT_FALSE(GlobMatch("a?c.txt", "a/c.txt"));
  EXPECT_TRUE(GlobMatch("log[0-9].txt", "log7.txt"));
  EXPECT_FALSE(GlobMatch("log[0-9].txt", "logx.txt"));
  EXPECT_TRUE(GlobMatch("log[!0-9].txt", "logx.txt"));
  EXPECT_TRUE(GlobMatch("*a*b*", "xxaxxbxx"));
  EXPECT_FALSE(GlobMatch("*a*b*", "xxbxxaxx"));
  EXPECT_TRUE(GlobMatch("/top/*.csv", "top/a.csv"));
  EXPECT_FALSE(GlobMatch("*.csv", "a.csv.gz"));
  // A '*' in the glob is a wildcard even where the name holds a literal '*'.
  EXPECT_TRUE(GlobMatch("a*", "a*b"));
  EXPECT_TRUE(GlobMatch("*.csv", "*x.csv"));
}

TEST(TopicMatchesTest, WildcardsAndSystemTopics) {
  EXPECT_TRUE(TopicMatches("a/b", "a/b"));
  EXPECT_FALSE(TopicMatches("a/b", "a/b/c"));
  EXPECT_TRUE(TopicMatches("a/+/c", "a/x/c"));
  EXPECT_FALSE(TopicMatches("a/+/c", "a/x/y/c"));
  EXPECT_TRUE(TopicMatches("a/+", "a/"));
  EXPECT_FALSE(TopicMatches("a/+", "a"));
  EXPECT_TRUE(TopicMatches("a/#", "a"));
  EXPECT_TRUE(TopicMatches("a/#", "a/b/c"));
  EXPECT_TRUE(TopicMatches("#", "x/y"));
  EXPECT_FALSE(TopicMatches("#", "$SYS/x"));
  EXPECT_FALSE(TopicMatches("+/x", "$SYS/x"));
  EXPECT_TRUE(TopicMatches("$SYS/#", "$SYS/x"));
  EXPECT_TRUE(TopicMatches("+/+", "/x"));
}

TEST(ExpandTemplateTest, VariablesThenRecordFields) {
  Record rec;
  rec.schema = std::make_shared<const Schema>(std::vector<std::string>{"site", "temp", "pipeline"});
  rec.values.resize(3);
  rec.values[0].SetString("north");
  rec.values[1].SetFloatWithText(31.5, "31.5");
  rec.values[2].SetString("from-record");
  EXPECT_EQ(ExpandTemplate("{pipeline}/{site}/{temp}/{missing}x", {{"pipeline", "p"}}, &rec),
            "p/north/31.5/x");
  EXPECT_EQ(
      ExpandTemplate("{dir}/{stem}-v{version}.{ext}",
                     {{"dir", "a/b"}, {"stem", "x"}, {"version", "7"}, {"ext", "csv"}}, nullptr),
      "a/b/x-v7.csv");
  EXPECT_EQ(ExpandTemplate("no {close", {}, nullptr), "no {close");
  EXPECT_EQ(ExpandTemplate("{site}", {}, nullptr), "");
}

int64_t At(const char* iso) { return ParseUtc(iso, "%Y-%m-%dT%H:%M:%SZ") / 1000000000; }

TEST(CronScheduleTest, ParseErrorsNameTheField) {
  EXPECT_FALSE(CronSchedule::Parse("* * * *").ok());
  EXPECT_FALSE(CronSchedule::Parse("* * * * * *").ok());
  auto e = CronSchedule::Parse("60 * * * *");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("minute"), std::string::npos);
  e = CronSchedule::Parse("* 24 * * *");
  EXPECT_NE(e.status().message().find("hour"), std::string::npos);
  e = CronSchedule::Parse("* * 0 * *");
  EXPECT_NE(e.status().message().find("day of month"), std::string::npos);
  e = CronSchedule::Parse("* * * foo *");
  EXPECT_NE(e.status().message().find("month"), std::string::npos);
  e = CronSchedule::Parse("* * * * 8");
  EXPECT_NE(e.status().message().find("day of week"), std::string::npos);
  EXPECT_FALSE(CronSchedule::Parse("*/0 * * * *").ok());
  EXPECT_FALSE(CronSchedule::Parse("5-1 * * * *").ok());
  EXPECT_FALSE(CronSchedule::Parse("1,,2 * * * *").ok());
  EXPECT_FALSE(CronSchedule::Parse("@fortnightly").ok());
}

TEST(CronScheduleTest, NextAcrossMonthsAndWeekdays) {
  auto every15 = CronSchedule::Parse("*/15 * * * *");
  ASSERT_TRUE(every15.ok());
  EXPECT_EQ(every15->Next(At("2026-01-31T23:50:00Z")), At("2026-02-01T00:00:00Z"));
  EXPECT_EQ(every15->Next(At("2026-01-01T00:00:00Z")), At("2026-01-01T00:15:00Z"));
  EXPECT_EQ(every15->Next(At("2026-01-01T00:14:59Z")), At("2026-01-01T00:15:00Z"));

  auto daily = CronSchedule::Parse("@daily");
  ASSERT_TRUE(daily.ok());
  EXPECT_EQ(daily->Next(At("2026-12-31T12:00:00Z")), At("2027-01-01T00:00:00Z"));
  EXPECT_EQ(daily->Next(At("2026-01-01T00:00:00Z")), At("2026-01-02T00:00:00Z"));

  // 2026-01-01 is a Thursday.
  auto weekdays = CronSchedule::Parse("0 2 * * mon-fri");
  ASSERT_TRUE(weekdays.ok());
  EXPECT_EQ(weekdays->Next(At("2026-01-02T03:00:00Z")), At("2026-01-05T02:00:00Z"));  // Fri->Mon
  auto sunday7 = CronSchedule::Parse("0 0 * * 7");
  ASSERT_TRUE(sunday7.ok());
  EXPECT_EQ(sunday7->Next(At("2026-01-01T00:00:00Z")), At("2026-01-04T00:00:00Z"));
  EXPECT_EQ(sunday7->Next(At("2026-01-04T00:00:00Z")), At("2026-01-11T00:00:00Z"));
  auto sat_sun = CronSchedule::Parse("0 0 * * 6-7");
  ASSERT_TRUE(sat_sun.ok());
  EXPECT_EQ(sat_sun->Next(At("2026-01-01T00:00:00Z")), At("2026-01-03T00:00:00Z"));
  EXPECT_EQ(sat_sun->Next(At("2026-01-03T00:00:00Z")), At("2026-01-04T00:00:00Z"));
  EXPECT_EQ(sat_sun->Next(At("2026-01-04T00:00:00Z")), At("2026-01-10T00:00:00Z"));

  // Day of month OR day of week when both are restricted (Vixie): the 13th, or a Friday.
  auto either = CronSchedule::Parse("0 0 13 * fri");
  ASSERT_TRUE(either.ok());
  EXPECT_EQ(either->Next(At("2026-01-01T00:00:00Z")), At("2026-01-02T00:00:00Z"));
  EXPECT_EQ(either->Next(At("2026-01-09T00:00:00Z")), At("2026-01-13T00:00:00Z"));

  auto monthly = CronSchedule::Parse("30 4 31 * *");  // skips months without a 31st
  ASSERT_TRUE(monthly.ok());
  EXPECT_EQ(monthly->Next(At("2026-03-31T05:00:00Z")), At("2026-05-31T04:30:00Z"));
  auto leap = CronSchedule::Parse("0 0 29 feb *");
  ASSERT_TRUE(leap.ok());
  EXPECT_EQ(leap->Next(At("2026-01-01T00:00:00Z")), At("2028-02-29T00:00:00Z"));

  // Never fires: answers "far future" quickly.
  auto never = CronSchedule::Parse("0 0 31 2 *");
  ASSERT_TRUE(never.ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_GT(never->Next(At("2026-01-01T00:00:00Z")), At("2100-01-01T00:00:00Z"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace fieldstack::compute
