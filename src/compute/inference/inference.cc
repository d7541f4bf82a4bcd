#include "compute/inference/inference.h"

#include <cstring>

namespace fieldstack::compute::inference {

std::string_view ElementTypeName(ElementType t) {
  switch (t) {
    case ElementType::kFloat32:
      return "float32";
    case ElementType::kUint8:
      return "uint8";
    case ElementType::kInt8:
      return "int8";
    case ElementType::kInt32:
      return "int32";
    case ElementType::kInt64:
      return "int64";
    case ElementType::kBool:
      return "bool";
    case ElementType::kFloat16:
      return "float16";
    case ElementType::kDouble:
      return "float64";
    case ElementType::kOther:
      return "other";
  }
  return "other";
}

size_t ElementSize(ElementType t) {
  switch (t) {
    case ElementType::kFloat32:
    case ElementType::kInt32:
      return 4;
    case ElementType::kUint8:
    case ElementType::kInt8:
    case ElementType::kBool:
      return 1;
    case ElementType::kInt64:
    case ElementType::kDouble:
      return 8;
    case ElementType::kFloat16:
      return 2;
    case ElementType::kOther:
      return 0;
  }
  return 0;
}

Tensor Tensor::Float(std::string name, std::vector<int64_t> shape,
                     const std::vector<float>& values) {
  Tensor t;
  t.name = std::move(name);
  t.type = ElementType::kFloat32;
  t.shape = std::move(shape);
  t.data.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

size_t Tensor::elements() const {
  size_t n = 1;
  for (int64_t d : shape) n *= d < 0 ? 0 : static_cast<size_t>(d);
  return n;
}

}  // namespace fieldstack::compute::inference
