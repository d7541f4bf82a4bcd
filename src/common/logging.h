#pragma once

// Logging setup: spdlog, as plain text lines or JSON lines (one object per line, for log
// shippers). Components log through spdlog's default logger; secrets are never logged.

#include <string_view>

#include "common/status.h"

namespace fieldstack {

enum class LogFormat { kText, kJson };

// Configures the default logger to write to stderr. `level` is one of trace, debug, info,
// warn, error, critical, off; anything else is InvalidArgument.
Status ConfigureLogging(LogFormat format, std::string_view level);

}  // namespace fieldstack
