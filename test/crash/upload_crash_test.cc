// Upload crash test: a child process uploads a mixed workload (small files, multi-part files,
// one file rewritten between kills, files renamed and deleted between kills under the `mirror`
// policy) from the Store to Azurite; this test SIGKILLs it again and again. After every kill
// the container is listed: no object may be partial or torn (each must equal a committed
// version of a file of that name). At the end every file's object equals its last committed
// version, and the objects of renamed and deleted files are gone. Azurite keeps running
// throughout (it is not crash-safe).
//
// FS_UPLOAD_KILLS sets the number of kills (default 25); FS_SEED fixes the seed.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "cloud/azure_blob/azure_blob_store.h"
#include "store/store.h"
#include "test/support/azurite.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

std::string Content(uint64_t seed, size_t n) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

struct Child {
  pid_t pid = -1;
  int out = -1;
};

Child Spawn(const std::string& data, const std::string& endpoint) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::execl(FS_UPLOAD_CHILD, FS_UPLOAD_CHILD, data.c_str(), endpoint.c_str(), "crash", nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

bool WaitForDone(int fd, int timeout_ms) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.find("DONE") == std::string::npos) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    out.append(buf, static_cast<size_t>(n));
  }
  return true;
}

void Kill(Child& c) {
  ::kill(c.pid, SIGKILL);
  int status;
  ::waitpid(c.pid, &status, 0);
  ::close(c.out);
}

TEST(UploadCrashTest, NoTornObjectEverAndEveryFileArrivesAtItsLastVersion) {
  auto& azurite = testing::Azurite::Shared();
  ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
  const char* env_seed = std::getenv("FS_SEED");
  uint64_t seed =
      env_seed ? std::strtoull(env_seed, nullptr, 10)
               : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  SCOPED_TRACE("reproduce with FS_SEED=" + std::to_string(seed));
  const int kills = std::getenv("FS_UPLOAD_KILLS") ? std::atoi(std::getenv("FS_UPLOAD_KILLS")) : 25;
  std::mt19937_64 rng(seed);
  auto azure = cloud::azure_blob::AzureBlobStore::Open(
      {azurite.endpoint(), testing::Azurite::kAccount, testing::Azurite::kKey, "", "crash"},
      RealClock::Get());
  ASSERT_TRUE(azure.ok());
  Status created = (*azure)->CreateContainer();
  ASSERT_TRUE(created.ok() || created.code() == StatusCode::kAlreadyExists);

  testing::TempDir dir;
  std::string data = dir.path() + "/data";
  std::map<std::string, std::vector<std::string>> versions;  // every committed version
  auto write = [&](store::Store& s, store::NodeId root, const std::string& name,
                   std::string content) {
    auto existing = s.Lookup(root, name);
    auto h = existing.ok() ? s.OpenFile(existing->id, true) : s.Create(root, name, {});
    ASSERT_TRUE(h.ok());
    if (existing.ok()) {
      store::SetAttrRequest trunc;
      trunc.size = 0;
      ASSERT_TRUE(s.SetAttr(existing->id, trunc).ok());
    }
    ASSERT_TRUE(
        (*h)->Write(0, {reinterpret_cast<const uint8_t*>(content.data()), content.size()}).ok());
    ASSERT_TRUE((*h)->Close().ok());
    versions[name].push_back(std::move(content));
  };
  {
    auto s = store::Store::Open({.data_dir = data});
    ASSERT_TRUE(s.ok());
    store::NodeId root = (*s)->CreateShare("field", store::ShareKind::kCloud)->root;
    for (int i = 0; i < 24; ++i) {
      size_t size = i % 6 == 0 ? 600 * 1024 + i : 2000 + 997 * i;
      write(**s, root, "f" + std::to_string(i), Content(seed + i, size));
    }
    write(**s, root, "moving", Content(seed + 100, 300 * 1024));
    ASSERT_TRUE((*s)->Mkdir(root, "renamed", {}).ok());
  }
  std::set<std::string> gone;  // renamed away or deleted: mirror removes their objects
  int renamed = 0, deleted = 0;
  int version = 0;
  for (int round = 0; round < kills; ++round) {
    Child child = Spawn(data, azurite.endpoint());
    ASSERT_GT(child.pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 150));
    Kill(child);
    // Nothing partial or torn is ever visible.
    auto page = (*azure)->List("", "", 1000);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& o : page->objects) {
      auto got = (*azure)->Get(o.key, 0, 1 << 30);
      ASSERT_TRUE(got.ok());
      const auto& vs = versions[o.key];
      ASSERT_TRUE(std::find(vs.begin(), vs.end(), *got) != vs.end())
          << "round " << round << ": '" << o.key << "' (" << got->size()
          << " bytes) is not a committed version of its file";
    }
    // A rename and a delete while the uploader is down.
    if (round % 5 == 2 && renamed < 6) {
      auto s = store::Store::Open({.data_dir = data});
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      store::NodeId root = (*s)->GetShare("field")->root;
      std::string from = "f" + std::to_string(1 + renamed * 2);
      std::string to = "r" + std::to_string(renamed);
      ASSERT_TRUE((*s)->Rename(root, from, (*s)->Lookup(root, "renamed")->id, to).ok());
      versions["renamed/" + to] = {versions[from].back()};
      gone.insert(from);
      ++renamed;
      std::string victim = "f" + std::to_string(2 + deleted * 2);
      if (victim != "f6" && victim != "f12") {  // keep the multi-part ones
        ASSERT_TRUE((*s)->Unlink(root, victim).ok());
        gone.insert(victim);
      }
      ++deleted;
    }
    // A new version of one file while the uploader is down.
    if (round % 5 == 4) {
      auto s = store::Store::Open({.data_dir = data});
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      ++version;
      write(**s, (*s)->GetShare("field")->root, "moving",
            Content(seed + 1000 + version, 250 * 1024 + version * 777));
    }
  }
  // Let it finish, then everything is there at its last version.
  Child last = Spawn(data, azurite.endpoint());
  bool done = WaitForDone(last.out, 120000);
  Kill(last);
  ASSERT_TRUE(done) << "the uploader did not drain the queue";
  for (const auto& [name, vs] : versions) {
    if (gone.count(name)) {
      EXPECT_EQ((*azure)->Head(name).status().code(), StatusCode::kNotFound)
          << name << " was renamed or deleted; mirror must remove its object";
      continue;
    }
    auto got = (*azure)->Get(name, 0, 1 << 30);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status().ToString();
    EXPECT_TRUE(*got == vs.back()) << name << " is not at its last committed version";
  }
  std::printf(
      "upload crash test: %d kills, %zu names, %d versions of the moving file, %d renames, "
      "%zu gone\n",
      kills, versions.size(), version + 1, renamed, gone.size());
}

}  // namespace
}  // namespace fieldstack
