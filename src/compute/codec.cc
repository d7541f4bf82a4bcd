// Byte sources and sinks (strings, files), zstd/gzip wrappers and the format/compression
// name helpers of io.h.
//
// The compressors stream: each wrapper holds one input and one output buffer (64 KiB-ish, the
// sizes the libraries recommend) and never the whole stream. Readers accept concatenated
// frames/members (what `cat a.zst b.zst` or `cat a.gz b.gz` gives); a stream that ends inside
// a frame is InvalidArgument ("truncated").

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "compute/io.h"

namespace fieldstack::compute {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;

class StringSourceImpl final : public ByteSource {
 public:
  explicit StringSourceImpl(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    size_t n = std::min(out.size(), data_.size() - pos_);
    std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

class FileSourceImpl final : public ByteSource {
 public:
  FileSourceImpl(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FileSourceImpl() override { ::close(fd_); }
  Result<size_t> Read(std::span<uint8_t> out) override {
    for (;;) {
      ssize_t n = ::read(fd_, out.data(), out.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoStatus(errno, "read " + path_);
    }
  }

 private:
  int fd_;
  std::string path_;
};

class FileSinkImpl final : public ByteSink {
 public:
  FileSinkImpl(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FileSinkImpl() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Write(std::string_view data) override {
    if (fd_ < 0) return FailedPreconditionError("write to closed file " + path_);
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write " + path_);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "fsync " + path_);
    }
    if (::close(fd) != 0) return ErrnoStatus(errno, "close " + path_);
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
};

// zstd ---------------------------------------------------------------------------------------

class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(std::unique_ptr<ByteSource> inner)
      : inner_(std::move(inner)), dctx_(ZSTD_createDCtx()), in_(ZSTD_DStreamInSize()) {}
  ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }

  Result<size_t> Read(std::span<uint8_t> out) override {
    if (out.empty()) return size_t{0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    while (ob.pos == 0) {
      if (in_pos_ == in_len_ && !eof_) {
        FS_ASSIGN_OR_RETURN(size_t n, inner_->Read(std::span<uint8_t>(in_.data(), in_.size())));
        in_pos_ = 0;
        in_len_ = n;
        eof_ = n == 0;
      }
      if (in_pos_ == in_len_ && eof_ && !in_frame_) return size_t{0};
      // With no input left this flushes what the decoder still holds of the current frame.
      ZSTD_inBuffer ib{in_.data(), in_len_, in_pos_};
      size_t r = ZSTD_decompressStream(dctx_, &ob, &ib);
      in_pos_ = ib.pos;
      if (ZSTD_isError(r)) {
        return InvalidArgumentError(std::string("zstd: ") + ZSTD_getErrorName(r));
      }
      in_frame_ = r != 0;
      if (eof_ && ob.pos == 0 && in_pos_ == in_len_ && in_frame_) {
        return InvalidArgumentError("zstd: truncated input");
      }
    }
    return ob.pos;
  }

 private:
  std::unique_ptr<ByteSource> inner_;
  ZSTD_DCtx* dctx_;
  std::vector<uint8_t> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool eof_ = false;
  bool in_frame_ = false;  // inside a frame that is not complete yet
};

class ZstdSink final : public ByteSink {
 public:
  ZstdSink(std::unique_ptr<ByteSink> inner, int level)
      : inner_(std::move(inner)), cctx_(ZSTD_createCCtx()), out_(ZSTD_CStreamOutSize()) {
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
  }
  ~ZstdSink() override { ZSTD_freeCCtx(cctx_); }

  Status Write(std::string_view data) override {
    if (closed_) return FailedPreconditionError("zstd: write after close");
    ZSTD_inBuffer ib{data.data(), data.size(), 0};
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob{out_.data(), out_.size(), 0};
      size_t r = ZSTD_compressStream2(cctx_, &ob, &ib, ZSTD_e_continue);
      if (ZSTD_isError(r)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(r));
      if (ob.pos > 0) FS_RETURN_IF_ERROR(inner_->Write(Bytes(ob.pos)));
    }
    return Status::Ok();
  }
  Status Close() override {
    if (closed_) return Status::Ok();
    closed_ = true;
    ZSTD_inBuffer ib{nullptr, 0, 0};
    for (;;) {
      ZSTD_outBuffer ob{out_.data(), out_.size(), 0};
      size_t r = ZSTD_compressStream2(cctx_, &ob, &ib, ZSTD_e_end);
      if (ZSTD_isError(r)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(r));
      if (ob.pos > 0) FS_RETURN_IF_ERROR(inner_->Write(Bytes(ob.pos)));
      if (r == 0) break;
    }
    return inner_->Close();
  }

 private:
  std::string_view Bytes(size_t n) const {
    return std::string_view(reinterpret_cast<const char*>(out_.data()), n);
  }
  std::unique_ptr<ByteSink> inner_;
  ZSTD_CCtx* cctx_;
  std::vector<uint8_t> out_;
  bool closed_ = false;
};

// gzip ---------------------------------------------------------------------------------------

class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(std::unique_ptr<ByteSource> inner)
      : inner_(std::move(inner)), in_(kBufferBytes) {
    std::memset(&zs_, 0, sizeof zs_);
    init_ok_ = inflateInit2(&zs_, 15 + 32) == Z_OK;
  }
  ~GzipSource() override {
    if (init_ok_) inflateEnd(&zs_);
  }

  Result<size_t> Read(std::span<uint8_t> out) override {
    if (!init_ok_) return InternalError("gzip: inflateInit2 failed");
    if (out.empty() || done_) return size_t{0};
    zs_.next_out = out.data();
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(out.size(), 1u << 30));
    while (zs_.next_out == out.data()) {
      if (zs_.avail_in == 0) {
        if (eof_) {
          if (in_member_) return InvalidArgumentError("gzip: truncated input");
          done_ = true;
          return size_t{0};
        }
        FS_ASSIGN_OR_RETURN(size_t n, inner_->Read(std::span<uint8_t>(in_.data(), in_.size())));
        zs_.next_in = in_.data();
        zs_.avail_in = static_cast<uInt>(n);
        if (n == 0) {
          eof_ = true;
          continue;
        }
      }
      if (!in_member_) {
        // A new member starts (the first one, or one concatenated after the previous).
        in_member_ = true;
      }
      int r = inflate(&zs_, Z_NO_FLUSH);
      if (r == Z_STREAM_END) {
        in_member_ = false;
        if (inflateReset(&zs_) != Z_OK) return InternalError("gzip: inflateReset failed");
        continue;
      }
      if (r == Z_BUF_ERROR && zs_.avail_in == 0) continue;  // needs more input
      if (r != Z_OK) {
        return InvalidArgumentError(std::string("gzip: ") + (zs_.msg ? zs_.msg : "bad data"));
      }
    }
    return static_cast<size_t>(zs_.next_out - out.data());
  }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::vector<uint8_t> in_;
  z_stream zs_;
  bool init_ok_ = false;
  bool eof_ = false;
  bool done_ = false;
  bool in_member_ = false;
};

class GzipSink final : public ByteSink {
 public:
  GzipSink(std::unique_ptr<ByteSink> inner, int level)
      : inner_(std::move(inner)), out_(kBufferBytes) {
    std::memset(&zs_, 0, sizeof zs_);
    if (level < 0 || level > 9) level = Z_DEFAULT_COMPRESSION;
    init_ok_ = deflateInit2(&zs_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipSink() override {
    if (init_ok_) deflateEnd(&zs_);
  }

  Status Write(std::string_view data) override {
    if (!init_ok_) return InternalError("gzip: deflateInit2 failed");
    if (closed_) return FailedPreconditionError("gzip: write after close");
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs_.avail_in = static_cast<uInt>(data.size());
    return Pump(Z_NO_FLUSH);
  }
  Status Close() override {
    if (!init_ok_) return InternalError("gzip: deflateInit2 failed");
    if (closed_) return Status::Ok();
    closed_ = true;
    zs_.next_in = nullptr;
    zs_.avail_in = 0;
    FS_RETURN_IF_ERROR(Pump(Z_FINISH));
    return inner_->Close();
  }

 private:
  Status Pump(int flush) {
    for (;;) {
      zs_.next_out = out_.data();
      zs_.avail_out = static_cast<uInt>(out_.size());
      int r = deflate(&zs_, flush);
      if (r == Z_STREAM_ERROR) return InternalError("gzip: deflate failed");
      size_t n = out_.size() - zs_.avail_out;
      if (n > 0) {
        FS_RETURN_IF_ERROR(
            inner_->Write(std::string_view(reinterpret_cast<const char*>(out_.data()), n)));
      }
      if (flush == Z_FINISH ? r == Z_STREAM_END : (zs_.avail_in == 0 && zs_.avail_out != 0)) {
        return Status::Ok();
      }
    }
  }

  std::unique_ptr<ByteSink> inner_;
  std::vector<uint8_t> out_;
  z_stream zs_;
  bool init_ok_ = false;
  bool closed_ = false;
};

std::string_view StripCompressionExt(std::string_view name) {
  for (std::string_view ext : {".zst", ".gz"}) {
    if (name.size() > ext.size() && name.ends_with(ext))
      return name.substr(0, name.size() - ext.size());
  }
  return name;
}

}  // namespace

std::unique_ptr<ByteSource> StringSource(std::string data) {
  return std::make_unique<StringSourceImpl>(std::move(data));
}

Status StringSink::Write(std::string_view data) {
  data_.append(data);
  return Status::Ok();
}

Result<std::unique_ptr<ByteSource>> FileSource(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  return std::unique_ptr<ByteSource>(std::make_unique<FileSourceImpl>(fd, path));
}

Result<std::unique_ptr<ByteSink>> FileSink(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "create " + path);
  return std::unique_ptr<ByteSink>(std::make_unique<FileSinkImpl>(fd, path));
}

Result<Compression> ParseCompression(std::string_view name) {
  if (name.empty() || name == "none") return Compression::kNone;
  if (name == "zstd" || name == "zst") return Compression::kZstd;
  if (name == "gzip" || name == "gz") return Compression::kGzip;
  return InvalidArgumentError("unknown compression '" + std::string(name) +
                              "' (expected none, zstd or gzip)");
}

Compression CompressionOfName(std::string_view name) {
  if (name.ends_with(".zst")) return Compression::kZstd;
  if (name.ends_with(".gz")) return Compression::kGzip;
  return Compression::kNone;
}

std::unique_ptr<ByteSource> Decompress(std::unique_ptr<ByteSource> inner, Compression c) {
  switch (c) {
    case Compression::kZstd:
      return std::make_unique<ZstdSource>(std::move(inner));
    case Compression::kGzip:
      return std::make_unique<GzipSource>(std::move(inner));
    case Compression::kNone:
      break;
  }
  return inner;
}

std::unique_ptr<ByteSink> Compress(std::unique_ptr<ByteSink> inner, Compression c, int level) {
  switch (c) {
    case Compression::kZstd:
      return std::make_unique<ZstdSink>(std::move(inner), level);
    case Compression::kGzip:
      return std::make_unique<GzipSink>(std::move(inner), level);
    case Compression::kNone:
      break;
  }
  return inner;
}

Result<Format> ParseFormat(std::string_view name) {
  if (name == "csv") return Format::kCsv;
  if (name == "jsonl" || name == "json" || name == "ndjson") return Format::kJsonl;
  return InvalidArgumentError("unknown format '" + std::string(name) + "' (expected csv or jsonl)");
}

Result<Format> FormatOfName(std::string_view name) {
  std::string_view base = StripCompressionExt(name);
  if (base.ends_with(".csv") || base.ends_with(".tsv")) return Format::kCsv;
  if (base.ends_with(".jsonl") || base.ends_with(".ndjson") || base.ends_with(".json")) {
    return Format::kJsonl;
  }
  return NotFoundError("no known format extension in '" + std::string(name) + "'");
}

std::unique_ptr<RecordReader> MakeReader(Format format, std::unique_ptr<ByteSource> in,
                                         CsvOptions options) {
  if (format == Format::kCsv) return MakeCsvReader(std::move(in), options);
  return MakeJsonlReader(std::move(in));
}

std::unique_ptr<RecordWriter> MakeWriter(Format format, ByteSink* out, char delimiter) {
  if (format == Format::kCsv) return MakeCsvWriter(out, delimiter);
  return MakeJsonlWriter(out);
}

}  // namespace fieldstack::compute
