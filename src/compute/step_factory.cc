// MakeStep: the one place that maps a step declaration's "type" to its factory.

#include <string>

#include "compute/aggregate.h"
#include "compute/basic_steps.h"
#include "compute/redact.h"
#include "compute/sample.h"
#include "compute/step.h"

namespace fieldstack::compute {

namespace {
constexpr const char* kKnown =
    "filter, select, redact, aggregate, sample, subset, dedupe, module, infer";
}  // namespace

Result<std::unique_ptr<Step>> MakeStep(const nlohmann::json& decl, const StepContext& ctx) {
  if (!decl.is_object()) {
    return InvalidArgumentError(std::string("a step must be an object, not ") + decl.type_name());
  }
  auto t = decl.find("type");
  if (t == decl.end()) {
    return InvalidArgumentError(std::string("type: required (known: ") + kKnown + ")");
  }
  if (!t->is_string()) {
    return InvalidArgumentError(std::string("type: must be a string, not ") + t->type_name());
  }
  const std::string& type = t->get_ref<const std::string&>();
  if (type == "filter") return MakeFilterStep(decl, ctx);
  if (type == "select") return MakeSelectStep(decl, ctx);
  if (type == "redact") return MakeRedactStep(decl, ctx);
  if (type == "aggregate") {
    FS_ASSIGN_OR_RETURN(auto s, MakeAggregateStep(decl));
    return std::unique_ptr<Step>(std::move(s));
  }
  if (type == "sample") return MakeSampleStep(decl);
  if (type == "subset") {
    FS_ASSIGN_OR_RETURN(auto s, MakeSubsetStep(decl));
    return std::unique_ptr<Step>(std::move(s));
  }
  if (type == "dedupe") return MakeDedupeStep(decl);
  if (type == "module" || type == "infer") {
    return InvalidArgumentError("type: step type '" + type +
                                "' is handled by the engine, not MakeStep");
  }
  return InvalidArgumentError("type: unknown step type '" + type + "' (known: " + kKnown + ")");
}

}  // namespace fieldstack::compute
