// Compute benchmark (issue 9): our record pipelines against Miller (`mlr` 6) on the same
// generated CSV, and MQTT messages per second through an aggregate pipeline.
//
//   compute_bench [--dir DIR] [--rows N] [--rounds N] [--messages N]
//
// In one run:
//  1. A CSV of --rows rows (5,000,000 by default, ~560 MB; deterministic seed) is generated
//     once into a temp dir under DIR: ts (ISO 8601), site (50 values), sensor_id, temp,
//     humidity, lat, lon, note (free text; 2 % hold an email address, 1 % a phone number, some
//     a comma and are quoted), operator (a name).
//  2. Interleaved rounds (the order of ours/Miller alternates), medians reported, each job on
//     the whole file (from the page cache: 560 MB of 24 GiB):
//      - the machine's limit: `cat FILE > /dev/null`; a bare read (ours: the CSV reader alone;
//        Miller: `filter false`); a CSV copy (reader -> writer; `mlr cat`);
//      - job A, filter + select + redact: temp > 25 and site != 'site07'; add temp_f, drop
//        sensor_id; mask emails and phone numbers in note, mask operator -> a CSV file;
//      - job B, group-by aggregate: per site count, avg, max and p95 of temp -> a CSV file.
//     Outputs go to files on the same disk and are fsynced before the clock stops (our
//     FileSink fsyncs on Close; Miller's stdout file is fsynced after it exits). Ours runs on
//     one thread; Miller uses its goroutines (CPU seconds: getrusage of this process, wait4 of
//     Miller). The outputs are checked against each other: same row count and the same number
//     of [email] and [phone] tokens with no '@' left (job A), the same values per site within
//     rounding (job B).
//  3. A one-off breakdown of job A (ours: which stage costs what) and Miller with GOMAXPROCS=1.
//  4. MQTT: a MosquittoBroker on a free port; an Engine on a Store with one MQTT pipeline
//     (aggregate over a 60 s tumbling window by site -> a file sink); an MqttClient whose handler
//     calls Engine::OnMessage, as the daemon's compute service does. `mosquitto_pub -l` (QoS 1)
//     publishes --messages JSON messages; measured: until every handler returned OK (durably
//     buffered) and until Engine::WaitIdle (the aggregate output committed to the Store). Peer:
//     the same through a subscriber whose handler does nothing.
//
// Prints markdown tables (bench/RESULTS.md records them).

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine.h"
#include "compute/broker.h"
#include "compute/engine.h"
#include "compute/io.h"
#include "compute/mqtt_client.h"
#include "compute/step.h"
#include "platform/file.h"
#include "store/store.h"

extern char** environ;

using namespace fieldstack;
using namespace fieldstack::compute;
using json = nlohmann::json;
namespace fsys = std::filesystem;

namespace {

constexpr const char* kMiller = "/usr/bin/mlr";
constexpr const char* kMosquittoPub = "/usr/bin/mosquitto_pub";

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double SelfCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The broker, stopped by Die: exit() runs no destructors, and mosquitto would outlive us.
MosquittoBroker* g_broker = nullptr;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "compute_bench: %s\n", what.c_str());
  if (g_broker != nullptr) g_broker->Stop();
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

std::string ReadAll(const std::string& path) {
  auto r = platform::ReadFileToString(path);
  Check(r.status(), "read " + path);
  return *r;
}

// ---- Test data ----

// splitmix64: deterministic and fast.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>((Next() >> 32) * n >> 32); }
};

void AppendPadded(std::string& out, uint64_t v, int width) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(buf[--n]);
}

void AppendIsoTime(std::string& out, int64_t t) {
  tm g{};
  time_t tt = t;
  ::gmtime_r(&tt, &g);
  AppendPadded(out, g.tm_year + 1900, 4);
  out.push_back('-');
  AppendPadded(out, g.tm_mon + 1, 2);
  out.push_back('-');
  AppendPadded(out, g.tm_mday, 2);
  out.push_back('T');
  AppendPadded(out, g.tm_hour, 2);
  out.push_back(':');
  AppendPadded(out, g.tm_min, 2);
  out.push_back(':');
  AppendPadded(out, g.tm_sec, 2);
  out.push_back('Z');
}

constexpr const char* kFirst[] = {"Alice", "Bruno", "Chen",  "Dara",  "Elif", "Farid", "Greta",
                                  "Hugo",  "Ines",  "Jonas", "Kaori", "Lena", "Marco", "Nadia",
                                  "Omar",  "Priya", "Quinn", "Rosa",  "Sven", "Tariq"};
constexpr const char* kLast[] = {"Martin",   "Rossi",     "Nakamura", "Okafor",  "Schmidt",
                                 "Dubois",   "Silva",     "Novak",    "Larsen",  "Haddad",
                                 "Kowalski", "Moreau",    "Berg",     "Fischer", "Costa",
                                 "Yilmaz",   "Lindqvist", "Russo",    "Weber",   "Petrov"};
constexpr const char* kLower[] = {"alice", "bruno", "chen",  "dara",  "elif", "farid", "greta",
                                  "hugo",  "ines",  "jonas", "kaori", "lena", "marco", "nadia",
                                  "omar",  "priya", "quinn", "rosa",  "sven", "tariq"};
constexpr const char* kDomains[] = {"example.com", "fieldops.io", "mail.example.org",
                                    "contractor.co.uk"};
// Ordinary notes: digits, dots, colons and commas (quoted) that the detectors must leave alone.
constexpr const char* kNotes[] = {"reading nominal",
                                  "\"fan noise, checked\"",
                                  "battery 87% after swap",
                                  "door opened at 14:05",
                                  "recalibrated after drift of 0.3 C",
                                  "firmware v2.4.1 installed",
                                  "",
                                  "cable replaced on mast 12",
                                  "\"ok, no action\"",
                                  "\"spike during storm, 2 readings discarded\"",
                                  "sensor cleaned",
                                  "ticket 48213 closed"};

// Writes the CSV; returns its size in bytes. Also counts the notes with an email / a phone.
uint64_t GenerateCsv(const std::string& path, uint64_t rows, int64_t start_s, uint64_t* emails,
                     uint64_t* phones) {
  auto f = platform::File::Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Check(f.status(), "create " + path);
  Rng rng{20261127};
  std::string buf = "ts,site,sensor_id,temp,humidity,lat,lon,note,operator\n";
  uint64_t off = 0;
  auto flush = [&] {
    Check(f->PWrite(off, {reinterpret_cast<const uint8_t*>(buf.data()), buf.size()}),
          "write " + path);
    off += buf.size();
    buf.clear();
  };
  for (uint64_t i = 0; i < rows; ++i) {
    uint32_t site = rng.Below(50);
    AppendIsoTime(buf, start_s + static_cast<int64_t>(i / 4));
    buf += ",site";
    AppendPadded(buf, site, 2);
    buf += ",s-";
    AppendPadded(buf, site * 100 + rng.Below(100), 5);
    buf.push_back(',');
    uint32_t t = rng.Below(4000);  // 0.00 .. 39.99
    AppendPadded(buf, t / 100, 1);
    buf.push_back('.');
    AppendPadded(buf, t % 100, 2);
    buf.push_back(',');
    AppendPadded(buf, 20 + rng.Below(80), 1);
    buf += ",45.";
    AppendPadded(buf, rng.Below(1000000), 6);
    buf += ",7.";
    AppendPadded(buf, rng.Below(1000000), 6);
    buf.push_back(',');
    uint32_t kind = rng.Below(10000), first = rng.Below(20), last = rng.Below(20);
    if (kind < 200) {
      ++*emails;
      buf += "contact ";
      buf += kLower[first];
      buf.push_back('.');
      for (const char* p = kLast[last]; *p != 0; ++p) buf.push_back(static_cast<char>(*p | 0x20));
      buf.push_back('@');
      buf += kDomains[rng.Below(4)];
      buf += " about the drift";
    } else if (kind < 300) {
      ++*phones;
      if (kind % 2 == 0) {
        buf += "call +1 555-";
        AppendPadded(buf, rng.Below(1000), 3);
        buf.push_back('-');
        AppendPadded(buf, rng.Below(10000), 4);
        buf += " for access";
      } else {
        buf += "site phone 555.";
        AppendPadded(buf, rng.Below(1000), 3);
        buf.push_back('.');
        AppendPadded(buf, rng.Below(10000), 4);
      }
    } else {
      buf += kNotes[rng.Below(12)];
    }
    buf.push_back(',');
    buf += kFirst[first];
    buf.push_back(' ');
    buf += kLast[last];
    buf.push_back('\n');
    if (buf.size() >= (8 << 20)) flush();
  }
  flush();
  Check(f->Sync(), "fsync " + path);
  return off;
}

// ---- Child processes (cat, Miller, mosquitto_pub) ----

struct Timed {
  double wall_s = 0;
  double cpu_s = 0;
};

// Runs argv[0] with stdin/stdout/stderr from/to files, waits; with `sync_out`, fsyncs the stdout
// file before the clock stops. `env` entries are added to this process's environment.
Timed Spawn(const std::vector<std::string>& argv, const std::string& in, const std::string& out,
            const std::string& err, bool sync_out, const std::vector<std::string>& env = {}) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings(env);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in.empty() ? "/dev/null" : in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  Timed t;
  double t0 = Now();
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) Die(argv[0] + ": " + std::strerror(rc));
  int status = 0;
  rusage u{};
  if (::wait4(pid, &status, 0, &u) != pid) Die("wait4");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(argv[0] + " failed (status " + std::to_string(status) + "), see " + err);
  }
  if (sync_out) {
    int fd = ::open(out.c_str(), O_RDONLY);
    if (fd < 0 || ::fsync(fd) != 0) Die("fsync " + out);
    ::close(fd);
  }
  t.wall_s = Now() - t0;
  t.cpu_s = u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  return t;
}

// ---- Ours: reader -> steps -> writer, on this thread ----

class ToStep final : public Emitter {
 public:
  ToStep(Step* step, Emitter* next) : step_(step), next_(next) {}
  Status Emit(Record& rec) override { return step_->Push(rec, *next_); }

 private:
  Step* step_;
  Emitter* next_;
};

class ToWriter final : public Emitter {
 public:
  explicit ToWriter(RecordWriter* w) : w_(w) {}
  Status Emit(Record& rec) override {
    ++count;
    return w_ == nullptr ? Status::Ok() : w_->Write(rec);
  }
  uint64_t count = 0;

 private:
  RecordWriter* w_;
};

struct OurRun {
  double wall_s = 0;
  double cpu_s = 0;
  uint64_t rows_in = 0;
  uint64_t rows_out = 0;
};

// Streams `in` through `steps`; writes the result as CSV to `out` (none when empty).
OurRun RunOurs(const std::string& in, const std::string& out, const std::vector<json>& steps) {
  if (!out.empty()) fsys::remove(out);
  OurRun r;
  double cpu0 = SelfCpuSeconds(), t0 = Now();
  StepContext ctx;
  ctx.hash_key = "bench";
  std::vector<std::unique_ptr<Step>> chain;
  for (const auto& d : steps) {
    auto s = MakeStep(d, ctx);
    Check(s.status(), "step " + d.dump());
    chain.push_back(std::move(*s));
  }
  std::unique_ptr<ByteSink> sink;
  std::unique_ptr<RecordWriter> writer;
  if (!out.empty()) {
    auto s = FileSink(out);
    Check(s.status(), "create " + out);
    sink = std::move(*s);
    writer = MakeCsvWriter(sink.get());
  }
  // emitters[i] feeds chain[i]; the last one the writer.
  ToWriter last(writer.get());
  std::vector<std::unique_ptr<ToStep>> emitters(chain.size());
  Emitter* next = &last;
  for (size_t i = chain.size(); i-- > 0;) {
    emitters[i] = std::make_unique<ToStep>(chain[i].get(), next);
    next = emitters[i].get();
  }
  auto src = FileSource(in);
  Check(src.status(), "open " + in);
  auto reader = MakeCsvReader(std::move(*src));
  Record rec;
  while (true) {
    auto more = reader->Next(rec);
    Check(more.status(), "read " + in);
    if (!*more) break;
    ++r.rows_in;
    Check(next->Emit(rec), "push");
  }
  for (size_t i = 0; i < chain.size(); ++i) {
    Emitter* after = i + 1 < chain.size() ? static_cast<Emitter*>(emitters[i + 1].get()) : &last;
    Check(chain[i]->Finish(*after), "finish");
  }
  if (writer != nullptr) Check(writer->Finish(), "finish " + out);
  r.rows_out = last.count;
  r.wall_s = Now() - t0;
  r.cpu_s = SelfCpuSeconds() - cpu0;
  return r;
}

// ---- The jobs ----

const json kFilter = {{"type", "filter"}, {"where", "temp > 25 and site != 'site07'"}};
const json kSelect = {{"type", "select"},
                      {"compute", json::array({{{"name", "temp_f"}, {"expr", "temp * 1.8 + 32"}}})},
                      {"drop", {"sensor_id"}}};
// Detectors on note only (Miller's job touches only $note); operator masked.
const json kRedact = {{"type", "redact"},
                      {"detectors", {"email", "phone"}},
                      {"skip", {"ts", "site", "temp", "humidity", "lat", "lon", "temp_f"}},
                      {"columns", json::array({{{"column", "operator"}, {"action", "mask"}}})}};
const json kRedactAll = {{"type", "redact"},
                         {"detectors", {"email", "phone"}},
                         {"columns", json::array({{{"column", "operator"}, {"action", "mask"}}})}};
const json kAggregate = {{"type", "aggregate"},
                         {"group_by", {"site"}},
                         {"metrics", json::array({{{"op", "count"}},
                                                  {{"op", "avg"}, {"column", "temp"}},
                                                  {{"op", "max"}, {"column", "temp"}},
                                                  {{"op", "p95"}, {"column", "temp"}}})}};

constexpr const char* kEmailRe =
    "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)*[.][A-Za-z]{2,}";
constexpr const char* kPhoneRe = "([+][0-9]{1,3} )?[0-9]{3}[-. ][0-9]{3}[-. ][0-9]{4}";

std::vector<std::string> MillerJobA(const std::string& in) {
  std::string put = std::string("$temp_f = $temp * 1.8 + 32; ") + "$note = gsub($note, \"" +
                    kEmailRe + "\", \"[email]\"); " + "$note = gsub($note, \"" + kPhoneRe +
                    "\", \"[phone]\"); " + "$operator = \"[redacted]\"";
  return {kMiller, "--icsv", "--ocsv", "filter", "$temp > 25 && $site != \"site07\"",
          "then",  "cut",    "-x",     "-f",     "sensor_id",
          "then",  "put",    put,      in};
}

std::vector<std::string> MillerJobB(const std::string& in) {
  return {kMiller, "--icsv", "--ocsv", "stats1", "-a",   "count,mean,max,p95",
          "-i",    "-f",     "temp",   "-g",     "site", in};
}

struct TextCounts {
  uint64_t lines = 0, emails = 0, phones = 0, ats = 0;
};

TextCounts CountText(const std::string& path) {
  std::string s = ReadAll(path);
  TextCounts c;
  for (char ch : s) {
    c.lines += ch == '\n';
    c.ats += ch == '@';
  }
  for (size_t p = 0; (p = s.find("[email]", p)) != std::string::npos; ++p) ++c.emails;
  for (size_t p = 0; (p = s.find("[phone]", p)) != std::string::npos; ++p) ++c.phones;
  return c;
}

// site -> the columns of a small CSV (header names -> text).
std::map<std::string, std::map<std::string, std::string>> ReadTable(const std::string& path) {
  auto src = FileSource(path);
  Check(src.status(), "open " + path);
  auto reader = MakeCsvReader(std::move(*src), {.infer_types = false});
  std::map<std::string, std::map<std::string, std::string>> out;
  Record rec;
  while (true) {
    auto more = reader->Next(rec);
    Check(more.status(), "read " + path);
    if (!*more) break;
    auto& row = out[rec.Get("site")->text()];
    for (size_t i = 0; i < rec.values.size(); ++i)
      row[rec.schema->names()[i]] = rec.values[i].text();
  }
  return out;
}

// Job B's outputs agree: the same sites, counts equal, mean/max/p95 within 1e-9 relative.
std::string CompareAggregates(const std::string& ours, const std::string& miller) {
  auto a = ReadTable(ours), b = ReadTable(miller);
  if (a.size() != b.size()) return "different number of sites";
  double worst = 0;
  for (auto& [site, ra] : a) {
    auto it = b.find(site);
    if (it == b.end()) return "site " + site + " missing in Miller's output";
    auto& rb = it->second;
    if (ra["count"] != rb["temp_count"]) return "count differs for " + site;
    for (auto [x, y] : {std::pair{"avg_temp", "temp_mean"}, std::pair{"max_temp", "temp_max"},
                        std::pair{"p95_temp", "temp_p95"}}) {
      double va = std::stod(ra[x]), vb = std::stod(rb[y]);
      double rel = std::fabs(va - vb) / std::max(1e-12, std::fabs(vb));
      worst = std::max(worst, rel);
      if (rel > 1e-9)
        return std::string(x) + " differs for " + site + ": " + ra[x] + " vs " + rb[y];
    }
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "same (%zu sites; largest relative difference %.1e)", a.size(),
                worst);
  return buf;
}

// ---- MQTT ----

struct MqttRound {
  double peer_s = 0, buffered_s = 0, committed_s = 0;
  double peer_cpu_self = 0, peer_cpu_broker = 0, peer_cpu_pub = 0;
  double ours_cpu_self = 0, ours_cpu_broker = 0, ours_cpu_pub = 0;
};

// The file sink's outputs in share `out`: the sum of the aggregate's "count" over every line.
uint64_t SumOutputCounts(store::Store& st) {
  auto sh = st.GetShare("out");
  Check(sh.status(), "share out");
  uint64_t total = 0;
  std::vector<store::NodeId> dirs = {sh->root};
  while (!dirs.empty()) {
    store::NodeId d = dirs.back();
    dirs.pop_back();
    auto page = st.ReadDir(d, "", 100000);
    Check(page.status(), "readdir");
    for (const auto& a : *page) {
      if (a.type == store::NodeType::kDirectory) {
        dirs.push_back(a.id);
        continue;
      }
      auto h = st.OpenFile(a.id, false);
      Check(h.status(), "open output");
      std::string text(a.size, '\0');
      auto n = (*h)->Read(0, {reinterpret_cast<uint8_t*>(text.data()), text.size()});
      Check(n.status(), "read output");
      text.resize(*n);
      for (size_t p = 0; p < text.size();) {
        size_t nl = text.find('\n', p);
        if (nl == std::string::npos) nl = text.size();
        if (nl > p) total += json::parse(text.substr(p, nl - p)).value("count", uint64_t{0});
        p = nl + 1;
      }
    }
  }
  return total;
}

void WritePayloads(const std::string& path, int n, int64_t start_s) {
  std::string out;
  Rng rng{static_cast<uint64_t>(start_s)};
  for (int i = 0; i < n; ++i) {
    out += "{\"site\":\"site";
    AppendPadded(out, rng.Below(50), 2);
    out += "\",\"ts\":\"";
    // The last message is a later reading that moves the watermark past every earlier window.
    AppendIsoTime(out, start_s + i / 50 + (i == n - 1 ? 120 : 0));
    out += "\",\"temp\":";
    uint32_t t = rng.Below(4000);
    AppendPadded(out, t / 100, 1);
    out.push_back('.');
    AppendPadded(out, t % 100, 2);
    out += ",\"humidity\":";
    AppendPadded(out, 20 + rng.Below(80), 1);
    out += "}\n";
  }
  Check(platform::WriteFileAtomic(path, out), "write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  std::string base = "bench-tmp";
  uint64_t rows = 5000000;
  int rounds = 3, messages = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir")
      base = argv[i + 1];
    else if (a == "--rows")
      rows = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (a == "--messages")
      messages = std::atoi(argv[i + 1]);
    else
      Die("unknown option " + a);
  }
  Check(platform::MakeDirs(base), "bench dir");
  std::string tmpl = base + "/compute-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp");
  const std::string dir = fsys::absolute(tmpl).string();
  const std::string csv = dir + "/input.csv", log = dir + "/child.log";
  double run_t0 = Now();

  std::printf("Machine: %s\n", bench::Machine(dir).c_str());
  std::string mlr_version;
  {
    Spawn({kMiller, "--version"}, "", dir + "/v.txt", log, false);
    mlr_version = ReadAll(dir + "/v.txt");
    while (!mlr_version.empty() && mlr_version.back() == '\n') mlr_version.pop_back();
  }

  uint64_t emails = 0, phones = 0;
  double g0 = Now();
  int64_t start_s = 1793491200;  // 2026-11-01T00:00:00Z
  uint64_t bytes = GenerateCsv(csv, rows, start_s, &emails, &phones);
  std::printf(
      "Input: %llu rows, %.0f MB (%llu notes with an email, %llu with a phone), made in "
      "%.1f s; %s\n\n",
      static_cast<unsigned long long>(rows), bytes / 1e6, static_cast<unsigned long long>(emails),
      static_cast<unsigned long long>(phones), Now() - g0, mlr_version.c_str());
  std::fflush(stdout);

  // ---- CSV jobs, interleaved ----
  struct Series {
    std::vector<double> wall, cpu;
    void Add(double w, double c) {
      wall.push_back(w);
      cpu.push_back(c);
    }
  };
  Series cat, our_read, mlr_read, our_copy, mlr_copy, our_a, mlr_a, our_b, mlr_b;
  uint64_t a_rows_out = 0;
  std::string check_a, check_b;
  const std::string our_out = dir + "/ours.csv", mlr_out = dir + "/miller.csv";
  for (int round = 0; round < rounds; ++round) {
    bool miller_first = round % 2 == 1;
    auto pair = [&](const char* name, auto ours, auto miller) {
      if (miller_first) miller();
      ours();
      if (!miller_first) miller();
      std::fprintf(stderr, "round %d: %s done (%.0f s into the run)\n", round + 1, name,
                   Now() - run_t0);
    };
    Timed c = Spawn({"/bin/cat", csv}, "", "/dev/null", log, false);
    cat.Add(c.wall_s, c.cpu_s);
    pair(
        "read",
        [&] {
          OurRun r = RunOurs(csv, "", {});
          if (r.rows_in != rows) Die("read " + std::to_string(r.rows_in) + " rows");
          our_read.Add(r.wall_s, r.cpu_s);
        },
        [&] {
          Timed t = Spawn({kMiller, "--icsv", "--ocsv", "filter", "false", csv}, "", "/dev/null",
                          log, false);
          mlr_read.Add(t.wall_s, t.cpu_s);
        });
    pair(
        "copy",
        [&] {
          OurRun r = RunOurs(csv, our_out, {});
          our_copy.Add(r.wall_s, r.cpu_s);
        },
        [&] {
          fsys::remove(mlr_out);
          Timed t = Spawn({kMiller, "--icsv", "--ocsv", "cat", csv}, "", mlr_out, log, true);
          mlr_copy.Add(t.wall_s, t.cpu_s);
        });
    pair(
        "job A",
        [&] {
          OurRun r = RunOurs(csv, our_out, {kFilter, kSelect, kRedact});
          a_rows_out = r.rows_out;
          our_a.Add(r.wall_s, r.cpu_s);
        },
        [&] {
          fsys::remove(mlr_out);
          Timed t = Spawn(MillerJobA(csv), "", mlr_out, log, true);
          mlr_a.Add(t.wall_s, t.cpu_s);
        });
    if (round == 0) {
      TextCounts o = CountText(our_out), m = CountText(mlr_out);
      char buf[512];
      std::snprintf(buf, sizeof buf,
                    "ours %llu rows, %llu [email], %llu [phone], %llu '@'; Miller %llu rows, %llu "
                    "[email], %llu [phone], %llu '@'",
                    (unsigned long long)(o.lines - 1), (unsigned long long)o.emails,
                    (unsigned long long)o.phones, (unsigned long long)o.ats,
                    (unsigned long long)(m.lines - 1), (unsigned long long)m.emails,
                    (unsigned long long)m.phones, (unsigned long long)m.ats);
      check_a = buf;
      if (o.lines != m.lines || o.emails != m.emails || o.phones != m.phones || o.ats != 0 ||
          m.ats != 0 || o.lines - 1 != a_rows_out) {
        Die("job A outputs differ: " + check_a);
      }
    }
    pair(
        "job B",
        [&] {
          OurRun r = RunOurs(csv, our_out, {kAggregate});
          our_b.Add(r.wall_s, r.cpu_s);
        },
        [&] {
          Timed t = Spawn(MillerJobB(csv), "", mlr_out, log, true);
          mlr_b.Add(t.wall_s, t.cpu_s);
        });
    if (round == 0) {
      check_b = CompareAggregates(our_out, mlr_out);
      if (!check_b.starts_with("same")) Die("job B outputs differ: " + check_b);
    }
  }

  auto rate = [&](const Series& s) { return rows / bench::Median(s.wall); };
  auto range = [&](const Series& s) {
    char buf[64];
    auto [lo, hi] = std::minmax_element(s.wall.begin(), s.wall.end());
    std::snprintf(buf, sizeof buf, "%.2f (%.2f-%.2f)", rate(s) / 1e6, rows / *hi / 1e6,
                  rows / *lo / 1e6);
    return std::string(buf);
  };
  auto line = [&](const char* name, const Series& o, const Series& m) {
    std::printf("| %s | %s | %.1f | %s | %.1f | **%.2f** |\n", name, range(o).c_str(),
                bench::Median(o.cpu), range(m).c_str(), bench::Median(m.cpu), rate(o) / rate(m));
  };
  std::printf("CSV jobs (%llu rows, median of %d interleaved rounds):\n\n",
              static_cast<unsigned long long>(rows), rounds);
  std::printf(
      "| job | ours, M rows/s (range) | ours CPU s | Miller, M rows/s (range) | Miller "
      "CPU s | ours / Miller |\n|---|---|---|---|---|---|\n");
  std::printf("| `cat FILE > /dev/null` | %s | %.1f | - | - | - |\n", range(cat).c_str(),
              bench::Median(cat.cpu));
  line("read only (ours: reader; Miller: `filter false`)", our_read, mlr_read);
  line("CSV copy (reader -> writer; `mlr cat`)", our_copy, mlr_copy);
  line("A: filter + select + redact", our_a, mlr_a);
  line("B: group-by aggregate (count, avg, max, p95)", our_b, mlr_b);
  std::printf("\nJob A output: %llu of %llu rows pass; %s.\nJob B output: %s.\n\n",
              static_cast<unsigned long long>(a_rows_out), static_cast<unsigned long long>(rows),
              check_a.c_str(), check_b.c_str());
  std::fflush(stdout);

  // ---- Where job A's time goes (one run each) ----
  std::printf("Job A by stage, ours (one run each; rows/s over the input rows):\n\n");
  std::printf("| chain | M rows/s | CPU s |\n|---|---|---|\n");
  struct Stage {
    const char* name;
    std::vector<json> steps;
    bool write;
  };
  for (const Stage& s : std::vector<Stage>{
           {"read", {}, false},
           {"read + filter", {kFilter}, false},
           {"read + filter + select", {kFilter, kSelect}, false},
           {"read + filter + select + redact", {kFilter, kSelect, kRedact}, false},
           {"... + write (job A)", {kFilter, kSelect, kRedact}, true},
           {"job A with detectors on every column (no skip)", {kFilter, kSelect, kRedactAll}, true},
           {"read + aggregate (job B)", {kAggregate}, false}}) {
    OurRun r = RunOurs(csv, s.write ? our_out : "", s.steps);
    std::printf("| %s | %.2f | %.1f |\n", s.name, rows / r.wall_s / 1e6, r.cpu_s);
  }
  {
    Timed t = Spawn(MillerJobA(csv), "", mlr_out, log, true, {"GOMAXPROCS=1"});
    std::printf("| Miller job A with GOMAXPROCS=1 | %.2f | %.1f |\n", rows / t.wall_s / 1e6,
                t.cpu_s);
  }
  std::printf("\n");
  std::fflush(stdout);
  fsys::remove(csv);
  fsys::remove(our_out);
  fsys::remove(mlr_out);

  // ---- MQTT ----
  BrokerOptions bo;
  bo.data_dir = dir + "/broker";
  bo.port = 0;
  auto broker = MosquittoBroker::Start(bo);
  Check(broker.status(), "mosquitto");
  g_broker = broker->get();
  store::StoreOptions so;
  so.data_dir = dir + "/store";
  auto st = store::Store::Open(so);
  Check(st.status(), "store");
  Check((*st)->CreateShare("out", store::ShareKind::kLocal).status(), "share");
  EngineOptions eo;
  eo.dir = dir + "/compute";
  eo.store = st->get();
  eo.hash_key = "bench";
  eo.workers = 1;
  eo.tick_ms = 100;
  auto engine = Engine::Open(eo);
  Check(engine.status(), "engine");
  json decl = {
      {"name", "agg"},
      {"trigger", {{"type", "mqtt"}, {"topics", {"sensors/+/data"}}}},
      {"steps", json::array({{{"type", "aggregate"},
                              {"group_by", {"site"}},
                              {"time", "ts"},
                              {"window", {{"size_s", 60}}},
                              {"metrics", json::array({{{"op", "count"}},
                                                       {{"op", "avg"}, {"column", "temp"}},
                                                       {{"op", "max"}, {"column", "temp"}}})}}})},
      {"sinks", json::array({{{"type", "file"}, {"share", "out"}, {"roll", {{"max_age_s", 1}}}}})}};
  auto parsed = ParsePipeline(decl);
  Check(parsed.status(), "pipeline");
  Check((*engine)->SetPipelines({*parsed}), "set pipelines");
  Check((*engine)->Start(), "engine start");

  std::atomic<uint64_t> peer_count{0}, ours_count{0}, peer_target{0}, ours_target{0};
  std::atomic<double> peer_done{0}, ours_done{0};
  auto make_client = [&](const std::string& id) {
    auto c = MqttClient::Create(
        {.server_uri = (*broker)->uri(), .client_id = id, .persistence_dir = dir + "/paho-" + id});
    Check(c.status(), "mqtt client");
    Check((*c)->Start(), "mqtt start");
    Check((*c)->WaitConnected(10000), "mqtt connect");
    return std::move(*c);
  };
  auto peer = make_client("bench-peer");
  Check(peer->Subscribe({"peer/#"}, 1,
                        [&](const MqttMessage&) {
                          if (++peer_count == peer_target) peer_done = Now();
                          return Status::Ok();
                        }),
        "subscribe peer");
  auto sub = make_client("bench-engine");
  Engine* eng = engine->get();
  Check(sub->Subscribe(eng->Topics(), 1,
                       [&, eng](const MqttMessage& m) {
                         Status s = eng->OnMessage(m.topic, m.payload);
                         if (s.ok() && ++ours_count == ours_target) ours_done = Now();
                         return s;
                       }),
        "subscribe engine");

  auto children_cpu = [] { return bench::ChildrenCpuSeconds("mosquitto"); };
  auto wait_for = [](std::atomic<double>& done) {
    for (double deadline = Now() + 300; done.load() == 0; ::usleep(200)) {
      if (Now() > deadline) Die("messages did not arrive");
    }
    return done.load();
  };
  const std::string port = std::to_string((*broker)->port());
  std::vector<MqttRound> mq(rounds);
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  for (int round = 0; round < rounds; ++round) {
    MqttRound& r = mq[round];
    std::string payloads = dir + "/payloads.jsonl";
    // Event times in the future (an aggregate's Tick closes windows that ended before now: a
    // reading from the past would be late): 50 readings per event second, then one 120 s later
    // whose watermark closes every window of the round. Its own window closes in the next round.
    WritePayloads(payloads, messages, now_s + 3600 + round * (messages / 50 + 600));
    auto run_peer = [&] {
      peer_done = 0;
      peer_target = peer_count + messages;
      double c0 = SelfCpuSeconds(), b0 = children_cpu(), t0 = Now();
      Timed p = Spawn({kMosquittoPub, "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
                       "peer/dev1/data", "-l", "-i", "bench-pub"},
                      payloads, "/dev/null", log, false);
      r.peer_s = wait_for(peer_done) - t0;
      r.peer_cpu_self = SelfCpuSeconds() - c0;
      r.peer_cpu_broker = children_cpu() - b0;
      r.peer_cpu_pub = p.cpu_s;
    };
    auto run_ours = [&] {
      ours_done = 0;
      ours_target = ours_count + messages;
      double c0 = SelfCpuSeconds(), b0 = children_cpu(), t0 = Now();
      Timed p = Spawn({kMosquittoPub, "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
                       "sensors/dev1/data", "-l", "-i", "bench-pub"},
                      payloads, "/dev/null", log, false);
      r.buffered_s = wait_for(ours_done) - t0;
      r.ours_cpu_broker = children_cpu() - b0;
      r.ours_cpu_pub = p.cpu_s;
      Check(eng->WaitIdle(300000), "wait idle");
      r.committed_s = Now() - t0;
      r.ours_cpu_self = SelfCpuSeconds() - c0;
      uint64_t sum = SumOutputCounts(**st);
      uint64_t expect = static_cast<uint64_t>(messages) * (round + 1) - 1;
      if (sum != expect) {
        auto ps = eng->GetStatus("agg");
        if (ps.ok()) {
          std::fprintf(stderr, "status: in %llu out %llu buffered %llu ok %llu failed %llu: %s\n",
                       (unsigned long long)ps->rows_in, (unsigned long long)ps->rows_out,
                       (unsigned long long)ps->buffered, (unsigned long long)ps->runs_ok,
                       (unsigned long long)ps->runs_failed, ps->last_error.c_str());
        }
        Die("aggregate outputs count " + std::to_string(sum) + " messages, expected " +
            std::to_string(expect));
      }
    };
    if (round % 2 == 0) {
      run_peer();
      run_ours();
    } else {
      run_ours();
      run_peer();
    }
    std::fprintf(stderr, "round %d: mqtt done (%.0f s into the run)\n", round + 1, Now() - run_t0);
  }
  auto med = [&](auto f) {
    std::vector<double> v;
    for (const auto& r : mq) v.push_back(f(r));
    return bench::Median(v);
  };
  auto status = eng->GetStatus("agg");
  Check(status.status(), "status");
  std::printf(
      "MQTT, %d messages of ~75 bytes per round at QoS 1 (`mosquitto_pub -l`), median of "
      "%d rounds:\n\n",
      messages, rounds);
  std::printf(
      "| measure | messages/s | wall s | CPU s: this process / mosquitto / mosquitto_pub "
      "|\n|---|---|---|---|\n");
  std::printf(
      "| broker alone (a subscriber whose handler does nothing) | %.0f | %.2f | %.2f / "
      "%.2f / %.2f |\n",
      messages / med([](auto& r) { return r.peer_s; }), med([](auto& r) { return r.peer_s; }),
      med([](auto& r) { return r.peer_cpu_self; }), med([](auto& r) { return r.peer_cpu_broker; }),
      med([](auto& r) { return r.peer_cpu_pub; }));
  std::printf(
      "| through the engine: durably buffered (every OnMessage committed) | %.0f | %.2f "
      "| - / %.2f / %.2f |\n",
      messages / med([](auto& r) { return r.buffered_s; }),
      med([](auto& r) { return r.buffered_s; }), med([](auto& r) { return r.ours_cpu_broker; }),
      med([](auto& r) { return r.ours_cpu_pub; }));
  std::printf(
      "| through the engine: aggregate output committed (WaitIdle) | %.0f | %.2f | %.2f / "
      "- / - |\n",
      messages / med([](auto& r) { return r.committed_s; }),
      med([](auto& r) { return r.committed_s; }), med([](auto& r) { return r.ours_cpu_self; }));
  std::printf(
      "\nEngine status: %llu rows in, %llu rows out, %llu checkpoints; every round's "
      "output counts all its messages (the last one's window closes in the next round).\n",
      static_cast<unsigned long long>(status->rows_in),
      static_cast<unsigned long long>(status->rows_out),
      static_cast<unsigned long long>(status->runs_ok));
  sub->Stop();
  peer->Stop();
  sub.reset();
  peer.reset();
  (*engine)->Stop();
  engine->reset();
  st->reset();
  g_broker = nullptr;
  broker->reset();
  fsys::remove_all(dir);
  std::printf("\nWhole run: %.0f s.\n", Now() - run_t0);
  return 0;
}
