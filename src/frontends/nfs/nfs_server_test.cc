// Real nfs-ganesha exporting the FUSE mount of a Store, in a network namespace of the test's
// own (rpcbind needs port 111), driven by libnfs: its tools nfs-cp, nfs-ls and nfs-cat, and
// its API where the tools cannot (mkdir, rename, stat). Covers the allow-list, read-only
// exports, root squash, restart of a killed ganesha, reload, file handles that outlive the
// kernel's inode cache, and a file written over SMB read back over NFS and from the Store.

#include "frontends/nfs/nfs_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "frontends/fuse/fuse_fs.h"
#include "frontends/smb/smb_server.h"
#include "platform/file.h"
#include "store/store.h"
#include "sync/audit_log.h"
#include "test/support/private_net.h"
#include "test/support/shell.h"
#include "test/support/temp_dir.h"

namespace fieldstack::frontends::nfs {
namespace {

using testing::Shell;
using testing::ShellRun;

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) % 251);
  return s;
}

// A libnfs v3 client mounted on one export; the tests' way to do what nfs-cp cannot.
class Client {
 public:
  Client(const std::string& server, const std::string& export_path) : nfs_(nfs_init_context()) {
    nfs_set_version(nfs_, NFS_V3);
    mounted_ = nfs_mount(nfs_, server.c_str(), export_path.c_str()) == 0;
  }
  ~Client() { nfs_destroy_context(nfs_); }
  bool mounted() const { return mounted_; }
  std::string error() { return nfs_get_error(nfs_); }
  nfs_context* get() { return nfs_; }
  Result<nfs_stat_64> Stat(const std::string& path) {
    nfs_stat_64 st{};
    if (nfs_stat64(nfs_, path.c_str(), &st) != 0) return NotFoundError(error());
    return st;
  }
  Result<std::string> ReadAll(const std::string& path) {
    nfsfh* fh = nullptr;
    if (nfs_open(nfs_, path.c_str(), O_RDONLY, &fh) != 0) return NotFoundError(error());
    std::string out;
    std::vector<char> buf(1 << 20);
    int n;
    while ((n = nfs_read(nfs_, fh, buf.size(), buf.data())) > 0) out.append(buf.data(), n);
    nfs_close(nfs_, fh);
    if (n < 0) return InternalError(error());
    return out;
  }

 private:
  nfs_context* nfs_;
  bool mounted_ = false;
};

class NfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    for (const char* name : {"ingest", "archive", "open"}) {
      auto share = store_->CreateShare(name, store::ShareKind::kLocal);
      ASSERT_TRUE(share.ok());
      ids_[name] = share->id;
    }
    mnt_ = dir_.path() + "/mnt";
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
    auto fs = fuse::FuseFs::Mount(*store_, {.mountpoint = mnt_, .threads = 4});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
    auto nfs = NfsServer::Start({.state_dir = dir_.path() + "/nfs", .port = 0}, Exports());
    ASSERT_TRUE(nfs.ok()) << nfs.status().ToString();
    nfs_ = std::move(*nfs);
  }
  void TearDown() override {
    nfs_.reset();
    fs_.reset();
    store_.reset();
  }

  // ingest: read-write for 127.0.0.1 only; archive: read-only; open: no squashing, any client.
  std::vector<NfsExport> Exports() {
    return {{.id = ids_["ingest"],
             .name = "ingest",
             .path = mnt_ + "/ingest",
             .clients = {"127.0.0.1"}},
            {.id = ids_["archive"],
             .name = "archive",
             .path = mnt_ + "/archive",
             .clients = {"127.0.0.0/8"},
             .read_only = true},
            {.id = ids_["open"],
             .name = "open",
             .path = mnt_ + "/open",
             .clients = {"*"},
             .squash = "none"}};
  }

  static std::string Url(const std::string& path, const std::string& host = "127.0.0.1") {
    return "nfs://" + host + "/" + path;
  }
  std::string Local(const std::string& name, const std::string& data) {
    std::string p = dir_.path() + "/" + name;
    EXPECT_TRUE(platform::WriteFileAtomic(p, data).ok());
    return p;
  }
  std::string StoreBytes(const std::string& share, const std::string& path) {
    auto a = store_->Resolve(share, path);
    if (!a.ok()) return "<" + a.status().ToString() + ">";
    auto h = store_->OpenFile(a->id, false);
    std::vector<uint8_t> got(a->size);
    EXPECT_EQ(*(*h)->Read(0, got), a->size);
    return std::string(got.begin(), got.end());
  }

  testing::TempDir dir_;
  std::map<std::string, uint32_t> ids_;
  std::string mnt_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<fuse::FuseFs> fs_;
  std::unique_ptr<NfsServer> nfs_;
};

TEST_F(NfsTest, CpLsCatAndTheApiReachTheStore) {
  std::string data = Pattern(5 * 1024 * 1024 + 333, 1);
  auto r = Shell("nfs-cp " + Local("big.bin", data) + " " + Url("ingest/big.bin"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(StoreBytes("ingest", "big.bin"), data);  // committed at close, byte for byte

  Client c("127.0.0.1", "/ingest");
  ASSERT_TRUE(c.mounted()) << c.error();
  ASSERT_EQ(nfs_mkdir(c.get(), "/survey"), 0) << c.error();
  ASSERT_EQ(nfs_rename(c.get(), "/big.bin", "/survey/moved.bin"), 0) << c.error();
  EXPECT_EQ(StoreBytes("ingest", "survey/moved.bin"), data);
  r = Shell("nfs-ls " + Url("ingest/survey"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("moved.bin"), std::string::npos) << r.out;
  r = Shell("nfs-cat " + Url("ingest/survey/moved.bin") + " | cmp - " + dir_.path() + "/big.bin");
  EXPECT_EQ(r.rc, 0) << r.out;
  // NFSv4 (libnfs 4.0 reads over v4; its v4 writes do not work, see the issue).
  r = Shell("nfs-cat '" + Url("ingest/survey/moved.bin") + "?version=4&nfsport=" +
            std::to_string(nfs_->port()) + "' | cmp - " + dir_.path() + "/big.bin");
  EXPECT_EQ(r.rc, 0) << r.out;
  ASSERT_EQ(nfs_unlink(c.get(), "/survey/moved.bin"), 0) << c.error();
  EXPECT_EQ(store_->Resolve("ingest", "survey/moved.bin").status().code(), StatusCode::kNotFound);
  // A file the Store got another way is there at once (ganesha caches no attributes).
  ASSERT_TRUE(platform::WriteFileAtomic(mnt_ + "/ingest/survey/late.txt", "late", 0644).ok());
  EXPECT_EQ(*c.ReadAll("/survey/late.txt"), "late");
}

TEST_F(NfsTest, ClientsOffTheAllowListAreRefused) {
  auto r = Shell("nfs-ls " + Url("ingest", std::string(fieldstack::testing::kOtherClientAddress)));
  EXPECT_NE(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("MNT3ERR_ACCES"), std::string::npos) << r.out;
  Client refused(std::string(fieldstack::testing::kOtherClientAddress), "/ingest");
  EXPECT_FALSE(refused.mounted());
  r = Shell("nfs-ls " + Url("ingest"));
  EXPECT_EQ(r.rc, 0) << r.out;
  r = Shell("nfs-ls " + Url("open", std::string(fieldstack::testing::kOtherClientAddress)));  // "*"
  EXPECT_EQ(r.rc, 0) << r.out;
}

TEST_F(NfsTest, AReadOnlyExportRefusesWritesAndKeepsItsFiles) {
  ASSERT_TRUE(platform::WriteFileAtomic(mnt_ + "/archive/kept.txt", "kept", 0644).ok());
  auto r = Shell("nfs-cp " + Local("x.txt", "x") + " " + Url("archive/new.txt"));
  EXPECT_NE(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("ROFS"), std::string::npos) << r.out;
  Client c("127.0.0.1", "/archive");
  ASSERT_TRUE(c.mounted()) << c.error();
  EXPECT_NE(nfs_unlink(c.get(), "/kept.txt"), 0);
  EXPECT_EQ(*c.ReadAll("/kept.txt"), "kept");
  EXPECT_EQ(store_->Resolve("archive", "new.txt").status().code(), StatusCode::kNotFound);
}

TEST_F(NfsTest, RootIsSquashedUnlessTheExportSaysNone) {
  std::string local = Local("r.txt", "root");
  ASSERT_EQ(Shell("nfs-cp " + local + " " + Url("ingest/squashed.txt")).rc, 0);
  ASSERT_EQ(Shell("nfs-cp " + local + " " + Url("open/asroot.txt")).rc, 0);
  EXPECT_EQ(store_->Resolve("ingest", "squashed.txt")->uid, 65534u);
  EXPECT_EQ(store_->Resolve("open", "asroot.txt")->uid, 0u);
}

TEST_F(NfsTest, GaneshaIsRestartedWhenItDiesAndReloadsNewExports) {
  ASSERT_EQ(::kill(nfs_->pid(), SIGKILL), 0);
  ShellRun r{1, ""};
  for (int i = 0; i < 50 && r.rc != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    r = Shell("nfs-ls " + Url("ingest"));
  }
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_GE(nfs_->restarts(), 1);

  auto share = store_->CreateShare("later", store::ShareKind::kLocal);
  ASSERT_TRUE(share.ok());
  std::vector<NfsExport> more = Exports();
  more.push_back({.id = share->id, .name = "later", .path = mnt_ + "/later", .clients = {"*"}});
  std::vector<NfsExport> bad = more;
  bad.back().clients = {"not-an-address"};
  EXPECT_EQ(nfs_->Reload(bad).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(nfs_->Reload(more).ok());
  r = {1, ""};
  for (int i = 0; i < 50 && r.rc != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    r = Shell("nfs-cp " + Local("l.txt", "later") + " " + Url("later/l.txt"));
  }
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(StoreBytes("later", "l.txt"), "later");
}

// ganesha keeps NFS handles, not open files: once the kernel forgets the inode, the FUSE mount
// must find the node again from its id (lookup of "." and "..").
TEST_F(NfsTest, HandlesOutliveTheKernelInodeCache) {
  Client c("127.0.0.1", "/ingest");
  ASSERT_TRUE(c.mounted()) << c.error();
  ASSERT_EQ(nfs_mkdir(c.get(), "/d"), 0) << c.error();
  ASSERT_TRUE(platform::WriteFileAtomic(mnt_ + "/ingest/d/f.txt", "data", 0644).ok());
  nfsfh* fh = nullptr;
  ASSERT_EQ(nfs_open(c.get(), "/d/f.txt", O_RDONLY, &fh), 0) << c.error();
  for (int i = 0; i < 3; ++i) {
    ::sync();
    ASSERT_TRUE(platform::WriteFileAtomic("/proc/sys/vm/drop_caches", "2").ok() ||
                Shell("echo 2 > /proc/sys/vm/drop_caches").rc == 0);
    char buf[16] = {};
    ASSERT_EQ(nfs_pread(c.get(), fh, 0, sizeof buf, buf), 4) << c.error();
    EXPECT_EQ(std::string(buf, 4), "data");
    auto st = c.Stat("/d/f.txt");
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_EQ(nfs_mkdir(c.get(), ("/d/sub" + std::to_string(i)).c_str()), 0) << c.error();
  }
  nfs_close(c.get(), fh);
}

// SMB, NFS and the Store agree on a file's bytes and modification time.
TEST_F(NfsTest, AFileWrittenOverSmbIsTheSameOverNfsAndInTheStore) {
  smb::SmbShare share{"ingest", mnt_ + "/ingest", {"fsnfs-rw"}, {}, "desired"};
  auto smb = smb::SmbServer::Start({.state_dir = dir_.path() + "/smb", .port = 0}, {share},
                                   {{"fsnfs-rw", "secret"}});
  ASSERT_TRUE(smb.ok()) << smb.status().ToString();
  std::string data = Pattern(2 * 1024 * 1024 + 5, 9);
  auto r = Shell("smbclient //127.0.0.1/ingest -p " + std::to_string((*smb)->port()) +
                 " -m SMB3 -U fsnfs-rw%secret -c 'put " + Local("s.bin", data) + " fromsmb.bin'");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto a = store_->Resolve("ingest", "fromsmb.bin");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(StoreBytes("ingest", "fromsmb.bin"), data);
  Client c("127.0.0.1", "/ingest");
  ASSERT_TRUE(c.mounted()) << c.error();
  EXPECT_EQ(*c.ReadAll("/fromsmb.bin"), data);
  auto st = c.Stat("/fromsmb.bin");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->nfs_size, data.size());
  EXPECT_EQ(int64_t(st->nfs_mtime) * 1'000'000'000 + int64_t(st->nfs_mtime_nsec), a->mtime_ns);
  smb->reset();
  EXPECT_TRUE(smb::SmbServer::RemoveSystemUsers({"fsnfs-rw"}).ok());
}

// The audit log names the front end of each change, and the user and client where known.
TEST_F(NfsTest, TheAuditLogNamesFrontEndUserAndClient) {
  smb::SmbShare share{"ingest", mnt_ + "/ingest", {"fsaudit"}, {}, "desired"};
  auto smb = smb::SmbServer::Start({.state_dir = dir_.path() + "/smb", .port = 0}, {share},
                                   {{"fsaudit", "secret"}});
  ASSERT_TRUE(smb.ok()) << smb.status().ToString();
  std::string local = Local("a.txt", "audited");
  auto r = Shell("smbclient //127.0.0.1/ingest -p " + std::to_string((*smb)->port()) +
                 " -m SMB3 -U fsaudit%secret -c 'put " + local + " viasmb.txt'");
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_EQ(Shell("nfs-cp " + local + " " + Url("ingest/vianfs.txt")).rc, 0);
  ASSERT_EQ(Shell("cp " + local + " " + mnt_ + "/ingest/local.txt").rc, 0);
  std::string path = dir_.path() + "/audit.log";
  sync::AuditLog log(*store_, {.path = path, .smb_sessions = (*smb)->sessions_path()},
                     RealClock::Get());
  ASSERT_TRUE(log.RunOnce().ok());
  auto text = platform::ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  std::map<std::string, nlohmann::json> created;  // path -> its create line
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["op"] == "create") created[j["path"]] = j;
  }
  ASSERT_EQ(created.size(), 3u) << *text;
  EXPECT_EQ(created["viasmb.txt"]["via"], "smb") << *text;
  EXPECT_EQ(created["viasmb.txt"]["user"], "fsaudit");
  EXPECT_EQ(created["viasmb.txt"]["client"], "127.0.0.1");
  EXPECT_EQ(created["vianfs.txt"]["via"], "nfs");
  EXPECT_EQ(created["vianfs.txt"]["uid"], 65534);  // root squashed
  EXPECT_EQ(created["local.txt"]["via"], "local");
  EXPECT_EQ(created["local.txt"]["process"], "cp");
  EXPECT_EQ(created["local.txt"]["user"], "root");
  smb->reset();
  EXPECT_TRUE(smb::SmbServer::RemoveSystemUsers({"fsaudit"}).ok());
}

TEST(NfsConfigTest, BadSettingsAreRefusedWithTheirName) {
  NfsOptions o{.state_dir = "/tmp/x"};
  NfsExport good{.id = 1, .name = "s", .path = "/m/s", .clients = {"10.0.0.0/8", "::1", "*"}};
  ASSERT_TRUE(NfsServer::RenderConfig(o, 2049, {good}).ok());
  auto bad = [&](auto change) {
    NfsExport e = good;
    change(e);
    return NfsServer::RenderConfig(o, 2049, {e}).status();
  };
  EXPECT_EQ(bad([](NfsExport& e) { e.clients = {}; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](NfsExport& e) { e.clients = {"10.0.0.0/33"}; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](NfsExport& e) { e.clients = {"host.example"}; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_NE(bad([](NfsExport& e) { e.clients = {"10.0.0.0/"}; }).message().find("10.0.0.0/"),
            std::string::npos);
  EXPECT_EQ(bad([](NfsExport& e) { e.squash = "some"; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](NfsExport& e) { e.name = "a b"; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](NfsExport& e) { e.path = "/a\"b"; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](NfsExport& e) { e.id = 70000; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NfsServer::RenderConfig(o, 2049, {good, good}).status().code(),
            StatusCode::kInvalidArgument);
  o.address = "nowhere";
  EXPECT_EQ(NfsServer::RenderConfig(o, 2049, {good}).status().code(), StatusCode::kInvalidArgument);
  auto c = NfsServer::RenderConfig(
      {.state_dir = "/tmp/x"}, 2049,
      {{.id = 7, .name = "ro", .path = "/m/ro", .clients = {"192.168.1.0/24"}, .read_only = true}});
  ASSERT_TRUE(c.ok());
  for (const char* want :
       {"Export_Id = 7;", "Pseudo = \"/ro\";", "Squash = root_squash;", "Clients = 192.168.1.0/24;",
        "Access_Type = RO;", "Graceless = true;", "Access_Type = None;", "NFS_Port = 2049;"}) {
    EXPECT_NE(c->find(want), std::string::npos) << want;
  }
}

}  // namespace
}  // namespace fieldstack::frontends::nfs

int main(int argc, char** argv) {
  fieldstack::testing::EnterPrivateNetwork();  // before any thread
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
