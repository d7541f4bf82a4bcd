#pragma once

// The two built-in steps every pipeline uses: filter and select (docs/compute.md).
//
//   {"type": "filter", "where": "temp_c > 30 and site = 'north'"}
//     passes on the records for which the expression tests true (Expr::Test: a true bool or a
//     non-zero number; null and everything else is false).
//
//   {"type": "select", "compute": [{"name": "temp_f", "expr": "temp_c * 1.8 + 32"}],
//    "columns": ["site", "temp_f"], "drop": ["note"], "rename": {"site": "location"}}
//     all fields optional, at least one given; applied in this order:
//      1. compute, in list order: evaluates each expression on the record as it is so far (a
//         later expression sees the columns computed before it) and replaces the column of
//         that name or adds it at the end;
//      2. "columns" keeps only those columns, in that order (a name the record lacks gives
//         null), or "drop" removes those columns (names the record lacks are ignored); giving
//         both is an error;
//      3. "rename" renames columns (names the record lacks are ignored); a rename that makes
//         two columns of one name fails the record with InvalidArgument.
//     The output Schema is built once per input Schema pointer and cached, so records of one
//     file share one output schema and nothing is looked up by name per row.
//
// Errors: the factories return InvalidArgument naming the field ("select.colums: unknown
// field ...", "filter.where: missing ')' ..."). Push returns the expression's InvalidArgument
// (naming the column and value) prefixed with the step.
//
// Thread safety: none (Step's rule); a step is used by one run at a time.

#include <memory>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "compute/step.h"

namespace fieldstack::compute {

Result<std::unique_ptr<Step>> MakeFilterStep(const nlohmann::json& decl, const StepContext& ctx);
Result<std::unique_ptr<Step>> MakeSelectStep(const nlohmann::json& decl, const StepContext& ctx);

}  // namespace fieldstack::compute
