#include "crypto/hash.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "crypto/key_store.h"

namespace fieldstack::crypto {
namespace {

std::span<const uint8_t> Span(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Bit-at-a-time CRC-64/NVME straight from its definition, to check the table version.
uint64_t ReferenceCrc(std::span<const uint8_t> data) {
  uint64_t crc = ~uint64_t{0};
  for (uint8_t b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ 0x9A6C9329AC4BC9B5ull : crc >> 1;
  }
  return ~crc;
}

TEST(Crc64NvmeTest, CatalogueCheckValue) {
  // The check value of CRC-64/NVME in the CRC catalogue (reveng).
  EXPECT_EQ(Crc64Nvme::Of(Span("123456789")), 0xAE8B14860A799888ull);
  EXPECT_EQ(Crc64Nvme::Of({}), 0u);
}

TEST(Crc64NvmeTest, MatchesBitwiseDefinitionAtEveryLengthAndSplit) {
  std::mt19937 rng(42);
  std::vector<uint8_t> data(3000);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t len : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 255u, 1000u, 3000u}) {
    std::span<const uint8_t> s(data.data(), len);
    EXPECT_EQ(Crc64Nvme::Of(s), ReferenceCrc(s)) << len;
    Crc64Nvme split;
    split.Update(s.subspan(0, len / 3));
    split.Update(s.subspan(len / 3));
    EXPECT_EQ(split.Final(), ReferenceCrc(s)) << "split " << len;
  }
}

TEST(Crc64NvmeTest, WireFormatIsLittleEndian) {
  auto w = Crc64Nvme::ToWire(0x0102030405060708ull);
  EXPECT_EQ(w[0], 0x08);
  EXPECT_EQ(w[7], 0x01);
}

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(ToHex(Digest::Md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(ToHex(Digest::Md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(ToHex(Digest::Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Digest d(Digest::Kind::kMd5);
  d.Update("a");
  d.Update("bc");
  EXPECT_EQ(ToHex(d.Final()), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(Base64(Digest::Md5("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
}

}  // namespace
}  // namespace fieldstack::crypto
