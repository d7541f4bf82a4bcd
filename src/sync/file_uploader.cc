#include "sync/file_uploader.h"

#include <algorithm>
#include <map>
#include <vector>

#include "common/mutex.h"
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
  // Without a look at the object nothing is known: retry later, never call it a conflict.
  if (!head.ok() && head.status().code() == StatusCode::kNotFound) {
    return UnavailableError("'" + job.key + "' refused the write but is not there; retrying");
  }
  if (!head.ok()) return head.status();
  if (head->size == size && head->content_md5 == md5) return *head;
  auto owner = job.meta.find(kOwnerMetaKey);
  if (owner != job.meta.end()) {
    auto theirs = head->meta.find(kOwnerMetaKey);
    if (theirs != head->meta.end() && theirs->second == owner->second) *new_etag = head->etag;
    if (theirs != head->meta.end() && theirs->second != owner->second) {
      // Another file of this box still owns the key (it is being renamed or deleted away, in
      // this pass or a parallel one): once it lets go, the key is released to us. Later.
      return UnavailableError("'" + job.key + "' still holds the object of another file (" +
                              theirs->second + ") of this box");
    }
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
  FS_ASSIGN_OR_RETURN(auto handle,
                      store_.OpenFile(job.node, /*writable=*/false, /*for_sync=*/true));
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
      Status paced = options_.before_send ? options_.before_send(data.size()) : Status::Ok();
      info = paced.ok() ? cloud_.Put(job.key, data, put) : Result<cloud::ObjectInfo>(paced);
    }
    if (!info.ok()) {
      if (Changed(info.status())) return Abandon(job, UploadOutcome::kConflict);
      return info.status();
    }
    report.object = *info;
    report.md5 = *put.content_md5;
    report.part_md5s = report.md5;
    report.bytes = data.size();
    report.parts_sent = 1;
  } else {
    std::vector<uint8_t>().swap(buf);  // the parts have buffers of their own
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
    // A pipeline: parts are read (and hashed for the whole-object MD5) in order while up to
    // `parallel_parts` earlier ones are sent on the pool, each with its own MD5. Memory: one
    // buffer per part in flight, plus the one being read.
    const size_t window =
        options_.pool != nullptr ? std::max<size_t>(options_.parallel_parts, 1) : 0;
    std::vector<std::vector<uint8_t>> bufs(window + 1);
    Mutex mu;
    CondVar cv;
    std::vector<size_t> free_slots;  // guarded by mu
    for (size_t i = 0; i < bufs.size(); ++i) free_slots.push_back(i);
    size_t in_flight = 0;                       // guarded by mu
    Status send_error;                          // guarded by mu: the first failed send
    std::map<uint32_t, std::string> part_md5s;  // guarded by mu: hashed where the part is sent
    auto send = [&](uint32_t number, std::span<const uint8_t> data) {
      std::string md5 = Md5Of(data);
      {
        MutexLock l(mu);
        part_md5s[number] = md5;
      }
      Status st = options_.before_send ? options_.before_send(data.size()) : Status::Ok();
      if (st.ok()) st = cloud_.PutPart(*job.upload, number, data, md5);
      return st;
    };
    std::vector<uint32_t> numbers;
    Status read_error;  // a local read failed (or the file changed): stop, then report it
    for (uint32_t n = 1;; ++n) {
      size_t slot;
      {
        MutexLock l(mu);
        cv.wait(mu, [&] { return !free_slots.empty() || !send_error.ok(); });
        if (!send_error.ok()) break;
        slot = free_slots.back();
        free_slots.pop_back();
      }
      auto release = [&, slot] {
        MutexLock l(mu);
        free_slots.push_back(slot);
      };
      bufs[slot].resize(ps);
      auto got = handle->ReadCommitted(job.data_gen, uint64_t{n - 1} * ps, bufs[slot]);
      if (!got.ok()) {
        read_error = got.status();
        release();
        break;
      }
      if (*got == 0 && n > 1) {  // the size is a multiple of the part size
        release();
        break;
      }
      if (n > cloud::kMaxParts) {
        read_error = InvalidArgumentError("file needs more than 10000 parts of " +
                                          std::to_string(ps) + " bytes");
        release();
        break;
      }
      std::span<const uint8_t> data(bufs[slot].data(), *got);
      whole.Update(data);
      report.bytes += data.size();
      numbers.push_back(n);
      auto it = stored.find(n);
      if (it != stored.end() && it->second == data.size()) {
        ++report.parts_reused;  // same upload, same pinned version: same bytes
        // Recorded from the bytes we hold, not taken on trust from the service: a recall
        // checks against it.
        std::string md5 = Md5Of(data);
        {
          MutexLock l(mu);
          part_md5s[n] = std::move(md5);
        }
        release();
      } else if (options_.pool != nullptr) {
        ++report.parts_sent;
        {
          MutexLock l(mu);
          ++in_flight;
        }
        options_.pool->Submit([&, slot, n, data] {
          Status st = send(n, data);
          MutexLock l(mu);
          if (!st.ok() && send_error.ok()) send_error = st;
          free_slots.push_back(slot);
          --in_flight;
          cv.notify_all();
        });
      } else {
        ++report.parts_sent;
        Status st = send(n, data);
        release();
        if (!st.ok()) {
          MutexLock l(mu);
          send_error = st;
          break;
        }
      }
      if (data.size() < ps) break;
    }
    {
      MutexLock l(mu);
      cv.wait(mu, [&] { return in_flight == 0; });  // the tasks use bufs, mu and cv
    }
    if (Changed(read_error)) return Abandon(job, UploadOutcome::kFileChanged);
    if (!send_error.ok()) return send_error;
    if (!read_error.ok()) {
      if (read_error.code() == StatusCode::kInvalidArgument) return read_error;
      return read_error.WithContext(kLocalReadContext);
    }
    report.md5 = whole.Final();
    report.part_size = ps;
    {
      MutexLock l(mu);
      for (uint32_t n : numbers) {
        auto md5 = part_md5s.find(n);
        FS_CHECK(md5 != part_md5s.end());  // Invariant: every part was hashed, sent or reused
        report.part_md5s += md5->second;
      }
    }
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
