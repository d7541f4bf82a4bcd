#pragma once

// Metrics: one prometheus-cpp registry per process, served as text at /metrics by the HTTP
// server. Metric names are declared here, in one place, so dashboards can rely on them.
//
// Thread safety: the registry and the metric objects are thread-safe (prometheus-cpp).

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace fieldstack {

namespace metric_names {
inline constexpr char kStoreCommits[] = "fieldstack_store_commits_total";
inline constexpr char kStoreCommitBatches[] = "fieldstack_store_commit_batches_total";
inline constexpr char kStoreBytesWritten[] = "fieldstack_store_bytes_written_total";
inline constexpr char kStoreBytesRead[] = "fieldstack_store_bytes_read_total";
inline constexpr char kStoreCorruptChunks[] = "fieldstack_store_corrupt_chunks_total";
inline constexpr char kStoreCommitSeconds[] = "fieldstack_store_commit_seconds";
inline constexpr char kStoreUsedBytes[] = "fieldstack_store_used_bytes";
inline constexpr char kCacheEvictions[] = "fieldstack_cache_evictions_total";
inline constexpr char kCacheRecalls[] = "fieldstack_cache_recalls_total";  // files recalled whole
inline constexpr char kCacheReadHits[] = "fieldstack_cache_read_hits_total";
inline constexpr char kCacheReadMisses[] = "fieldstack_cache_read_misses_total";
inline constexpr char kCacheResidentBytes[] = "fieldstack_cache_resident_bytes";
inline constexpr char kCacheStubBytes[] = "fieldstack_cache_stub_bytes";
inline constexpr char kCacheBackpressure[] = "fieldstack_cache_backpressure";
inline constexpr char kRefreshDurationSeconds[] = "fieldstack_refresh_duration_seconds";  // share
inline constexpr char kRefreshObjects[] = "fieldstack_refresh_objects_total";  // by result
inline constexpr char kHttpRequests[] = "fieldstack_http_requests_total";
inline constexpr char kRecallBytes[] = "fieldstack_recall_bytes_total";
inline constexpr char kRecallFailures[] = "fieldstack_recall_failures_total";
}  // namespace metric_names

class Metrics {
 public:
  Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}
  prometheus::Registry& registry() { return *registry_; }
  // The Prometheus text exposition format of every metric.
  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace fieldstack
