#include "sync/file_uploader.h"

#include <algorithm>
#include <map>
#include <vector>

#include "crypto/hash.h"

namespace fieldstack::sync {
namespace {

std::string Md5Of(std::span<const uint8_t> data) {
  crypto::Digest d(crypto::Digest::Kind::kMd5);
  d.Update(data);
  return d.Final();
}

bool Changed(const Status& s) { return s.code() == StatusCode::kFailedPrecondition; }

}  // namespace

// After a precondition failed: is the object in the cloud really someone else's change?
// A commit that succeeded but whose answer was lost (or whose etag a crash kept us from
// recording) looks like one. The same bytes: it is this upload. Our owner mark in the
// metadata: an earlier version of this file, so this version may replace it (new_etag set).
Result<cloud::ObjectInfo> FileUploader::AlreadyThere(const UploadJob& job, const std::string& md5,
                                                     uint64_t size, std::string* new_etag) {
  auto head = cloud_.Head(job.key);
  if (head.ok() && head->size == size && head->content_md5 == md5) return *head;
  auto owner = job.meta.find(kOwnerMetaKey);
  if (head.ok() && owner != job.meta.end()) {
    auto theirs = head->meta.find(kOwnerMetaKey);
    if (theirs != head->meta.end() && theirs->second == owner->second) *new_etag = head->etag;
  }
  return FailedPreconditionError("'" + job.key + "' changed in the cloud");
}

Result<UploadReport> FileUploader::Abandon(UploadJob& job, UploadOutcome outcome) {
  if (job.upload) {
    // Best effort: the service also expires abandoned uploads.
    (void)cloud_.AbortUpload(*job.upload);
    job.upload.reset();
  }
  UploadReport r;
  r.outcome = outcome;
  return r;
}

Result<UploadReport> FileUploader::Upload(UploadJob& job) {
  FS_ASSIGN_OR_RETURN(auto handle, store_.OpenFile(job.node, /*writable=*/false));
  const uint64_t ps = options_.part_size_bytes;
  std::vector<uint8_t> buf(ps + 1);
  UploadReport report;
  crypto::Digest whole(crypto::Digest::Kind::kMd5);

  // One read tells whether the file fits one Put (reading one byte more than a part).
  auto first = handle->ReadCommitted(job.data_gen, 0, buf);
  if (!first.ok()) {
    if (Changed(first.status())) return Abandon(job, UploadOutcome::kFileChanged);
    return first.status().WithContext(kLocalReadContext);
  }
  if (*first <= ps && !job.upload) {
    std::span<const uint8_t> data(buf.data(), *first);
    cloud::PutOptions put;
    put.meta = job.meta;
    put.precondition = job.precondition;
    put.content_md5 = Md5Of(data);
    if (options_.before_send) FS_RETURN_IF_ERROR(options_.before_send(data.size()));
    auto info = cloud_.Put(job.key, data, put);
    std::string ours;
    if (!info.ok() && Changed(info.status())) {
      info = AlreadyThere(job, *put.content_md5, data.size(), &ours);
    }
    if (!info.ok() && !ours.empty()) {
      put.precondition = cloud::Precondition();
      put.precondition.if_match = ours;
      info = cloud_.Put(job.key, data, put);
    }
    if (!info.ok()) {
      if (Changed(info.status())) return Abandon(job, UploadOutcome::kConflict);
      return info.status();
    }
    report.object = *info;
    report.md5 = *put.content_md5;
    report.bytes = data.size();
    report.parts_sent = 1;
  } else {
    // Multi-part: resume the persisted upload when the service still has it.
    std::map<uint32_t, uint64_t> stored;
    if (job.upload) {
      auto parts = cloud_.ListParts(*job.upload);
      if (parts.ok()) {
        for (const auto& p : *parts) stored[p.number] = p.size;
      } else if (parts.status().code() == StatusCode::kNotFound) {
        job.upload.reset();
      } else {
        return parts.status();
      }
    }
    if (!job.upload) {
      auto size = handle->CommittedSize(job.data_gen);
      if (!size.ok()) {
        if (Changed(size.status())) return Abandon(job, UploadOutcome::kFileChanged);
        return size.status();
      }
      FS_ASSIGN_OR_RETURN(
          job.upload,
          cloud_.BeginUpload(job.key, {.meta = job.meta, .size = *size, .part_size = ps}));
    }
    // Parts are read (and hashed for the whole-object MD5) in order, then sent up to
    // `parallel_parts` at once, each with its own MD5.
    const size_t window =
        options_.pool != nullptr ? std::max<size_t>(options_.parallel_parts, 1) : 1;
    std::vector<std::vector<uint8_t>> bufs(window);
    std::vector<uint32_t> numbers;
    uint32_t n = 1;
    for (bool done = false; !done;) {
      std::vector<std::pair<uint32_t, std::span<const uint8_t>>> send;
      for (size_t w = 0; w < window && !done; ++w, ++n) {
        if (n > cloud::kMaxParts) {
          return InvalidArgumentError("file needs more than 10000 parts of " + std::to_string(ps) +
                                      " bytes");
        }
        bufs[w].resize(ps);
        uint64_t offset = uint64_t{n - 1} * ps;
        auto got = handle->ReadCommitted(job.data_gen, offset, bufs[w]);
        if (!got.ok()) {
          if (Changed(got.status())) return Abandon(job, UploadOutcome::kFileChanged);
          return got.status().WithContext(kLocalReadContext);
        }
        if (*got == 0 && n > 1) {
          done = true;  // the size is a multiple of the part size
          break;
        }
        std::span<const uint8_t> data(bufs[w].data(), *got);
        whole.Update(data);
        report.bytes += data.size();
        numbers.push_back(n);
        auto it = stored.find(n);
        if (it != stored.end() && it->second == data.size()) {
          ++report.parts_reused;  // same upload, same pinned version: same bytes
        } else {
          send.emplace_back(n, data);
        }
        if (data.size() < ps) done = true;
      }
      std::vector<Status> sent(send.size());
      auto put = [&](size_t i) {
        if (options_.before_send) {
          sent[i] = options_.before_send(send[i].second.size());
          if (!sent[i].ok()) return;
        }
        sent[i] = cloud_.PutPart(*job.upload, send[i].first, send[i].second, Md5Of(send[i].second));
      };
      if (send.size() > 1) {
        options_.pool->ParallelFor(send.size(), put);
      } else if (send.size() == 1) {
        put(0);
      }
      for (const Status& st : sent) FS_RETURN_IF_ERROR(st);
      report.parts_sent += static_cast<uint32_t>(send.size());
    }
    report.md5 = whole.Final();
    auto info = cloud_.CommitUpload(*job.upload, numbers, {job.meta, job.precondition, report.md5});
    std::string ours;
    if (!info.ok() && Changed(info.status())) {
      info = AlreadyThere(job, report.md5, report.bytes, &ours);
    }
    if (!info.ok() && !ours.empty()) {
      cloud::CommitOptions replace{job.meta, {}, report.md5};
      replace.precondition.if_match = ours;
      info = cloud_.CommitUpload(*job.upload, numbers, replace);
    }
    if (!info.ok()) {
      if (Changed(info.status())) return Abandon(job, UploadOutcome::kConflict);
      return info.status();
    }
    job.upload.reset();
    report.object = *info;
  }
  if (!report.object.content_md5.empty() && report.object.content_md5 != report.md5) {
    return CorruptionError("the service stored '" + job.key +
                           "' with another MD5 than the bytes sent");
  }
  report.outcome = UploadOutcome::kUploaded;
  return report;
}

}  // namespace fieldstack::sync
