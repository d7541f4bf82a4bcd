#include "compute/engine.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <random>

#include "compute/cron.h"
#include "compute/io.h"
#include "compute/module_step.h"
#include "compute/step.h"
#include "compute/timefmt.h"
#include "store/db.h"

namespace fieldstack::compute {

using store::Db;
using store::Stmt;
using json = nlohmann::json;

namespace {

constexpr int kPending = 0;
constexpr int kDead = 1;
constexpr size_t kRunsKept = 1000;
constexpr size_t kLogBytes = 16 * 1024;
constexpr char kStagingPrefix[] = "compute-";

// messages.seq is AUTOINCREMENT: streams remember how far they got by seq, so a seq must never
// be reused. Plain INTEGER PRIMARY KEY gives max(seq)+1, i.e. 1 again once a checkpoint has
// trimmed the whole buffer, and those messages were then taken as already processed (lost).
const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS work(
  id INTEGER PRIMARY KEY,
  pipeline TEXT NOT NULL,
  key TEXT NOT NULL,
  node INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0,
  share TEXT NOT NULL DEFAULT '',
  path TEXT NOT NULL DEFAULT '',
  payload BLOB,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before_ns INTEGER NOT NULL DEFAULT 0,
  updated_ns INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  UNIQUE(pipeline, key));
CREATE INDEX IF NOT EXISTS work_due ON work(state, not_before_ns);
CREATE TABLE IF NOT EXISTS messages(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  received_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_pipeline ON messages(pipeline, seq);
CREATE TABLE IF NOT EXISTS streams(
  pipeline TEXT PRIMARY KEY,
  processed_through INTEGER NOT NULL,
  replay_from INTEGER NOT NULL,
  state TEXT NOT NULL,
  batches INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS outbox(
  pipeline TEXT NOT NULL,
  idx INTEGER NOT NULL,
  kind TEXT NOT NULL,
  share TEXT NOT NULL,
  path TEXT NOT NULL,
  data BLOB NOT NULL,
  retain INTEGER NOT NULL,
  PRIMARY KEY(pipeline, idx));
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY,
  pipeline TEXT NOT NULL,
  item TEXT NOT NULL,
  started_ns INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  rows_in INTEGER NOT NULL,
  rows_out INTEGER NOT NULL,
  result TEXT NOT NULL,
  error TEXT NOT NULL,
  log TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs(pipeline, id);
)sql";

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

std::string RandomHex(size_t bytes) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  std::string out;
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rng() & 0xff);
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

// Reads a Store file's committed generation as a byte stream.
class CommittedSource final : public ByteSource {
 public:
  CommittedSource(std::unique_ptr<store::FileHandle> h, uint64_t gen)
      : h_(std::move(h)), gen_(gen) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    FS_ASSIGN_OR_RETURN(size_t n, h_->ReadCommitted(gen_, off_, out));
    off_ += n;
    return n;
  }

 private:
  std::unique_ptr<store::FileHandle> h_;
  uint64_t gen_;
  uint64_t off_ = 0;
};

// Writes into a Store file (the staging file of an output).
class StoreSink final : public ByteSink {
 public:
  explicit StoreSink(std::unique_ptr<store::FileHandle> h) : h_(std::move(h)) {}
  Status Write(std::string_view d) override {
    if (d.empty()) return Status::Ok();
    FS_RETURN_IF_ERROR(h_->Write(off_, {reinterpret_cast<const uint8_t*>(d.data()), d.size()}));
    off_ += d.size();
    return Status::Ok();
  }
  Status Close() override { return h_->Close(); }
  uint64_t bytes() const { return off_; }

 private:
  std::unique_ptr<store::FileHandle> h_;
  uint64_t off_ = 0;
};

std::vector<std::string_view> Segments(std::string_view p) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string_view s =
        p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!s.empty()) out.push_back(s);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string ExtOfFormat(Format f, Compression c) {
  std::string e = f == Format::kCsv ? "csv" : "jsonl";
  if (c == Compression::kZstd) e += ".zst";
  if (c == Compression::kGzip) e += ".gz";
  return e;
}

}  // namespace

// A committed output: staged file, renamed into place by Commit.
struct OutputFile {
  std::string share;
  std::string path;  // final share-relative path
  store::NodeId staging_dir = store::kNoNode;
  std::string staging_name;
  std::unique_ptr<StoreSink> raw;
  std::unique_ptr<ByteSink> sink;  // compressing wrapper over raw (or raw itself)
  std::unique_ptr<RecordWriter> writer;
  store::Store* store = nullptr;
  bool committed = false;  // renamed into place

  // A run that failed before its outputs were committed removes what it staged (else every
  // failed attempt left a file in the share's staging folder until the next Open).
  ~OutputFile() {
    writer.reset();
    sink.reset();
    raw.reset();
    if (!committed && store != nullptr) (void)store->Unlink(staging_dir, staging_name);
  }
};

struct StreamRunner;

struct Engine::Impl {
  EngineOptions opt;
  Clock* clock = nullptr;
  RealClock real_clock;
  std::unique_ptr<store::Committer> committer;
  std::unique_ptr<store::ReadPool> reads;

  // Serializes SetPipelines, Start and Stop, so that stream runners can be stopped (joined)
  // without holding `mu`: a runner takes `mu` itself (Count), so joining it under `mu` would
  // deadlock. Lock order: lifecycle_mu, then mu.
  Mutex lifecycle_mu;
  Mutex mu;
  CondVar wake;
  std::map<std::string, std::shared_ptr<const PipelineDecl>> pipelines GUARDED_BY(mu);
  std::set<int64_t> in_flight GUARDED_BY(mu);
  std::map<std::string, PipelineStatus> stats GUARDED_BY(mu);
  std::map<std::string, std::unique_ptr<StreamRunner>> streams GUARDED_BY(mu);
  std::map<uint32_t, std::string> share_names GUARDED_BY(mu);
  bool stopping GUARDED_BY(mu) = false;
  bool started GUARDED_BY(mu) = false;
  std::vector<std::thread> threads;

  prometheus::Family<prometheus::Counter>* runs_family = nullptr;
  prometheus::Family<prometheus::Counter>* rows_family = nullptr;
  prometheus::Family<prometheus::Counter>* messages_family = nullptr;
  prometheus::Family<prometheus::Histogram>* duration_family = nullptr;

  int64_t Now() const { return clock->NowUnixNanos(); }
  Status Commit(std::function<Status(Db&)> body) { return committer->Run(std::move(body)); }

  // --- pieces (below) ---
  void ScanLoop();
  void WorkerLoop();
  Status ScanEvents();
  Status ScheduleDue();
  std::shared_ptr<const PipelineDecl> Pipeline(const std::string& name) {
    MutexLock l(mu);
    auto it = pipelines.find(name);
    return it == pipelines.end() ? nullptr : it->second;
  }
  Result<std::string> ShareName(uint32_t id);
  struct Row {
    int64_t id = 0;
    std::string pipeline, key, share, path, payload;
    uint64_t node = 0, version = 0;
    int attempts = 0;
  };
  Result<std::vector<Row>> DueRows(size_t limit);
  void Process(const Row& row);
  Status RunItem(const PipelineDecl& p, const Row& row, RunInfo* run, bool* skipped);
  Status RunRecords(const PipelineDecl& p, std::vector<std::unique_ptr<RecordReader>>& inputs,
                    const std::vector<std::pair<std::string, std::string>>& vars, Format out_format,
                    RunInfo* run);
  Status RunImages(const PipelineDecl& p,
                   const std::vector<std::pair<store::Attr, std::string>>& inputs,
                   const std::vector<std::pair<std::string, std::string>>& vars, RunInfo* run);
  Status RunFilesModule(const PipelineDecl& p,
                        const std::vector<std::pair<store::Attr, std::string>>& inputs,
                        const std::vector<std::pair<std::string, std::string>>& vars, RunInfo* run);
  Result<std::unique_ptr<OutputFile>> OpenOutput(const std::string& share, const std::string& path,
                                                 const std::string& pipeline);
  Status CommitOutput(OutputFile& out);
  Result<store::Attr> EnsureDirs(store::NodeId root, std::string_view rel);
  Status RecordRun(const RunInfo& run);
  void Count(const std::string& pipeline, const RunInfo& run);
  Result<std::vector<std::unique_ptr<Step>>> BuildSteps(const PipelineDecl& p, RunInfo* run);
  Status SendRecord(const PipelineDecl& p, const SinkDecl& s, const Record& rec,
                    std::vector<std::string>* webhook_batch);
  Status FlushWebhook(const SinkDecl& s, std::vector<std::string>* batch);
  // Removes from `streams` the runners whose pipeline went away, changed or was disabled (all
  // of them when stopping); the caller stops them after releasing `mu`.
  std::vector<std::unique_ptr<StreamRunner>> TakeStaleStreams() REQUIRES(mu);
  void StartMissingStreams() REQUIRES(mu);
};

// --- MQTT stream runner ---------------------------------------------------------------------

struct StreamRunner {
  Engine::Impl* e;
  std::shared_ptr<const PipelineDecl> p;
  std::thread thread;
  Mutex mu;
  CondVar cv;
  bool stop GUARDED_BY(mu) = false;
  uint64_t notified GUARDED_BY(mu) = 0;
  std::atomic<bool> idle{false};

  StreamRunner(Engine::Impl* engine, std::shared_ptr<const PipelineDecl> decl)
      : e(engine), p(std::move(decl)) {}
  void Start() {
    thread = std::thread([this] { Run(); });
  }
  void Stop() {
    {
      MutexLock l(mu);
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }
  void Notify() {
    {
      MutexLock l(mu);
      ++notified;
      idle = false;
    }
    cv.notify_all();
  }
  bool Stopping() {
    MutexLock l(mu);
    return stop;
  }
  void Run();
  Status RunOnce();
  Status Deliver();
};

// The emitter at the end of a chain: hands records to the sinks.
class ChainEnd final : public Emitter {
 public:
  explicit ChainEnd(std::function<Status(Record&)> f) : f_(std::move(f)) {}
  Status Emit(Record& rec) override { return f_(rec); }

 private:
  std::function<Status(Record&)> f_;
};

// Connects step i to step i+1.
class Link final : public Emitter {
 public:
  Link(Step* next, Emitter* after) : next_(next), after_(after) {}
  Status Emit(Record& rec) override { return next_->Push(rec, *after_); }

 private:
  Step* next_;
  Emitter* after_;
};

// A chain of steps with its emitters.
struct Chain {
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<std::unique_ptr<Link>> links;  // links[i] feeds steps[i+1]
  std::unique_ptr<ChainEnd> end;

  void Wire(std::function<Status(Record&)> sink) {
    end = std::make_unique<ChainEnd>(std::move(sink));
    links.clear();
    links.resize(steps.size());
    for (size_t i = steps.size(); i-- > 0;) {
      Emitter* after = i + 1 < steps.size() ? static_cast<Emitter*>(links[i + 1].get()) : end.get();
      links[i] = std::make_unique<Link>(steps[i].get(), after);
    }
  }
  Status Push(Record& rec) { return steps.empty() ? end->Emit(rec) : links[0]->Emit(rec); }
  // Finish step i, whose outputs go through the rest of the chain.
  Status Finish() {
    for (size_t i = 0; i < steps.size(); ++i) {
      Emitter* after = i + 1 < steps.size() ? static_cast<Emitter*>(links[i + 1].get()) : end.get();
      FS_RETURN_IF_ERROR(steps[i]->Finish(*after));
    }
    return Status::Ok();
  }
  Status Tick(int64_t now_ns) {
    for (size_t i = 0; i < steps.size(); ++i) {
      Emitter* after = i + 1 < steps.size() ? static_cast<Emitter*>(links[i + 1].get()) : end.get();
      FS_RETURN_IF_ERROR(steps[i]->Tick(now_ns, *after));
    }
    return Status::Ok();
  }
  uint64_t OldestNeeded() const {
    uint64_t m = UINT64_MAX;
    for (const auto& s : steps) m = std::min(m, s->OldestNeededSeq());
    return m;
  }
  json Save() const {
    json a = json::array();
    for (const auto& s : steps) a.push_back(s->SaveState());
    return a;
  }
  Status Restore(const json& a) {
    if (!a.is_array()) return Status::Ok();
    for (size_t i = 0; i < steps.size() && i < a.size(); ++i) {
      if (!a[i].is_null()) FS_RETURN_IF_ERROR(steps[i]->RestoreState(a[i]));
    }
    return Status::Ok();
  }
};

// --- Engine ---------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() { Stop(); }

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  if (options.store == nullptr) return InvalidArgumentError("compute engine: no store");
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->clock = options.clock != nullptr ? options.clock : &impl->real_clock;
  std::error_code ec;
  std::filesystem::create_directories(options.dir + "/modules", ec);
  if (ec) return ErrnoStatus(ec.value(), "create " + options.dir + "/modules");
  // Temporary module directories of runs a crash interrupted.
  std::filesystem::remove_all(options.dir + "/tmp", ec);
  std::filesystem::create_directories(options.dir + "/tmp", ec);
  if (ec) return ErrnoStatus(ec.value(), "create " + options.dir + "/tmp");
  // Modules run as an unprivileged uid (sandbox.h): it must traverse the engine's dir to reach
  // modules/<name> and tmp/run-*/ (search only: it cannot list or read anything else here).
  for (const std::string& d : {options.dir, options.dir + "/modules", options.dir + "/tmp"}) {
    struct stat st;
    if (::stat(d.c_str(), &st) == 0 && (st.st_mode & 0111) != 0111)
      (void)::chmod(d.c_str(), (st.st_mode & 07777) | 0711);
  }
  std::string path = options.dir + "/compute.db";
  FS_ASSIGN_OR_RETURN(auto db, Db::Open(path, true));
  FS_RETURN_IF_ERROR(db->Exec(kSchema));
  impl->committer = std::make_unique<store::Committer>(std::move(db));
  impl->reads = std::make_unique<store::ReadPool>(path);
  // On first open, file pipelines act on what happens from now on. The cursor is recorded here
  // rather than at the scanner's first round, which runs after Start: a file written between
  // Open and that round was otherwise never processed.
  FS_ASSIGN_OR_RETURN(uint64_t last_event, options.store->LastEventSeq());
  FS_RETURN_IF_ERROR(impl->Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(
        Stmt c, db.Prepare("INSERT OR IGNORE INTO meta(key, value) VALUES('store_cursor', ?)"));
    return c.Bind(1, std::to_string(last_event)).Run();
  }));
  if (options.metrics != nullptr) {
    auto& reg = options.metrics->registry();
    impl->runs_family = &prometheus::BuildCounter()
                             .Name("fieldstack_compute_runs_total")
                             .Help("Pipeline runs and stream checkpoints, by pipeline and result")
                             .Register(reg);
    impl->rows_family = &prometheus::BuildCounter()
                             .Name("fieldstack_compute_rows_total")
                             .Help("Records into and out of pipelines, by pipeline and direction")
                             .Register(reg);
    impl->messages_family = &prometheus::BuildCounter()
                                 .Name("fieldstack_compute_messages_total")
                                 .Help("MQTT messages durably buffered, by pipeline")
                                 .Register(reg);
    impl->duration_family = &prometheus::BuildHistogram()
                                 .Name("fieldstack_compute_run_seconds")
                                 .Help("Pipeline run durations, by pipeline")
                                 .Register(reg);
  }
  // Staged outputs a crash left behind, in every share.
  auto shares = options.store->ListShares();
  if (shares.ok()) {
    for (const auto& sh : *shares) {
      auto staging = options.store->Lookup(sh.root, store::kStagingDir);
      if (!staging.ok()) continue;
      std::string after;
      while (true) {
        auto page = options.store->ReadDir(staging->id, after, 256);
        if (!page.ok() || page->empty()) break;
        for (const auto& a : *page) {
          if (a.name.rfind(kStagingPrefix, 0) == 0)
            (void)options.store->Unlink(staging->id, a.name);
        }
        after = page->back().name;
      }
    }
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

std::string Engine::modules_dir() const { return impl_->opt.dir + "/modules"; }

Status Engine::SetPipelines(std::vector<PipelineDecl> pipelines) {
  MutexLock lc(impl_->lifecycle_mu);
  std::vector<std::unique_ptr<StreamRunner>> stale;
  {
    MutexLock l(impl_->mu);
    std::map<std::string, std::shared_ptr<const PipelineDecl>> next;
    for (auto& p : pipelines) {
      std::string name = p.name;
      next[name] = std::make_shared<const PipelineDecl>(std::move(p));
      impl_->stats[name].name = name;
    }
    impl_->pipelines = std::move(next);
    if (impl_->started) stale = impl_->TakeStaleStreams();
  }
  // Stopped before their replacements start: one runner per stream at any time.
  for (auto& r : stale) r->Stop();
  MutexLock l(impl_->mu);
  if (impl_->started) impl_->StartMissingStreams();
  impl_->wake.notify_all();
  return Status::Ok();
}

Status Engine::Start() {
  MutexLock lc(impl_->lifecycle_mu);
  {
    MutexLock l(impl_->mu);
    if (impl_->started) return Status::Ok();
    impl_->started = true;
    impl_->stopping = false;
    impl_->StartMissingStreams();
  }
  impl_->threads.emplace_back([this] { impl_->ScanLoop(); });
  for (int i = 0; i < std::max(1, impl_->opt.workers); ++i)
    impl_->threads.emplace_back([this] { impl_->WorkerLoop(); });
  return Status::Ok();
}

void Engine::Stop() {
  MutexLock lc(impl_->lifecycle_mu);
  std::vector<std::unique_ptr<StreamRunner>> stale;
  {
    MutexLock l(impl_->mu);
    if (!impl_->started) return;
    impl_->stopping = true;
    stale = impl_->TakeStaleStreams();
    impl_->wake.notify_all();
  }
  // Joined without `mu` held (see lifecycle_mu).
  for (auto& r : stale) r->Stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  MutexLock l(impl_->mu);
  impl_->started = false;
}

std::vector<std::unique_ptr<StreamRunner>> Engine::Impl::TakeStaleStreams() {
  std::vector<std::unique_ptr<StreamRunner>> out;
  for (auto it = streams.begin(); it != streams.end();) {
    auto p = pipelines.find(it->first);
    if (stopping || p == pipelines.end() || p->second->doc != it->second->p->doc ||
        !p->second->enabled) {
      out.push_back(std::move(it->second));
      it = streams.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Engine::Impl::StartMissingStreams() {
  if (stopping) return;
  for (const auto& [name, p] : pipelines) {
    if (p->trigger.kind != TriggerDecl::Kind::kMqtt || !p->enabled || streams.count(name)) continue;
    auto r = std::make_unique<StreamRunner>(this, p);
    r->Start();
    streams[name] = std::move(r);
  }
}

std::vector<std::string> Engine::Topics() {
  MutexLock l(impl_->mu);
  std::set<std::string> t;
  for (const auto& [name, p] : impl_->pipelines)
    if (p->enabled && p->trigger.kind == TriggerDecl::Kind::kMqtt)
      t.insert(p->trigger.topics.begin(), p->trigger.topics.end());
  return {t.begin(), t.end()};
}

Status Engine::OnMessage(const std::string& topic, std::string_view payload) {
  std::vector<std::string> targets;
  {
    MutexLock l(impl_->mu);
    for (const auto& [name, p] : impl_->pipelines) {
      if (!p->enabled || p->trigger.kind != TriggerDecl::Kind::kMqtt) continue;
      for (const auto& f : p->trigger.topics) {
        if (TopicMatches(f, topic)) {
          targets.push_back(name);
          break;
        }
      }
    }
  }
  if (targets.empty()) return Status::Ok();
  int64_t now = impl_->Now();
  FS_RETURN_IF_ERROR(impl_->Commit([&](Db& db) -> Status {
    for (const auto& t : targets) {
      FS_ASSIGN_OR_RETURN(
          Stmt s,
          db.Prepare(
              "INSERT INTO messages(pipeline, topic, payload, received_ns) VALUES(?,?,?,?)"));
      FS_RETURN_IF_ERROR(s.Bind(1, t).Bind(2, topic).BindBlob(3, payload).Bind(4, now).Run());
    }
    return Status::Ok();
  }));
  MutexLock l(impl_->mu);
  for (const auto& t : targets) {
    if (impl_->messages_family != nullptr)
      impl_->messages_family->Add({{"pipeline", t}}).Increment();
    auto it = impl_->streams.find(t);
    if (it != impl_->streams.end()) it->second->Notify();
  }
  return Status::Ok();
}

Status Engine::RunNow(const std::string& name) {
  auto p = impl_->Pipeline(name);
  if (p == nullptr) return NotFoundError("no pipeline '" + name + "'");
  if (p->trigger.kind == TriggerDecl::Kind::kMqtt)
    return FailedPreconditionError("pipeline '" + name +
                                   "' runs on MQTT messages; it has no runs to start");
  int64_t now = impl_->Now();
  FS_RETURN_IF_ERROR(impl_->Commit([&](Db& db) -> Status {
    if (p->trigger.kind == TriggerDecl::Kind::kSchedule) {
      FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("INSERT OR IGNORE INTO work(pipeline, key, state, "
                                             "not_before_ns, updated_ns) VALUES(?,?,0,?,?)"));
      return s.Bind(1, name)
          .Bind(2, "manual:" + std::to_string(now))
          .Bind(3, now)
          .Bind(4, now)
          .Run();
    }
    FS_ASSIGN_OR_RETURN(
        Stmt s,
        db.Prepare(
            "UPDATE work SET state=0, attempts=0, not_before_ns=? WHERE pipeline=? AND state=1"));
    return s.Bind(1, now).Bind(2, name).Run();
  }));
  impl_->wake.notify_all();
  return Status::Ok();
}

Result<std::vector<RunInfo>> Engine::Runs(const std::string& pipeline, int64_t before_id,
                                          size_t limit) {
  FS_ASSIGN_OR_RETURN(auto lease, impl_->reads->Borrow());
  FS_ASSIGN_OR_RETURN(Stmt s, lease->Prepare("SELECT id, pipeline, item, started_ns, duration_ms, "
                                             "rows_in, rows_out, result, error, log FROM runs "
                                             "WHERE pipeline=? AND id<? ORDER BY id DESC LIMIT ?"));
  s.Bind(1, pipeline)
      .Bind(2, before_id <= 0 ? INT64_MAX : before_id)
      .Bind(3, static_cast<int64_t>(limit));
  std::vector<RunInfo> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    RunInfo r;
    r.id = s.Int(0);
    r.pipeline = s.Text(1);
    r.item = s.Text(2);
    r.started_ns = s.Int(3);
    r.duration_ms = s.Int(4);
    r.rows_in = static_cast<uint64_t>(s.Int(5));
    r.rows_out = static_cast<uint64_t>(s.Int(6));
    r.result = s.Text(7);
    r.error = s.Text(8);
    r.log = s.Text(9);
    out.push_back(std::move(r));
  }
  return out;
}

namespace {
std::string ItemName(const std::string& key, const std::string& path, uint64_t version) {
  if (key.rfind("file:", 0) == 0) return "file:" + path + "@v" + std::to_string(version);
  if (key.rfind("message:", 0) == 0) return key + " (" + path + ")";
  return key;
}
}  // namespace

Result<std::vector<DeadLetter>> Engine::DeadLetters(const std::string& pipeline, size_t limit) {
  FS_ASSIGN_OR_RETURN(auto lease, impl_->reads->Borrow());
  FS_ASSIGN_OR_RETURN(
      Stmt s,
      lease->Prepare(
          "SELECT id, pipeline, key, path, version, attempts, last_error, updated_ns FROM work "
          "WHERE pipeline=? AND state=1 ORDER BY id LIMIT ?"));
  s.Bind(1, pipeline).Bind(2, static_cast<int64_t>(limit));
  std::vector<DeadLetter> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    DeadLetter d;
    d.id = s.Int(0);
    d.pipeline = s.Text(1);
    d.item = ItemName(s.Text(2), s.Text(3), static_cast<uint64_t>(s.Int(4)));
    d.attempts = static_cast<int>(s.Int(5));
    d.error = s.Text(6);
    d.failed_ns = s.Int(7);
    out.push_back(std::move(d));
  }
  return out;
}

Status Engine::RetryDead(const std::string& pipeline, int64_t id) {
  int64_t now = impl_->Now();
  bool found = false;
  FS_RETURN_IF_ERROR(impl_->Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(
        Stmt q,
        db.Prepare("SELECT key, path, payload FROM work WHERE id=? AND pipeline=? AND state=1"));
    q.Bind(1, id).Bind(2, pipeline);
    FS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Status::Ok();
    found = true;
    std::string key = q.Text(0);
    if (key.rfind("message:", 0) == 0) {
      // A message that could not be parsed: back into the buffer, as a new message.
      std::string topic = q.Text(1), payload = q.Blob(2);
      FS_ASSIGN_OR_RETURN(
          Stmt ins,
          db.Prepare(
              "INSERT INTO messages(pipeline, topic, payload, received_ns) VALUES(?,?,?,?)"));
      FS_RETURN_IF_ERROR(
          ins.Bind(1, pipeline).Bind(2, topic).BindBlob(3, payload).Bind(4, now).Run());
      FS_ASSIGN_OR_RETURN(Stmt del, db.Prepare("DELETE FROM work WHERE id=?"));
      return del.Bind(1, id).Run();
    }
    FS_ASSIGN_OR_RETURN(
        Stmt u,
        db.Prepare(
            "UPDATE work SET state=0, attempts=0, not_before_ns=?, updated_ns=? WHERE id=?"));
    return u.Bind(1, now).Bind(2, now).Bind(3, id).Run();
  }));
  if (!found)
    return NotFoundError("pipeline '" + pipeline + "' has no dead letter " + std::to_string(id));
  MutexLock l(impl_->mu);
  impl_->wake.notify_all();
  for (auto& [n, s] : impl_->streams) s->Notify();
  return Status::Ok();
}

Status Engine::DiscardDead(const std::string& pipeline, int64_t id) {
  bool found = false;
  FS_RETURN_IF_ERROR(impl_->Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt d,
                        db.Prepare("DELETE FROM work WHERE id=? AND pipeline=? AND state=1"));
    FS_RETURN_IF_ERROR(d.Bind(1, id).Bind(2, pipeline).Run());
    found = db.Changes() > 0;
    return Status::Ok();
  }));
  if (!found)
    return NotFoundError("pipeline '" + pipeline + "' has no dead letter " + std::to_string(id));
  return Status::Ok();
}

Result<PipelineStatus> Engine::GetStatus(const std::string& name) {
  PipelineStatus st;
  {
    MutexLock l(impl_->mu);
    auto p = impl_->pipelines.find(name);
    if (p == impl_->pipelines.end()) return NotFoundError("no pipeline '" + name + "'");
    st = impl_->stats[name];
    st.name = name;
    st.enabled = p->second->enabled;
  }
  FS_ASSIGN_OR_RETURN(auto lease, impl_->reads->Borrow());
  FS_ASSIGN_OR_RETURN(
      Stmt s, lease->Prepare("SELECT state, COUNT(*) FROM work WHERE pipeline=? GROUP BY state"));
  s.Bind(1, name);
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    (s.Int(0) == kDead ? st.dead : st.pending) = static_cast<uint64_t>(s.Int(1));
  }
  FS_ASSIGN_OR_RETURN(
      Stmt m,
      lease->Prepare("SELECT COUNT(*) FROM messages WHERE pipeline=? AND seq > COALESCE((SELECT "
                     "processed_through FROM streams WHERE pipeline=?), 0)"));
  m.Bind(1, name).Bind(2, name);
  FS_ASSIGN_OR_RETURN(bool row, m.Step());
  if (row) st.buffered = static_cast<uint64_t>(m.Int(0));
  return st;
}

Status Engine::WaitIdle(int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    bool busy = false;
    std::vector<std::string> names;
    {
      MutexLock l(impl_->mu);
      busy = !impl_->in_flight.empty();
      for (const auto& [n, s] : impl_->streams) {
        if (!s->idle) busy = true;
      }
      for (const auto& [n, p] : impl_->pipelines) names.push_back(n);
    }
    if (!busy) {
      auto lease = impl_->reads->Borrow();
      if (!lease.ok()) return lease.status();
      auto s = (*lease)->Prepare("SELECT COUNT(*) FROM work WHERE state=0");
      if (!s.ok()) return s.status();
      auto row = s->Step();
      if (row.ok() && *row && s->Int(0) == 0) {
        // Events not yet scanned?
        auto last = impl_->opt.store->LastEventSeq();
        auto c = (*lease)->Prepare("SELECT value FROM meta WHERE key='store_cursor'");
        uint64_t cursor = 0;
        if (c.ok()) {
          auto r = c->Step();
          if (r.ok() && *r) cursor = std::stoull(c->Text(0));
        }
        if (last.ok() && cursor >= *last) return Status::Ok();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return UnavailableError("compute engine still busy after " + std::to_string(timeout_ms) + " ms");
}

// --- event scanner and scheduler --------------------------------------------------------------

Result<std::string> Engine::Impl::ShareName(uint32_t id) {
  {
    MutexLock l(mu);
    auto it = share_names.find(id);
    if (it != share_names.end()) return it->second;
  }
  FS_ASSIGN_OR_RETURN(auto shares, opt.store->ListShares());
  MutexLock l(mu);
  for (const auto& s : shares) share_names[s.id] = s.name;
  auto it = share_names.find(id);
  if (it == share_names.end()) return NotFoundError("share " + std::to_string(id));
  return it->second;
}

void Engine::Impl::ScanLoop() {
  while (true) {
    {
      MutexLock l(mu);
      if (stopping) return;
    }
    Status s = ScanEvents();
    if (!s.ok()) spdlog::warn("compute: reading the store's events: {}", s.ToString());
    s = ScheduleDue();
    if (!s.ok()) spdlog::warn("compute: scheduling: {}", s.ToString());
    MutexLock l(mu);
    if (stopping) return;
    wake.wait_for(mu, std::chrono::milliseconds(opt.poll_ms));
  }
}

Status Engine::Impl::ScanEvents() {
  std::vector<std::shared_ptr<const PipelineDecl>> file_pipelines;
  {
    MutexLock l(mu);
    for (const auto& [n, p] : pipelines)
      if (p->enabled && p->trigger.kind == TriggerDecl::Kind::kFile) file_pipelines.push_back(p);
  }
  uint64_t cursor = 0;
  {
    FS_ASSIGN_OR_RETURN(auto lease, reads->Borrow());
    FS_ASSIGN_OR_RETURN(Stmt c, lease->Prepare("SELECT value FROM meta WHERE key='store_cursor'"));
    FS_ASSIGN_OR_RETURN(bool row, c.Step());
    if (row) {
      cursor = std::stoull(c.Text(0));
    } else {
      // First start: pipelines act on what happens from now on, not on the store's history.
      FS_ASSIGN_OR_RETURN(cursor, opt.store->LastEventSeq());
    }
  }
  for (int pages = 0; pages < 20; ++pages) {
    FS_ASSIGN_OR_RETURN(auto events, opt.store->ReadEvents(cursor, 1000));
    if (events.empty() && pages > 0) return Status::Ok();
    struct Upsert {
      std::string pipeline;
      uint64_t node, version;
      std::string share, path;
      int64_t due;
    };
    std::vector<Upsert> ups;
    int64_t now = Now();
    for (const auto& ev : events) {
      if (ev.kind != store::EventKind::kWrite && ev.kind != store::EventKind::kRename) continue;
      if (ev.path.rfind(store::kStagingDir, 0) == 0) continue;
      auto share = ShareName(ev.share_id);
      if (!share.ok()) continue;
      for (const auto& p : file_pipelines) {
        if (p->trigger.share != *share) continue;
        // A pipeline never triggers on its own outputs.
        if (ev.origin.process == "compute:" + p->name) continue;
        if (!GlobMatch(p->trigger.glob, ev.path)) continue;
        if (ev.kind == store::EventKind::kRename && GlobMatch(p->trigger.glob, ev.old_path))
          continue;
        ups.push_back(
            {p->name, ev.node, ev.version, *share, ev.path, now + p->trigger.settle_ms * 1000000});
      }
    }
    uint64_t next = events.empty() ? cursor : events.back().seq;
    FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
      for (const auto& u : ups) {
        FS_ASSIGN_OR_RETURN(
            Stmt s,
            db.Prepare(
                "INSERT INTO work(pipeline, key, node, version, share, path, state, attempts, "
                "not_before_ns, updated_ns) "
                "VALUES(?,?,?,?,?,?,0,0,?,?) ON CONFLICT(pipeline, key) DO UPDATE SET "
                "version=excluded.version, "
                "path=excluded.path, state=0, attempts=0, not_before_ns=excluded.not_before_ns, "
                "updated_ns=excluded.updated_ns, last_error=''"));
        FS_RETURN_IF_ERROR(s.Bind(1, u.pipeline)
                               .Bind(2, "file:" + std::to_string(u.node))
                               .Bind(3, static_cast<int64_t>(u.node))
                               .Bind(4, static_cast<int64_t>(u.version))
                               .Bind(5, u.share)
                               .Bind(6, u.path)
                               .Bind(7, u.due)
                               .Bind(8, now)
                               .Run());
      }
      FS_ASSIGN_OR_RETURN(
          Stmt c, db.Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('store_cursor', ?)"));
      return c.Bind(1, std::to_string(next)).Run();
    }));
    if (!ups.empty()) wake.notify_all();
    cursor = next;
    if (events.size() < 1000) return Status::Ok();
  }
  return Status::Ok();
}

Status Engine::Impl::ScheduleDue() {
  std::vector<std::shared_ptr<const PipelineDecl>> sched;
  {
    MutexLock l(mu);
    for (const auto& [n, p] : pipelines)
      if (p->enabled && p->trigger.kind == TriggerDecl::Kind::kSchedule) sched.push_back(p);
  }
  int64_t now_s = Now() / 1000000000;
  for (const auto& p : sched) {
    auto cron = CronSchedule::Parse(p->trigger.cron);
    if (!cron.ok()) continue;
    std::string key = "cron:" + p->name;
    int64_t last = -1;
    {
      FS_ASSIGN_OR_RETURN(auto lease, reads->Borrow());
      FS_ASSIGN_OR_RETURN(Stmt c, lease->Prepare("SELECT value FROM meta WHERE key=?"));
      c.Bind(1, key);
      FS_ASSIGN_OR_RETURN(bool row, c.Step());
      if (row) last = std::stoll(c.Text(0));
    }
    if (last < 0) {
      FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
        FS_ASSIGN_OR_RETURN(Stmt s,
                            db.Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)"));
        return s.Bind(1, key).Bind(2, std::to_string(now_s)).Run();
      }));
      continue;
    }
    int64_t fire = cron->Next(last);
    if (fire > now_s) continue;
    // Missed firings (the box was off) become one run, at the latest due time.
    while (true) {
      int64_t n = cron->Next(fire);
      if (n > now_s) break;
      fire = n;
    }
    int64_t now = Now();
    FS_RETURN_IF_ERROR(Commit([&](Db& db) -> Status {
      FS_ASSIGN_OR_RETURN(Stmt s,
                          db.Prepare("INSERT OR IGNORE INTO work(pipeline, key, share, state, "
                                     "not_before_ns, updated_ns) VALUES(?,?,?,0,?,?)"));
      FS_RETURN_IF_ERROR(s.Bind(1, p->name)
                             .Bind(2, "cron:" + std::to_string(fire))
                             .Bind(3, p->trigger.share)
                             .Bind(4, now)
                             .Bind(5, now)
                             .Run());
      FS_ASSIGN_OR_RETURN(Stmt m,
                          db.Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)"));
      return m.Bind(1, key).Bind(2, std::to_string(fire)).Run();
    }));
    wake.notify_all();
  }
  return Status::Ok();
}

// --- workers -------------------------------------------------------------------------------

Result<std::vector<Engine::Impl::Row>> Engine::Impl::DueRows(size_t limit) {
  FS_ASSIGN_OR_RETURN(auto lease, reads->Borrow());
  FS_ASSIGN_OR_RETURN(
      Stmt s,
      lease->Prepare("SELECT id, pipeline, key, node, version, share, path, attempts FROM work "
                     "WHERE state=0 AND not_before_ns<=? ORDER BY not_before_ns, id LIMIT ?"));
  s.Bind(1, Now()).Bind(2, static_cast<int64_t>(limit));
  std::vector<Row> out;
  while (true) {
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    Row r;
    r.id = s.Int(0);
    r.pipeline = s.Text(1);
    r.key = s.Text(2);
    r.node = static_cast<uint64_t>(s.Int(3));
    r.version = static_cast<uint64_t>(s.Int(4));
    r.share = s.Text(5);
    r.path = s.Text(6);
    r.attempts = static_cast<int>(s.Int(7));
    out.push_back(std::move(r));
  }
  return out;
}

void Engine::Impl::WorkerLoop() {
  while (true) {
    std::optional<Row> mine;
    {
      MutexLock l(mu);
      if (stopping) return;
    }
    auto rows = DueRows(64);
    if (rows.ok()) {
      MutexLock l(mu);
      for (auto& r : *rows) {
        auto p = pipelines.find(r.pipeline);
        if (p == pipelines.end() || !p->second->enabled) continue;
        if (in_flight.count(r.id)) continue;
        in_flight.insert(r.id);
        mine = std::move(r);
        break;
      }
    } else {
      spdlog::warn("compute: reading due work: {}", rows.status().ToString());
    }
    if (mine) {
      Process(*mine);
      MutexLock l(mu);
      in_flight.erase(mine->id);
      continue;
    }
    MutexLock l(mu);
    if (stopping) return;
    wake.wait_for(mu, std::chrono::milliseconds(opt.poll_ms));
  }
}

void Engine::Impl::Process(const Row& row) {
  auto p = Pipeline(row.pipeline);
  if (p == nullptr) return;
  RunInfo run;
  run.pipeline = row.pipeline;
  run.item = ItemName(row.key, row.path, row.version);
  run.started_ns = Now();
  auto t0 = std::chrono::steady_clock::now();
  bool skipped = false;
  store::Store::SetThreadOrigin({true, 0, 0, static_cast<int32_t>(getpid()), "compute:" + p->name});
  Status s = RunItem(*p, row, &run, &skipped);
  store::Store::SetThreadOrigin({});
  run.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  int64_t now = Now();
  bool dead = false;
  if (s.ok()) {
    run.result = skipped ? "skipped" : "ok";
    Status c = Commit([&](Db& db) -> Status {
      // Only the version that ran is done: a newer one (upserted meanwhile) stays pending.
      FS_ASSIGN_OR_RETURN(Stmt d,
                          db.Prepare("DELETE FROM work WHERE id=? AND version=? AND state=0"));
      return d.Bind(1, row.id).Bind(2, static_cast<int64_t>(row.version)).Run();
    });
    if (!c.ok()) spdlog::warn("compute: finishing {}: {}", run.item, c.ToString());
  } else if (s.code() == StatusCode::kFailedPrecondition &&
             s.message().find("superseded") != std::string::npos) {
    run.result = "skipped";
    run.error = s.message();
  } else {
    run.error = s.ToString();
    int attempts = row.attempts + 1;
    dead = attempts >= p->retry.max_attempts;
    run.result = dead ? "dead" : "failed";
    int64_t backoff_ms = p->retry.backoff_ms;
    for (int i = 1; i < attempts && backoff_ms < p->retry.max_backoff_ms; ++i) backoff_ms *= 2;
    backoff_ms = std::min(backoff_ms, p->retry.max_backoff_ms);
    Status c = Commit([&](Db& db) -> Status {
      FS_ASSIGN_OR_RETURN(Stmt u,
                          db.Prepare("UPDATE work SET attempts=?, state=?, not_before_ns=?, "
                                     "last_error=?, updated_ns=? WHERE id=? AND version=?"));
      return u.Bind(1, attempts)
          .Bind(2, dead ? kDead : kPending)
          .Bind(3, now + backoff_ms * 1000000)
          .Bind(4, run.error)
          .Bind(5, now)
          .Bind(6, row.id)
          .Bind(7, static_cast<int64_t>(row.version))
          .Run();
    });
    if (!c.ok()) spdlog::warn("compute: recording the failure of {}: {}", run.item, c.ToString());
    spdlog::warn("compute: pipeline {} {} {} (attempt {}): {}", p->name,
                 dead ? "gave up on" : "failed on", run.item, attempts, run.error);
  }
  Status r = RecordRun(run);
  if (!r.ok()) spdlog::warn("compute: recording a run: {}", r.ToString());
  Count(p->name, run);
  if (dead && opt.alerts != nullptr)
    opt.alerts->PipelineFailed(p->name, run.item + ": " + run.error, true);
}

Status Engine::Impl::RecordRun(const RunInfo& run) {
  return Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt s, db.Prepare("INSERT INTO runs(pipeline, item, started_ns, "
                                           "duration_ms, rows_in, rows_out, result, error, log) "
                                           "VALUES(?,?,?,?,?,?,?,?,?)"));
    FS_RETURN_IF_ERROR(s.Bind(1, run.pipeline)
                           .Bind(2, run.item)
                           .Bind(3, run.started_ns)
                           .Bind(4, run.duration_ms)
                           .Bind(5, static_cast<int64_t>(run.rows_in))
                           .Bind(6, static_cast<int64_t>(run.rows_out))
                           .Bind(7, run.result)
                           .Bind(8, run.error)
                           .Bind(9, Tail(run.log, kLogBytes))
                           .Run());
    int64_t id = db.LastInsertId();
    // Keep the newest kRunsKept of the pipeline (an index range scan of that many rows).
    if (id > 0) {
      FS_ASSIGN_OR_RETURN(Stmt d,
                          db.Prepare("DELETE FROM runs WHERE pipeline=? AND id <= (SELECT id FROM "
                                     "runs WHERE pipeline=? ORDER BY id DESC LIMIT 1 OFFSET ?)"));
      FS_RETURN_IF_ERROR(d.Bind(1, run.pipeline)
                             .Bind(2, run.pipeline)
                             .Bind(3, static_cast<int64_t>(kRunsKept))
                             .Run());
    }
    return Status::Ok();
  });
}

void Engine::Impl::Count(const std::string& pipeline, const RunInfo& run) {
  {
    MutexLock l(mu);
    auto& st = stats[pipeline];
    st.name = pipeline;
    if (run.result == "ok") ++st.runs_ok;
    if (run.result == "failed" || run.result == "dead") {
      ++st.runs_failed;
      st.last_error = run.error;
    }
    st.rows_in += run.rows_in;
    st.rows_out += run.rows_out;
    st.last_run_ns = run.started_ns;
  }
  if (runs_family != nullptr) {
    runs_family->Add({{"pipeline", pipeline}, {"result", run.result}}).Increment();
    rows_family->Add({{"pipeline", pipeline}, {"direction", "in"}})
        .Increment(static_cast<double>(run.rows_in));
    rows_family->Add({{"pipeline", pipeline}, {"direction", "out"}})
        .Increment(static_cast<double>(run.rows_out));
    duration_family
        ->Add({{"pipeline", pipeline}},
              prometheus::Histogram::BucketBoundaries{0.01, 0.1, 1, 10, 60, 600})
        .Observe(static_cast<double>(run.duration_ms) / 1000.0);
  }
}

Result<store::Attr> Engine::Impl::EnsureDirs(store::NodeId root, std::string_view rel) {
  FS_ASSIGN_OR_RETURN(store::Attr cur, opt.store->GetAttr(root));
  for (std::string_view seg : Segments(rel)) {
    auto next = opt.store->Lookup(cur.id, seg);
    if (next.status().code() == StatusCode::kNotFound) {
      next = opt.store->Mkdir(cur.id, seg, {0777, 0, 0});
      if (next.status().code() == StatusCode::kAlreadyExists) next = opt.store->Lookup(cur.id, seg);
    }
    if (!next.ok()) return next.status();
    if (next->type != store::NodeType::kDirectory)
      return FailedPreconditionError("'" + std::string(seg) +
                                     "' is a file, so it cannot hold the pipeline's output");
    cur = *next;
  }
  return cur;
}

Result<std::unique_ptr<OutputFile>> Engine::Impl::OpenOutput(const std::string& share,
                                                             const std::string& path,
                                                             const std::string& pipeline) {
  auto segs = Segments(path);
  if (segs.empty()) return InvalidArgumentError("the output path '" + path + "' is empty");
  for (auto s : segs) {
    if (s == "." || s == "..")
      return InvalidArgumentError("the output path '" + path + "' may not hold '.' or '..'");
  }
  if (segs.front() == store::kStagingDir)
    return InvalidArgumentError("the output path '" + path + "' is reserved");
  auto sh = opt.store->GetShare(share);
  if (!sh.ok()) return sh.status().WithContext("output share '" + share + "'");
  FS_ASSIGN_OR_RETURN(store::Attr staging, EnsureDirs(sh->root, store::kStagingDir));
  auto out = std::make_unique<OutputFile>();
  out->share = share;
  std::string norm;
  for (auto s : segs) norm += (norm.empty() ? "" : "/") + std::string(s);
  out->path = norm;
  out->staging_dir = staging.id;
  out->staging_name = std::string(kStagingPrefix) + pipeline + "-" + RandomHex(8);
  FS_ASSIGN_OR_RETURN(auto h, opt.store->Create(staging.id, out->staging_name, {0644, 0, 0}));
  out->store = opt.store;
  out->raw = std::make_unique<StoreSink>(std::move(h));
  return out;
}

Status Engine::Impl::CommitOutput(OutputFile& out) {
  auto sh = opt.store->GetShare(out.share);
  if (!sh.ok()) return sh.status();
  size_t slash = out.path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : out.path.substr(0, slash);
  std::string name = slash == std::string::npos ? out.path : out.path.substr(slash + 1);
  FS_ASSIGN_OR_RETURN(store::Attr parent, EnsureDirs(sh->root, dir));
  auto existing = opt.store->Lookup(parent.id, name);
  if (existing.ok() && existing->type == store::NodeType::kDirectory)
    return FailedPreconditionError("the output path '" + out.path + "' is a folder");
  FS_RETURN_IF_ERROR(opt.store->Rename(out.staging_dir, out.staging_name, parent.id, name));
  out.committed = true;
  return Status::Ok();
}

Result<std::vector<std::unique_ptr<Step>>> Engine::Impl::BuildSteps(const PipelineDecl& p,
                                                                    RunInfo* run) {
  StepContext ctx;
  ctx.hash_key = opt.hash_key;
  ctx.now_ns = Now();
  std::vector<std::unique_ptr<Step>> steps;
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const json& d = p.steps[i];
    if (d.value("type", "") == "module") {
      if (opt.modules == nullptr)
        return FailedPreconditionError("module steps are not available on this box");
      FS_ASSIGN_OR_RETURN(auto m, MakeModuleStep(d, opt.modules, opt.dir + "/modules",
                                                 opt.dir + "/tmp", [run](std::string_view line) {
                                                   if (run->log.size() < 4 * kLogBytes)
                                                     run->log.append(line);
                                                 }));
      steps.push_back(std::move(m));
      continue;
    }
    if (d.value("type", "") == "infer") {
      auto inf = MakeInferRecordStep(d, opt.inference);
      if (!inf.ok()) return inf.status().WithContext("steps[" + std::to_string(i) + "]");
      steps.push_back(std::move(*inf));
      continue;
    }
    auto s = MakeStep(d, ctx);
    if (!s.ok()) return s.status().WithContext("steps[" + std::to_string(i) + "]");
    steps.push_back(std::move(*s));
  }
  return steps;
}

Status Engine::Impl::FlushWebhook(const SinkDecl& s, std::vector<std::string>* batch) {
  if (batch->empty()) return Status::Ok();
  if (opt.webhooks == nullptr)
    return FailedPreconditionError("webhook sinks are not available on this box");
  std::string body = "[";
  for (size_t i = 0; i < batch->size(); ++i) body += (i ? "," : "") + (*batch)[i];
  body += "]";
  batch->clear();
  return opt.webhooks->Post(s.url, body);
}

Status Engine::Impl::SendRecord(const PipelineDecl& p, const SinkDecl& s, const Record& rec,
                                std::vector<std::string>* webhook_batch) {
  switch (s.kind) {
    case SinkDecl::Kind::kMqtt: {
      if (opt.publisher == nullptr)
        return FailedPreconditionError("MQTT sinks need the box's MQTT client ([mqtt])");
      std::string topic = ExpandTemplate(s.topic, {{"pipeline", p.name}}, &rec);
      return opt.publisher->Publish(topic, RecordToJson(rec), s.retain);
    }
    case SinkDecl::Kind::kWebhook:
      webhook_batch->push_back(RecordToJson(rec));
      if (webhook_batch->size() >= 1000) return FlushWebhook(s, webhook_batch);
      return Status::Ok();
    case SinkDecl::Kind::kAlert:
      if (opt.alerts != nullptr)
        opt.alerts->PipelineAlert(p.name, ExpandTemplate(s.message, {{"pipeline", p.name}}, &rec));
      return Status::Ok();
    case SinkDecl::Kind::kFile:
      return Status::Ok();
  }
  return Status::Ok();
}

Status Engine::Impl::RunRecords(const PipelineDecl& p,
                                std::vector<std::unique_ptr<RecordReader>>& inputs,
                                const std::vector<std::pair<std::string, std::string>>& vars,
                                Format out_format, RunInfo* run) {
  Chain chain;
  FS_ASSIGN_OR_RETURN(chain.steps, BuildSteps(p, run));
  std::vector<std::unique_ptr<OutputFile>> files(p.sinks.size());
  std::vector<std::vector<std::string>> hooks(p.sinks.size());
  chain.Wire([&](Record& rec) -> Status {
    ++run->rows_out;
    for (size_t i = 0; i < p.sinks.size(); ++i) {
      const SinkDecl& s = p.sinks[i];
      if (s.kind != SinkDecl::Kind::kFile) {
        FS_RETURN_IF_ERROR(SendRecord(p, s, rec, &hooks[i]));
        continue;
      }
      if (files[i] == nullptr) {
        Format f = out_format;
        if (!s.format.empty()) {
          FS_ASSIGN_OR_RETURN(f, ParseFormat(s.format));
        }
        auto v = vars;
        v.emplace_back("ext", ExtOfFormat(f, s.compress));
        std::string path = ExpandTemplate(s.path, v, nullptr);
        FS_ASSIGN_OR_RETURN(files[i], OpenOutput(s.share, path, p.name));
        files[i]->sink = Compress(std::move(files[i]->raw), s.compress);
        files[i]->writer = MakeWriter(f, files[i]->sink.get());
      }
      FS_RETURN_IF_ERROR(files[i]->writer->Write(rec));
    }
    return Status::Ok();
  });
  Record rec;
  for (auto& in : inputs) {
    while (true) {
      auto more = in->Next(rec);
      if (!more.ok()) return more.status().WithContext("line " + std::to_string(in->line()));
      if (!*more) break;
      ++run->rows_in;
      Status s = chain.Push(rec);
      if (!s.ok()) return s.WithContext("record at line " + std::to_string(in->line()));
    }
  }
  FS_RETURN_IF_ERROR(chain.Finish());
  for (size_t i = 0; i < p.sinks.size(); ++i) {
    if (p.sinks[i].kind == SinkDecl::Kind::kWebhook)
      FS_RETURN_IF_ERROR(FlushWebhook(p.sinks[i], &hooks[i]));
  }
  // Every output is whole before any is renamed into place.
  for (auto& f : files) {
    if (f == nullptr) continue;
    FS_RETURN_IF_ERROR(f->writer->Finish());
  }
  for (auto& f : files) {
    if (f == nullptr) continue;
    FS_RETURN_IF_ERROR(CommitOutput(*f));
    run->log += "wrote " + f->share + "/" + f->path + "\n";
  }
  return Status::Ok();
}

Status Engine::Impl::RunItem(const PipelineDecl& p, const Row& row, RunInfo* run, bool* skipped) {
  // The inputs: the file of a file item, or the matching files of a schedule's share.
  std::vector<std::pair<store::Attr, std::string>> inputs;  // attr, share-relative path
  std::vector<std::pair<std::string, std::string>> vars = {{"pipeline", p.name}};
  if (row.key.rfind("file:", 0) == 0) {
    auto a = opt.store->GetAttr(row.node);
    if (a.status().code() == StatusCode::kNotFound) {
      *skipped = true;
      run->log += "the file was deleted before it was processed\n";
      return Status::Ok();
    }
    if (!a.ok()) return a.status();
    if (a->type != store::NodeType::kFile) {
      *skipped = true;
      return Status::Ok();
    }
    FS_ASSIGN_OR_RETURN(std::string path, opt.store->PathOf(row.node));
    inputs.emplace_back(*a, path);
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    std::string stem = name;
    for (const char* ext : {".zst", ".gz"}) {
      if (stem.size() > strlen(ext) && stem.ends_with(ext)) stem.resize(stem.size() - strlen(ext));
    }
    size_t dot = stem.rfind('.');
    if (dot != std::string::npos && dot > 0) stem.resize(dot);
    vars.insert(vars.end(), {{"path", path},
                             {"dir", dir},
                             {"name", name},
                             {"stem", stem},
                             {"version", std::to_string(row.version)},
                             {"node", std::to_string(row.node)},
                             {"batch", "v" + std::to_string(row.version)},
                             {"time", ""}});
  } else {
    // cron:<unix s> or manual:<ns>
    std::string when = row.key.substr(row.key.find(':') + 1);
    int64_t t_ns =
        row.key.rfind("cron:", 0) == 0 ? std::stoll(when) * 1000000000 : std::stoll(when);
    std::string iso = FormatTimestamp(t_ns);
    std::string stamp;
    for (char c : iso)
      if (c != ':' && c != '-') stamp += c;
    vars.insert(vars.end(), {{"time", stamp},
                             {"batch", stamp},
                             {"stem", p.name + "-" + stamp},
                             {"name", p.name},
                             {"dir", ""},
                             {"path", ""},
                             {"version", when},
                             {"node", "0"}});
    if (!p.trigger.share.empty()) {
      auto sh = opt.store->GetShare(p.trigger.share);
      if (!sh.ok()) return sh.status().WithContext("trigger share '" + p.trigger.share + "'");
      // Walk the share (paged), depth first, skipping the staging folder.
      std::vector<std::pair<store::NodeId, std::string>> dirs = {{sh->root, ""}};
      while (!dirs.empty()) {
        auto [dir, prefix] = dirs.back();
        dirs.pop_back();
        std::string after;
        while (true) {
          FS_ASSIGN_OR_RETURN(auto page, opt.store->ReadDir(dir, after, 512));
          if (page.empty()) break;
          for (const auto& a : page) {
            std::string rel = prefix.empty() ? a.name : prefix + "/" + a.name;
            if (prefix.empty() && a.name == store::kStagingDir) continue;
            if (a.type == store::NodeType::kDirectory) {
              dirs.emplace_back(a.id, rel);
            } else if (a.type == store::NodeType::kFile && GlobMatch(p.trigger.glob, rel)) {
              if (inputs.size() >= 100000)
                return FailedPreconditionError("more than 100000 input files match");
              inputs.emplace_back(a, rel);
            }
          }
          after = page.back().name;
        }
      }
      std::sort(inputs.begin(), inputs.end(),
                [](const auto& x, const auto& y) { return x.second < y.second; });
    }
  }
  if (!p.steps.empty() && p.steps[0].value("type", "") == "module" &&
      p.steps[0].value("mode", "jsonl") == "files")
    return RunFilesModule(p, inputs, vars, run);
  if (!p.steps.empty() && IsImageStep(p.steps[0])) return RunImages(p, inputs, vars, run);

  Format out_format = Format::kJsonl;
  std::vector<std::unique_ptr<RecordReader>> readers;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& [a, path] = inputs[i];
    Format f;
    if (p.input.format == "auto") {
      auto byname = FormatOfName(path);
      if (!byname.ok())
        return InvalidArgumentError("'" + path +
                                    "': cannot tell its format from its name (set input.format)");
      f = *byname;
    } else {
      FS_ASSIGN_OR_RETURN(f, ParseFormat(p.input.format));
    }
    if (i == 0) out_format = f;
    FS_ASSIGN_OR_RETURN(auto h, opt.store->OpenFile(a.id, false, true));
    auto src = std::make_unique<CommittedSource>(std::move(h), a.data_gen);
    readers.push_back(
        MakeReader(f, Decompress(std::move(src), CompressionOfName(path)), p.input.csv));
  }
  Status s = RunRecords(p, readers, vars, out_format, run);
  if (s.code() == StatusCode::kFailedPrecondition && row.key.rfind("file:", 0) == 0) {
    // The file was committed again while we read it: the newer version has its own event.
    auto a = opt.store->GetAttr(row.node);
    if (a.ok() && !inputs.empty() && a->data_gen != inputs[0].first.data_gen)
      return FailedPreconditionError(
          "superseded: the file changed while it was processed; its newer version is next");
  }
  return s;
}

namespace {
// Records given by an image step, read by the rest of the chain.
class VectorReader final : public RecordReader {
 public:
  explicit VectorReader(std::vector<Record> records) : records_(std::move(records)) {}
  Result<bool> Next(Record& rec) override {
    if (next_ >= records_.size()) return false;
    rec = std::move(records_[next_++]);
    rec.seq = next_;
    return true;
  }
  uint64_t line() const override { return next_; }

 private:
  std::vector<Record> records_;
  size_t next_ = 0;
};
}  // namespace

Status Engine::Impl::RunImages(const PipelineDecl& p,
                               const std::vector<std::pair<store::Attr, std::string>>& inputs,
                               const std::vector<std::pair<std::string, std::string>>& vars,
                               RunInfo* run) {
  constexpr uint64_t kMaxImageBytes = 64ull << 20;
  const json& first = p.steps[0];
  std::vector<Record> records;
  std::vector<std::unique_ptr<OutputFile>> outs;
  for (const auto& [a, path] : inputs) {
    if (a.size > kMaxImageBytes) {
      return InvalidArgumentError("'" + path +
                                  "' is larger than 64 MiB; image steps read whole files");
    }
    FS_ASSIGN_OR_RETURN(auto h, opt.store->OpenFile(a.id, false, true));
    std::string bytes(a.size, '\0');
    uint64_t off = 0;
    while (off < bytes.size()) {
      FS_ASSIGN_OR_RETURN(
          size_t n,
          h->ReadCommitted(a.data_gen, off,
                           {reinterpret_cast<uint8_t*>(bytes.data()) + off, bytes.size() - off}));
      if (n == 0) break;
      off += n;
    }
    bytes.resize(off);
    ++run->rows_in;
    if (first.value("type", "") == "anonymize") {
      auto anon = AnonymizeImage(first, opt.inference, bytes);
      if (!anon.ok()) return anon.status().WithContext("'" + path + "'");
      run->log += path + ": " + std::to_string(anon->faces) + " face(s) " +
                  (first.value("mode", "blur") == "black" ? "blacked out" : "blurred") + "\n";
      for (const auto& s : p.sinks) {
        if (s.kind != SinkDecl::Kind::kFile) continue;
        auto v = vars;
        v.emplace_back("ext", anon->format == "jpeg" ? "jpg" : "png");
        FS_ASSIGN_OR_RETURN(auto out,
                            OpenOutput(s.share, ExpandTemplate(s.path, v, nullptr), p.name));
        FS_RETURN_IF_ERROR(out->raw->Write(anon->bytes));
        FS_RETURN_IF_ERROR(out->raw->Close());
        outs.push_back(std::move(out));
      }
      Record r;
      r.schema = std::make_shared<const Schema>(std::vector<std::string>{"path", "faces"});
      r.values = {Value::String(path), Value::Int(static_cast<int64_t>(anon->faces))};
      records.push_back(std::move(r));
      ++run->rows_out;
    } else {
      auto recs = InferImage(first, opt.inference, bytes, path);
      if (!recs.ok()) return recs.status().WithContext("'" + path + "'");
      for (auto& r : *recs) records.push_back(std::move(r));
    }
  }
  if (first.value("type", "") == "anonymize") {
    // The summary records go to the other sinks.
    std::vector<std::string> hooks;
    for (const auto& s : p.sinks) {
      if (s.kind == SinkDecl::Kind::kFile) continue;
      for (const auto& r : records) FS_RETURN_IF_ERROR(SendRecord(p, s, r, &hooks));
      if (s.kind == SinkDecl::Kind::kWebhook) FS_RETURN_IF_ERROR(FlushWebhook(s, &hooks));
    }
    for (auto& o : outs) {
      FS_RETURN_IF_ERROR(CommitOutput(*o));
      run->log += "wrote " + o->share + "/" + o->path + "\n";
    }
    return Status::Ok();
  }
  // infer: the records go through the rest of the chain.
  PipelineDecl rest = p;
  rest.steps.erase(rest.steps.begin());
  std::vector<std::unique_ptr<RecordReader>> readers;
  readers.push_back(std::make_unique<VectorReader>(std::move(records)));
  uint64_t images = run->rows_in;
  Status s = RunRecords(rest, readers, vars, Format::kJsonl, run);
  run->rows_in = images;
  return s;
}

Status Engine::Impl::RunFilesModule(const PipelineDecl& p,
                                    const std::vector<std::pair<store::Attr, std::string>>& inputs,
                                    const std::vector<std::pair<std::string, std::string>>& vars,
                                    RunInfo* run) {
  if (opt.modules == nullptr)
    return FailedPreconditionError("module steps are not available on this box");
  FS_ASSIGN_OR_RETURN(ModuleCall call, ResolveModule(p.steps[0], opt.dir + "/modules"));
  std::string dir = opt.dir + "/tmp/run-" + RandomHex(8);
  std::error_code ec;
  struct Cleanup {
    std::string d;
    ~Cleanup() {
      std::error_code e;
      std::filesystem::remove_all(d, e);
    }
  } cleanup{dir};
  std::filesystem::create_directories(dir + "/in", ec);
  if (!ec) std::filesystem::create_directories(dir + "/out", ec);
  if (ec) return ErrnoStatus(ec.value(), "create " + dir);
  ::chmod(dir.c_str(), 0755);
  ::chmod((dir + "/in").c_str(), 0755);
  ModuleSpec spec;
  spec.argv.push_back(call.path);
  spec.argv.insert(spec.argv.end(), call.args.begin(), call.args.end());
  std::set<std::string> names;
  std::vector<uint8_t> buf(1 << 20);
  for (const auto& [a, path] : inputs) {
    std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    if (!names.insert(name).second) name = std::to_string(names.size()) + "-" + name;
    std::string local = dir + "/in/" + name;
    FS_ASSIGN_OR_RETURN(auto h, opt.store->OpenFile(a.id, false, true));
    FS_ASSIGN_OR_RETURN(auto sink, FileSink(local));
    uint64_t off = 0;
    while (true) {
      FS_ASSIGN_OR_RETURN(size_t n, h->ReadCommitted(a.data_gen, off, buf));
      if (n == 0) break;
      FS_RETURN_IF_ERROR(sink->Write({reinterpret_cast<const char*>(buf.data()), n}));
      off += n;
    }
    FS_RETURN_IF_ERROR(sink->Close());
    ::chmod(local.c_str(), 0444);
    spec.argv.push_back(local);
    run->rows_in += 1;
  }
  spec.argv.push_back(dir + "/out");
  spec.read_only_paths.push_back(dir + "/in");
  spec.output_dir = dir + "/out";
  spec.limits = call.limits;
  auto result = opt.modules->Run(spec, nullptr, nullptr, [run](std::string_view err) {
    if (run->log.size() < 4 * kLogBytes) run->log.append(err);
  });
  if (!result.ok()) return result.status().WithContext("module " + call.path);
  if (!result->ok()) return UnavailableError("module " + call.path + ": " + result->error);
  // The files it left: every regular file under out/, in name order.
  std::vector<std::string> produced;
  for (auto it = std::filesystem::recursive_directory_iterator(dir + "/out", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() && !it->is_symlink())
      produced.push_back(it->path().lexically_relative(dir + "/out").string());
  }
  if (ec) return ErrnoStatus(ec.value(), "list the module's output");
  std::sort(produced.begin(), produced.end());
  std::vector<std::unique_ptr<OutputFile>> outs;
  for (const auto& rel : produced) {
    std::string name = rel.substr(rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/') + 1);
    size_t dot = name.rfind('.');
    std::string stem = dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
    std::string ext = dot == std::string::npos || dot == 0 ? "" : name.substr(dot + 1);
    for (const auto& s : p.sinks) {
      if (s.kind != SinkDecl::Kind::kFile) continue;
      auto v = vars;
      std::erase_if(v, [](const auto& kv) {
        return kv.first == "name" || kv.first == "stem" || kv.first == "ext";
      });
      v.insert(v.begin(), {{"name", rel}, {"stem", stem}, {"ext", ext}});
      std::string path = ExpandTemplate(s.path, v, nullptr);
      FS_ASSIGN_OR_RETURN(auto out, OpenOutput(s.share, path, p.name));
      out->sink = Compress(std::move(out->raw), s.compress);
      FS_ASSIGN_OR_RETURN(auto src, FileSource(dir + "/out/" + rel));
      while (true) {
        FS_ASSIGN_OR_RETURN(size_t n, src->Read(buf));
        if (n == 0) break;
        FS_RETURN_IF_ERROR(out->sink->Write({reinterpret_cast<const char*>(buf.data()), n}));
      }
      FS_RETURN_IF_ERROR(out->sink->Close());
      outs.push_back(std::move(out));
    }
    run->rows_out += 1;
  }
  for (auto& o : outs) {
    FS_RETURN_IF_ERROR(CommitOutput(*o));
    run->log += "wrote " + o->share + "/" + o->path + "\n";
  }
  return Status::Ok();
}

// --- stream runner -------------------------------------------------------------------------

void StreamRunner::Run() {
  int64_t backoff_ms = 200;
  while (!Stopping()) {
    Status s = RunOnce();
    if (Stopping()) return;
    if (!s.ok()) {
      spdlog::warn("compute: MQTT pipeline {}: {}", p->name, s.ToString());
      RunInfo run;
      run.pipeline = p->name;
      run.item = "messages";
      run.started_ns = e->Now();
      run.result = "failed";
      run.error = s.ToString();
      (void)e->RecordRun(run);
      e->Count(p->name, run);
      MutexLock l(mu);
      cv.wait_for(mu, std::chrono::milliseconds(backoff_ms));
      backoff_ms =
          std::min<int64_t>(backoff_ms * 2, std::max<int64_t>(p->retry.max_backoff_ms, 200));
    }
  }
}

// Outputs of a stream checkpoint, kept in the outbox table until they are out.
struct OutboxEntry {
  std::string kind;  // file | mqtt | webhook | alert
  std::string share;
  std::string path;  // file: share-relative path; mqtt: topic; webhook: url
  std::string data;  // file bytes, MQTT payload, webhook body, alert message
  bool retain = false;
};

// Writes the outbox's files (named, so writing again replaces them) and sends its messages
// (at least once), then empties it.
Status StreamRunner::Deliver() {
  std::vector<OutboxEntry> out;
  {
    FS_ASSIGN_OR_RETURN(auto lease, e->reads->Borrow());
    FS_ASSIGN_OR_RETURN(
        Stmt s,
        lease->Prepare("SELECT kind, share, path, data, retain FROM outbox WHERE pipeline=? "
                       "ORDER BY idx"));
    s.Bind(1, p->name);
    while (true) {
      FS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Blob(3), s.Int(4) != 0});
    }
  }
  if (out.empty()) return Status::Ok();
  store::Store::SetThreadOrigin({true, 0, 0, static_cast<int32_t>(getpid()), "compute:" + p->name});
  struct ResetOrigin {
    ~ResetOrigin() { store::Store::SetThreadOrigin({}); }
  } reset;
  for (const auto& o : out) {
    if (o.kind == "file") {
      FS_ASSIGN_OR_RETURN(auto f, e->OpenOutput(o.share, o.path, p->name));
      FS_RETURN_IF_ERROR(f->raw->Write(o.data));
      FS_RETURN_IF_ERROR(f->raw->Close());
      FS_RETURN_IF_ERROR(e->CommitOutput(*f));
    } else if (o.kind == "mqtt") {
      if (e->opt.publisher == nullptr) {
        return FailedPreconditionError("MQTT sinks need the box's MQTT client ([mqtt])");
      }
      FS_RETURN_IF_ERROR(e->opt.publisher->Publish(o.path, o.data, o.retain));
    } else if (o.kind == "webhook") {
      if (e->opt.webhooks == nullptr) {
        return FailedPreconditionError("webhook sinks are not available on this box");
      }
      FS_RETURN_IF_ERROR(e->opt.webhooks->Post(o.path, o.data));
    } else if (o.kind == "alert") {
      if (e->opt.alerts != nullptr) e->opt.alerts->PipelineAlert(p->name, o.data);
    }
  }
  return e->Commit([&](Db& db) -> Status {
    FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM outbox WHERE pipeline=?"));
    return d.Bind(1, p->name).Run();
  });
}

// One life of the runner: deliver what a checkpoint left, restore the steps' state, replay the
// messages they still need (outputs suppressed), then follow the buffer until stopped or an
// error.
Status StreamRunner::RunOnce() {
  FS_RETURN_IF_ERROR(Deliver());
  Chain chain;
  RunInfo dummy;
  FS_ASSIGN_OR_RETURN(chain.steps, e->BuildSteps(*p, &dummy));
  uint64_t processed = 0, replay_from = 1, batch_no = 0;
  {
    FS_ASSIGN_OR_RETURN(auto lease, e->reads->Borrow());
    FS_ASSIGN_OR_RETURN(Stmt s,
                        lease->Prepare("SELECT processed_through, replay_from, state, batches "
                                       "FROM streams WHERE pipeline=?"));
    s.Bind(1, p->name);
    FS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      processed = static_cast<uint64_t>(s.Int(0));
      replay_from = static_cast<uint64_t>(s.Int(1));
      json st = json::parse(s.Text(2), nullptr, false);
      FS_RETURN_IF_ERROR(chain.Restore(st));
      batch_no = static_cast<uint64_t>(s.Int(3));
    }
  }
  // Outputs gathered until the next checkpoint.
  struct FileRoll {
    std::unique_ptr<StringSink> buf;
    std::unique_ptr<ByteSink> sink;  // compressing wrapper over buf
    std::unique_ptr<RecordWriter> writer;
  };
  std::vector<FileRoll> rolls(p->sinks.size());
  std::vector<OutboxEntry> sends;
  uint64_t roll_records = 0, roll_bytes = 0, rows_in = 0;
  int64_t roll_started_ns = e->Now();
  uint64_t roll_first = processed + 1;
  bool suppress = false;
  uint64_t fed = processed;  // last seq fed through the chain
  bool has_file_sink = false;
  uint64_t max_records = UINT64_MAX, max_bytes = UINT64_MAX;
  int64_t max_age_s = 1;
  for (const auto& s : p->sinks) {
    if (s.kind != SinkDecl::Kind::kFile) continue;
    max_records = std::min(max_records, s.roll.max_records);
    max_bytes = std::min(max_bytes, s.roll.max_bytes);
    max_age_s = has_file_sink ? std::min(max_age_s, s.roll.max_age_s) : s.roll.max_age_s;
    has_file_sink = true;
  }
  chain.Wire([&](Record& rec) -> Status {
    if (suppress) return Status::Ok();
    ++roll_records;
    for (size_t i = 0; i < p->sinks.size(); ++i) {
      const SinkDecl& s = p->sinks[i];
      switch (s.kind) {
        case SinkDecl::Kind::kFile: {
          auto& r = rolls[i];
          if (r.writer == nullptr) {
            Format f = Format::kJsonl;
            if (!s.format.empty()) {
              FS_ASSIGN_OR_RETURN(f, ParseFormat(s.format));
            }
            r.buf = std::make_unique<StringSink>();
            struct Borrow final : ByteSink {
              explicit Borrow(StringSink* t) : t(t) {}
              Status Write(std::string_view d) override { return t->Write(d); }
              Status Close() override { return Status::Ok(); }
              StringSink* t;
            };
            r.sink = Compress(std::make_unique<Borrow>(r.buf.get()), s.compress);
            r.writer = MakeWriter(f, r.sink.get());
          }
          FS_RETURN_IF_ERROR(r.writer->Write(rec));
          roll_bytes = std::max<uint64_t>(roll_bytes, r.buf->data().size());
          break;
        }
        case SinkDecl::Kind::kMqtt:
          sends.push_back({"mqtt", "", ExpandTemplate(s.topic, {{"pipeline", p->name}}, &rec),
                           RecordToJson(rec), s.retain});
          break;
        case SinkDecl::Kind::kWebhook:
          if (!sends.empty() && sends.back().kind == "webhook" && sends.back().path == s.url &&
              sends.back().data.size() < (1 << 20)) {
            sends.back().data.back() = ',';
            sends.back().data += RecordToJson(rec) + "]";
          } else {
            sends.push_back({"webhook", "", s.url, "[" + RecordToJson(rec) + "]", false});
          }
          break;
        case SinkDecl::Kind::kAlert:
          sends.push_back(
              {"alert", "", "", ExpandTemplate(s.message, {{"pipeline", p->name}}, &rec), false});
          break;
      }
    }
    if (sends.size() > 100000) {
      return ResourceExhaustedError("more than 100000 outputs wait for a checkpoint");
    }
    return Status::Ok();
  });

  // Commits the steps' state as of input seq `last` together with the outputs gathered (the
  // outbox), then delivers them.
  auto checkpoint = [&](uint64_t last) -> Status {
    RunInfo run;
    run.pipeline = p->name;
    run.started_ns = e->Now();
    run.item = "messages:" + std::to_string(roll_first) + "-" + std::to_string(last);
    auto t0 = std::chrono::steady_clock::now();
    run.rows_in = rows_in;
    run.rows_out = roll_records;
    std::vector<OutboxEntry> out;
    bool any_file = false;
    for (auto& r : rolls) any_file = any_file || r.writer != nullptr;
    uint64_t next_batch = batch_no + (any_file ? 1 : 0);
    if (any_file) {
      // {batch}: the input range and a sequence number, so names sort and never repeat.
      char batch[96];
      std::snprintf(batch, sizeof batch, "%08llu-%012llu-%012llu",
                    static_cast<unsigned long long>(next_batch),
                    static_cast<unsigned long long>(roll_first),
                    static_cast<unsigned long long>(std::max(last, roll_first - 1)));
      std::string iso = FormatTimestamp(roll_started_ns), stamp;
      for (char c : iso) {
        if (c != ':' && c != '-') stamp += c;
      }
      for (size_t i = 0; i < p->sinks.size(); ++i) {
        auto& r = rolls[i];
        if (r.writer == nullptr) continue;
        const SinkDecl& s = p->sinks[i];
        FS_RETURN_IF_ERROR(r.writer->Finish());
        Format f = Format::kJsonl;
        if (!s.format.empty()) {
          FS_ASSIGN_OR_RETURN(f, ParseFormat(s.format));
        }
        std::string path = ExpandTemplate(s.path,
                                          {{"pipeline", p->name},
                                           {"batch", batch},
                                           {"ext", ExtOfFormat(f, s.compress)},
                                           {"time", stamp},
                                           {"first", std::to_string(roll_first)},
                                           {"last", std::to_string(last)}},
                                          nullptr);
        out.push_back({"file", s.share, path, r.buf->data(), false});
        run.log += "wrote " + s.share + "/" + path + "\n";
      }
    }
    for (auto& m : sends) out.push_back(std::move(m));
    uint64_t oldest = std::min<uint64_t>(chain.OldestNeeded(), last + 1);
    std::string state = chain.Save().dump(-1, ' ', false, json::error_handler_t::replace);
    FS_RETURN_IF_ERROR(e->Commit([&](Db& db) -> Status {
      FS_ASSIGN_OR_RETURN(Stmt s,
                          db.Prepare("INSERT OR REPLACE INTO streams(pipeline, processed_through, "
                                     "replay_from, state, batches) VALUES(?,?,?,?,?)"));
      FS_RETURN_IF_ERROR(s.Bind(1, p->name)
                             .Bind(2, static_cast<int64_t>(last))
                             .Bind(3, static_cast<int64_t>(oldest))
                             .Bind(4, state)
                             .Bind(5, static_cast<int64_t>(next_batch))
                             .Run());
      for (size_t i = 0; i < out.size(); ++i) {
        FS_ASSIGN_OR_RETURN(Stmt o,
                            db.Prepare("INSERT INTO outbox(pipeline, idx, kind, share, path, "
                                       "data, retain) VALUES(?,?,?,?,?,?,?)"));
        FS_RETURN_IF_ERROR(o.Bind(1, p->name)
                               .Bind(2, static_cast<int64_t>(i))
                               .Bind(3, out[i].kind)
                               .Bind(4, out[i].share)
                               .Bind(5, out[i].path)
                               .BindBlob(6, out[i].data)
                               .Bind(7, int64_t{out[i].retain})
                               .Run());
      }
      FS_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM messages WHERE pipeline=? AND seq<?"));
      return d.Bind(1, p->name).Bind(2, static_cast<int64_t>(oldest)).Run();
    }));
    processed = std::max(processed, last);
    batch_no = next_batch;
    for (auto& r : rolls) r = FileRoll{};
    sends.clear();
    roll_first = processed + 1;
    roll_records = roll_bytes = rows_in = 0;
    roll_started_ns = e->Now();
    Status delivered = Deliver();
    run.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    run.result = delivered.ok() ? "ok" : "failed";
    if (!delivered.ok()) run.error = delivered.ToString();
    if (run.rows_in > 0 || run.rows_out > 0 || !delivered.ok()) {
      (void)e->RecordRun(run);
      e->Count(p->name, run);
    }
    return delivered;
  };

  uint64_t next_seq = replay_from;  // read messages with seq >= next_seq
  Record rec;
  // The parser's last schema and the same with "_topic" appended: messages of one shape share
  // one Schema (a new Schema per message made every step rebuild its per-schema plan).
  std::shared_ptr<const Schema> parsed_schema, topic_schema;
  while (!Stopping()) {
    uint64_t seen_notified;
    {
      MutexLock l(mu);
      seen_notified = notified;
    }
    std::vector<std::tuple<uint64_t, std::string, std::string>> batch;
    {
      FS_ASSIGN_OR_RETURN(auto lease, e->reads->Borrow());
      FS_ASSIGN_OR_RETURN(Stmt s, lease->Prepare("SELECT seq, topic, payload FROM messages WHERE "
                                                 "pipeline=? AND seq>=? ORDER BY seq LIMIT 1000"));
      s.Bind(1, p->name).Bind(2, static_cast<int64_t>(next_seq));
      while (true) {
        FS_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        batch.emplace_back(static_cast<uint64_t>(s.Int(0)), s.Text(1), s.Blob(2));
      }
    }
    for (auto& [seq, topic, payload] : batch) {
      next_seq = seq + 1;
      suppress = seq <= processed;
      rec.schema = parsed_schema;  // steps may have replaced it; the parser keeps it on a match
      Status ps = ParseJsonRecord(payload, rec);
      if (ps.ok()) {
        // The topic, as a field (appended when the payload has none of that name).
        if (rec.Get("_topic") == nullptr) {
          if (rec.schema != parsed_schema || topic_schema == nullptr) {
            parsed_schema = rec.schema;
            std::vector<std::string> names = rec.schema->names();
            names.push_back("_topic");
            topic_schema = std::make_shared<const Schema>(std::move(names));
          }
          rec.schema = topic_schema;
          rec.values.emplace_back();
        } else {
          parsed_schema = rec.schema;
        }
        rec.GetMutable("_topic")->SetString(topic);
        rec.seq = seq;
        if (!suppress) ++rows_in;
        ps = chain.Push(rec);
        // A record a step refuses (InvalidArgument: a type error, a time that does not parse)
        // becomes a dead letter like an unreadable payload, and the stream goes on: it fails
        // the same way on every replay, so retrying the stream could never get past it. Other
        // errors (a module that failed) stop the runner, which retries.
        if (!ps.ok() && ps.code() != StatusCode::kInvalidArgument)
          return ps.WithContext("message " + std::to_string(seq) + " on '" + topic + "'");
      }
      if (!ps.ok() && seq > processed) {
        // A message we cannot read or process becomes a dead letter; the stream goes on.
        int64_t now = e->Now();
        FS_RETURN_IF_ERROR(e->Commit([&](Db& db) -> Status {
          FS_ASSIGN_OR_RETURN(
              Stmt s, db.Prepare("INSERT OR IGNORE INTO work(pipeline, key, path, payload, state, "
                                 "attempts, updated_ns, last_error) VALUES(?,?,?,?,1,1,?,?)"));
          return s.Bind(1, p->name)
              .Bind(2, "message:" + std::to_string(seq))
              .Bind(3, topic)
              .BindBlob(4, payload)
              .Bind(5, now)
              .Bind(6, ps.ToString())
              .Run();
        }));
        if (e->opt.alerts != nullptr) {
          e->opt.alerts->PipelineFailed(p->name, "message on '" + topic + "': " + ps.message(),
                                        true);
        }
      }
      suppress = false;  // only what replayed messages emit at once was delivered before
      fed = std::max(fed, seq);
      if (seq <= processed) continue;
      if (roll_records >= max_records || roll_bytes >= max_bytes) {
        FS_RETURN_IF_ERROR(checkpoint(seq));
      }
    }
    if (!batch.empty()) continue;
    // Idle: windows close by the clock; what is held is committed when its roll is old enough
    // (at once without a file sink).
    FS_RETURN_IF_ERROR(chain.Tick(e->Now()));
    bool held = fed > processed || roll_records > 0 || !sends.empty();
    if (held) {
      int64_t age_ns = e->Now() - roll_started_ns;
      if (!has_file_sink || roll_records == 0 || age_ns >= max_age_s * 1000000000) {
        FS_RETURN_IF_ERROR(checkpoint(fed));
      }
    }
    MutexLock l(mu);
    if (stop) break;
    // A message buffered since this round read the buffer (Notify) means neither idle nor a
    // wait: such a notification was lost for a whole tick, and `idle` was set over it, so
    // WaitIdle could return with the message unprocessed.
    if (notified != seen_notified) continue;
    idle = fed <= processed && roll_records == 0 && sends.empty();
    cv.wait_for(mu, std::chrono::milliseconds(e->opt.tick_ms),
                [&]() REQUIRES(mu) { return stop || notified != seen_notified; });
  }
  return Status::Ok();
}

}  // namespace fieldstack::compute
