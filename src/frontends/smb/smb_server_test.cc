// Real smbd serving the FUSE mount of a Store, driven by smbclient: put, get, mkdir, rename,
// delete, ls; a wrong password and a read-only user are refused; smbd is restarted when it
// dies; what SMB wrote is in the Store byte for byte.

#include "frontends/smb/smb_server.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "frontends/fuse/fuse_fs.h"
#include "platform/file.h"
#include "store/store.h"
#include "test/support/temp_dir.h"

namespace fieldstack::frontends::smb {
namespace {

struct ClientRun {
  int rc;
  std::string out;
};

class SmbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->CreateShare("ingest", store::ShareKind::kCloud).ok());
    mnt_ = dir_.path() + "/mnt";
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
    auto fs = fuse::FuseFs::Mount(*store_, {.mountpoint = mnt_, .threads = 4});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
    SmbShare share{"ingest", mnt_ + "/ingest", {"fstest-rw"}, {"fstest-ro"}, "desired"};
    auto smb = SmbServer::Start({.state_dir = dir_.path() + "/smb", .port = 0}, {share},
                                {{"fstest-rw", "rw-secret"}, {"fstest-ro", "ro-secret"}});
    ASSERT_TRUE(smb.ok()) << smb.status().ToString();
    smb_ = std::move(*smb);
  }
  void TearDown() override {
    smb_.reset();
    fs_.reset();
    store_.reset();
    // Only ours: other tests (test/integration) may have users of their own right now.
    EXPECT_TRUE(SmbServer::RemoveSystemUsers({"fstest-rw", "fstest-ro"}).ok());
    EXPECT_EQ(::getpwnam("fstest-rw"), nullptr);
  }

  ClientRun Client(const std::string& user, const std::string& commands) {
    std::string cmd = "smbclient //127.0.0.1/ingest -p " + std::to_string(smb_->port()) +
                      " -m SMB3 -U '" + user + "' -c '" + commands + "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    int rc = p ? pclose(p) : -1;
    return {rc, out};
  }

  testing::TempDir dir_;
  std::string mnt_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<fuse::FuseFs> fs_;
  std::unique_ptr<SmbServer> smb_;
};

TEST_F(SmbTest, SmbclientPutGetMkdirRenameDeleteLs) {
  std::string local = dir_.path() + "/local.bin", back = dir_.path() + "/back.bin";
  std::string data(3 * 1024 * 1024 + 77, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 % 253);
  ASSERT_TRUE(platform::WriteFileAtomic(local, data).ok());
  auto r = Client("fstest-rw%rw-secret", "mkdir survey; put " + local +
                                             " survey/a.bin; rename survey/a.bin survey/b.bin; "
                                             "get survey/b.bin " +
                                             back + "; ls survey/*");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("b.bin"), std::string::npos) << r.out;
  EXPECT_TRUE(*platform::ReadFileToString(back) == data);
  // The Store holds exactly those bytes, committed.
  auto a = store_->Resolve("ingest", "survey/b.bin");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size, data.size());
  auto h = store_->OpenFile(a->id, false);
  std::vector<uint8_t> got(data.size());
  ASSERT_EQ(*(*h)->Read(0, got), data.size());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin(),
                         [](uint8_t x, char y) { return x == static_cast<uint8_t>(y); }));
  r = Client("fstest-rw%rw-secret", "del survey/b.bin; rmdir survey; ls");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(store_->Resolve("ingest", "survey").status().code(), StatusCode::kNotFound);
}

TEST_F(SmbTest, AWrongPasswordAndAReadOnlyUserAreRefused) {
  auto bad = Client("fstest-rw%wrong", "ls");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.out.find("NT_STATUS_LOGON_FAILURE"), std::string::npos) << bad.out;
  std::string local = dir_.path() + "/x.txt";
  ASSERT_TRUE(platform::WriteFileAtomic(local, "x").ok());
  ASSERT_EQ(Client("fstest-rw%rw-secret", "put " + local + " seen.txt").rc, 0);
  auto ro = Client("fstest-ro%ro-secret", "ls; put " + local + " ro.txt");
  EXPECT_NE(ro.out.find("seen.txt"), std::string::npos) << ro.out;  // reading works
  EXPECT_NE(ro.out.find("NT_STATUS_ACCESS_DENIED"), std::string::npos) << ro.out;
  EXPECT_EQ(store_->Resolve("ingest", "ro.txt").status().code(), StatusCode::kNotFound);
}

// Reload: a new share that requires encryption and a new user, without restarting smbd. A
// client that cannot encrypt (SMB 2.0.2 has no encryption) is refused there; SMB3 gets in.
TEST_F(SmbTest, ReloadAddsSharesAndUsersAndRequiredEncryptionRefusesPlainClients) {
  ASSERT_TRUE(store_->CreateShare("secret", store::ShareKind::kLocal).ok());
  pid_t before = smb_->pid();
  std::vector<SmbShare> shares = {
      {"ingest", mnt_ + "/ingest", {"fstest-rw"}, {"fstest-ro"}, "desired"},
      {"secret", mnt_ + "/secret", {"fstest-new"}, {}, "required"}};
  std::vector<SmbUser> users = {{"fstest-rw", "rw-secret"},
                                {"fstest-ro", "ro-secret"},
                                {"fstest-new", "new-secret"}};
  std::vector<SmbShare> bad = shares;
  bad[1].encrypt = "always";
  EXPECT_EQ(smb_->Reload(bad, users).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(smb_->Reload(shares, users).ok());
  EXPECT_EQ(smb_->pid(), before);  // reloaded, not restarted
  auto client = [&](const std::string& protocol) {
    std::string cmd = "smbclient //127.0.0.1/secret -p " + std::to_string(smb_->port()) +
                      " -m " + protocol + " -U fstest-new%new-secret -c ls 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    return ClientRun{p ? pclose(p) : -1, out};
  };
  ClientRun r{1, ""};
  for (int i = 0; i < 50 && r.rc != 0; ++i) {  // smbd rereads its config asynchronously
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    r = client("SMB3");
  }
  EXPECT_EQ(r.rc, 0) << r.out;
  auto plain = client("SMB2_02");
  EXPECT_NE(plain.rc, 0) << plain.out;
  EXPECT_NE(plain.out.find("NT_STATUS_ACCESS_DENIED"), std::string::npos) << plain.out;
  EXPECT_TRUE(SmbServer::RemoveSystemUsers({"fstest-new"}).ok());
}

TEST_F(SmbTest, SmbdIsRestartedWhenItDies) {
  ASSERT_EQ(::kill(smb_->pid(), SIGKILL), 0);
  ClientRun r{1, ""};
  for (int i = 0; i < 50 && r.rc != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    r = Client("fstest-rw%rw-secret", "ls");
  }
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_GE(smb_->restarts(), 1);
}

TEST(SmbConfigTest, BadSettingsAreRefusedWithTheirName) {
  SmbOptions o{.state_dir = "/tmp/x"};
  EXPECT_EQ(
      SmbServer::RenderConfig(o, 1445, {{"bad name", "/p", {"u"}, {}, "off"}}).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(SmbServer::RenderConfig(o, 1445, {{"s", "/p", {}, {}, "off"}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SmbServer::RenderConfig(o, 1445, {{"s", "/p", {"u"}, {}, "always"}}).status().code(),
            StatusCode::kInvalidArgument);
  auto c = SmbServer::RenderConfig(o, 1445, {{"s", "/p", {"u1"}, {"r1"}, "required"}});
  ASSERT_TRUE(c.ok());
  for (const char* want : {"server signing = mandatory", "server min protocol = SMB2_02",
                           "smb ports = 1445", "read list = r1", "valid users = u1 r1",
                           "smb encrypt = required", "private dir = /tmp/x/private"}) {
    EXPECT_NE(c->find(want), std::string::npos) << want;
  }
}

}  // namespace
}  // namespace fieldstack::frontends::smb
