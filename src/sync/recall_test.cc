#include "sync/recall.h"

#include <gtest/gtest.h>

#include <thread>

#include "cloud/memory/memory_store.h"
#include "crypto/hash.h"
#include "test/support/fault_object_store.h"
#include "test/support/pattern.h"

namespace fieldstack::sync {
namespace {

using testing::Pattern;

class RecallTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    Recaller::Options o = options_;
    o.sleep = [this](std::chrono::nanoseconds d) {
      slept_ += d;
      clock_.Advance(d);
    };
    recaller_ = std::make_unique<Recaller>(
        [this](uint32_t share) -> cloud::ObjectStore* { return share == 1 ? &faulty_ : nullptr; },
        clock_, o, &metrics_);
  }

  // Puts `data` under `key` and describes it as the uploader records it, with part MD5s of
  // `part_size` (0: one part).
  store::CloudCopy Upload(const std::string& key, const std::vector<uint8_t>& data,
                          uint64_t part_size) {
    auto info = mem_.Put(key, data, {});
    EXPECT_TRUE(info.ok());
    store::CloudCopy c{.key = key, .etag = info->etag, .size = data.size(), .part_size = part_size};
    std::string_view all(reinterpret_cast<const char*>(data.data()), data.size());
    uint64_t ps = part_size == 0 ? data.size() : part_size;
    for (uint64_t off = 0; off < data.size() || off == 0; off += ps) {
      c.part_md5s += crypto::Digest::Md5(all.substr(off, ps));
      if (ps == 0) break;
    }
    c.md5 = crypto::Digest::Md5(all);
    return c;
  }

  Result<std::vector<uint8_t>> Fetch(const store::CloudCopy& c, uint64_t offset, size_t n) {
    std::vector<uint8_t> out(n);
    Status s = recaller_->Fetch(1, c, offset, out);
    if (!s.ok()) return s;
    return out;
  }

  static std::vector<uint8_t> Slice(const std::vector<uint8_t>& v, size_t off, size_t n) {
    return {v.begin() + off, v.begin() + off + n};
  }

  FakeClock clock_;
  Metrics metrics_;
  cloud::memory::MemoryStore mem_{clock_};
  testing::FaultObjectStore faulty_{mem_};
  Recaller::Options options_;
  std::unique_ptr<Recaller> recaller_;
  std::chrono::nanoseconds slept_{0};
};

TEST_F(RecallTest, PartMd5sGiveTheRequestedBytesOneGetPerPart) {
  const uint64_t ps = 64 * 1024;
  auto data = Pattern(ps * 3 + 5000, 1);
  auto c = Upload("site/a.bin", data, ps);
  for (uint64_t part = 0; part < 4; ++part) {  // as the Store asks: one part per call
    int gets = faulty_.gets;
    size_t n = std::min<uint64_t>(ps, data.size() - part * ps);
    auto got = Fetch(c, part * ps, n);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, Slice(data, part * ps, n));
    EXPECT_EQ(faulty_.gets, gets + 1);
  }
  // Within one part, and across parts (each part is fetched whole to be checked).
  EXPECT_EQ(*Fetch(c, 4096, 8192), Slice(data, 4096, 8192));
  EXPECT_EQ(*Fetch(c, ps - 4096, ps + 8192), Slice(data, ps - 4096, ps + 8192));
  EXPECT_EQ(*Fetch(c, 0, data.size()), data);
  EXPECT_NE(metrics_.Serialize().find("fieldstack_recall_bytes_total"), std::string::npos);
}

TEST_F(RecallTest, SinglePutObjectIsOnePart) {
  auto data = Pattern(10000, 2);
  auto c = Upload("small", data, 0);
  EXPECT_EQ(*Fetch(c, 4096, 4096), Slice(data, 4096, 4096));
  EXPECT_EQ(*Fetch(c, 0, data.size()), data);
}

TEST_F(RecallTest, DamageOnTheWayIsFetchedAgain) {
  auto data = Pattern(100000, 3);
  auto c = Upload("f", data, 32768);
  int damaged = 0;
  faulty_.on_get = [&](std::string& bytes) {
    if (damaged++ == 0) bytes[100] ^= 1;
  };
  int gets = faulty_.gets;
  auto got = Fetch(c, 32768, 32768);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, Slice(data, 32768, 32768));
  EXPECT_EQ(faulty_.gets, gets + 2);
}

TEST_F(RecallTest, PartThatFailsItsMd5TwiceIsCorruption) {
  auto data = Pattern(100000, 4);
  auto c = Upload("f", data, 32768);
  faulty_.on_get = [](std::string& bytes) { bytes[0] ^= 0x80; };  // damaged in the cloud
  auto got = Fetch(c, 0, 32768);
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << got.status().ToString();
}

TEST_F(RecallTest, OtherBytesUnderTheKeyAreNeverHandedOut) {
  auto data = Pattern(100000, 5);
  auto c = Upload("f", data, 32768);
  auto other = Pattern(100000, 6);
  ASSERT_TRUE(mem_.Put("f", other, {}).ok());
  // The object has another etag now: it changed in the cloud.
  auto got = Fetch(c, 0, 32768);
  EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition) << got.status().ToString();
  // Without a recorded etag, the same bytes are corrupt: the MD5 is what decides.
  c.etag.clear();
  got = Fetch(c, 0, 32768);
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << got.status().ToString();
  // Whole-object MD5 too.
  store::CloudCopy whole = c;
  whole.part_md5s.clear();
  got = Fetch(whole, 0, 4096);
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << got.status().ToString();
}

TEST_F(RecallTest, ShorterOrDeletedObjectChangedInTheCloud) {
  auto data = Pattern(100000, 7);
  auto c = Upload("f", data, 32768);
  ASSERT_TRUE(mem_.Put("f", Pattern(50000, 7), {}).ok());
  EXPECT_EQ(Fetch(c, 65536, 32768).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(mem_.Delete("f", {}).ok());
  EXPECT_EQ(Fetch(c, 0, 32768).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(RecallTest, WholeObjectMd5IsFetchedOnceForAdjacentRanges) {
  auto data = Pattern(200000, 8);
  auto c = Upload("w", data, 0);
  c.part_md5s.clear();  // written by someone else; the service keeps the whole MD5
  int gets = faulty_.gets;
  for (uint64_t off = 0; off < data.size(); off += 65536) {
    size_t n = std::min<uint64_t>(65536, data.size() - off);
    auto got = Fetch(c, off, n);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, Slice(data, off, n));
  }
  EXPECT_EQ(faulty_.gets, gets + 1);
}

TEST_F(RecallTest, ConcurrentReadersOfOneObjectShareOneFetch) {
  auto data = Pattern(1 << 20, 9);
  auto c = Upload("w", data, 0);
  c.part_md5s.clear();
  int gets = faulty_.gets;
  std::vector<std::thread> readers;
  std::atomic<int> wrong = 0;
  for (int i = 0; i < 8; ++i) {
    readers.emplace_back([&, i] {
      auto got = Fetch(c, i * 65536, 65536);
      if (!got.ok() || *got != Slice(data, i * 65536, 65536)) ++wrong;
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(faulty_.gets, gets + 1);
}

TEST_F(RecallTest, LargeObjectWithoutMd5IsCheckedByEtag) {
  options_.whole_object_max_bytes = 64 * 1024;  // so this object counts as large
  Start();
  auto data = Pattern(200000, 10);
  auto c = Upload("big", data, 0);
  c.part_md5s.clear();
  c.md5.clear();
  EXPECT_EQ(*Fetch(c, 0, 65536), Slice(data, 0, 65536));
  EXPECT_EQ(*Fetch(c, 65536, 65536), Slice(data, 65536, 65536));
  EXPECT_EQ(faulty_.heads, 1) << "one Head stands for ~10 s";
  clock_.Advance(std::chrono::seconds(11));
  EXPECT_EQ(*Fetch(c, 131072, 200000 - 131072), Slice(data, 131072, 200000 - 131072));
  EXPECT_EQ(faulty_.heads, 2);
  // Replaced in the cloud: refused once the check is due.
  ASSERT_TRUE(mem_.Put("big", Pattern(200000, 11), {}).ok());
  clock_.Advance(std::chrono::seconds(11));
  auto got = Fetch(c, 0, 65536);
  EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(got.status().message().find("changed in the cloud since it was refreshed"),
            std::string::npos);
  // Without an etag there is nothing to check against.
  c.etag.clear();
  EXPECT_EQ(Fetch(c, 0, 65536).status().code(), StatusCode::kInvalidArgument);
}

// The end of an etag-checked recall asks again (no cache), so blocks of two versions are
// never committed as one file.
TEST_F(RecallTest, ConfirmAsksTheCloudAgainAtTheEnd) {
  options_.whole_object_max_bytes = 0;
  Start();
  auto c = Upload("big", Pattern(100000, 13), 0);
  c.part_md5s.clear();
  c.md5.clear();
  ASSERT_TRUE(Fetch(c, 0, 65536).ok());
  int heads = faulty_.heads;
  EXPECT_TRUE(recaller_->Confirm(1, c).ok());
  EXPECT_EQ(faulty_.heads, heads + 1);
  ASSERT_TRUE(mem_.Put("big", Pattern(100000, 14), {}).ok());
  EXPECT_EQ(recaller_->Confirm(1, c).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(mem_.Delete("big", {}).ok());
  EXPECT_EQ(recaller_->Confirm(1, c).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(recaller_->Confirm(2, c).code(), StatusCode::kUnavailable);  // no target
}

TEST_F(RecallTest, EtagCheckedObjectCutShortIsChanged) {
  options_.whole_object_max_bytes = 0;
  Start();
  auto data = Pattern(100000, 12);
  auto c = Upload("big", data, 0);
  c.part_md5s.clear();
  ASSERT_TRUE(Fetch(c, 0, 4096).ok());  // etag confirmed and cached
  ASSERT_TRUE(mem_.Put("big", Pattern(50000, 12), {}).ok());
  // Within the cached check's life the short read itself tells.
  EXPECT_EQ(Fetch(c, 65536, 32768).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(RecallTest, BriefOutageIsRetriedWithinTheTimeout) {
  auto data = Pattern(100000, 13);
  auto c = Upload("f", data, 32768);
  faulty_.fail_gets = 3;
  auto got = Fetch(c, 32768, 32768);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, Slice(data, 32768, 32768));
  EXPECT_GT(slept_.count(), 0) << "backs off between tries";
}

TEST_F(RecallTest, OutageIsUnavailableAfterTheTimeout) {
  options_.timeout = std::chrono::seconds(5);
  Start();
  auto data = Pattern(100000, 14);
  auto c = Upload("site/f", data, 32768);
  faulty_.fail_gets = 1'000'000;
  auto got = Fetch(c, 0, 32768);
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("cloud not reachable for recall of 'site/f' after 5 s"),
            std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("link down"), std::string::npos);
  EXPECT_EQ(slept_, std::chrono::seconds(5)) << "gives up at the deadline, not later";
  EXPECT_GT(faulty_.gets, 5);
  // Etag-checked objects: the Head is retried the same way.
  options_.whole_object_max_bytes = 0;
  Start();
  c.part_md5s.clear();
  faulty_.fail_heads = 1'000'000;
  EXPECT_EQ(Fetch(c, 0, 32768).status().code(), StatusCode::kUnavailable);
  EXPECT_NE(metrics_.Serialize().find("reason=\"unavailable\""), std::string::npos);
}

TEST_F(RecallTest, DownloadsArePacedToTheScheduledRate) {
  options_.schedule = *BandwidthSchedule::ParseTimetable("off:1M");  // uploads unlimited
  Start();
  const uint64_t ps = 1 << 20;
  auto data = Pattern(9 * ps, 15);
  auto c = Upload("big", data, ps);
  for (uint64_t part = 0; part < 9; ++part) {
    ASSERT_TRUE(Fetch(c, part * ps, ps).ok());
  }
  // 9 MiB at 1 MiB/s after a 1 MiB burst: 8 s.
  double secs = std::chrono::duration<double>(slept_).count();
  EXPECT_NEAR(secs / 8.0, 1.0, 0.05) << secs << " s";
}

TEST_F(RecallTest, PausedDownloadsWaitNoLongerThanTheTimeout) {
  options_.schedule = *BandwidthSchedule::ParseTimetable("off:0");
  options_.timeout = std::chrono::seconds(3);
  Start();
  auto c = Upload("f", Pattern(1000, 16), 0);
  EXPECT_EQ(Fetch(c, 0, 1000).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(faulty_.gets, 0);
  EXPECT_EQ(slept_, std::chrono::seconds(3));
}

TEST_F(RecallTest, BadRequestsAreRefused) {
  auto data = Pattern(100000, 17);
  auto c = Upload("f", data, 32768);
  EXPECT_EQ(Fetch(c, 100000 - 10, 11).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Fetch(c, 100001, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Fetch(c, UINT64_MAX, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Fetch(c, 100000, 0).ok());  // nothing at the end
  store::CloudCopy short_list = c;
  short_list.part_md5s.resize(32);  // 4 parts need 64 bytes
  EXPECT_EQ(Fetch(short_list, 0, 4096).status().code(), StatusCode::kInvalidArgument);
  std::vector<uint8_t> out(10);
  Status s = recaller_->Fetch(2, c, 0, out);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "share has no cloud target");
}

}  // namespace
}  // namespace fieldstack::sync
