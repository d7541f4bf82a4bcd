#pragma once

// ChunkFile is the backing file of one Store file: its data as fixed-size chunks, each chunk
// with two slots (A and B) so that a committed chunk is never overwritten in place. The format
// is in docs/design/store-format.md; in short:
//
//   pair j at j * 2 * slot_size; slot = [header page: magic, len, generation, nonce, tag]
//                                        [payload: len sealed bytes, at most chunk_size]
//
// A write of chunk j with pending generation P goes to the slot that does not hold the chunk's
// committed content (the valid slot with the highest generation <= the file's committed
// generation), or to the slot already holding generation P. So a crash mid-write can only tear
// a slot that no commit points to. Recovery (Scrub) erases slots newer than the committed
// generation. Reads take the valid slot with the highest generation.
//
// Thread safety: not thread-safe; the Store serializes access per file.

#include <array>
#include <climits>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/thread_pool.h"
#include "crypto/chunk_codec.h"
#include "platform/file.h"

namespace fieldstack::store {

inline constexpr uint32_t kSlotHeaderBytes = 4096;  // one page, so a header never tears

class ChunkFile {
 public:
  ChunkFile(platform::File file, uint64_t file_id, uint32_t chunk_size,
            std::unique_ptr<crypto::ChunkCodec> codec);

  uint32_t chunk_size() const { return chunk_size_; }
  uint64_t slot_size() const { return uint64_t{chunk_size_} + kSlotHeaderBytes; }
  uint64_t pair_size() const { return 2 * slot_size(); }
  platform::File& file() { return file_; }

  // Reads the newest content of chunk `index` with a generation of at most `max_gen` into
  // `out` (chunk_size bytes; zero-filled past the stored length): the latest writes by
  // default, the committed content with max_gen = the committed generation. Returns the stored
  // length, 0 for a chunk never written. Corruption when that slot fails authentication.
  Result<uint32_t> Read(uint64_t index, std::span<uint8_t> out, uint64_t max_gen = UINT64_MAX);

  // Names the sealed content Read(index, ..., max_gen) returns without reading it (headers are
  // cached): equal ids mean equal bytes, because every seal of a chunk has a fresh nonce.
  struct ContentId {
    bool valid = false;  // false: no slot, the chunk reads as zeros
    uint64_t gen = 0;
    std::array<uint8_t, crypto::kNonceBytes> nonce{};
    bool operator==(const ContentId&) const = default;
  };
  Result<ContentId> Content(uint64_t index, uint64_t max_gen = UINT64_MAX);

  // Like Read for out.size() / chunk_size whole chunks from `first` on, read and opened in
  // parallel on `pool`. Corruption if any chunk fails.
  Status ReadWholeChunks(uint64_t first, std::span<uint8_t> out, ThreadPool& pool,
                         uint64_t max_gen = UINT64_MAX);

  // Seals and writes `plain` (at most chunk_size bytes) as chunk `index` at generation
  // `pending_gen`, never touching the slot that generation `committed_gen` points to.
  // REQUIRES: pending_gen > committed_gen.
  Status Write(uint64_t index, uint64_t pending_gen, uint64_t committed_gen,
               std::span<const uint8_t> plain);

  // Like Write for plain.size() / chunk_size whole chunks from `first` on, sealed and written
  // in parallel on `pool`.
  Status WriteWholeChunks(uint64_t first, uint64_t pending_gen, uint64_t committed_gen,
                          std::span<const uint8_t> plain, ThreadPool& pool);

  // Recovery after a crash: erases every slot newer than `committed_gen` and cuts the file
  // after the chunks that hold `committed_size` bytes. Syncs the file.
  Status Scrub(uint64_t committed_gen, uint64_t committed_size);

  // Cuts the backing file after the chunks needed for `size` bytes (used after a shrink has
  // been committed).
  Status CutAfter(uint64_t size);

 private:
  struct Slot {
    bool valid = false;
    uint32_t len = 0;
    uint64_t gen = 0;
    crypto::Nonce nonce{};
    crypto::Tag tag{};
  };
  using Pair = std::array<Slot, 2>;

  Result<Pair> Headers(uint64_t index);
  void ReadAhead(uint64_t index, uint64_t count);
  // Reads the newest slot of `pair` into `out`. Thread-safe (no member state changes).
  Result<uint32_t> ReadSlot(uint64_t index, const Pair& pair, std::span<uint8_t> out,
                            uint64_t max_gen);
  static int TargetSlot(const Pair& pair, uint64_t pending_gen, uint64_t committed_gen);
  // Seals `plain` into `buf` (header page + payload) and writes it to slot `target`.
  // Thread-safe for distinct buffers and slots.
  Status SealAndWrite(uint64_t index, int target, uint64_t gen, std::span<const uint8_t> plain,
                      uint8_t* buf, Slot& slot);
  void NoteWritten(uint64_t end_offset, uint64_t bytes);
  uint64_t SlotOffset(uint64_t index, int slot) const {
    return index * pair_size() + slot * slot_size();
  }

  platform::File file_;
  uint64_t file_id_;
  uint32_t chunk_size_;
  std::unique_ptr<crypto::ChunkCodec> codec_;
  uint64_t backing_size_ = 0;            // bytes in the backing file, as far as this object knows
  uint64_t last_read_ = UINT64_MAX - 1;  // chunk index of the last Read, for readahead
  uint64_t unflushed_bytes_ = 0;         // written since writeback was last started
  uint64_t prefetched_until_ = 0;        // chunks below this index were asked for
  std::unordered_map<uint64_t, Pair> headers_;  // cache; bounded by kMaxCachedHeaders
  std::vector<uint8_t> buf_;
  std::vector<std::vector<uint8_t>> bufs_;  // one per chunk of WriteWholeChunks
};

}  // namespace fieldstack::store
