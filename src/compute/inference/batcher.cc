#include "compute/inference/batcher.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace fieldstack::compute::inference {
namespace {

struct Request {
  const std::vector<Tensor>* inputs = nullptr;
  Result<std::vector<Tensor>> result = InternalError("not run");
  bool done = false;
};

bool SameShapes(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].type != b[i].type || a[i].shape != b[i].shape) return false;
  }
  return true;
}

class BatchingSession final : public Session {
 public:
  BatchingSession(std::shared_ptr<Session> inner, BatchOptions o)
      : inner_(std::move(inner)), o_(o) {
    batchable_ = o_.max_batch > 1 && !inner_->inputs().empty();
    for (const auto& t : inner_->inputs())
      batchable_ = batchable_ && !t.shape.empty() && t.shape[0] == -1;
  }
  const std::vector<TensorInfo>& inputs() const override { return inner_->inputs(); }
  const std::vector<TensorInfo>& outputs() const override { return inner_->outputs(); }
  const std::string& device() const override { return inner_->device(); }
  const std::string& fallback_reason() const override { return inner_->fallback_reason(); }

  Result<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) override {
    bool single = batchable_;
    for (const auto& t : inputs) single = single && !t.shape.empty() && t.shape[0] == 1;
    if (!single) return inner_->Run(inputs);
    Request req;
    req.inputs = &inputs;
    std::unique_lock l(mu_);
    queue_.push_back(&req);
    cv_.notify_all();
    while (!req.done) {
      // Taken into a batch that another request leads, or waiting for its turn.
      if (leading_ || queue_.empty() || queue_.front() != &req) {
        cv_.wait(l);
        continue;
      }
      // At the front with no leader: lead the next batch (this request is in it).
      leading_ = true;
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.max_latency_ms);
      cv_.wait_until(l, deadline, [&] { return queue_.size() >= o_.max_batch; });
      std::vector<Request*> batch;
      while (!queue_.empty() && batch.size() < o_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      leading_ = false;
      l.unlock();
      cv_.notify_all();  // the next request in line may lead the next batch meanwhile
      RunBatch(batch);
      l.lock();
      for (Request* r : batch) r->done = true;
      cv_.notify_all();
    }
    return std::move(req.result);
  }

 private:
  void RunBatch(const std::vector<Request*>& batch) {
    // Requests whose shapes differ from the first run alone.
    std::vector<Request*> same;
    for (Request* r : batch) {
      if (SameShapes(*r->inputs, *batch[0]->inputs)) {
        same.push_back(r);
      } else {
        r->result = inner_->Run(*r->inputs);
      }
    }
    if (same.size() == 1) {
      same[0]->result = inner_->Run(*same[0]->inputs);
      return;
    }
    std::vector<Tensor> merged;
    for (size_t i = 0; i < same[0]->inputs->size(); ++i) {
      const Tensor& first = (*same[0]->inputs)[i];
      Tensor t;
      t.name = first.name;
      t.type = first.type;
      t.shape = first.shape;
      t.shape[0] = static_cast<int64_t>(same.size());
      t.data.reserve(first.data.size() * same.size());
      for (Request* r : same)
        t.data.insert(t.data.end(), (*r->inputs)[i].data.begin(), (*r->inputs)[i].data.end());
      merged.push_back(std::move(t));
    }
    auto out = inner_->Run(merged);
    bool splittable = out.ok();
    if (out.ok()) {
      for (const auto& t : *out) {
        splittable = splittable && !t.shape.empty() &&
                     t.shape[0] == static_cast<int64_t>(same.size()) &&
                     t.data.size() % same.size() == 0;
      }
    }
    if (!splittable) {
      // The model does not batch as declared: run each alone (correct, if slower).
      for (Request* r : same) r->result = inner_->Run(*r->inputs);
      return;
    }
    for (size_t k = 0; k < same.size(); ++k) {
      std::vector<Tensor> mine;
      for (const auto& t : *out) {
        Tensor part;
        part.name = t.name;
        part.type = t.type;
        part.shape = t.shape;
        part.shape[0] = 1;
        size_t each = t.data.size() / same.size();
        part.data.assign(t.data.begin() + static_cast<ptrdiff_t>(k * each),
                         t.data.begin() + static_cast<ptrdiff_t>((k + 1) * each));
        mine.push_back(std::move(part));
      }
      same[k]->result = std::move(mine);
    }
  }

  std::shared_ptr<Session> inner_;
  BatchOptions o_;
  bool batchable_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request*> queue_;
  bool leading_ = false;
};

}  // namespace

std::shared_ptr<Session> MakeBatchingSession(std::shared_ptr<Session> inner, BatchOptions options) {
  return std::make_shared<BatchingSession>(std::move(inner), options);
}

}  // namespace fieldstack::compute::inference
