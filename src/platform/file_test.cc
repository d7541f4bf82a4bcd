#include "platform/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test/support/temp_dir.h"

namespace fieldstack::platform {
namespace {

TEST(FileTest, PositionalIoIsFullLengthAndShortOnlyAtEnd) {
  testing::TempDir dir;
  auto f = File::Open(dir / "f", O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> data(10000, 7);
  ASSERT_TRUE(f->PWrite(100, data).ok());
  ASSERT_TRUE(f->DataSync().ok());
  EXPECT_EQ(*f->Size(), 10100u);
  std::vector<uint8_t> out(500);
  EXPECT_EQ(*f->PRead(9900, out), 200u);
  EXPECT_EQ(*f->PRead(0, out), 500u);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[100], 7);
  ASSERT_TRUE(f->Truncate(50).ok());
  EXPECT_EQ(*f->Size(), 50u);
}

TEST(FileTest, ErrorsNameThePathAndMapErrno) {
  auto missing = File::Open("/nonexistent/dir/file", O_RDONLY);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/file"), std::string::npos);
  EXPECT_EQ(MakeDirs("/proc/fieldstack-test").code(), StatusCode::kNotFound);
}

TEST(FileTest, AtomicWriteReplacesWholeFileWithMode) {
  testing::TempDir dir;
  std::string path = dir / "cfg";
  ASSERT_TRUE(WriteFileAtomic(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two!", 0600).ok());
  EXPECT_EQ(*ReadFileToString(path), "two!");
  EXPECT_FALSE(PathExists(path + ".tmp"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FileTest, LockFileIsExclusiveAndNamesTheHolder) {
  testing::TempDir dir;
  auto first = LockFile::Acquire(dir / "LOCK");
  ASSERT_TRUE(first.ok());
  auto second = LockFile::Acquire(dir / "LOCK");
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())), std::string::npos);
}

TEST(FileTest, DirectoryHelpers) {
  testing::TempDir dir;
  ASSERT_TRUE(MakeDirs(dir / "a/b/c").ok());
  ASSERT_TRUE(MakeDirs(dir / "a/b/c").ok());  // idempotent
  ASSERT_TRUE(WriteFileAtomic(dir / "a/x", "x").ok());
  auto names = ListDir(dir / "a");
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"b", "x"}));
  EXPECT_EQ(MakeDirs(dir / "a/x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DirName("/a/b"), "/a");
  EXPECT_EQ(DirName("b"), ".");
  auto space = FileSystemSpace(dir.path());
  ASSERT_TRUE(space.ok());
  EXPECT_GT(space->total_bytes, 0u);
  ASSERT_TRUE(RemoveFile(dir / "a/x").ok());
  ASSERT_TRUE(RemoveFile(dir / "a/x").ok());  // missing is OK
}

}  // namespace
}  // namespace fieldstack::platform
