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
  // Malformed input decodes to nothing, never throws.
  for (const char* bad : {"====", "=", "Zg=", "Z===", "!!!!"})
    EXPECT_EQ(Base64Decode(bad), "") << bad;
  EXPECT_EQ(Base64Decode("Zg=="), "f");
}

TEST(ChecksumTest, KnownValuesOfEveryS3Algorithm) {
  std::string check = "123456789";
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(check.data()), check.size());
  auto sum = [&](const char* name, size_t split) {
    auto c = Checksum::Make(name);
    EXPECT_NE(c, nullptr) << name;
    c->Update(bytes.first(split));
    c->Update(bytes.subspan(split));
    return ToHex(c->Final());
  };
  for (size_t split : {0, 3, 9}) {
    EXPECT_EQ(sum("crc32", split), "cbf43926");
    EXPECT_EQ(sum("crc32c", split), "e3069283");
    EXPECT_EQ(sum("crc64nvme", split), "ae8b14860a799888");
    EXPECT_EQ(sum("sha1", split), "f7c3bc1d808e04732adf679965ccc34ca7ae3441");
    EXPECT_EQ(sum("sha256", split),
              "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225");
  }
  EXPECT_EQ(Checksum::Make("md4"), nullptr);
  // The hardware and table paths agree on odd lengths and offsets.
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  uint32_t whole = Crc32c(0, data);
  uint32_t parts = Crc32c(Crc32c(0, std::span(data).first(13)), std::span(data).subspan(13));
  EXPECT_EQ(whole, parts);
}

}  // namespace
}  // namespace fieldstack::crypto
