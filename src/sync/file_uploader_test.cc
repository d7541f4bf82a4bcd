#include "sync/file_uploader.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "cloud/memory/memory_store.h"
#include "crypto/hash.h"
#include "platform/file.h"
#include "sync/recall.h"
#include "test/support/fault_object_store.h"
#include "test/support/pattern.h"
#include "test/support/temp_dir.h"

namespace fieldstack::sync {
namespace {

using testing::Pattern;

class FileUploaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.chunk_size_bytes = 4096;
    auto s = store::Store::Open(o);
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    root_ = store_->CreateShare("c", store::ShareKind::kCloud)->root;
    uploader_ = std::make_unique<FileUploader>(*store_, faulty_,
                                               FileUploader::Options{.part_size_bytes = 64 * 1024});
  }

  UploadJob Write(const std::string& name, const std::vector<uint8_t>& data) {
    auto h = store_->Create(root_, name, {});
    EXPECT_TRUE(h.ok());
    EXPECT_TRUE((*h)->Write(0, data).ok());
    EXPECT_TRUE((*h)->Close().ok());
    auto a = store_->GetAttr((*h)->node());
    UploadJob job;
    job.node = a->id;
    job.data_gen = a->data_gen;
    job.key = "share/" + name;
    job.meta = {{"mode", "0644"}};
    return job;
  }

  std::string Cloud(const std::string& key) {
    auto got = mem_.Get(key, 0, 1 << 30);
    return got.ok() ? *got : "<" + got.status().ToString() + ">";
  }

  static std::string Str(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

  FakeClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  store::NodeId root_ = 0;
  cloud::memory::MemoryStore mem_{clock_};
  testing::FaultObjectStore faulty_{mem_};
  std::unique_ptr<FileUploader> uploader_;
};

TEST_F(FileUploaderTest, SmallAndEmptyFilesGoUpInOnePut) {
  auto data = Pattern(1000, 1);
  UploadJob job = Write("small", data);
  auto r = uploader_->Upload(job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, UploadOutcome::kUploaded);
  EXPECT_EQ(r->parts_sent, 1u);
  EXPECT_EQ(r->md5, crypto::Digest::Md5(Str(data)));
  EXPECT_EQ(Cloud("share/small"), Str(data));
  EXPECT_EQ(mem_.Head("share/small")->meta.at("mode"), "0644");
  UploadJob empty = Write("empty", {});
  ASSERT_TRUE(uploader_->Upload(empty).ok());
  EXPECT_EQ(Cloud("share/empty"), "");
}

TEST_F(FileUploaderTest, LargeFileGoesUpInPartsAndMatchesByteForByte) {
  auto data = Pattern(64 * 1024 * 3 + 12345, 2);
  UploadJob job = Write("large", data);
  auto r = uploader_->Upload(job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->parts_sent, 4u);
  EXPECT_EQ(r->bytes, data.size());
  EXPECT_EQ(Cloud("share/large"), Str(data));
  EXPECT_FALSE(job.upload.has_value());
}

TEST_F(FileUploaderTest, InterruptedUploadResumesWithoutResendingStoredParts) {
  auto data = Pattern(64 * 1024 * 5, 3);
  UploadJob job = Write("resume", data);
  faulty_.fail_parts_after = 2;
  auto first = uploader_->Upload(job);
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(job.upload.has_value()) << "progress must survive for the next attempt";
  EXPECT_EQ(mem_.Head("share/resume").status().code(), StatusCode::kNotFound)
      << "nothing partial is visible";
  faulty_.fail_parts_after = -1;
  auto second = uploader_->Upload(job);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->parts_reused, 2u);
  EXPECT_EQ(second->parts_sent, 3u);
  EXPECT_EQ(faulty_.parts, 5) << "no part was sent twice";
  EXPECT_EQ(Cloud("share/resume"), Str(data));
}

TEST_F(FileUploaderTest, ReportsPartMd5sThatARecallChecksAgainst) {
  const uint64_t ps = 64 * 1024;
  auto data = Pattern(ps * 4 + 777, 11);
  std::string_view all(reinterpret_cast<const char*>(data.data()), data.size());
  std::string expected;
  for (uint64_t off = 0; off < data.size(); off += ps) {
    expected += crypto::Digest::Md5(all.substr(off, ps));
  }
  UploadJob job = Write("parts", data);
  // Interrupted, then resumed: the reused parts are hashed from the bytes we hold too.
  faulty_.fail_parts_after = 2;
  ASSERT_FALSE(uploader_->Upload(job).ok());
  faulty_.fail_parts_after = -1;
  auto r = uploader_->Upload(job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->parts_reused, 2u);
  EXPECT_EQ(r->part_size, ps);
  EXPECT_EQ(r->part_md5s, expected);

  Recaller recaller([this](uint32_t) -> cloud::ObjectStore* { return &mem_; }, clock_, {});
  store::CloudCopy copy = r->CloudCopyOf(job.key);
  for (uint64_t off = 0; off < data.size(); off += ps) {
    std::vector<uint8_t> out(std::min<uint64_t>(ps, data.size() - off));
    ASSERT_TRUE(recaller.Fetch(1, copy, off, out).ok());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + off));
  }

  // A single Put is one part: the object's MD5.
  UploadJob small = Write("one", Pattern(1000, 12));
  auto one = uploader_->Upload(small);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->part_size, 0u);
  EXPECT_EQ(one->part_md5s, one->md5);
}

TEST_F(FileUploaderTest, FileCommittedAgainMidUploadIsAbandonedNotTorn) {
  auto data = Pattern(64 * 1024 * 3, 4);
  UploadJob job = Write("moving", data);
  bool changed = false;
  faulty_.on_part = [&] {
    if (changed) return;
    changed = true;
    auto h = store_->OpenFile(job.node, true);
    ASSERT_TRUE((*h)->Write(70000, Pattern(10, 9)).ok());
    ASSERT_TRUE((*h)->Close().ok());
  };
  auto r = uploader_->Upload(job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, UploadOutcome::kFileChanged);
  EXPECT_FALSE(job.upload.has_value());
  EXPECT_EQ(mem_.Head("share/moving").status().code(), StatusCode::kNotFound);
}

TEST_F(FileUploaderTest, WritesInFlightAreNeverSent) {
  auto data = Pattern(5000, 5);
  UploadJob job = Write("inflight", data);
  auto h = store_->OpenFile(job.node, true);
  ASSERT_TRUE((*h)->Write(0, Pattern(9000, 6)).ok());  // not committed
  auto r = uploader_->Upload(job);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, UploadOutcome::kUploaded);
  EXPECT_EQ(Cloud("share/inflight"), Str(data));
  ASSERT_TRUE((*h)->Close().ok());
}

TEST_F(FileUploaderTest, ObjectChangedInTheCloudIsAConflictNotAnOverwrite) {
  auto data = Pattern(100, 7);
  UploadJob job = Write("conflict", data);
  ASSERT_TRUE(mem_.Put("share/conflict", std::span<const uint8_t>(), {}).ok());
  job.precondition.if_none_match_any = true;
  auto r = uploader_->Upload(job);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, UploadOutcome::kConflict);
  EXPECT_EQ(Cloud("share/conflict"), "");
  // The same for a multi-part upload with a stale etag.
  UploadJob big = Write("conflict2", Pattern(200000, 8));
  ASSERT_TRUE(mem_.Put("share/conflict2", std::span<const uint8_t>(), {}).ok());
  big.precondition.if_match = "stale-etag";
  auto r2 = uploader_->Upload(big);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->outcome, UploadOutcome::kConflict);
  EXPECT_EQ(Cloud("share/conflict2"), "");
}

// A refused write is a conflict only when a look at the object says so: when that look fails
// (the link dropped), the upload is retried later, never given up as a conflict.
TEST_F(FileUploaderTest, RefusedWriteWhoseCheckFailsIsRetriedNotAConflict) {
  UploadJob job = Write("ambiguous", Pattern(100, 9));
  ASSERT_TRUE(mem_.Put("share/ambiguous", std::span<const uint8_t>(), {}).ok());
  job.precondition.if_none_match_any = true;
  faulty_.fail_heads = 1;
  auto r = uploader_->Upload(job);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  // With the link back, the same refusal is the conflict it is.
  auto again = uploader_->Upload(job);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, UploadOutcome::kConflict);
  EXPECT_EQ(Cloud("share/ambiguous"), "");
}

TEST_F(FileUploaderTest, CorruptLocalChunkFailsTheUploadAndSendsNothing) {
  auto data = Pattern(20000, 9);
  UploadJob job = Write("rot", data);
  uploader_.reset();
  store_.reset();
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/data/objects")) {
    if (!e.is_regular_file()) continue;
    auto f = platform::File::Open(e.path(), O_RDWR);
    uint8_t b = 0;
    ASSERT_TRUE(f->PRead(4096 + 7, {&b, 1}).ok());
    b ^= 0x40;
    ASSERT_TRUE(f->PWrite(4096 + 7, {&b, 1}).ok());
  }
  store::StoreOptions o;
  o.data_dir = dir_.path() + "/data";
  auto s = store::Store::Open(o);
  ASSERT_TRUE(s.ok());
  FileUploader uploader(**s, faulty_, {.part_size_bytes = 64 * 1024});
  auto r = uploader.Upload(job);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(mem_.Head("share/rot").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fieldstack::sync
