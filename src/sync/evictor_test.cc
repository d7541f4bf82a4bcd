#include "sync/evictor.h"

#include <gtest/gtest.h>

#include <thread>

#include "test/support/temp_dir.h"

namespace fieldstack::sync {
namespace {

TEST(CacheSizeTest, ParsesBytesUnitsAndPercentAndRefusesTheRest) {
  EXPECT_EQ(*CacheSize::Parse("1048576")->bytes, 1048576u);
  EXPECT_EQ(*CacheSize::Parse("500GiB")->bytes, 500ull << 30);
  EXPECT_EQ(*CacheSize::Parse("2 TB")->bytes, 2'000'000'000'000ull);
  EXPECT_EQ(*CacheSize::Parse("1.5k")->bytes, 1500u);
  EXPECT_DOUBLE_EQ(*CacheSize::Parse("20%")->percent, 20.0);
  EXPECT_EQ(*CacheSize::Parse("20%")->Resolve(1000), 200u);
  for (const char* bad : {"", "abc", "-5", "10 furlongs", "150%", "1e30"}) {
    EXPECT_EQ(CacheSize::Parse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(GlobMatchTest, StarsStayInAFolderAndDoubleStarsCrossThem) {
  EXPECT_TRUE(GlobMatch("*.db", "a.db"));
  EXPECT_FALSE(GlobMatch("*.db", "x/a.db"));
  EXPECT_TRUE(GlobMatch("**/*.db", "x/y/a.db"));
  EXPECT_TRUE(GlobMatch("**/*.db", "a.db"));
  EXPECT_TRUE(GlobMatch("projects/", "projects/a/b.txt"));
  EXPECT_FALSE(GlobMatch("projects/", "projects2/a"));
  EXPECT_TRUE(GlobMatch("img_??.png", "img_01.png"));
  EXPECT_FALSE(GlobMatch("img_??.png", "img_1.png"));
}

class EvictorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.chunk_size_bytes = 4096;
    o.clock = &clock_;
    auto s = store::Store::Open(o);
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    auto share = store_->CreateShare("s", store::ShareKind::kCloud);
    ASSERT_TRUE(share.ok());
    share_ = share->id;
    root_ = share->root;
  }

  // A file of `size` bytes, committed and marked uploaded (as the Uploader does).
  store::NodeId File(const std::string& name, size_t size, bool upload = true) {
    auto h = store_->Create(root_, name, {});
    EXPECT_TRUE(h.ok());
    EXPECT_TRUE((*h)->Write(0, std::vector<uint8_t>(size, 'x')).ok());
    EXPECT_TRUE((*h)->Close().ok());
    EXPECT_TRUE(store_->EnqueueUploads("uploader", 1000).ok());
    if (upload) {
      auto due = store_->DueUploads(INT64_MAX, 1000);
      for (const auto& item : *due) {
        if (item.node != (*h)->node()) continue;
        EXPECT_TRUE(store_->FinishUpload(item, store::FileState::kClean, name, "etag", "").ok());
      }
    }
    clock_.Advance(std::chrono::seconds(1));
    return (*h)->node();
  }

  store::FileState State(store::NodeId n) { return store_->GetAttr(n)->state; }

  FakeClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  uint32_t share_ = 0;
  store::NodeId root_ = 0;
};

TEST_F(EvictorTest, PastTheHighWatermarkTheLeastRecentlyUsedGoDownToTheLowOne) {
  std::vector<store::NodeId> files;
  for (int i = 0; i < 10; ++i) files.push_back(File("f" + std::to_string(i), 10'000));
  // f0 is used again: it becomes the most recent.
  ASSERT_TRUE(store_->OpenFile(files[0], false).ok());
  Evictor::Options opts;
  CachePolicy p;
  p.high.bytes = 80'000;
  p.low.bytes = 50'000;
  p.pinned = {"f1"};
  opts.shares[share_] = p;
  Evictor ev(*store_, clock_, opts, nullptr);
  store_->SetCacheHooks(&ev);
  auto pass = ev.RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->evicted, 5u);
  EXPECT_EQ(pass->skipped_pinned, 1u);
  // Evicted: f2..f6 (f1 pinned, f0 used last); kept: f0, f1, f7, f8, f9.
  for (int i : {2, 3, 4, 5, 6}) EXPECT_EQ(State(files[i]), store::FileState::kStub) << i;
  for (int i : {0, 1, 7, 8, 9}) EXPECT_EQ(State(files[i]), store::FileState::kClean) << i;
  EXPECT_EQ(store_->GetCacheUsage(share_)->resident_bytes, 50'000u);
  EXPECT_EQ(*store_->GetXattr(files[1], store::Store::kCacheStateXattr), "pinned");
  // Under the high watermark: nothing more.
  EXPECT_EQ(ev.RunOnce()->evicted, 0u);
  store_->SetCacheHooks(nullptr);
}

TEST_F(EvictorTest, FilesUnusedForTheMaxAgeGoWhateverTheWatermarks) {
  store::NodeId old_file = File("old", 1000);
  clock_.Advance(std::chrono::hours(24 * 10));
  store::NodeId fresh = File("fresh", 1000);
  Evictor::Options opts;
  opts.box.max_age = std::chrono::hours(24 * 7);
  Evictor ev(*store_, clock_, opts, nullptr);
  ASSERT_EQ(ev.RunOnce()->evicted, 1u);
  EXPECT_EQ(State(old_file), store::FileState::kStub);
  EXPECT_EQ(State(fresh), store::FileState::kClean);
}

TEST_F(EvictorTest, AtTheHardCapWritersWaitThenGetNoSpaceAndNothingWrittenIsLost) {
  store::NodeId dirty = File("dirty", 50'000, /*upload=*/false);
  Evictor::Options opts;
  opts.box.cap.bytes = 58'000;
  opts.backpressure_timeout = std::chrono::milliseconds(300);
  Evictor ev(*store_, RealClock::Get(), opts, nullptr);
  store_->SetCacheHooks(&ev);
  ASSERT_TRUE(ev.RunOnce().ok());
  ev.Start();
  auto h = store_->Create(root_, "new", {});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE((*h)->Write(0, std::vector<uint8_t>(5000, 'a')).ok());
  auto t0 = std::chrono::steady_clock::now();
  Status s = (*h)->Write(5000, std::vector<uint8_t>(10'000, 'b'));
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  ASSERT_TRUE((*h)->Close().ok());
  EXPECT_EQ(store_->GetAttr((*h)->node())->size, 5000u);
  EXPECT_EQ(State(dirty), store::FileState::kDirty);

  // Once the dirty file is uploaded, it can be evicted and the writer gets in after a wait.
  auto due = store_->DueUploads(INT64_MAX, 10);
  for (const auto& item : *due) {
    if (item.node == dirty) {
      ASSERT_TRUE(store_->FinishUpload(item, store::FileState::kClean, "dirty", "e", "").ok());
    }
  }
  auto h2 = store_->OpenFile((*h)->node(), true);
  ASSERT_TRUE(h2.ok());
  ASSERT_TRUE((*h2)->Write(5000, std::vector<uint8_t>(10'000, 'b')).ok());
  ASSERT_TRUE((*h2)->Close().ok());
  EXPECT_EQ(State(dirty), store::FileState::kStub);
  store_->SetCacheHooks(nullptr);
}

}  // namespace
}  // namespace fieldstack::sync
