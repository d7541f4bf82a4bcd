// filter and select (basic_steps.h).
//
// select keeps one Plan per input Schema pointer: the schemas after each computed column, the
// field index each computed value goes to, the projection (output slot -> field index) and
// the output schema. Push then does no name lookups: it evaluates the expressions, moves
// values into place by swapping them into a scratch vector (so the strings' buffers keep
// circulating between the record and the scratch instead of being freed), and points the
// record at the output schema.

#include "compute/basic_steps.h"

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compute/expr.h"
#include "compute/step_decl.h"

namespace fieldstack::compute {
namespace {

class FilterStep final : public Step {
 public:
  explicit FilterStep(std::unique_ptr<Expr> where) : where_(std::move(where)) {}

  Status Push(Record& rec, Emitter& out) override {
    Result<bool> r = where_->Test(rec);
    if (!r.ok()) return r.status().WithContext("filter");
    if (*r) return out.Emit(rec);
    return Status::Ok();
  }

 private:
  std::unique_ptr<Expr> where_;
};

struct ComputeSpec {
  std::string name;
  std::unique_ptr<Expr> expr;
};

class SelectStep final : public Step {
 public:
  SelectStep(std::vector<ComputeSpec> compute, std::vector<std::string> columns,
             std::vector<std::string> drop, std::vector<std::pair<std::string, std::string>> rename)
      : compute_(std::move(compute)),
        columns_(std::move(columns)),
        drop_(drop.begin(), drop.end()),
        rename_(rename.begin(), rename.end()) {}

  Status Push(Record& rec, Emitter& out) override {
    if (!rec.schema) return InvalidArgumentError("select: record without a schema");
    if (rec.schema.get() != last_input_) {
      FS_RETURN_IF_ERROR(FindPlan(rec.schema));
    }
    const Plan& plan = *last_plan_;
    if (!plan.error.ok()) return plan.error;
    for (size_t k = 0; k < compute_.size(); ++k) {
      if (k > 0) rec.schema = plan.stages[k - 1];
      Result<Value> v = compute_[k].expr->Eval(rec);
      if (!v.ok()) return v.status().WithContext("select.compute '" + compute_[k].name + "'");
      const size_t idx = plan.targets[k];
      if (idx < rec.values.size()) {
        rec.values[idx] = std::move(*v);
      } else {
        rec.values.push_back(std::move(*v));
      }
    }
    if (plan.project) {
      scratch_.resize(plan.sources.size());
      for (size_t i = 0; i < plan.sources.size(); ++i) {
        const int src = plan.sources[i];
        if (src >= 0 && static_cast<size_t>(src) < rec.values.size()) {
          std::swap(scratch_[i], rec.values[static_cast<size_t>(src)]);
        } else {
          scratch_[i].SetNull();
        }
      }
      rec.values.swap(scratch_);
    }
    if (rec.schema != plan.output) rec.schema = plan.output;
    return out.Emit(rec);
  }

 private:
  struct Plan {
    std::shared_ptr<const Schema> input;                // held so its address stays unique
    std::vector<std::shared_ptr<const Schema>> stages;  // after each computed column
    std::vector<size_t> targets;                        // field index of each computed value
    bool project = false;
    std::vector<int> sources;  // output field -> field index after compute, or -1 (null)
    std::shared_ptr<const Schema> output;
    Status error;  // a rename that makes duplicate names
  };

  Status FindPlan(const std::shared_ptr<const Schema>& schema) {
    auto it = plans_.find(schema.get());
    if (it == plans_.end()) {
      if (plans_.size() >= kMaxPlans) plans_.clear();  // many schemas (JSON lines): start over
      it = plans_.emplace(schema.get(), MakePlan(schema)).first;
    }
    last_input_ = schema.get();
    last_plan_ = &it->second;
    return Status::Ok();
  }

  Plan MakePlan(const std::shared_ptr<const Schema>& input) {
    Plan plan;
    plan.input = input;
    std::shared_ptr<const Schema> cur = input;
    for (const ComputeSpec& c : compute_) {
      int i = cur->Find(c.name);
      if (i >= 0) {
        plan.targets.push_back(static_cast<size_t>(i));
      } else {
        plan.targets.push_back(cur->size());
        std::vector<std::string> names = cur->names();
        names.push_back(c.name);
        cur = std::make_shared<const Schema>(std::move(names));
      }
      plan.stages.push_back(cur);
    }
    std::vector<std::string> names;
    if (!columns_.empty()) {
      plan.project = true;
      for (const std::string& c : columns_) {
        plan.sources.push_back(cur->Find(c));
        names.push_back(c);
      }
    } else if (!drop_.empty()) {
      plan.project = true;
      for (size_t i = 0; i < cur->size(); ++i) {
        if (drop_.count(cur->names()[i])) continue;
        plan.sources.push_back(static_cast<int>(i));
        names.push_back(cur->names()[i]);
      }
    } else {
      names = cur->names();
    }
    bool renamed = false;
    for (std::string& n : names) {
      auto r = rename_.find(n);
      if (r != rename_.end()) {
        n = r->second;
        renamed = true;
      }
    }
    if (renamed) {
      std::unordered_set<std::string_view> seen;
      for (const std::string& n : names) {
        if (!seen.insert(n).second) {
          plan.error = InvalidArgumentError("select.rename: gives two columns named '" + n + "'");
          break;
        }
      }
    }
    if (!plan.project && !renamed) {
      plan.output = cur;
    } else {
      plan.output = std::make_shared<const Schema>(std::move(names));
    }
    return plan;
  }

  static constexpr size_t kMaxPlans = 256;

  std::vector<ComputeSpec> compute_;
  std::vector<std::string> columns_;
  std::unordered_set<std::string> drop_;
  std::unordered_map<std::string, std::string> rename_;
  std::unordered_map<const Schema*, Plan> plans_;
  const Schema* last_input_ = nullptr;
  const Plan* last_plan_ = nullptr;
  std::vector<Value> scratch_;
};

Result<std::unique_ptr<Expr>> ParseExpr(const nlohmann::json& v, std::string_view path,
                                        const StepContext& ctx) {
  FS_ASSIGN_OR_RETURN(std::string text, decl::NonEmptyString(v, path));
  Result<std::unique_ptr<Expr>> e = Expr::Parse(text, ctx.now_ns);
  if (!e.ok()) return decl::FieldError(path, e.status().message());
  return e;
}

}  // namespace

Result<std::unique_ptr<Step>> MakeFilterStep(const nlohmann::json& d, const StepContext& ctx) {
  FS_RETURN_IF_ERROR(decl::CheckObject(d, "filter", {"type", "where"}));
  const nlohmann::json* where = decl::Find(d, "where");
  if (where == nullptr) return decl::FieldError("filter.where", "is required");
  FS_ASSIGN_OR_RETURN(auto expr, ParseExpr(*where, "filter.where", ctx));
  return std::unique_ptr<Step>(std::make_unique<FilterStep>(std::move(expr)));
}

Result<std::unique_ptr<Step>> MakeSelectStep(const nlohmann::json& d, const StepContext& ctx) {
  FS_RETURN_IF_ERROR(
      decl::CheckObject(d, "select", {"type", "compute", "columns", "drop", "rename"}));
  const nlohmann::json* compute = decl::Find(d, "compute");
  const nlohmann::json* columns = decl::Find(d, "columns");
  const nlohmann::json* drop = decl::Find(d, "drop");
  const nlohmann::json* rename = decl::Find(d, "rename");
  if (!compute && !columns && !drop && !rename) {
    return decl::FieldError("select", "needs at least one of compute, columns, drop, rename");
  }
  if (columns && drop) return decl::FieldError("select", "give 'columns' or 'drop', not both");

  std::vector<ComputeSpec> specs;
  if (compute) {
    if (!compute->is_array()) {
      return decl::FieldError("select.compute",
                              std::string("must be a list, not ") + compute->type_name());
    }
    for (size_t i = 0; i < compute->size(); ++i) {
      const std::string path = decl::Index("select.compute", i);
      const nlohmann::json& c = (*compute)[i];
      FS_RETURN_IF_ERROR(decl::CheckObject(c, path, {"name", "expr"}));
      const nlohmann::json* name = decl::Find(c, "name");
      const nlohmann::json* expr = decl::Find(c, "expr");
      if (!name) return decl::FieldError(decl::Join(path, "name"), "is required");
      if (!expr) return decl::FieldError(decl::Join(path, "expr"), "is required");
      ComputeSpec spec;
      FS_ASSIGN_OR_RETURN(spec.name, decl::NonEmptyString(*name, decl::Join(path, "name")));
      FS_ASSIGN_OR_RETURN(spec.expr, ParseExpr(*expr, decl::Join(path, "expr"), ctx));
      specs.push_back(std::move(spec));
    }
  }
  std::vector<std::string> keep, remove;
  if (columns) {
    FS_ASSIGN_OR_RETURN(keep, decl::StringList(*columns, "select.columns", false));
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < keep.size(); ++i) {
      if (!seen.insert(keep[i]).second) {
        return decl::FieldError(decl::Index("select.columns", i), "names '" + keep[i] + "' twice");
      }
    }
  }
  if (drop) {
    FS_ASSIGN_OR_RETURN(remove, decl::StringList(*drop, "select.drop", false));
  }
  std::vector<std::pair<std::string, std::string>> renames;
  if (rename) {
    if (!rename->is_object()) {
      return decl::FieldError("select.rename",
                              std::string("must be an object, not ") + rename->type_name());
    }
    for (auto it = rename->begin(); it != rename->end(); ++it) {
      if (it.key().empty()) return decl::FieldError("select.rename", "has an empty name");
      FS_ASSIGN_OR_RETURN(std::string to,
                          decl::NonEmptyString(it.value(), decl::Join("select.rename", it.key())));
      renames.emplace_back(it.key(), std::move(to));
    }
  }
  return std::unique_ptr<Step>(std::make_unique<SelectStep>(std::move(specs), std::move(keep),
                                                            std::move(remove), std::move(renames)));
}

}  // namespace fieldstack::compute
