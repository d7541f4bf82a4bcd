// The audit log: a line per change with the caller's origin, from the Store's events with a
// durable cursor; rotation; a log that cannot be written loses no event.

#include "sync/audit_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::sync {
namespace {

std::vector<nlohmann::json> Lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) return out;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    auto share = store_->CreateShare("ingest", store::ShareKind::kLocal);
    ASSERT_TRUE(share.ok());
    root_ = share->root;
  }
  void Changes() {
    store::Store::SetThreadOrigin({true, 1000, 1001, ::getpid(), {}});
    auto h = store_->Create(root_, "a.txt", {0644, 1000, 1001});
    ASSERT_TRUE(h.ok());
    std::string data = "hello";
    ASSERT_TRUE((*h)->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}).ok());
    ASSERT_TRUE((*h)->Close().ok());
    ASSERT_TRUE(store_->Rename(root_, "a.txt", root_, "b.txt").ok());
    store::Store::SetThreadOrigin({});  // the Store's own changes carry no origin
    ASSERT_TRUE(store_->Unlink(root_, "b.txt").ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  store::NodeId root_ = 0;
};

TEST_F(AuditLogTest, EveryChangeIsALineWithItsOrigin) {
  Changes();
  std::string path = dir_.path() + "/logs/audit.log";
  AuditLog log(*store_, {.path = path}, RealClock::Get());
  auto n = log.RunOnce();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto lines = Lines(path);
  ASSERT_EQ(lines.size(), *n);
  std::vector<std::string> ops;
  for (auto& j : lines) ops.push_back(j["op"]);
  EXPECT_EQ(ops, (std::vector<std::string>{"create", "write", "rename", "unlink"}));
  EXPECT_EQ(lines[0]["share"], "ingest");
  EXPECT_EQ(lines[0]["path"], "a.txt");
  EXPECT_EQ(lines[0]["uid"], 1000);
  EXPECT_EQ(lines[0]["gid"], 1001);
  EXPECT_EQ(lines[0]["pid"], ::getpid());
  EXPECT_EQ(lines[0]["process"], "sync_test");
  EXPECT_EQ(lines[0]["via"], "local");
  EXPECT_EQ(lines[2]["old_path"], "a.txt");
  EXPECT_EQ(lines[2]["path"], "b.txt");
  EXPECT_FALSE(lines[3].contains("uid"));  // unknown origin: no caller fields
  EXPECT_TRUE(lines[3]["time"].get<std::string>().ends_with("Z"));
  // The cursor moved: nothing twice, also after a restart of the log.
  EXPECT_EQ(*log.RunOnce(), 0u);
  AuditLog again(*store_, {.path = path}, RealClock::Get());
  EXPECT_EQ(*again.RunOnce(), 0u);
  EXPECT_EQ(Lines(path).size(), 4u);
}

// The data a close commits is the last writer's, whichever handle closes first.
TEST_F(AuditLogTest, ACommitIsTheLastWritersEvenWhenAnotherHandleCloses) {
  store::Store::SetThreadOrigin({true, 1000, 1000, ::getpid(), {}});
  auto a = store_->Create(root_, "shared.txt", {0644, 1000, 1000});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Close().ok());
  auto node = store_->Resolve("ingest", "shared.txt")->id;
  auto writer = store_->OpenFile(node, true);
  std::string data = "from 1001";
  store::Store::SetThreadOrigin({true, 1001, 1001, ::getpid(), {}});
  ASSERT_TRUE(
      (*writer)->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}).ok());
  store::Store::SetThreadOrigin({true, 1002, 1002, ::getpid(), {}});
  auto other = store_->OpenFile(node, true);  // opens, never writes, closes first
  ASSERT_TRUE((*other)->Close().ok());
  store::Store::SetThreadOrigin({});
  ASSERT_TRUE((*writer)->Close().ok());
  std::string path = dir_.path() + "/audit.log";
  AuditLog log(*store_, {.path = path}, RealClock::Get());
  ASSERT_TRUE(log.RunOnce().ok());
  std::vector<int> write_uids;
  for (auto& j : Lines(path)) {
    if (j["op"] == "write") write_uids.push_back(j["uid"]);
  }
  EXPECT_EQ(write_uids, (std::vector<int>{1000, 1001})) << *platform::ReadFileToString(path);
}

TEST_F(AuditLogTest, RotatesAndKeepsOnlyTheNewestFiles) {
  std::string path = dir_.path() + "/audit.log";
  AuditLog log(*store_, {.path = path, .max_bytes = 200, .keep = 2}, RealClock::Get());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store_->Mkdir(root_, "d" + std::to_string(i), {0755}).ok());
    ASSERT_TRUE(log.RunOnce().ok());
  }
  EXPECT_TRUE(platform::PathExists(path + ".1"));
  EXPECT_TRUE(platform::PathExists(path + ".2"));
  EXPECT_FALSE(platform::PathExists(path + ".3"));
  auto last = Lines(path);
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(last.back()["path"], "d19");
}

TEST_F(AuditLogTest, ALogThatCannotBeWrittenLosesNoEvent) {
  Changes();
  std::string blocker = dir_.path() + "/notadir";
  ASSERT_TRUE(platform::WriteFileAtomic(blocker, "x").ok());
  AuditLog bad(*store_, {.path = blocker + "/audit.log"}, RealClock::Get());
  EXPECT_FALSE(bad.RunOnce().ok());
  ASSERT_TRUE(platform::RemoveFile(blocker).ok());
  auto n = bad.RunOnce();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(Lines(blocker + "/audit.log").size(), 4u);
}

}  // namespace
}  // namespace fieldstack::sync
