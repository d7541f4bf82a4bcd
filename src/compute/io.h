#pragma once

// Byte streams and record readers/writers of the compute pipelines (docs/compute.md).
//
// Everything streams: a reader holds one buffer (64 KiB by default) and one record, a writer
// one output buffer, so a 10 GB input needs no more memory than a small one.
//
// Formats:
//  - CSV (RFC 4180): a header row names the fields; quoted fields may hold the delimiter,
//    quotes ("") and newlines; CRLF or LF line ends; a UTF-8 BOM is skipped. Type inference:
//    a field that parses whole as an integer (int64), a float (finite, decimal or exponent
//    form) or true/false (case-insensitive) gets that type, keeping its text; an empty field is
//    null; everything else is a string. A row with more fields than the header is an error
//    naming the line; a row with fewer gets nulls for the rest.
//  - JSON lines: one object per line; nested objects are flattened with '.' ("a.b"); arrays
//    are kept as their JSON text (a string). Blank lines are skipped; a line that is not a JSON
//    object is an error naming the line.
//  - Compression: zstd and gzip readers/writers wrap any ByteSource/ByteSink.
//
// Errors: InvalidArgument for malformed input (the message names the line, and the field
// where it can), whatever the underlying source/sink returns otherwise.
//
// Thread safety: none; one run uses a reader or writer at a time.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "compute/record.h"

namespace fieldstack::compute {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes; 0 at the end of the stream.
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Write(std::string_view data) = 0;
  // Flushes everything written (and a compressor's trailer). Write after Close is an error.
  virtual Status Close() = 0;
};

// Adapters over a string (tests) and over a file descriptor-backed file on disk.
std::unique_ptr<ByteSource> StringSource(std::string data);
class StringSink final : public ByteSink {
 public:
  Status Write(std::string_view data) override;
  Status Close() override { return Status::Ok(); }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};
Result<std::unique_ptr<ByteSource>> FileSource(const std::string& path);
// Creates or truncates `path`; Close fsyncs.
Result<std::unique_ptr<ByteSink>> FileSink(const std::string& path);

enum class Compression { kNone, kZstd, kGzip };
// "none"/"", "zstd", "gzip" (InvalidArgument otherwise).
Result<Compression> ParseCompression(std::string_view name);
// By the name's extension: ".zst" -> kZstd, ".gz" -> kGzip, else kNone.
Compression CompressionOfName(std::string_view name);
// Decompressing source / compressing sink (kNone returns the inner one).
std::unique_ptr<ByteSource> Decompress(std::unique_ptr<ByteSource> inner, Compression c);
std::unique_ptr<ByteSink> Compress(std::unique_ptr<ByteSink> inner, Compression c, int level = 3);

enum class Format { kCsv, kJsonl };
// "csv", "jsonl" (also "json", "ndjson").
Result<Format> ParseFormat(std::string_view name);
// By the name's extension after stripping .zst/.gz: ".csv"/".tsv" -> kCsv, ".jsonl"/".ndjson"/
// ".json" -> kJsonl; NotFound otherwise.
Result<Format> FormatOfName(std::string_view name);

struct CsvOptions {
  char delimiter = ',';
  bool infer_types = true;  // false: every non-empty field is a string
};

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // Fills `rec` with the next record (reusing its storage); false at the end of input.
  // rec.seq is set to the record's ordinal (1, 2, ...).
  virtual Result<bool> Next(Record& rec) = 0;
  // The 1-based line where the last record returned started (for error messages).
  virtual uint64_t line() const = 0;
};

class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  // CSV: the first record's schema is the header; a later record with another schema is
  // written by name into the header's columns (missing -> empty; a field not in the header is
  // InvalidArgument naming it). Strings are quoted when they hold the delimiter, a quote, CR or
  // LF, or begin/end with a space. JSONL: one object per line, typed values, "a.b" kept flat.
  virtual Status Write(const Record& rec) = 0;
  // Writes what is buffered and closes the sink.
  virtual Status Finish() = 0;
  virtual uint64_t records() const = 0;
};

std::unique_ptr<RecordReader> MakeCsvReader(std::unique_ptr<ByteSource> in,
                                            CsvOptions options = {});
std::unique_ptr<RecordReader> MakeJsonlReader(std::unique_ptr<ByteSource> in);
std::unique_ptr<RecordReader> MakeReader(Format format, std::unique_ptr<ByteSource> in,
                                         CsvOptions options = {});
std::unique_ptr<RecordWriter> MakeCsvWriter(ByteSink* out, char delimiter = ',');
std::unique_ptr<RecordWriter> MakeJsonlWriter(ByteSink* out);
std::unique_ptr<RecordWriter> MakeWriter(Format format, ByteSink* out, char delimiter = ',');

// Parses one JSON object (an MQTT payload) into `rec` with the JSONL reader's rules.
Status ParseJsonRecord(std::string_view json, Record& rec);
// One record as a JSON object (no newline): what MQTT and webhook sinks send.
std::string RecordToJson(const Record& rec);

}  // namespace fieldstack::compute
