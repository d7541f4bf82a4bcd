#pragma once

// The buffering that the CSV and JSON lines readers and writers share (csv.cc, jsonl.cc);
// internal to fs_compute_records.
//
// A reader parses records straight out of one InputBuffer: 64 KiB, grown only when a single
// record is longer than all of it. A writer formats records into one OutputBuffer that goes to
// the sink every ~64 KiB.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "compute/io.h"

namespace fieldstack::compute {

inline constexpr size_t kTextBufferBytes = 64 * 1024;

// A window on a ByteSource. Bytes [pos, end) of `data` are read and not yet consumed; `eof`
// once the source has reported its end.
// Thread safety: none; owned by one reader.
struct InputBuffer {
  explicit InputBuffer(std::unique_ptr<ByteSource> in)
      : source(std::move(in)), data(kTextBufferBytes) {}

  // Moves the unread bytes to the front and reads more; grows `data` when the unread bytes
  // fill all of it. OK and nothing read once `eof` is set. Errors are the source's.
  Status Fill();

  std::unique_ptr<ByteSource> source;
  std::vector<char> data;
  size_t pos = 0, end = 0;
  bool eof = false;
};

// Where a writer formats records before they go to `sink`.
// Thread safety: none; owned by one writer. `sink` must outlive it.
struct OutputBuffer {
  explicit OutputBuffer(ByteSink* out) : sink(out) { text.reserve(kTextBufferBytes + 4096); }

  // Counts the record just appended to `text`, and writes `text` to the sink once it holds
  // kTextBufferBytes. Errors are the sink's.
  Status EndRecord();
  // Writes what is buffered and closes the sink; OK (and nothing done) when already finished.
  Status Finish();

  ByteSink* sink;
  std::string text;
  uint64_t records = 0;
  bool finished = false;
};

}  // namespace fieldstack::compute
