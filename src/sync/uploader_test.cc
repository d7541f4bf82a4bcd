#include "sync/uploader.h"

#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cloud/azure_blob/azure_blob_store.h"
#include "cloud/memory/memory_store.h"
#include "cloud/s3/s3_store.h"
#include "crypto/hash.h"
#include "platform/file.h"
#include "sync/recall.h"
#include "test/support/azurite.h"
#include "test/support/fault_object_store.h"
#include "test/support/fault_proxy.h"
#include "test/support/packet_loss.h"
#include "test/support/pattern.h"
#include "test/support/rgw.h"
#include "test/support/temp_dir.h"

namespace fieldstack::sync {
namespace {

using testing::Pattern;

class UploaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Reopen();
    cloud_share_ = store_->CreateShare("ingest", store::ShareKind::kCloud)->id;
    local_root_ = store_->CreateShare("scratch", store::ShareKind::kLocal)->root;
    root_ = store_->GetShare("ingest")->root;
  }

  void Reopen() {
    uploader_.reset();
    store_.reset();
    store::StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.chunk_size_bytes = 4096;
    o.clock = &clock_;
    auto s = store::Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    Uploader::Options opts;
    opts.part_size_bytes = part_size_;
    opts.batch = 16;
    opts.max_attempts = 4;
    opts.backoff_base = std::chrono::seconds(1);
    opts.mirror = [this](uint32_t) { return mirror_; };
    opts.budget = budget_;
    uploader_ = std::make_unique<Uploader>(
        *store_,
        [this](uint32_t share) -> cloud::ObjectStore* {
          return share == cloud_share_ ? &faulty_ : nullptr;
        },
        clock_, opts, &log_, &metrics_);
  }

  store::NodeId Write(store::NodeId parent, const std::string& name,
                      const std::vector<uint8_t>& data) {
    auto existing = store_->Lookup(parent, name);
    auto h =
        existing.ok() ? store_->OpenFile(existing->id, true) : store_->Create(parent, name, {});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_TRUE((*h)->Write(0, data).ok());
    EXPECT_TRUE((*h)->Close().ok());
    return (*h)->node();
  }

  // Runs passes, moving the fake clock past retry times, until the queue is empty.
  Uploader::Pass Drain(int max_passes = 100) {
    Uploader::Pass total;
    for (int i = 0; i < max_passes; ++i) {
      auto p = uploader_->RunOnce();
      EXPECT_TRUE(p.ok()) << p.status().ToString();
      if (!p.ok()) break;
      total.uploaded += p->uploaded;
      total.retried += p->retried;
      total.failed += p->failed;
      total.conflicts += p->conflicts;
      total.changed += p->changed;
      total.deleted += p->deleted;
      total.paused += p->paused;
      if (*store_->PendingUploads() == 0) break;
      clock_.Advance(std::chrono::seconds(30));
    }
    return total;
  }

  std::string Cloud(const std::string& key) {
    auto got = mem_.Get(key, 0, 1 << 30);
    return got.ok() ? *got : "<missing>";
  }
  static std::string Str(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

  FakeClock clock_;
  testing::TempDir dir_;
  CopyLog log_{dir_.path() + "/logs", clock_};
  Metrics metrics_;
  bool mirror_ = false;
  uint64_t part_size_ = 64 * 1024;
  BudgetLimits budget_;
  cloud::memory::MemoryStore mem_{clock_};
  testing::FaultObjectStore faulty_{mem_};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Uploader> uploader_;
  uint32_t cloud_share_ = 0;
  store::NodeId root_ = 0, local_root_ = 0;
};

TEST_F(UploaderTest, CloudShareFilesArriveInNativeFormatOnce) {
  auto d = store_->Mkdir(root_, "site-7", {});
  ASSERT_TRUE(d.ok());
  auto a = Pattern(1000, 1), b = Pattern(300000, 2);
  store::NodeId na = Write(d->id, "a.csv", a);
  Write(root_, "b.bin", b);
  Write(local_root_, "not-uploaded", a);
  auto pass = Drain();
  EXPECT_EQ(pass.uploaded, 2u);
  EXPECT_EQ(Cloud("site-7/a.csv"), Str(a));
  EXPECT_EQ(Cloud("b.bin"), Str(b));
  EXPECT_EQ(mem_.List("", "", 100)->objects.size(), 2u);
  EXPECT_EQ(store_->GetAttr(na)->state, store::FileState::kClean);
  EXPECT_EQ(mem_.Head("site-7/a.csv")->meta.at("mode"), "420");
  // Nothing new: nothing sent.
  int puts = faulty_.puts;
  EXPECT_EQ(uploader_->RunOnce()->uploaded, 0u);
  EXPECT_EQ(faulty_.puts, puts);
}

TEST_F(UploaderTest, ObjectCarriesXattrsAndTheStoreRecordsHowToCheckIt) {
  // What Samba keeps: DOS attributes and an NT ACL, binary; the box's own stay home.
  const std::string dos("0x20\0\0\4\0\x11", 9);
  std::string acl(400, '\0');
  for (size_t i = 0; i < acl.size(); ++i) acl[i] = static_cast<char>(i * 7);
  auto small = Pattern(1000, 21), large = Pattern(300000, 22);  // one Put; 5 parts
  store::NodeId ns = Write(root_, "small.doc", small);
  store::NodeId nl = Write(root_, "large.bin", large);
  for (store::NodeId n : {ns, nl}) {
    ASSERT_TRUE(store_->SetXattr(n, "user.DOSATTRIB", dos).ok());
    ASSERT_TRUE(store_->SetXattr(n, "security.NTACL", acl).ok());
    ASSERT_TRUE(store_->SetXattr(n, "fieldstack.object", "internal").ok());
  }
  EXPECT_EQ(Drain().uploaded, 2u);
  for (auto [n, key, data] : {std::tuple{ns, "small.doc", &small}, {nl, "large.bin", &large}}) {
    auto head = mem_.Head(key);
    ASSERT_TRUE(head.ok());
    EXPECT_EQ(head->meta.at(kOwnerMetaKey), std::to_string(n));
    FileMeta meta = DecodeFileMeta(head->meta);
    EXPECT_TRUE(meta.xattrs_complete);
    std::sort(meta.xattrs.begin(), meta.xattrs.end());
    EXPECT_EQ(meta.xattrs, (std::vector<std::pair<std::string, std::string>>{
                               {"security.NTACL", acl}, {"user.DOSATTRIB", dos}}))
        << key;
    EXPECT_EQ(meta.mode, store_->GetAttr(n)->mode);
    size_t meta_bytes = 0;
    for (const auto& [k, v] : head->meta) meta_bytes += k.size() + v.size();
    EXPECT_LE(meta_bytes, 2048u);

    auto copy = store_->CloudCopyOf(n);
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    EXPECT_EQ(copy->key, key);
    EXPECT_EQ(copy->etag, head->etag);
    EXPECT_EQ(copy->size, data->size());
    EXPECT_EQ(copy->md5, crypto::Digest::Md5(Str(*data)));
    if (n == ns) {
      EXPECT_EQ(copy->part_size, 0u);
      EXPECT_EQ(copy->part_md5s, copy->md5);
    } else {
      EXPECT_EQ(copy->part_size, part_size_);
      ASSERT_EQ(copy->part_md5s.size(), 5u * 16);
      EXPECT_EQ(copy->part_md5s.substr(16, 16),
                crypto::Digest::Md5(Str(*data).substr(part_size_, part_size_)));
    }
  }
}

TEST_F(UploaderTest, XattrsBeyondTheMetadataBudgetAreLeftOutAndMarked) {
  store::NodeId n = Write(root_, "f", Pattern(100, 23));
  ASSERT_TRUE(store_->SetXattr(n, "user.DOSATTRIB", "0x20").ok());
  ASSERT_TRUE(store_->SetXattr(n, "security.NTACL", std::string(3000, 'a')).ok());
  EXPECT_EQ(Drain().uploaded, 1u);
  auto head = mem_.Head("f");
  ASSERT_TRUE(head.ok());
  FileMeta meta = DecodeFileMeta(head->meta);
  EXPECT_FALSE(meta.xattrs_complete);
  EXPECT_EQ(meta.xattrs,
            (std::vector<std::pair<std::string, std::string>>{{"user.DOSATTRIB", "0x20"}}));
}

TEST_F(UploaderTest, NewVersionReplacesTheObjectConditionally) {
  Write(root_, "f", Pattern(100, 3));
  Drain();
  auto v2 = Pattern(200, 4);
  Write(root_, "f", v2);
  EXPECT_EQ(Drain().uploaded, 1u);
  EXPECT_EQ(Cloud("f"), Str(v2));
}

TEST_F(UploaderTest, ObjectChangedInTheCloudIsNeverOverwritten) {
  store::NodeId n = Write(root_, "shared.txt", Pattern(100, 5));
  Drain();
  ASSERT_TRUE(mem_.Put("shared.txt", std::span<const uint8_t>(), {}).ok());  // someone else
  Write(root_, "shared.txt", Pattern(150, 6));
  auto pass = Drain();
  EXPECT_EQ(pass.conflicts, 1u);
  EXPECT_EQ(Cloud("shared.txt"), "");
  auto attr = store_->GetAttr(n);
  EXPECT_EQ(attr->state, store::FileState::kFailed);
  // An object already in the cloud under a new file's name is not overwritten either.
  ASSERT_TRUE(mem_.Put("preexisting", std::span<const uint8_t>(), {}).ok());
  Write(root_, "preexisting", Pattern(10, 7));
  EXPECT_EQ(Drain().conflicts, 1u);
}

TEST_F(UploaderTest, TransientFailuresBackOffThenSucceed) {
  Write(root_, "flaky", Pattern(500, 8));
  faulty_.fail_puts = 2;
  auto first = uploader_->RunOnce();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->retried, 1u);
  // Not due yet: no hot loop against a failing link.
  EXPECT_EQ(uploader_->RunOnce()->retried, 0u);
  EXPECT_EQ(faulty_.fail_puts, 1);
  auto pass = Drain();
  EXPECT_EQ(pass.uploaded, 1u);
  EXPECT_EQ(pass.retried, 1u);
  EXPECT_EQ(Cloud("flaky"), Str(Pattern(500, 8)));
}

TEST_F(UploaderTest, PermanentlyFailingUploadsStopAfterMaxAttempts) {
  store::NodeId n = Write(root_, "doomed", Pattern(500, 9));
  faulty_.fail_puts = 1000;
  auto pass = Drain();
  EXPECT_EQ(pass.retried, 3u);
  EXPECT_EQ(pass.failed, 1u);
  EXPECT_EQ(store_->GetAttr(n)->state, store::FileState::kFailed);
  EXPECT_EQ(*store_->PendingUploads(), 0u);
}

TEST_F(UploaderTest, QueueAndMultipartProgressSurviveARestart) {
  auto big = Pattern(64 * 1024 * 5, 10);
  Write(root_, "big", big);
  Write(root_, "small", Pattern(10, 11));
  faulty_.fail_parts_after = 2;
  ASSERT_TRUE(uploader_->RunOnce().ok());
  Reopen();  // the daemon restarts: the queue and the upload's progress are in the db
  faulty_.fail_parts_after = -1;
  auto pass = Drain();
  EXPECT_EQ(pass.uploaded, 1u);  // small went up in the first pass
  EXPECT_EQ(Cloud("big"), Str(big));
  EXPECT_EQ(faulty_.parts, 5) << "the two stored parts were not sent again";
}

TEST_F(UploaderTest, AnInterruptedUploadIsNeverResumedForANewerVersion) {
  auto v1 = Pattern(64 * 1024 * 5, 40), v2 = Pattern(64 * 1024 * 5, 41);  // same size
  Write(root_, "image", v1);
  faulty_.fail_parts_after = 3;  // three parts of v1 stored, then the link drops
  ASSERT_TRUE(uploader_->RunOnce().ok());
  Write(root_, "image", v2);  // rewritten in place at the same size
  faulty_.fail_parts_after = -1;
  Drain();
  EXPECT_EQ(Cloud("image"), Str(v2)) << "parts of v1 were reused for v2";
  EXPECT_TRUE(store_->AbandonedUploads(10)->empty()) << "the v1 upload was aborted";
}

TEST_F(UploaderTest, AnUploadBegunWithAnotherPartSizeStartsAgain) {
  auto data = Pattern(64 * 1024 * 5 + 100, 42);
  Write(root_, "big", data);
  faulty_.fail_parts_after = 2;
  ASSERT_TRUE(uploader_->RunOnce().ok());
  part_size_ = 96 * 1024;  // the admin changes part_size_mib and restarts
  Reopen();
  faulty_.fail_parts_after = -1;
  Drain();
  EXPECT_EQ(Cloud("big"), Str(data));
}

TEST_F(UploaderTest, AFileDeletedWhileItGoesUpLeavesNoOrphanUnderMirror) {
  mirror_ = true;
  Write(root_, "doomed", Pattern(64 * 1024 * 3, 43));
  std::atomic<bool> deleted = false;
  std::once_flag once;
  faulty_.on_part = [&] {  // parts go up in parallel: delete once
    std::call_once(once, [&] { deleted = store_->Unlink(root_, "doomed").ok(); });
  };
  Drain();
  faulty_.on_part = nullptr;
  ASSERT_TRUE(deleted);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(uploader_->RunOnce().ok());
  EXPECT_EQ(mem_.Head("doomed").status().code(), StatusCode::kNotFound);
}

TEST_F(UploaderTest, RotatedNamesAreUploadedWithoutConflicts) {
  Write(root_, "log", Pattern(100, 44));
  Write(root_, "log.1", Pattern(100, 45));
  Drain();
  // logrotate: log.1 -> log.2, log -> log.1, a new log.
  ASSERT_TRUE(store_->Rename(root_, "log.1", root_, "log.2").ok());
  ASSERT_TRUE(store_->Rename(root_, "log", root_, "log.1").ok());
  Write(root_, "log", Pattern(50, 46));
  auto pass = Drain();
  EXPECT_EQ(pass.conflicts, 0u);
  EXPECT_EQ(pass.failed, 0u);
  EXPECT_EQ(Cloud("log.2"), Str(Pattern(100, 45)));
  EXPECT_EQ(Cloud("log.1"), Str(Pattern(100, 44)));
  EXPECT_EQ(Cloud("log"), Str(Pattern(50, 46)));
}

TEST_F(UploaderTest, MirrorNeverLeavesAKeyEmptyWhileItsReplacementWaits) {
  mirror_ = true;
  Write(root_, "doc", Pattern(100, 47));
  Drain();
  // An editor saves: write doc.tmp, rename it over doc. The link is down meanwhile.
  Write(root_, "doc.tmp", Pattern(120, 48));
  ASSERT_TRUE(store_->Rename(root_, "doc.tmp", root_, "doc").ok());
  faulty_.fail_puts = 1000;
  ASSERT_TRUE(uploader_->RunOnce().ok());
  EXPECT_EQ(Cloud("doc"), Str(Pattern(100, 47))) << "the old doc must stay until replaced";
  faulty_.fail_puts = 0;
  auto pass = Drain();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(uploader_->RunOnce().ok());
  EXPECT_EQ(Cloud("doc"), Str(Pattern(120, 48)));
  EXPECT_EQ(pass.conflicts, 0u);
  EXPECT_EQ(mem_.Head("doc.tmp").status().code(), StatusCode::kNotFound);
}

TEST_F(UploaderTest, LongBacklogIsWorkedInBoundedBatches) {
  for (int i = 0; i < 200; ++i) Write(root_, "f" + std::to_string(i), Pattern(64, i));
  auto first = uploader_->RunOnce();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->queued, 200u);
  EXPECT_EQ(first->uploaded, 16u) << "one pass takes one batch";
  EXPECT_EQ(*store_->PendingUploads(), 184u);
  Drain();
  EXPECT_EQ(mem_.List("", "", 1000)->objects.size(), 200u);
}

TEST_F(UploaderTest, RenamedFileIsUploadedUnderItsNewNameAndTheOldObjectKept) {
  Write(root_, "old-name", Pattern(100, 12));
  Drain();
  ASSERT_TRUE(store_->Rename(root_, "old-name", root_, "new-name").ok());
  Write(root_, "new-name", Pattern(120, 13));
  EXPECT_EQ(Drain().uploaded, 1u);
  EXPECT_EQ(Cloud("new-name"), Str(Pattern(120, 13)));
  EXPECT_EQ(Cloud("old-name"), Str(Pattern(100, 12)));  // the `keep` policy
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path);

TEST_F(UploaderTest, KeepPolicyUploadsRenamesAndLetsARecreatedFileReplaceItsOldObject) {
  Write(root_, "a.txt", Pattern(100, 21));
  ASSERT_TRUE(store_->Mkdir(root_, "dir", {}).ok());
  auto dir = store_->Lookup(root_, "dir")->id;
  Write(dir, "b.txt", Pattern(200, 22));
  Drain();
  // A rename alone (no new data) uploads the file under its new key.
  ASSERT_TRUE(store_->Rename(root_, "a.txt", root_, "renamed.txt").ok());
  ASSERT_TRUE(store_->Rename(root_, "dir", root_, "moved").ok());
  EXPECT_EQ(Drain().uploaded, 2u);
  EXPECT_EQ(Cloud("renamed.txt"), Str(Pattern(100, 21)));
  EXPECT_EQ(Cloud("moved/b.txt"), Str(Pattern(200, 22)));
  EXPECT_EQ(Cloud("a.txt"), Str(Pattern(100, 21)));
  EXPECT_EQ(Cloud("dir/b.txt"), Str(Pattern(200, 22)));
  // Deleted and written again under the same name: our own old object, replaced.
  ASSERT_TRUE(store_->Unlink(root_, "renamed.txt").ok());
  Write(root_, "renamed.txt", Pattern(50, 23));
  auto pass = Drain();
  EXPECT_EQ(pass.uploaded, 1u);
  EXPECT_EQ(pass.conflicts, 0u);
  EXPECT_EQ(Cloud("renamed.txt"), Str(Pattern(50, 23)));
  EXPECT_EQ(pass.deleted, 0u);
}

TEST_F(UploaderTest, MirrorPolicyPropagatesRenamesAndDeletesButNeverOthersChanges) {
  mirror_ = true;
  Write(root_, "a.txt", Pattern(100, 24));
  ASSERT_TRUE(store_->Mkdir(root_, "dir", {}).ok());
  auto dir = store_->Lookup(root_, "dir")->id;
  Write(dir, "b.txt", Pattern(70 * 1024, 25));  // multi-part
  Write(dir, "c.txt", Pattern(10, 26));
  Write(root_, "gone.txt", Pattern(10, 27));
  Write(root_, "theirs.txt", Pattern(10, 28));
  Drain();
  ASSERT_TRUE(store_->Rename(root_, "a.txt", root_, "renamed.txt").ok());
  ASSERT_TRUE(store_->Rename(root_, "dir", root_, "moved").ok());
  ASSERT_TRUE(store_->Unlink(root_, "gone.txt").ok());
  // Someone changes theirs.txt in the cloud; then we delete our file.
  const std::string edit = "their edit";
  ASSERT_TRUE(
      mem_.Put("theirs.txt", {reinterpret_cast<const uint8_t*>(edit.data()), edit.size()}, {})
          .ok());
  ASSERT_TRUE(store_->Unlink(root_, "theirs.txt").ok());
  auto pass = Drain();
  auto more = uploader_->RunOnce();  // the releases of this pass's renames
  ASSERT_TRUE(more.ok());
  pass.deleted += more->deleted;
  pass.conflicts += more->conflicts;
  EXPECT_EQ(pass.uploaded, 3u);
  EXPECT_EQ(pass.deleted, 4u);  // a.txt, dir/b.txt, dir/c.txt, gone.txt
  EXPECT_EQ(pass.conflicts, 1u);
  EXPECT_EQ(Cloud("renamed.txt"), Str(Pattern(100, 24)));
  EXPECT_EQ(Cloud("moved/b.txt"), Str(Pattern(70 * 1024, 25)));
  EXPECT_EQ(Cloud("moved/c.txt"), Str(Pattern(10, 26)));
  for (const char* k : {"a.txt", "dir/b.txt", "dir/c.txt", "gone.txt"}) {
    EXPECT_EQ(mem_.Head(k).status().code(), StatusCode::kNotFound) << k;
  }
  EXPECT_EQ(Cloud("theirs.txt"), "their edit");
  auto errors = ReadJsonLines(dir_.path() + "/logs/ingest/errors.log");
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.back()["path"], "theirs.txt");
  EXPECT_EQ(errors.back()["result"], "conflict");
  // Nothing is left to delete, and a second look changes nothing.
  auto idle = uploader_->RunOnce();
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->deleted + idle->uploaded + idle->conflicts, 0u);
}

TEST_F(UploaderTest, SpentDataBudgetPausesUploadsUntilTheNextDayAndRaisesTheAlert) {
  budget_.daily_bytes = 3 * 64 * 1024;  // three parts' worth a day
  Reopen();
  for (int i = 0; i < 3; ++i) Write(root_, "small" + std::to_string(i), Pattern(40 * 1024, 30 + i));
  Write(root_, "large", Pattern(150 * 1024, 33));  // three parts
  auto pass = uploader_->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_GE(pass->paused, 1u);
  uint64_t sent = 0;
  auto listed = mem_.List("", "", 100);
  for (const auto& o : listed->objects) sent += o.size;
  EXPECT_LE(sent, 3u * 64 * 1024);
  EXPECT_NE(metrics_.Serialize().find("fieldstack_upload_budget_spent 1"), std::string::npos);
  auto errors = ReadJsonLines(dir_.path() + "/logs/ingest/errors.log");
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.back()["code"], 1011);
  // The rest of the day nothing moves, however often the uploader runs.
  size_t objects = mem_.List("", "", 100)->objects.size();
  clock_.Advance(std::chrono::hours(12));
  ASSERT_TRUE(uploader_->RunOnce().ok());
  EXPECT_EQ(mem_.List("", "", 100)->objects.size(), objects);
  // The next day the queue drains; nothing failed or was counted as an attempt.
  clock_.Advance(std::chrono::hours(12));
  auto rest = Drain();
  EXPECT_EQ(rest.failed, 0u);
  EXPECT_EQ(Cloud("large"), Str(Pattern(150 * 1024, 33)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Cloud("small" + std::to_string(i)), Str(Pattern(40 * 1024, 30 + i)));
  }
  EXPECT_NE(metrics_.Serialize().find("fieldstack_upload_budget_spent 0"), std::string::npos);
}

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) return out;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    out.push_back(nlohmann::json::parse(text->substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return out;
}

TEST_F(UploaderTest, CopyLogsAndMetricsRecordEveryAttempt) {
  Write(root_, "ok.txt", Pattern(1234, 14));
  ASSERT_TRUE(mem_.Put("taken.txt", std::span<const uint8_t>(), {}).ok());
  Write(root_, "taken.txt", Pattern(10, 15));
  faulty_.fail_puts = 1;  // the first Put of this pass fails once
  Drain();
  auto uploads = ReadJsonLines(dir_.path() + "/logs/ingest/upload.log");
  auto errors = ReadJsonLines(dir_.path() + "/logs/ingest/errors.log");
  ASSERT_GE(uploads.size(), 3u);
  std::map<std::string, int> results;
  for (auto& j : uploads) results[j["result"].get<std::string>()]++;
  EXPECT_EQ(results["uploaded"], 1);
  EXPECT_EQ(results["conflict"], 1);
  EXPECT_EQ(results["retry"], 1);
  for (auto& j : uploads) {
    if (j["result"] != "uploaded") continue;
    EXPECT_EQ(j["path"], "ok.txt");
    EXPECT_EQ(j["size"], 1234);
    EXPECT_EQ(j["md5"], crypto::Base64(crypto::Digest::Md5(Str(Pattern(1234, 14)))));
    EXPECT_FALSE(j["etag"].get<std::string>().empty());
  }
  ASSERT_EQ(errors.size(), 2u);
  std::set<int> codes;
  for (auto& j : errors) codes.insert(j["code"].get<int>());
  EXPECT_EQ(codes, (std::set<int>{1001, 1003}));
  std::string m = metrics_.Serialize();
  EXPECT_NE(m.find("fieldstack_upload_rate_bytes_per_second"), std::string::npos);
  EXPECT_NE(m.find("fieldstack_upload_files_total 1"), std::string::npos) << m;
  EXPECT_NE(m.find("fieldstack_upload_bytes_total 1234"), std::string::npos) << m;
  EXPECT_NE(m.find("fieldstack_upload_pending_files 0"), std::string::npos) << m;
}

TEST(CopyLogTest, RotatesAndKeepsAFewOldFiles) {
  testing::TempDir dir;
  FakeClock clock;
  CopyLog log(dir.path(), clock, /*max_bytes=*/500, /*keep=*/2);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(
        log.Append({.share = "s", .path = "f" + std::to_string(i), .result = "uploaded"}).ok());
  }
  EXPECT_TRUE(platform::PathExists(dir.path() + "/s/upload.log.1"));
  EXPECT_TRUE(platform::PathExists(dir.path() + "/s/upload.log.2"));
  EXPECT_FALSE(platform::PathExists(dir.path() + "/s/upload.log.3"));
  EXPECT_LT(platform::ReadFileToString(dir.path() + "/s/upload.log")->size(), 700u);
}

TEST(UploadErrorTest, StatusesMapToStableCodes) {
  EXPECT_EQ(ClassifyUploadError(UnavailableError("503")), UploadError::kTransient);
  EXPECT_EQ(ClassifyUploadError(CorruptionError("Content-MD5 mismatch")),
            UploadError::kChecksumMismatch);
  EXPECT_EQ(ClassifyUploadError(CorruptionError("chunk 3").WithContext(kLocalReadContext)),
            UploadError::kLocalCorruption);
  EXPECT_EQ(ClassifyUploadError(UnauthenticatedError("bad key")), UploadError::kAuthFailed);
  EXPECT_EQ(ClassifyUploadError(NoSpaceError("quota")), UploadError::kQuotaExceeded);
  EXPECT_EQ(ClassifyUploadError(ResourceExhaustedError("daily budget")), UploadError::kBudgetSpent);
  EXPECT_EQ(ClassifyUploadError(InvalidArgumentError("page blob 'a.vhd': a size of 1000 bytes is "
                                                     "not a multiple of 512")),
            UploadError::kPageBlobMisaligned);
  EXPECT_EQ(static_cast<int>(UploadError::kConflict), 1003);
  EXPECT_EQ(static_cast<int>(UploadError::kPageBlobMisaligned), 1012);
}

}  // namespace
}  // namespace fieldstack::sync

namespace fieldstack::sync {
namespace {

// A container on an Azurite endpoint, made if missing; nullptr (with a test failure) if not.
std::unique_ptr<cloud::azure_blob::AzureBlobStore> AzureContainer(const std::string& endpoint,
                                                                  const std::string& container) {
  auto azure = cloud::azure_blob::AzureBlobStore::Open(
      {endpoint, testing::Azurite::kAccount, testing::Azurite::kKey, "", container, {".vhd"}},
      RealClock::Get());
  if (!azure.ok()) {
    ADD_FAILURE() << azure.status().ToString();
    return nullptr;
  }
  Status made = (*azure)->CreateContainer();
  if (!made.ok() && made.code() != StatusCode::kAlreadyExists) {
    ADD_FAILURE() << made.ToString();
    return nullptr;
  }
  return std::move(*azure);
}

// A fresh Store in `dir`.
std::unique_ptr<store::Store> OpenStore(const testing::TempDir& dir) {
  auto s = store::Store::Open({.data_dir = dir.path() + "/data"});
  if (!s.ok()) ADD_FAILURE() << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

using Files = std::map<std::string, std::vector<uint8_t>>;

// Files f0..f<count-1> in `root`, committed; every fourth is `big` bytes, the others `small`
// (each a few bytes more, so no two are alike).
Files WriteFiles(store::Store& s, store::NodeId root, int count, size_t big, size_t small) {
  Files want;
  for (int i = 0; i < count; ++i) {
    std::string name = "f" + std::to_string(i);
    want[name] = Pattern((i % 4 == 0 ? big : small) + i, static_cast<uint8_t>(i));
    auto h = s.Create(root, name, {});
    if (!h.ok() || !(*h)->Write(0, want[name]).ok() || !(*h)->Close().ok()) {
      ADD_FAILURE() << "cannot write " << name;
    }
  }
  return want;
}

// Every file of `want` is in `cloud`, byte for byte; `context` is shown on a miss.
void ExpectArrived(cloud::ObjectStore& cloud, const Files& want, const std::string& context = "") {
  for (const auto& [name, data] : want) {
    auto got = cloud.Get(name, 0, 1 << 30);
    if (!got.ok()) {
      ADD_FAILURE() << name << ": " << got.status().ToString() << context;
      continue;
    }
    EXPECT_TRUE(*got == std::string(data.begin(), data.end())) << name;
  }
}

// The whole path on a real S3 service: Store -> Uploader -> S3Store -> radosgw; new versions,
// renames and deletes with the mirror policy.
TEST(UploaderS3Test, FilesArriveByteIdenticalAndMirrorFollowsRenamesAndDeletes) {
  auto& rgw = testing::Rgw::Shared();
  ASSERT_FALSE(rgw.endpoint().empty()) << rgw.error();
  cloud::s3::S3Config c;
  c.endpoint = rgw.endpoint();
  c.bucket = "uploads";
  c.credentials = {rgw.access_key(), rgw.secret_key(), ""};
  auto s3 = cloud::s3::S3Store::Open(c, RealClock::Get());
  ASSERT_TRUE(s3.ok()) << s3.status().ToString();
  Status made = (*s3)->CreateBucket();
  ASSERT_TRUE(made.ok() || made.code() == StatusCode::kAlreadyExists) << made.ToString();
  testing::TempDir dir;
  auto s = OpenStore(dir);
  ASSERT_NE(s, nullptr);
  auto share = s->CreateShare("ingest", store::ShareKind::kCloud);
  auto write = [&](const std::string& name, const std::vector<uint8_t>& data) {
    auto existing = s->Lookup(share->root, name);
    auto h = existing.ok() ? s->OpenFile(existing->id, true) : s->Create(share->root, name, {});
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE((*h)->Write(0, data).ok());
    ASSERT_TRUE((*h)->Close().ok());
    ASSERT_TRUE(s->SetAttr((*h)->node(), {.size = data.size()}).ok());
  };
  write("small.csv", Pattern(1000, 1));
  write("large.bin", Pattern(700 * 1024 + 17, 2));
  write("empty", {});
  store::NodeId large_node = s->Lookup(share->root, "large.bin")->id;
  std::string acl(500, '\0');
  for (size_t i = 0; i < acl.size(); ++i) acl[i] = static_cast<char>(i * 13);
  ASSERT_TRUE(s->SetXattr(large_node, "security.NTACL", acl).ok());
  ASSERT_TRUE(s->SetXattr(large_node, "user.DOSATTRIB", std::string("0x20\0\x01", 6)).ok());
  Uploader::Options opts;
  opts.part_size_bytes = 256 * 1024;  // the large file goes up in 3 parts, in parallel
  opts.mirror = [](uint32_t) { return true; };
  Uploader up(
      *s, [&](uint32_t) -> cloud::ObjectStore* { return s3->get(); }, RealClock::Get(), opts);
  auto pass = up.RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->uploaded, 3u);
  auto get = [&](const std::string& key) {
    auto got = (*s3)->Get(key, 0, 1 << 30);
    return got.ok() ? *got : "<" + got.status().ToString() + ">";
  };
  auto small = Pattern(1000, 1);
  EXPECT_TRUE(get("small.csv") == std::string(small.begin(), small.end()));
  auto large = Pattern(700 * 1024 + 17, 2);
  EXPECT_TRUE(get("large.bin") == std::string(large.begin(), large.end()));
  EXPECT_EQ(get("empty"), "");
  EXPECT_EQ((*s3)->Head("large.bin")->meta.count("mtime_ns"), 1u);
  // The xattrs (binary) come back from the service's metadata, and a recall reads the parts
  // back checked by the MD5s recorded at upload.
  FileMeta meta = DecodeFileMeta((*s3)->Head("large.bin")->meta);
  std::sort(meta.xattrs.begin(), meta.xattrs.end());
  EXPECT_EQ(meta.xattrs, (std::vector<std::pair<std::string, std::string>>{
                             {"security.NTACL", acl}, {"user.DOSATTRIB", {"0x20\0\x01", 6}}}));
  auto copy = s->CloudCopyOf(large_node);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  Recaller recaller([&](uint32_t) -> cloud::ObjectStore* { return s3->get(); }, RealClock::Get(),
                    {});
  std::vector<uint8_t> back(large.size());
  for (uint64_t off = 0; off < large.size(); off += copy->part_size) {
    auto part =
        std::span(back).subspan(off, std::min<uint64_t>(copy->part_size, large.size() - off));
    ASSERT_TRUE(recaller.Fetch(share->id, *copy, off, part).ok());
  }
  EXPECT_TRUE(back == large);
  // A new version replaces the object (If-Match on our etag); a rename and a delete follow.
  write("large.bin", Pattern(300 * 1024, 3));
  ASSERT_TRUE(s->Rename(share->root, "small.csv", share->root, "renamed.csv").ok());
  ASSERT_TRUE(s->Unlink(share->root, "empty").ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(up.RunOnce().ok());
  auto v2 = Pattern(300 * 1024, 3);
  EXPECT_TRUE(get("large.bin") == std::string(v2.begin(), v2.end()));
  EXPECT_EQ(get("renamed.csv").size(), 1000u);
  EXPECT_EQ((*s3)->Head("small.csv").status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*s3)->Head("empty").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*s->PendingUploads(), 0u);
}

// The whole path on a real Azure endpoint: Store -> Uploader -> AzureBlobStore -> Azurite.
TEST(UploaderAzuriteTest, FilesArriveByteIdenticalInAzureBlobStorage) {
  auto& azurite = testing::Azurite::Shared();
  ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
  auto azure = AzureContainer(azurite.endpoint(), "uploads");
  ASSERT_NE(azure, nullptr);
  testing::TempDir dir;
  auto s = OpenStore(dir);
  ASSERT_NE(s, nullptr);
  auto share = s->CreateShare("ingest", store::ShareKind::kCloud);
  auto sub = s->Mkdir(share->root, "survey 2026", {});
  std::map<std::string, std::vector<uint8_t>> files = {
      {"survey 2026/small.csv", Pattern(1000, 1)},
      {"survey 2026/large.bin", Pattern(700 * 1024 + 17, 2)},
      {"images/disk.vhd", Pattern(700 * 1024, 3)},  // a page blob in 3 parts
      {"images/boot.vhd", Pattern(4096, 4)},        // a page blob in one Put
      {"images/odd.vhd", Pattern(1000, 5)},         // not whole pages: refused
      {"empty", {}}};
  auto images = s->Mkdir(share->root, "images", {});
  for (auto& [path, data] : files) {
    store::NodeId parent = path.starts_with("images/")           ? images->id
                           : path.find('/') != std::string::npos ? sub->id
                                                                 : share->root;
    auto h = s->Create(parent, path.substr(path.rfind('/') + 1), {});
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE((*h)->Write(0, data).ok());
    ASSERT_TRUE((*h)->Close().ok());
  }
  Uploader::Options opts;
  opts.part_size_bytes = 256 * 1024;  // the large file goes up as 3 blocks
  Uploader up(
      *s, [&](uint32_t) -> cloud::ObjectStore* { return azure.get(); }, RealClock::Get(), opts);
  auto pass = up.RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->uploaded, 5u);
  EXPECT_EQ(pass->failed, 1u);
  EXPECT_EQ(s->GetAttr(s->Lookup(images->id, "odd.vhd")->id)->state, store::FileState::kFailed);
  files.erase("images/odd.vhd");
  EXPECT_EQ(azure->Head("images/odd.vhd").status().code(), StatusCode::kNotFound);
  for (auto& [path, data] : files) {
    auto got = azure->Get(path, 0, 1 << 30);
    ASSERT_TRUE(got.ok()) << path << ": " << got.status().ToString();
    EXPECT_TRUE(*got == std::string(data.begin(), data.end())) << path;
    EXPECT_EQ(azure->Head(path)->meta.count("mtime_ns"), 1u) << path;
    // Read back as a recall does: part by part, checked by the MD5s recorded at upload.
    auto copy = s->CloudCopyOf(s->Resolve("ingest", path)->id);
    ASSERT_TRUE(copy.ok()) << path << ": " << copy.status().ToString();
    Recaller recaller([&](uint32_t) -> cloud::ObjectStore* { return azure.get(); },
                      RealClock::Get(), {});
    std::vector<uint8_t> back(data.size());
    uint64_t step = copy->part_size == 0 ? std::max<uint64_t>(data.size(), 1) : copy->part_size;
    for (uint64_t off = 0; off < data.size(); off += step) {
      auto part = std::span(back).subspan(off, std::min<uint64_t>(step, data.size() - off));
      Status got = recaller.Fetch(share->id, *copy, off, part);
      ASSERT_TRUE(got.ok()) << path << ": " << got.ToString();
    }
    EXPECT_TRUE(back == data) << path;
  }
  EXPECT_EQ(*s->PendingUploads(), 0u);
}

}  // namespace
}  // namespace fieldstack::sync

namespace fieldstack::sync {
namespace {

class UploaderBandwidthTest : public ::testing::Test {
 protected:
  void Start(const std::string& timetable) {
    store::StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.clock = &clock_;
    auto s = store::Store::Open(o);
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    root_ = store_->CreateShare("c", store::ShareKind::kCloud)->root;
    Uploader::Options opts;
    opts.part_size_bytes = 256 * 1024;
    opts.schedule = *BandwidthSchedule::ParseTimetable(timetable);
    opts.sleep = [this](std::chrono::nanoseconds d) {
      slept_ += d;
      clock_.Advance(d);
    };
    uploader_ = std::make_unique<Uploader>(
        *store_, [this](uint32_t) -> cloud::ObjectStore* { return &mem_; }, clock_, opts);
  }
  void Write(const std::string& name, size_t bytes) {
    auto h = store_->Create(root_, name, {});
    ASSERT_TRUE((*h)->Write(0, Pattern(bytes, 1)).ok());
    ASSERT_TRUE((*h)->Close().ok());
  }

  FakeClock clock_;  // starts Thursday 2026-01-01 00:00 UTC
  testing::TempDir dir_;
  cloud::memory::MemoryStore mem_{clock_};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Uploader> uploader_;
  store::NodeId root_ = 0;
  std::chrono::nanoseconds slept_{0};
};

TEST_F(UploaderBandwidthTest, UploadRateFollowsTheScheduleWithinFivePercent) {
  Start("1M");
  Write("big", 31 << 20);  // 31 MiB at 1 MiB/s after a 1 MiB burst: 30 s
  auto pass = uploader_->RunOnce();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->uploaded, 1u);
  double secs = std::chrono::duration<double>(slept_).count();
  EXPECT_NEAR(secs / 30.0, 1.0, 0.05) << secs << " s";
}

TEST_F(UploaderBandwidthTest, PausedWindowUploadsNothingAndResumesAfter) {
  // Thursday: paused until 06:00, then unlimited.
  Start("Thu-00:00,0 Thu-06:00,off");
  Write("f", 1000);
  auto paused = uploader_->RunOnce();
  ASSERT_TRUE(paused.ok());
  EXPECT_EQ(paused->uploaded, 0u);
  EXPECT_EQ(*store_->PendingUploads(), 1u);
  clock_.Advance(std::chrono::hours(6));
  EXPECT_EQ(uploader_->RunOnce()->uploaded, 1u);
}

}  // namespace
}  // namespace fieldstack::sync

namespace fieldstack::sync {
namespace {

// Offline operation: the box keeps taking data while the cloud is unreachable, and the queue
// drains, each version once and intact, when it returns.
TEST(UploaderOfflineTest, QueueDrainsIntactWhenTheCloudComesBack) {
  testing::Azurite azurite;  // a private instance: this test stops and restarts it
  ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
  auto azure = AzureContainer(azurite.endpoint(), "offline");
  ASSERT_NE(azure, nullptr);
  testing::TempDir dir;
  auto s = OpenStore(dir);
  ASSERT_NE(s, nullptr);
  store::NodeId root = s->CreateShare("field", store::ShareKind::kCloud)->root;
  std::map<std::string, std::vector<uint8_t>> want;
  auto write = [&](const std::string& name, std::vector<uint8_t> data) {
    auto existing = s->Lookup(root, name);
    auto h = existing.ok() ? s->OpenFile(existing->id, true) : s->Create(root, name, {});
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE((*h)->Write(0, data).ok());
    ASSERT_TRUE((*h)->Close().ok());
    want[name] = std::move(data);
  };
  Uploader::Options opts;
  opts.part_size_bytes = 64 * 1024;
  opts.backoff_base = std::chrono::milliseconds(20);
  opts.backoff_max = std::chrono::milliseconds(100);
  opts.max_attempts = 1000;
  Uploader up(
      *s, [&](uint32_t) -> cloud::ObjectStore* { return azure.get(); }, RealClock::Get(), opts);
  for (int i = 0; i < 4; ++i) write("before-" + std::to_string(i), Pattern(5000 + i, i));
  write("big", Pattern(300 * 1024, 9));
  ASSERT_EQ(up.RunOnce()->uploaded, 5u);

  azurite.Stop();
  for (int i = 0; i < 4; ++i) write("during-" + std::to_string(i), Pattern(7000 + i, 20 + i));
  write("big", Pattern(310 * 1024, 30));  // a new version while offline
  auto offline = up.RunOnce();
  ASSERT_TRUE(offline.ok());
  EXPECT_EQ(offline->uploaded, 0u);
  EXPECT_GT(offline->retried, 0u);
  EXPECT_EQ(*s->PendingUploads(), 5u);

  azurite.Restart();
  ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
  for (int pass = 0; pass < 200 && *s->PendingUploads() > 0; ++pass) {
    ASSERT_TRUE(up.RunOnce().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  EXPECT_EQ(*s->PendingUploads(), 0u);
  auto listed = azure->List("", "", 100);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->objects.size(), want.size());
  for (auto& [name, data] : want) {
    auto got = azure->Get(name, 0, 1 << 30);
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_TRUE(*got == std::string(data.begin(), data.end())) << name;
  }
}

}  // namespace
}  // namespace fieldstack::sync

namespace fieldstack::sync {
namespace {

// Uploads through a seeded fault proxy (30 % of requests: 500, 503, 429, reset, flipped byte,
// truncated body, latency) end with every object intact and a bounded number of requests.
// Through the seeded fault proxy: 500/503/429 answers, resets, truncated bodies, flipped bytes,
// delays and blackholes (silent for 3 s; the client gives up after 1 s without a byte) hit 30 %
// of the requests. Seconds long here; FS_FAULT_FILES=2000 makes it minutes long.
TEST(UploaderFaultTest, EveryObjectArrivesIntactThroughInjectedFaults) {
  auto& azurite = testing::Azurite::Shared();
  ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
  std::string direct = azurite.endpoint();
  uint16_t azurite_port =
      static_cast<uint16_t>(std::atoi(direct.substr(direct.rfind(':') + 1).c_str()));
  testing::FaultProxy proxy("127.0.0.1", azurite_port, {.seed = 42, .fault_rate = 0.3});
  std::string via_proxy =
      "http://127.0.0.1:" + std::to_string(proxy.port()) + "/" + testing::Azurite::kAccount;
  cloud::azure_blob::AzureConfig config{direct, testing::Azurite::kAccount, testing::Azurite::kKey,
                                        "", "faults"};
  config.http.stall_timeout = std::chrono::seconds(1);
  const int files = std::getenv("FS_FAULT_FILES") ? std::atoi(std::getenv("FS_FAULT_FILES")) : 20;
  auto check = AzureContainer(direct, "faults");
  ASSERT_NE(check, nullptr);
  config.endpoint = via_proxy;
  auto faulty = cloud::azure_blob::AzureBlobStore::Open(config, RealClock::Get());
  ASSERT_TRUE(faulty.ok());

  testing::TempDir dir;
  auto s = OpenStore(dir);
  ASSERT_NE(s, nullptr);
  store::NodeId root = s->CreateShare("field", store::ShareKind::kCloud)->root;
  Files want = WriteFiles(*s, root, files, 200 * 1024, 3000);
  Uploader::Options opts;
  opts.part_size_bytes = 64 * 1024;
  opts.backoff_base = std::chrono::milliseconds(10);
  opts.backoff_max = std::chrono::milliseconds(40);
  opts.max_attempts = 100;
  CopyLog log(dir.path() + "/logs", RealClock::Get());
  Uploader up(
      *s, [&](uint32_t) -> cloud::ObjectStore* { return faulty->get(); }, RealClock::Get(), opts,
      &log);
  size_t retried = 0, failed = 0, conflicts = 0;
  // The first pass queues the files; then passes run until the queue is empty.
  for (int pass = 0; pass < 400 + files * 10 && (pass == 0 || *s->PendingUploads() > 0); ++pass) {
    auto p = up.RunOnce();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    retried += p->retried;
    failed += p->failed;
    conflicts += p->conflicts;
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
  }
  EXPECT_EQ(*s->PendingUploads(), 0u);
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(conflicts, 0u);
  ExpectArrived(
      *check, want,
      "\ncopy log:\n" +
          platform::ReadFileToString(dir.path() + "/logs/field/upload.log").value_or("(none)"));
  // Per 20 files: 15 single Puts + 5 files x (4 blocks + 1 block list + 1 HEAD) = 45 requests
  // without faults.
  auto counts = proxy.counts();
  int faults = proxy.requests() - counts[testing::FaultProxy::Fault::kNone];
  EXPECT_GT(faults, 5) << "the proxy should have injected faults";
  EXPECT_GT(retried, 0u);
  EXPECT_GT(counts[testing::FaultProxy::Fault::kBlackhole], 0) << "no blackhole was drawn";
  EXPECT_LE(proxy.requests(), 45 * files / 20 + 3 * faults) << "bounded retries, no hot loop";
}

}  // namespace
}  // namespace fieldstack::sync

namespace fieldstack::sync {
namespace {

// A real lossy link: iptables drops 30 % of the packets to and from a private Azurite, and
// for 3 s in the middle all of them (a blackhole). TCP and the uploader's retries get every
// object there intact, with a bounded number of attempts.
TEST(UploaderLossTest, UploadsArriveIntactThrough30PercentPacketLossAndABlackhole) {
  testing::Azurite azurite;  // its own port: the loss hits no other test
  ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
  auto direct = AzureContainer(azurite.endpoint(), "lossy");
  ASSERT_NE(direct, nullptr);
  cloud::azure_blob::AzureConfig config{azurite.endpoint(), testing::Azurite::kAccount,
                                        testing::Azurite::kKey, "", "lossy"};
  config.http.stall_timeout = std::chrono::seconds(3);
  config.http.connect_timeout = std::chrono::seconds(3);
  auto lossy = cloud::azure_blob::AzureBlobStore::Open(config, RealClock::Get());
  ASSERT_TRUE(lossy.ok());
  testing::TempDir dir;
  auto s = OpenStore(dir);
  ASSERT_NE(s, nullptr);
  store::NodeId root = s->CreateShare("field", store::ShareKind::kCloud)->root;
  Files want = WriteFiles(*s, root, 8, 300 * 1024, 40 * 1024);
  Uploader::Options opts;
  opts.part_size_bytes = 64 * 1024;
  opts.backoff_base = std::chrono::milliseconds(100);
  opts.backoff_max = std::chrono::seconds(1);
  opts.max_attempts = 50;
  Uploader up(
      *s, [&](uint32_t) -> cloud::ObjectStore* { return lossy->get(); }, RealClock::Get(), opts);
  int port = std::atoi(azurite.endpoint().substr(azurite.endpoint().rfind(':') + 1).c_str());
  size_t retried = 0, failed = 0;
  {
    testing::PacketLoss loss(port, 0.3);
    ASSERT_TRUE(loss.ok()) << loss.error();
    std::thread blackhole([&] {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      loss.Blackhole(std::chrono::seconds(3));
    });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (int pass = 0;
         (pass == 0 || *s->PendingUploads() > 0) && std::chrono::steady_clock::now() < deadline;
         ++pass) {
      auto p = up.RunOnce();
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      retried += p->retried;
      failed += p->failed;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    blackhole.join();
    EXPECT_GT(loss.Dropped(), 10) << "the link was not lossy";
  }
  EXPECT_EQ(*s->PendingUploads(), 0u);
  EXPECT_EQ(failed, 0u);
  EXPECT_LE(retried, 8u * 10) << "bounded retries";
  ExpectArrived(*direct, want);
}

// A crash after the cloud committed a version but before its etag was recorded, then a new
// version: the object carries our owner mark, so the new version replaces it (no false
// conflict). A foreign object without the mark still is a conflict (ObjectChangedInTheCloud...).
TEST_F(UploaderTest, OwnUnrecordedUploadIsReplacedNotAConflict) {
  store::NodeId n = Write(root_, "f", Pattern(100, 40));
  Drain();
  // Simulate the lost record: the cloud has a newer upload of this file than the Store knows.
  auto head = mem_.Head("f");
  ASSERT_TRUE(head.ok());
  cloud::PutOptions o;
  o.meta = head->meta;  // the same owner mark
  ASSERT_TRUE(mem_.Put("f", std::span<const uint8_t>(), o).ok());
  auto v2 = Pattern(300, 41);
  Write(root_, "f", v2);
  auto pass = Drain();
  EXPECT_EQ(pass.conflicts, 0u);
  EXPECT_EQ(pass.uploaded, 1u);
  EXPECT_EQ(Cloud("f"), Str(v2));
  EXPECT_EQ(store_->GetAttr(n)->state, store::FileState::kClean);
}

// A crash after the cloud committed a file's first upload but before the Store recorded it,
// then the file is renamed or deleted: under mirror its object must not stay behind. The
// attempt was noted before the upload, so the key is released as "maybe ours" and deleted if
// it carries that file's owner mark; someone else's object there is kept.
TEST_F(UploaderTest, MirrorDeletesAnUnrecordedUploadOfARenamedOrDeletedFile) {
  mirror_ = true;
  auto lost_upload = [&](const std::string& name, const std::string& mark) {
    store::NodeId n = Write(root_, name, Pattern(50, 50));
    ASSERT_TRUE(store_->NoteUploadAttempt(n, cloud_share_, name).ok());
    cloud::PutOptions o;
    o.meta = {{"fieldstack_node", mark.empty() ? std::to_string(n) : mark}};
    auto data = Pattern(50, 50);
    ASSERT_TRUE(mem_.Put(name, data, o).ok());
  };
  lost_upload("renamed-away", "");
  lost_upload("deleted", "");
  lost_upload("theirs", "somebody-else");
  ASSERT_TRUE(store_->Rename(root_, "renamed-away", root_, "new-name").ok());
  ASSERT_TRUE(store_->Unlink(root_, "deleted").ok());
  ASSERT_TRUE(store_->Unlink(root_, "theirs").ok());
  Drain();
  auto more = uploader_->RunOnce();  // the release made by the rename's upload
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(mem_.Head("renamed-away").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(mem_.Head("deleted").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Cloud("new-name"), Str(Pattern(50, 50)));
  EXPECT_TRUE(mem_.Head("theirs").ok());  // not this box's file: kept
}

// Deleting a share deletes nothing in the cloud, even under `mirror` and with the old share's
// target still known (a daemon that has not reloaded its configuration): its unseen events
// (an unlink, a rename) never become deletes, what `mirror` still had to delete is kept, and
// only the unfinished multi-part upload of one of its files is aborted. A share made again
// under the same name gets a new id: nothing of the old one applies to it.
TEST_F(UploaderTest, ADeletedShareDeletesNothingInTheCloud) {
  mirror_ = true;
  Write(root_, "a.txt", Pattern(100, 60));
  auto dir = store_->Mkdir(root_, "dir", {});
  ASSERT_TRUE(dir.ok());
  Write(dir->id, "b.txt", Pattern(70 * 1024, 61));  // two parts
  Write(root_, "gone.txt", Pattern(10, 62));
  Drain();
  ASSERT_EQ(mem_.List("", "", 100)->objects.size(), 3u);
  // A new version of b.txt goes up part way, then the link drops.
  Write(dir->id, "b.txt", Pattern(70 * 1024, 63));
  faulty_.fail_parts_after = faulty_.parts + 1;
  ASSERT_EQ(uploader_->RunOnce()->retried, 1u);
  faulty_.fail_parts_after = -1;
  // Changes the uploader has not seen: `mirror` would delete gone.txt and a.txt for them.
  ASSERT_TRUE(store_->Unlink(root_, "gone.txt").ok());
  ASSERT_TRUE(store_->Rename(root_, "a.txt", root_, "renamed.txt").ok());
  Write(root_, "new.txt", Pattern(10, 64));
  ASSERT_TRUE(store_->DeleteShare("ingest", true).ok());

  auto again = store_->CreateShare("ingest", store::ShareKind::kCloud);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->id, cloud_share_);
  Write(again->root, "fresh.txt", Pattern(10, 65));
  Uploader::Options opts;
  opts.part_size_bytes = part_size_;
  opts.batch = 16;
  opts.mirror = [](uint32_t) { return true; };
  Uploader stale(
      *store_, [this](uint32_t) -> cloud::ObjectStore* { return &faulty_; }, clock_, opts);
  Uploader::Pass total;
  for (int i = 0; i < 5; ++i) {
    auto p = stale.RunOnce();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    total.uploaded += p->uploaded;
    total.deleted += p->deleted;
    total.failed += p->failed;
    clock_.Advance(std::chrono::seconds(30));
  }
  EXPECT_EQ(total.deleted, 0u);
  EXPECT_EQ(total.failed, 0u);
  EXPECT_EQ(total.uploaded, 1u);  // fresh.txt, to the new share
  EXPECT_EQ(Cloud("a.txt"), Str(Pattern(100, 60)));
  EXPECT_EQ(Cloud("dir/b.txt"), Str(Pattern(70 * 1024, 61)));
  EXPECT_EQ(Cloud("gone.txt"), Str(Pattern(10, 62)));
  EXPECT_EQ(Cloud("renamed.txt"), "<missing>");
  EXPECT_EQ(Cloud("new.txt"), "<missing>");
  EXPECT_EQ(Cloud("fresh.txt"), Str(Pattern(10, 65)));
  EXPECT_EQ(mem_.List("", "", 100)->objects.size(), 4u);
  EXPECT_TRUE(store_->AbandonedUploads(10)->empty()) << "b.txt's unfinished upload was aborted";
  EXPECT_EQ(*store_->PendingUploads(), 0u);
}

}  // namespace
}  // namespace fieldstack::sync
