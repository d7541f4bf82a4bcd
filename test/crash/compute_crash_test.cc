// Crash test of the compute Engine: SIGKILL during the processing of files and MQTT messages
// loses and duplicates nothing in file outputs.
//
// A child (compute_crash_child) first ingests the workload (compute_crash_files.h: 200 CSV
// inputs, 400 buffered messages) and exits normally. Then the child is started again and again
// in "run" mode and SIGKILLed at random moments (seeded) while it processes; finally it runs
// until idle. The test then reads the output share: every input has exactly its expected
// output and there is no other file, every message id is in exactly one "msgs" batch file,
// exactly once, every closed window's aggregate is there once with the right values, and the
// staging folder is empty.
//
// FS_CRASH_KILLS sets the number of kills (default 50); FS_SEED fixes the seed.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "store/store.h"
#include "test/crash/compute_crash_files.h"
#include "test/support/temp_dir.h"

namespace fieldstack::crashtest {
namespace {

namespace cc = compute_crash;
using json = nlohmann::json;

pid_t Spawn(const std::string& dir, const char* phase, int out_fd) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fd, 1);
    ::execl(FS_COMPUTE_CHILD, FS_COMPUTE_CHILD, dir.c_str(), phase, nullptr);
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` up to `timeout_ms`; SIGKILLs it after that. Returns the wait status.
int WaitFor(pid_t pid, int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status;
}

std::string ReadFile(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(ComputeCrashTest, KillsDuringProcessingLoseAndDuplicateNothing) {
  uint64_t seed =
      std::getenv("FS_SEED") ? std::stoull(std::getenv("FS_SEED")) : std::random_device{}();
  int kills = std::getenv("FS_CRASH_KILLS") ? std::atoi(std::getenv("FS_CRASH_KILLS")) : 50;
  SCOPED_TRACE("FS_SEED=" + std::to_string(seed));
  std::printf("FS_SEED=%llu kills=%d\n", static_cast<unsigned long long>(seed), kills);
  std::mt19937_64 rng(seed);
  testing::TempDir tmp;
  std::string dir = tmp.path();
  std::string log = dir + "/child.log";
  int out = ::open(log.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
  ASSERT_GE(out, 0);

  // Ingest, never killed.
  int st = WaitFor(Spawn(dir, "ingest", out), 60000);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ReadFile(log);
  ASSERT_EQ(::access((dir + "/ingested").c_str(), F_OK), 0);

  // Kill while processing. The first kills come early (during recovery and the first outputs),
  // later ones spread over a longer span.
  int finished_early = 0;
  for (int k = 0; k < kills; ++k) {
    pid_t pid = Spawn(dir, "run", out);
    int64_t delay_ms = 10 + static_cast<int64_t>(rng() % (k < kills / 2 ? 150 : 400));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(log);
      ++finished_early;
      continue;
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  // Then to the end.
  st = WaitFor(Spawn(dir, "run", out), 60000);
  ::close(out);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ReadFile(log);
  std::printf("finished before a kill: %d of %d\n", finished_early, kills);

  // Verify with the Store, the child gone.
  store::StoreOptions so;
  so.data_dir = dir + "/data";
  so.encryption = false;
  auto opened = store::Store::Open(so);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& store = **opened;
  auto share = store.GetShare("out");
  ASSERT_TRUE(share.ok());
  std::map<std::string, std::string> files;  // path -> content
  std::vector<std::pair<store::NodeId, std::string>> dirs = {{share->root, ""}};
  while (!dirs.empty()) {
    auto [d, prefix] = dirs.back();
    dirs.pop_back();
    auto page = store.ReadDir(d, "", 100000);
    ASSERT_TRUE(page.ok());
    for (const auto& a : *page) {
      std::string rel = prefix.empty() ? a.name : prefix + "/" + a.name;
      if (a.type == store::NodeType::kDirectory) {
        dirs.emplace_back(a.id, rel);
        continue;
      }
      auto h = store.OpenFile(a.id, false);
      ASSERT_TRUE(h.ok());
      std::string data(a.size, '\0');
      auto n = (*h)->Read(0, {reinterpret_cast<uint8_t*>(data.data()), data.size()});
      ASSERT_TRUE(n.ok());
      data.resize(*n);
      files[rel] = data;
    }
  }

  // Files: exactly the expected outputs.
  std::map<std::string, std::string> expected;
  for (int k = 1; k <= cc::kFiles; ++k)
    expected["files/" + cc::InputName(k)] = cc::ExpectedOutput(k);
  std::map<int, int> ids;                              // msgs: id -> times seen
  std::map<std::pair<int64_t, int>, json> aggregates;  // agg: (window start, g) -> record
  int agg_dups = 0;
  for (const auto& [path, data] : files) {
    if (path.rfind("files/", 0) == 0) {
      auto it = expected.find(path);
      if (it == expected.end()) {
        ADD_FAILURE() << "unexpected output " << path;
      } else {
        EXPECT_EQ(data, it->second) << path;
      }
      continue;
    }
    bool msgs = path.rfind("msgs/", 0) == 0, agg = path.rfind("agg/", 0) == 0;
    if (!msgs && !agg) {
      ADD_FAILURE() << "unexpected file " << path;
      continue;
    }
    size_t start = 0;
    while (start < data.size()) {
      size_t nl = data.find('\n', start);
      ASSERT_NE(nl, std::string::npos) << path;
      json j = json::parse(data.substr(start, nl - start), nullptr, false);
      start = nl + 1;
      ASSERT_FALSE(j.is_discarded()) << path;
      if (msgs) {
        ids[j.at("id").get<int>()]++;
        EXPECT_EQ(j.at("_topic"), cc::Topic(j.at("id").get<int>()));
      } else {
        std::string ws = j.at("window_start").get<std::string>();
        // "2100-01-01T00:MM:SSZ" -> seconds after kTimeBase
        int64_t off = std::stoll(ws.substr(14, 2)) * 60 + std::stoll(ws.substr(17, 2)) +
                      std::stoll(ws.substr(11, 2)) * 3600;
        auto k2 = std::make_pair(off, j.at("g").get<int>());
        if (aggregates.count(k2)) ++agg_dups;
        aggregates[k2] = j;
      }
    }
  }
  for (const auto& [path, content] : expected)
    EXPECT_TRUE(files.count(path)) << "missing output " << path;
  // Messages: each once.
  for (int i = 1; i <= cc::kMessages; ++i) EXPECT_EQ(ids[i], 1) << "message " << i;
  EXPECT_EQ(ids.size(), static_cast<size_t>(cc::kMessages));
  // Aggregates: windows [10w, 10w+10) for w < kMessages/10 are closed (the last message's
  // watermark reaches the end of the window before its own); each once.
  EXPECT_EQ(agg_dups, 0);
  std::map<std::pair<int64_t, int>, std::pair<int, int64_t>> want;  // -> count, sum
  for (int i = 1; i < cc::kMessages; ++i) {
    auto& w = want[{(i / 10) * 10, i % 4}];
    w.first++;
    w.second += i;
  }
  EXPECT_EQ(aggregates.size(), want.size());
  for (const auto& [key, cs] : want) {
    auto it = aggregates.find(key);
    if (it == aggregates.end()) {
      ADD_FAILURE() << "missing aggregate window +" << key.first << "s g=" << key.second;
      continue;
    }
    EXPECT_EQ(it->second.at("count").get<int>(), cs.first) << it->second.dump();
    EXPECT_EQ(it->second.at("sum_v").get<int64_t>(), cs.second) << it->second.dump();
  }
  // No staged leftovers.
  for (const auto& [path, data] : files)
    EXPECT_NE(path.rfind(".fieldstack-staging/", 0), 0u) << "staging leftover " << path;
}

}  // namespace
}  // namespace fieldstack::crashtest
