#include "sync/object_meta.h"

#include <gtest/gtest.h>

#include <random>

#include "crypto/hash.h"

namespace fieldstack::sync {
namespace {

using Xattrs = std::vector<std::pair<std::string, std::string>>;

size_t MetaBytes(const cloud::ObjectMeta& meta) {
  size_t n = 0;
  for (const auto& [k, v] : meta) n += k.size() + v.size();
  return n;
}

store::Attr SomeAttr() {
  store::Attr a;
  a.mtime_ns = 1767225600123456789;
  a.mode = 0640;
  a.uid = 1000;
  a.gid = 4294967294u;
  return a;
}

std::string Binary(size_t n, uint8_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return s;
}

TEST(ObjectMetaTest, RoundTripKeepsAttributesAndBinaryXattrs) {
  // What Samba writes: DOS attributes and an NT ACL, both binary with NUL bytes.
  Xattrs xattrs = {{"user.DOSATTRIB", std::string("0x20\0\0\4\0\x11\x00", 10)},
                   {"security.NTACL", Binary(300, 7)},
                   {"user.empty", ""},
                   {"user.comment", "caf\xc3\xa9"}};
  auto meta = EncodeFileMeta(SomeAttr(), xattrs, 2048);
  EXPECT_EQ(meta.at("mtime_ns"), "1767225600123456789");
  EXPECT_EQ(meta.at("mode"), "416");  // decimal, as the uploader always sent it
  EXPECT_FALSE(meta.contains(kXattrsPartialMetaKey));
  EXPECT_LE(MetaBytes(meta), 2048u);
  for (const auto& [k, v] : meta) {
    for (char c : k) EXPECT_TRUE(std::islower(c) || std::isdigit(c) || c == '_') << k;
    for (char c : v) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << k << " must be ASCII";
  }
  FileMeta back = DecodeFileMeta(meta);
  EXPECT_EQ(back.mtime_ns, 1767225600123456789);
  EXPECT_EQ(back.mode, 0640u);
  EXPECT_EQ(back.uid, 1000u);
  EXPECT_EQ(back.gid, 4294967294u);
  EXPECT_EQ(back.xattrs, xattrs);
  EXPECT_TRUE(back.xattrs_complete);
}

TEST(ObjectMetaTest, InternalXattrsNeverGoUpNorComeBack) {
  Xattrs xattrs = {{"fieldstack.object", "staging state"},
                   {"user.fieldstack.cache", "resident"},
                   {"user.keep", "1"}};
  FileMeta back = DecodeFileMeta(EncodeFileMeta(SomeAttr(), xattrs, 2048));
  EXPECT_EQ(back.xattrs, (Xattrs{{"user.keep", "1"}}));
  EXPECT_TRUE(back.xattrs_complete);

  // An object written by someone else cannot plant them in a share either.
  std::string blob;
  for (std::string name : {"fieldstack.upload", "user.ok"}) {
    blob += static_cast<char>(name.size()) + name + std::string(1, '\x01') + "x";
  }
  FileMeta planted = DecodeFileMeta({{kXattrsMetaKey, crypto::Base64(blob)}});
  EXPECT_EQ(planted.xattrs, (Xattrs{{"user.ok", "x"}}));
}

TEST(ObjectMetaTest, NoXattrsSendsOnlyTheAttributes) {
  auto meta = EncodeFileMeta(SomeAttr(), {}, 2048);
  EXPECT_EQ(meta.size(), 4u);
  FileMeta back = DecodeFileMeta(meta);
  EXPECT_TRUE(back.xattrs.empty());
  EXPECT_TRUE(back.xattrs_complete);
}

TEST(ObjectMetaTest, OverBudgetLeavesOutTheLargestFirstAndSaysSo) {
  Xattrs xattrs = {{"user.small", "s"},
                   {"security.NTACL", Binary(1500, 1)},  // 2 KiB in base64: cannot fit
                   {"user.DOSATTRIB", Binary(60, 2)},
                   {"user.medium", Binary(400, 3)}};
  auto meta = EncodeFileMeta(SomeAttr(), xattrs, 1000);
  EXPECT_LE(MetaBytes(meta), 1000u);
  EXPECT_EQ(meta.at(kXattrsPartialMetaKey), "1");
  FileMeta back = DecodeFileMeta(meta);
  EXPECT_FALSE(back.xattrs_complete);
  EXPECT_EQ(back.xattrs, (Xattrs{xattrs[0], xattrs[2], xattrs[3]})) << "order kept";

  // Tighter: the medium one goes too; the small ones stay.
  back = DecodeFileMeta(EncodeFileMeta(SomeAttr(), xattrs, 300));
  EXPECT_EQ(back.xattrs, (Xattrs{xattrs[0], xattrs[2]}));
  EXPECT_FALSE(back.xattrs_complete);

  // No room for any: the attributes still go, and the loss is still said.
  auto bare = EncodeFileMeta(SomeAttr(), xattrs, 10);
  EXPECT_FALSE(bare.contains(kXattrsMetaKey));
  back = DecodeFileMeta(bare);
  EXPECT_TRUE(back.xattrs.empty());
  EXPECT_FALSE(back.xattrs_complete);
  EXPECT_EQ(back.mode, 0640u);
}

TEST(ObjectMetaTest, StaysWithinBudgetForRandomXattrs) {
  std::mt19937 rng(42);  // fixed seed
  for (int round = 0; round < 300; ++round) {
    Xattrs xattrs;
    int n = static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      xattrs.emplace_back("user.x" + std::to_string(i), Binary(rng() % 700, rng() & 0xff));
    }
    size_t budget = 200 + rng() % 2000;
    auto meta = EncodeFileMeta(SomeAttr(), xattrs, budget);
    ASSERT_LE(MetaBytes(meta), budget) << "round " << round;
    FileMeta back = DecodeFileMeta(meta);
    // What came back is what went, in order, less what did not fit.
    size_t j = 0;
    for (const auto& x : back.xattrs) {
      while (j < xattrs.size() && xattrs[j] != x) ++j;
      ASSERT_LT(j, xattrs.size()) << "round " << round << ": " << x.first;
    }
    EXPECT_EQ(back.xattrs_complete, back.xattrs.size() == xattrs.size()) << "round " << round;
  }
}

TEST(ObjectMetaTest, MalformedValuesAreIgnored) {
  FileMeta m = DecodeFileMeta({{"mtime_ns", "12abc"},
                               {"mode", "100644"},  // another tool's octal with type bits
                               {"uid", "-1"},
                               {"gid", ""},
                               {kXattrsMetaKey, "not base64!"}});
  EXPECT_FALSE(m.mtime_ns);
  EXPECT_FALSE(m.mode);
  EXPECT_FALSE(m.uid);
  EXPECT_FALSE(m.gid);
  EXPECT_TRUE(m.xattrs.empty());
  EXPECT_FALSE(m.xattrs_complete);

  EXPECT_EQ(DecodeFileMeta({{"mtime_ns", "-5"}}).mtime_ns, -5);  // before 1970 is a time
  EXPECT_FALSE(DecodeFileMeta({{"uid", "4294967296"}}).uid);     // out of range

  // A length past the end: none of the list is trusted.
  std::string truncated = std::string("\x04user") + "\x05" + "ab";
  m = DecodeFileMeta({{kXattrsMetaKey, crypto::Base64(truncated)}});
  EXPECT_TRUE(m.xattrs.empty());
  EXPECT_FALSE(m.xattrs_complete);
  // A varint that never ends.
  m = DecodeFileMeta({{kXattrsMetaKey, crypto::Base64(std::string(8, '\xff'))}});
  EXPECT_TRUE(m.xattrs.empty());
  EXPECT_FALSE(m.xattrs_complete);
  // An empty name is not an xattr.
  m = DecodeFileMeta({{kXattrsMetaKey, crypto::Base64(std::string("\x00\x01x", 3))}});
  EXPECT_TRUE(m.xattrs.empty());
  EXPECT_FALSE(m.xattrs_complete);
  // Only "1" means partial.
  EXPECT_TRUE(DecodeFileMeta({{kXattrsPartialMetaKey, "yes"}}).xattrs_complete);
}

}  // namespace
}  // namespace fieldstack::sync
