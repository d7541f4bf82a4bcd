// POSIX behaviour of the FUSE mount, through plain system calls on a real mount (root and
// /dev/fuse, as CI has): create, write, truncate, rename (over a file, across shares), unlink
// while open, chmod/chown, utimens, symlinks, xattrs, readdir of a large directory, errors, and
// changes made underneath through the Store.

#include "frontends/fuse/fuse_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test/support/temp_dir.h"

namespace fieldstack::frontends::fuse {
namespace {

class FuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->CreateShare("ingest", store::ShareKind::kCloud).ok());
    ASSERT_TRUE(store_->CreateShare("scratch", store::ShareKind::kLocal).ok());
    mnt_ = dir_.path() + "/mnt";
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
    auto fs = FuseFs::Mount(*store_, {.mountpoint = mnt_, .threads = 4, .allow_other = false});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
  }
  void TearDown() override {
    fs_.reset();
    store_.reset();
  }

  std::string P(const std::string& rel) { return mnt_ + "/" + rel; }

  static bool WriteFile(const std::string& path, const std::string& data) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return false;
    bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    return ::close(fd) == 0 && ok;
  }
  static std::string ReadFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return "<errno " + std::to_string(errno) + ">";
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
  }
  std::set<std::string> List(const std::string& path) {
    std::set<std::string> names;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return names;
    while (dirent* e = ::readdir(d)) names.insert(e->d_name);
    ::closedir(d);
    return names;
  }

  testing::TempDir dir_;
  std::string mnt_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FuseFs> fs_;
};

TEST_F(FuseTest, SharesAreTopLevelDirectoriesAndTheRootIsFixed) {
  EXPECT_EQ(List(mnt_), (std::set<std::string>{".", "..", "ingest", "scratch"}));
  struct stat st;
  ASSERT_EQ(::stat(P("ingest").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(::mkdir(P("newshare").c_str(), 0755), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_FALSE(WriteFile(P("file-at-root"), "x"));
  EXPECT_EQ(::stat(P("nope").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
}

// Sequential reads arrive as whole 1 MiB requests: the mount's readahead is raised from the
// kernel's 128 KiB default.
TEST_F(FuseTest, TheMountReadsAheadAMebibyte) {
  struct stat st;
  ASSERT_EQ(::stat(mnt_.c_str(), &st), 0);
  std::ifstream ra("/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                   std::to_string(minor(st.st_dev)) + "/read_ahead_kb");
  int kb = 0;
  ra >> kb;
  EXPECT_EQ(kb, 1024);
}

TEST_F(FuseTest, WrittenBytesAreReadBackAndDurableInTheStoreOnClose) {
  std::string big(3 * (1 << 20) + 12345, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  ASSERT_TRUE(WriteFile(P("ingest/big.bin"), big));
  EXPECT_TRUE(ReadFile(P("ingest/big.bin")) == big);
  // close returned: the Store has it committed.
  auto a = store_->Resolve("ingest", "big.bin");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size, big.size());
  EXPECT_NE(a->state, store::FileState::kWriting);
  // Truncate down and up.
  ASSERT_EQ(::truncate(P("ingest/big.bin").c_str(), 1000), 0);
  EXPECT_EQ(ReadFile(P("ingest/big.bin")), big.substr(0, 1000));
  int fd = ::open(P("ingest/big.bin").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 2000), 0);
  ASSERT_EQ(::pwrite(fd, "tail", 4, 1996), 4);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(P("ingest/big.bin")), big.substr(0, 1000) + std::string(996, '\0') + "tail");
}

TEST_F(FuseTest, RenameWithinAShareReplacesAndAcrossSharesIsExdev) {
  ASSERT_TRUE(WriteFile(P("ingest/a"), "AAA"));
  ASSERT_TRUE(WriteFile(P("ingest/b"), "BBB"));
  ASSERT_EQ(::rename(P("ingest/a").c_str(), P("ingest/b").c_str()), 0);
  EXPECT_EQ(ReadFile(P("ingest/b")), "AAA");
  EXPECT_EQ(List(P("ingest")), (std::set<std::string>{".", "..", "b"}));
  ASSERT_EQ(::mkdir(P("ingest/d").c_str(), 0755), 0);
  ASSERT_EQ(::rename(P("ingest/b").c_str(), P("ingest/d/c").c_str()), 0);
  EXPECT_EQ(ReadFile(P("ingest/d/c")), "AAA");
  EXPECT_EQ(::rename(P("ingest/d/c").c_str(), P("scratch/c").c_str()), -1);
  EXPECT_EQ(errno, EXDEV);
  EXPECT_EQ(::rmdir(P("ingest/d").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  EXPECT_EQ(::link(P("ingest/d/c").c_str(), P("ingest/hard").c_str()), -1);
  EXPECT_EQ(errno, EPERM);
}

TEST_F(FuseTest, AnUnlinkedFileStaysReadableWhileOpenAndOpenFilesAreTracked) {
  ASSERT_TRUE(WriteFile(P("scratch/tmp"), "still here"));
  auto node = store_->Resolve("scratch", "tmp")->id;
  int fd = ::open(P("scratch/tmp").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(fs_->IsOpen(node));
  ASSERT_EQ(::unlink(P("scratch/tmp").c_str()), 0);
  struct stat st;
  EXPECT_EQ(::stat(P("scratch/tmp").c_str(), &st), -1);
  char buf[32] = {};
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), 10) << strerror(errno);
  EXPECT_STREQ(buf, "still here");
  ASSERT_EQ(::close(fd), 0);
  for (int i = 0; i < 100 && fs_->IsOpen(node); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // release is asynchronous
  }
  EXPECT_FALSE(fs_->IsOpen(node));
}

TEST_F(FuseTest, ModeOwnerTimesSymlinksAndXattrs) {
  ASSERT_TRUE(WriteFile(P("ingest/f"), "x"));
  ASSERT_EQ(::chmod(P("ingest/f").c_str(), 0600), 0);
  ASSERT_EQ(::chown(P("ingest/f").c_str(), 1234, 5678), 0);
  timespec times[2] = {{1700000000, 111}, {1600000000, 222}};
  ASSERT_EQ(::utimensat(AT_FDCWD, P("ingest/f").c_str(), times, 0), 0);
  struct stat st;
  ASSERT_EQ(::stat(P("ingest/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 222);
  auto a = store_->Resolve("ingest", "f");
  EXPECT_EQ(a->mtime_ns, int64_t{1600000000} * 1'000'000'000 + 222);
  // Beyond what 64-bit nanoseconds hold (year 2286): clamped to 2262, never wrapped around.
  timespec far[2] = {{10000000000, 0}, {10000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, P("ingest/f").c_str(), far, 0), 0);
  ASSERT_EQ(::stat(P("ingest/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 9223372035);  // 2262-04-11
  ASSERT_EQ(::symlink("some/target", P("ingest/link").c_str()), 0);
  char target[64] = {};
  EXPECT_EQ(::readlink(P("ingest/link").c_str(), target, sizeof target), 11);
  EXPECT_STREQ(target, "some/target");
  ASSERT_EQ(::setxattr(P("ingest/f").c_str(), "user.site", "alpha", 5, 0), 0);
  EXPECT_EQ(::setxattr(P("ingest/f").c_str(), "user.site", "beta", 4, XATTR_CREATE), -1);
  EXPECT_EQ(errno, EEXIST);
  char v[16] = {};
  EXPECT_EQ(::getxattr(P("ingest/f").c_str(), "user.site", v, sizeof v), 5);
  EXPECT_STREQ(v, "alpha");
  EXPECT_EQ(::getxattr(P("ingest/f").c_str(), "user.none", v, sizeof v), -1);
  EXPECT_EQ(errno, ENODATA);
  char names[64] = {};
  EXPECT_EQ(::listxattr(P("ingest/f").c_str(), names, sizeof names), 10);
  EXPECT_STREQ(names, "user.site");
  ASSERT_EQ(::removexattr(P("ingest/f").c_str(), "user.site"), 0);
  EXPECT_EQ(::getxattr(P("ingest/f").c_str(), "user.site", v, sizeof v), -1);
}

TEST_F(FuseTest, ALargeDirectoryListsEveryNameOnce) {
  auto root = store_->GetShare("scratch")->root;
  auto dir = store_->Mkdir(root, "many", {});
  ASSERT_TRUE(dir.ok());
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < 3000; ++i) {
    std::string name = "file-" + std::to_string(i) + "-with-a-longer-name";
    auto h = store_->Create(dir->id, name, {});
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE((*h)->Close().ok());
    want.insert(name);
  }
  std::vector<std::string> seen;
  DIR* d = ::opendir(P("scratch/many").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = ::readdir(d)) seen.push_back(e->d_name);
  ::closedir(d);
  EXPECT_EQ(seen.size(), want.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want);
}

TEST_F(FuseTest, AChangeMadeThroughTheStoreReachesTheMount) {
  ASSERT_TRUE(WriteFile(P("ingest/shared.txt"), "version one"));
  EXPECT_EQ(ReadFile(P("ingest/shared.txt")), "version one");
  // Another front end (REST, a recall) rewrites it.
  auto node = store_->Resolve("ingest", "shared.txt")->id;
  auto h = store_->OpenFile(node, true);
  ASSERT_TRUE(h.ok());
  std::string v2 = "version two, longer";
  ASSERT_TRUE((*h)->Write(0, {reinterpret_cast<const uint8_t*>(v2.data()), v2.size()}).ok());
  ASSERT_TRUE((*h)->Close().ok());
  std::string got;
  for (int i = 0; i < 50 && got != v2; ++i) {
    got = ReadFile(P("ingest/shared.txt"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(got, v2);
  // And a delete underneath.
  ASSERT_TRUE(store_->Unlink(store_->GetShare("ingest")->root, "shared.txt").ok());
  struct stat st;
  int rc = 0;
  for (int i = 0; i < 50 && rc == 0; ++i) {
    rc = ::stat(P("ingest/shared.txt").c_str(), &st);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(rc, -1);
}

// fio (Debian) writes 32 MiB in random 4 KiB-64 KiB blocks with a checksum in each, then reads
// them all back and verifies them.
TEST_F(FuseTest, FioRandomWritesVerify) {
  std::string cmd = "fio --name=verify --filename=" + P("scratch/fio.dat") +
                    " --size=32M --rw=randwrite --bsrange=4k-64k --ioengine=psync "
                    "--verify=crc32c --do_verify=1 --verify_fatal=1 --randseed=7 "
                    "--output-format=terse 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("verify:"), std::string::npos) << out;
  struct stat st;
  ASSERT_EQ(::stat(P("scratch/fio.dat").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 32 << 20);
}

TEST_F(FuseTest, BadNamesAreRefusedClearly) {
  std::string long_name(256, 'n');
  EXPECT_FALSE(WriteFile(P("ingest/" + long_name), "x"));
  EXPECT_EQ(errno, ENAMETOOLONG);
  EXPECT_EQ(::unlink(P("ingest/missing").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(::mkdir(P("ingest/dir").c_str(), 0755), 0);
  EXPECT_EQ(::unlink(P("ingest/dir").c_str()), -1);
  EXPECT_EQ(errno, EISDIR);
}

}  // namespace
}  // namespace fieldstack::frontends::fuse
