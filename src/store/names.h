#pragma once

// Name rules for the Store namespace (docs/semantics.md): a component is valid UTF-8, 1 to 255
// bytes, without '/' or NUL, and is not "." or ".."; a path is at most 1024 bytes.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fieldstack::store {

// InvalidArgument naming the problem, or OK.
Status ValidateName(std::string_view name);
// Splits a share-relative path ("a/b/c", leading and trailing '/' ignored) into validated
// components. The empty path is the share root (no components).
Result<std::vector<std::string>> SplitPath(std::string_view path);

}  // namespace fieldstack::store
