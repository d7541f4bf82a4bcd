#include "common/metrics.h"

#include <prometheus/text_serializer.h>

namespace fieldstack {

std::string Metrics::Serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace fieldstack
