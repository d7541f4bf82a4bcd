#include "store/chunk_file.h"

#include <fcntl.h>

#include <cstring>

namespace fieldstack::store {
namespace {

constexpr uint32_t kSlotMagic = 0x31435346;  // "FSC1"
constexpr size_t kHeaderWireBytes = 4 + 4 + 8 + crypto::kNonceBytes + crypto::kTagBytes;
constexpr size_t kMaxCachedHeaders = 1 << 16;
constexpr uint64_t kReadaheadChunks = 32;
constexpr uint64_t kWritebackKickBytes = 8 << 20;

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

ChunkFile::ChunkFile(platform::File file, uint64_t file_id, uint32_t chunk_size,
                     std::unique_ptr<crypto::ChunkCodec> codec)
    : file_(std::move(file)), file_id_(file_id), chunk_size_(chunk_size), codec_(std::move(codec)) {
  auto size = file_.Size();
  backing_size_ = size.ok() ? *size : 0;
}

Result<ChunkFile::Pair> ChunkFile::Headers(uint64_t index) {
  auto it = headers_.find(index);
  if (it != headers_.end()) return it->second;
  Pair pair;
  for (int s = 0; s < 2; ++s) {
    uint64_t off = SlotOffset(index, s);
    if (off >= backing_size_) continue;
    uint8_t h[kHeaderWireBytes];
    FS_ASSIGN_OR_RETURN(size_t n, file_.PRead(off, h));
    if (n < kHeaderWireBytes || GetU32(h) != kSlotMagic) continue;
    Slot& slot = pair[s];
    slot.len = GetU32(h + 4);
    slot.gen = GetU64(h + 8);
    std::memcpy(slot.nonce.data(), h + 16, crypto::kNonceBytes);
    std::memcpy(slot.tag.data(), h + 16 + crypto::kNonceBytes, crypto::kTagBytes);
    // A length past the chunk size cannot be ours: treat the header as damaged, and let the
    // read report Corruption through authentication of a clamped length.
    slot.valid = true;
    if (slot.len > chunk_size_) slot.len = chunk_size_ + 1;
  }
  if (headers_.size() >= kMaxCachedHeaders) headers_.clear();
  headers_[index] = pair;
  return pair;
}

void ChunkFile::ReadAhead(uint64_t index, uint64_t count) {
  // Sequential reader: ask the kernel for the next chunks now, so the disk works while we
  // decrypt (the A/B layout defeats the kernel's own readahead). The kernel caps one
  // WILLNEED at its readahead size, so ask in 128 KiB pieces.
  if (index == last_read_ + 1) {
    uint64_t until = std::min(index + count + kReadaheadChunks, backing_size_ / pair_size() + 1);
    for (uint64_t k = std::max(prefetched_until_, index + count); k < until; ++k) {
      for (uint64_t off = k * pair_size(); off < (k + 1) * pair_size(); off += 128 * 1024) {
        ::posix_fadvise(file_.fd(), static_cast<off_t>(off), 128 * 1024, POSIX_FADV_WILLNEED);
      }
    }
    prefetched_until_ = std::max(prefetched_until_, until);
  }
  last_read_ = index + count - 1;
}

Result<ChunkFile::ContentId> ChunkFile::Content(uint64_t index, uint64_t max_gen) {
  FS_ASSIGN_OR_RETURN(Pair pair, Headers(index));
  int best = -1;
  for (int s = 0; s < 2; ++s) {
    if (pair[s].valid && pair[s].gen <= max_gen && (best < 0 || pair[s].gen > pair[best].gen)) {
      best = s;
    }
  }
  ContentId id;
  if (best >= 0) {
    id.valid = true;
    id.gen = pair[best].gen;
    id.nonce = pair[best].nonce;
  }
  return id;
}

Result<uint32_t> ChunkFile::ReadSlot(uint64_t index, const Pair& pair, std::span<uint8_t> out,
                                     uint64_t max_gen) {
  int best = -1;
  for (int s = 0; s < 2; ++s) {
    if (pair[s].valid && pair[s].gen <= max_gen && (best < 0 || pair[s].gen > pair[best].gen)) {
      best = s;
    }
  }
  std::memset(out.data(), 0, chunk_size_);
  if (best < 0) return 0u;
  const Slot& slot = pair[best];
  std::string where = "chunk " + std::to_string(index) + " of file " + std::to_string(file_id_);
  if (slot.len > chunk_size_) return CorruptionError(where + ": bad slot header");
  FS_ASSIGN_OR_RETURN(
      size_t n, file_.PRead(SlotOffset(index, best) + kSlotHeaderBytes, out.subspan(0, slot.len)));
  if (n != slot.len) return CorruptionError(where + ": slot is short (torn write)");
  Status s = codec_->Open({file_id_, index, slot.gen, slot.len}, out.subspan(0, slot.len),
                          slot.nonce, slot.tag, out.subspan(0, slot.len));
  if (!s.ok()) return s.WithContext(where);
  return slot.len;
}

Result<uint32_t> ChunkFile::Read(uint64_t index, std::span<uint8_t> out, uint64_t max_gen) {
  FS_CHECK(out.size() >= chunk_size_);
  FS_ASSIGN_OR_RETURN(Pair pair, Headers(index));
  ReadAhead(index, 1);
  return ReadSlot(index, pair, out, max_gen);
}

Status ChunkFile::ReadWholeChunks(uint64_t first, std::span<uint8_t> out, ThreadPool& pool,
                                  uint64_t max_gen) {
  FS_CHECK(out.size() % chunk_size_ == 0);
  size_t count = out.size() / chunk_size_;
  std::vector<Pair> pairs(count);
  for (size_t i = 0; i < count; ++i) {
    FS_ASSIGN_OR_RETURN(pairs[i], Headers(first + i));
  }
  ReadAhead(first, count);
  std::vector<Status> results(count);
  pool.ParallelFor(count, [&](size_t i) {
    results[i] =
        ReadSlot(first + i, pairs[i], out.subspan(i * chunk_size_, chunk_size_), max_gen).status();
  });
  for (const Status& r : results) FS_RETURN_IF_ERROR(r);
  return Status::Ok();
}

int ChunkFile::TargetSlot(const Pair& pair, uint64_t pending_gen, uint64_t committed_gen) {
  for (int s = 0; s < 2; ++s) {
    if (pair[s].valid && pair[s].gen == pending_gen) return s;
  }
  int committed = -1;
  for (int s = 0; s < 2; ++s) {
    if (pair[s].valid && pair[s].gen <= committed_gen &&
        (committed < 0 || pair[s].gen > pair[committed].gen)) {
      committed = s;
    }
  }
  return committed == 0 ? 1 : 0;
}

Status ChunkFile::SealAndWrite(uint64_t index, int target, uint64_t gen,
                               std::span<const uint8_t> plain, uint8_t* buf, Slot& slot) {
  std::memset(buf, 0, kSlotHeaderBytes);
  slot.valid = true;
  slot.len = static_cast<uint32_t>(plain.size());
  slot.gen = gen;
  FS_RETURN_IF_ERROR(codec_->Seal({file_id_, index, gen, slot.len}, plain,
                                  {buf + kSlotHeaderBytes, plain.size()}, slot.nonce, slot.tag));
  PutU32(buf, kSlotMagic);
  PutU32(buf + 4, slot.len);
  PutU64(buf + 8, slot.gen);
  std::memcpy(buf + 16, slot.nonce.data(), crypto::kNonceBytes);
  std::memcpy(buf + 16 + crypto::kNonceBytes, slot.tag.data(), crypto::kTagBytes);
  return file_.PWrite(SlotOffset(index, target), {buf, kSlotHeaderBytes + plain.size()});
}

void ChunkFile::NoteWritten(uint64_t end_offset, uint64_t bytes) {
  backing_size_ = std::max(backing_size_, end_offset);
  // Start writeback of what a long writer has written so far, so the disk works while we
  // encrypt the next chunks and the commit's fdatasync finds little left to do.
  unflushed_bytes_ += bytes;
  if (unflushed_bytes_ >= kWritebackKickBytes) {
    ::sync_file_range(file_.fd(), 0, 0, SYNC_FILE_RANGE_WRITE);
    unflushed_bytes_ = 0;
  }
}

Status ChunkFile::Write(uint64_t index, uint64_t pending_gen, uint64_t committed_gen,
                        std::span<const uint8_t> plain) {
  FS_CHECK(pending_gen > committed_gen);
  FS_CHECK(plain.size() <= chunk_size_);
  FS_ASSIGN_OR_RETURN(Pair pair, Headers(index));
  int target = TargetSlot(pair, pending_gen, committed_gen);
  buf_.resize(kSlotHeaderBytes + chunk_size_);
  // Forget the cached pair first: if the write fails half-way the disk state is unknown.
  headers_.erase(index);
  Slot slot;
  FS_RETURN_IF_ERROR(SealAndWrite(index, target, pending_gen, plain, buf_.data(), slot));
  NoteWritten(SlotOffset(index, target) + kSlotHeaderBytes + plain.size(),
              kSlotHeaderBytes + plain.size());
  pair[target] = slot;
  headers_[index] = pair;
  return Status::Ok();
}

Status ChunkFile::WriteWholeChunks(uint64_t first, uint64_t pending_gen, uint64_t committed_gen,
                                   std::span<const uint8_t> plain, ThreadPool& pool) {
  FS_CHECK(pending_gen > committed_gen);
  FS_CHECK(plain.size() % chunk_size_ == 0);
  size_t count = plain.size() / chunk_size_;
  std::vector<Pair> pairs(count);
  std::vector<int> targets(count);
  for (size_t i = 0; i < count; ++i) {
    FS_ASSIGN_OR_RETURN(pairs[i], Headers(first + i));
    targets[i] = TargetSlot(pairs[i], pending_gen, committed_gen);
    headers_.erase(first + i);
  }
  if (bufs_.size() < count) bufs_.resize(count);
  std::vector<Status> results(count);
  std::vector<Slot> slots(count);
  pool.ParallelFor(count, [&](size_t i) {
    bufs_[i].resize(kSlotHeaderBytes + chunk_size_);
    results[i] =
        SealAndWrite(first + i, targets[i], pending_gen,
                     plain.subspan(i * chunk_size_, chunk_size_), bufs_[i].data(), slots[i]);
  });
  for (size_t i = 0; i < count; ++i) {
    FS_RETURN_IF_ERROR(results[i]);
    pairs[i][targets[i]] = slots[i];
    headers_[first + i] = pairs[i];
    NoteWritten(SlotOffset(first + i, targets[i]) + slot_size(), slot_size());
  }
  return Status::Ok();
}

Status ChunkFile::Scrub(uint64_t committed_gen, uint64_t committed_size) {
  uint64_t chunks = (committed_size + chunk_size_ - 1) / chunk_size_;
  uint64_t on_disk = (backing_size_ + pair_size() - 1) / pair_size();
  static const uint8_t kZeros[kHeaderWireBytes] = {};
  headers_.clear();
  for (uint64_t j = 0; j < std::min(chunks, on_disk); ++j) {
    FS_ASSIGN_OR_RETURN(Pair pair, Headers(j));
    for (int s = 0; s < 2; ++s) {
      if (pair[s].valid && pair[s].gen > committed_gen) {
        FS_RETURN_IF_ERROR(file_.PWrite(SlotOffset(j, s), kZeros));
      }
    }
    headers_.erase(j);
  }
  FS_RETURN_IF_ERROR(CutAfter(committed_size));
  return file_.DataSync();
}

Status ChunkFile::CutAfter(uint64_t size) {
  uint64_t chunks = (size + chunk_size_ - 1) / chunk_size_;
  uint64_t keep = chunks * pair_size();
  if (backing_size_ > keep) {
    FS_RETURN_IF_ERROR(file_.Truncate(keep));
    backing_size_ = keep;
    for (auto it = headers_.begin(); it != headers_.end();) {
      it = it->first >= chunks ? headers_.erase(it) : std::next(it);
    }
  }
  return Status::Ok();
}

}  // namespace fieldstack::store
