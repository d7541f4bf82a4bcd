#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <vector>

#include "crypto/chunk_codec.h"
#include "crypto/key_store.h"
#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::crypto {
namespace {

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7 + 3);
  return v;
}

class CodecTest : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<ChunkCodec> Make() {
    Key k;
    EXPECT_TRUE(RandomBytes(k).ok());
    return GetParam() ? NewAesGcmCodec(k) : NewChecksumCodec();
  }
};

TEST_P(CodecTest, RoundTrips) {
  auto codec = Make();
  auto plain = Pattern(5000);
  std::vector<uint8_t> sealed(plain.size()), out(plain.size());
  Nonce n;
  Tag t;
  ChunkAad aad{7, 3, 9, 5000};
  ASSERT_TRUE(codec->Seal(aad, plain, sealed, n, t).ok());
  if (GetParam()) {
    EXPECT_NE(sealed, plain);
  }
  ASSERT_TRUE(codec->Open(aad, sealed, n, t, out).ok());
  EXPECT_EQ(out, plain);
}

TEST_P(CodecTest, DetectsFlippedByteAndWrongContext) {
  auto codec = Make();
  auto plain = Pattern(4096);
  std::vector<uint8_t> sealed(plain.size()), out(plain.size());
  Nonce n;
  Tag t;
  ChunkAad aad{1, 0, 1, 4096};
  ASSERT_TRUE(codec->Seal(aad, plain, sealed, n, t).ok());
  sealed[100] ^= 1;
  EXPECT_EQ(codec->Open(aad, sealed, n, t, out).code(), StatusCode::kCorruption);
  EXPECT_EQ(out, std::vector<uint8_t>(4096, 0)) << "bad bytes must not be handed out";
  sealed[100] ^= 1;
  ChunkAad moved = aad;
  moved.chunk_index = 1;
  EXPECT_EQ(codec->Open(moved, sealed, n, t, out).code(), StatusCode::kCorruption);
  ChunkAad older = aad;
  older.generation = 0;
  EXPECT_EQ(codec->Open(older, sealed, n, t, out).code(), StatusCode::kCorruption);
}

TEST_P(CodecTest, NoncesAreFresh) {
  if (!GetParam()) GTEST_SKIP() << "the checksum codec has no nonce";
  auto codec = Make();
  auto plain = Pattern(64);
  std::vector<uint8_t> s1(64), s2(64);
  Nonce n1, n2;
  Tag t1, t2;
  ASSERT_TRUE(codec->Seal({1, 0, 1, 64}, plain, s1, n1, t1).ok());
  ASSERT_TRUE(codec->Seal({1, 0, 1, 64}, plain, s2, n2, t2).ok());
  EXPECT_NE(n1, n2);
  EXPECT_NE(s1, s2);
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "AesGcm" : "Checksum"; });

TEST(KeyStoreTest, CreatesKeyFileWithMode0600AndReloadsIt) {
  testing::TempDir dir;
  std::string path = dir / "master.key";
  auto k1 = LoadOrCreateKeyFile(path);
  ASSERT_TRUE(k1.ok()) << k1.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto k2 = LoadOrCreateKeyFile(path);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(k1->key, k2->key);
  EXPECT_EQ(k2->id, 1u);
}

TEST(KeyStoreTest, RefusesLooseModeAndMalformedFiles) {
  testing::TempDir dir;
  std::string path = dir / "master.key";
  ASSERT_TRUE(LoadOrCreateKeyFile(path).ok());
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(LoadKeyFile(path).status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(platform::WriteFileAtomic(path, "fieldstack-master-key v1\nid 1\nkey zz\n").ok());
  auto bad = LoadKeyFile(path);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("malformed"), std::string::npos);
}

TEST(KeyStoreTest, WrapUnwrapChecksKeyAndContext) {
  auto a = NewRandomMasterKey(1), b = NewRandomMasterKey(2);
  ASSERT_TRUE(a.ok() && b.ok());
  Key fk;
  ASSERT_TRUE(RandomBytes(fk).ok());
  auto w = WrapKey(*a, fk, 42);
  ASSERT_TRUE(w.ok());
  auto u = UnwrapKey(*a, *w, 42);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(*u, fk);
  EXPECT_EQ(UnwrapKey(*b, *w, 42).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(UnwrapKey(*a, *w, 43).status().code(), StatusCode::kUnauthenticated);
}

TEST(KeyStoreTest, PassphraseDerivationIsDeterministicPerSalt) {
  auto a = DeriveFromPassphrase("correct horse", "salt-1", 1);
  auto b = DeriveFromPassphrase("correct horse", "salt-1", 1);
  auto c = DeriveFromPassphrase("correct horse", "salt-2", 1);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->key, b->key);
  EXPECT_NE(a->key, c->key);
  EXPECT_EQ(DeriveFromPassphrase("short", "s", 1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fieldstack::crypto
