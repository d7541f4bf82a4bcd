// Crash test of the Store: a child process (store_crash_child) runs random operations on four
// threads and reports each acknowledged commit; this test SIGKILLs it at random moments, reopens
// the Store, and checks that every acknowledged operation is there, that an operation in flight
// left one of its allowed states, and that every file reads back without Corruption.
//
// FS_CRASH_KILLS sets the number of kills (default 200); FS_SEED fixes the seed.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "store/store.h"
#include "test/crash/crash_ops.h"
#include "test/support/temp_dir.h"

namespace fieldstack::crashtest {
namespace {

constexpr int kThreads = 4;

struct Child {
  pid_t pid = -1;
  int out = -1;
};

Child Spawn(const std::string& dir, uint64_t seed) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  ::fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    std::string s = std::to_string(seed), t = std::to_string(kThreads);
    ::execl(FS_CRASH_CHILD, FS_CRASH_CHILD, dir.c_str(), s.c_str(), t.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Reads until `marker` has arrived (or the pipe closes); returns what was read.
std::string ReadUntil(int fd, const std::string& marker) {
  std::string out;
  char buf[4096];
  while (out.find(marker) == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Reads the whole subtree of `dir`; any read error fails the test.
void LoadTree(store::Store& s, store::NodeId dir, const std::string& prefix, Tree& out) {
  auto page = s.ReadDir(dir, "", 100000);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  for (const store::Attr& a : *page) {
    std::string path = prefix.empty() ? a.name : prefix + "/" + a.name;
    if (a.type == store::NodeType::kDirectory) {
      out[path] = {true, {}};
      LoadTree(s, a.id, path, out);
      continue;
    }
    auto h = s.OpenFile(a.id, false);
    ASSERT_TRUE(h.ok()) << path << ": " << h.status().ToString();
    std::vector<uint8_t> data(a.size);
    auto n = (*h)->Read(0, data);
    ASSERT_TRUE(n.ok()) << path << ": " << n.status().ToString();
    ASSERT_EQ(*n, a.size) << path;
    out[path] = {false, std::move(data)};
  }
}

// Lists `t`; where `ref` has the same file with other bytes, names the first differing offset.
std::string Describe(const Tree& t, const Tree* ref = nullptr) {
  std::string s;
  for (auto& [p, e] : t) {
    s += "  " + p + (e.dir ? "/" : " (" + std::to_string(e.data.size()) + " bytes)");
    if (ref && ref->count(p) && ref->at(p).data != e.data) {
      const auto& r = ref->at(p).data;
      size_t i = 0;
      while (i < r.size() && i < e.data.size() && r[i] == e.data[i]) ++i;
      s += " differs from expected at byte " + std::to_string(i);
    }
    s += "\n";
  }
  return s;
}

TEST(StoreCrashTest, AcknowledgedCommitsSurviveSigkill) {
  const char* env_seed = std::getenv("FS_SEED");
  uint64_t seed =
      env_seed ? std::strtoull(env_seed, nullptr, 10)
               : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  const int kills = std::getenv("FS_CRASH_KILLS") ? std::atoi(std::getenv("FS_CRASH_KILLS")) : 200;
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("reproduce with FS_SEED=" + std::to_string(seed));
  testing::TempDir dir;
  std::string data = dir.path() + "/data";
  std::vector<Tree> model(kThreads);
  uint64_t acked_total = 0, inflight_total = 0;
  for (int round = 0; round < kills; ++round) {
    Child child = Spawn(data, seed + round);
    ASSERT_GT(child.pid, 0);
    // Mostly kill while operations run (a random moment after the child reports READY, so a
    // slow build still does work); sometimes during start-up and recovery.
    std::string out;
    if (rng() % 10 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 5));
    } else {
      out = ReadUntil(child.out, "READY\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
    }
    ::kill(child.pid, SIGKILL);
    int status = 0;
    ::waitpid(child.pid, &status, 0);
    out += ReadAll(child.out);
    ::close(child.out);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "child ended by itself (status " << status
        << "): " << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);

    // Replay the report: acknowledged operations move the model; the last one started on each
    // thread without an acknowledgement is in flight.
    std::vector<std::optional<Op>> inflight(kThreads);
    size_t pos = 0;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      if (nl == std::string::npos) break;  // a line cut by the kill
      std::string line = out.substr(pos, nl - pos);
      pos = nl + 1;
      if (line == "READY") continue;
      ASSERT_FALSE(line.starts_with("E ")) << "child reported an error: " << line;
      int k = line[2] - '0';
      ASSERT_TRUE(k >= 0 && k < kThreads) << line;
      if (line[0] == 'B') {
        inflight[k] = Op::Parse(line.substr(4));
      } else if (line[0] == 'A') {
        ASSERT_TRUE(inflight[k].has_value()) << line;
        model[k] = Outcomes(model[k], *inflight[k]).back();
        inflight[k].reset();
        ++acked_total;
      }
    }

    auto opened = store::Store::Open({.data_dir = data, .chunk_size_bytes = 16 * 1024});
    ASSERT_TRUE(opened.ok()) << "round " << round << ": " << opened.status().ToString();
    store::Store& s = **opened;
    auto share = s.GetShare("crash");
    if (!share.ok()) continue;  // killed before the share was made
    for (int k = 0; k < kThreads; ++k) {
      auto tdir = s.Lookup(share->root, "t" + std::to_string(k));
      Tree actual;
      if (tdir.ok()) LoadTree(s, tdir->id, "", actual);
      ASSERT_FALSE(HasFatalFailure()) << "round " << round;
      std::vector<Tree> allowed = {model[k]};
      if (inflight[k]) {
        allowed = Outcomes(model[k], *inflight[k]);
        ++inflight_total;
      }
      bool match = false;
      for (const Tree& t : allowed) match = match || t == actual;
      ASSERT_TRUE(match) << "round " << round << ", thread " << k
                         << ", in flight: " << (inflight[k] ? inflight[k]->Format() : "none")
                         << "\nexpected:\n"
                         << Describe(allowed.back()) << "before:\n"
                         << Describe(allowed.front()) << "found:\n"
                         << Describe(actual, &allowed.back());
      model[k] = actual;
    }
  }
  std::printf("crash test: %d kills, %llu acknowledged operations checked, %llu in flight\n", kills,
              static_cast<unsigned long long>(acked_total),
              static_cast<unsigned long long>(inflight_total));
  EXPECT_GT(acked_total, static_cast<uint64_t>(kills)) << "the child did too little work to test";
}

}  // namespace
}  // namespace fieldstack::crashtest
