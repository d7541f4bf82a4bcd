#pragma once

// User modules as pipeline steps (docs/compute.md "Modules"): a program stored on the box
// (<compute dir>/modules/<name>) run in the sandbox (sandbox.h).
//
//  - "jsonl" mode: a record step. Records are spooled as JSON lines to a temporary file (disk,
//    not memory); at the end of the input the module runs with that file on its stdin, and
//    every line it prints on stdout is parsed as a JSON object and passed on as a record.
//  - "files" mode: the pipeline's only step (the engine runs it, RunFilesModule): the input
//    files, copied into a private read-only folder, are its arguments after `args`, and the
//    last argument is an empty output folder; the files it leaves there go to the file sinks.
//
// The module's stderr goes to the run's log. A non-zero exit, a signal, a timeout or a limit
// exceeded fails the run (retried per the pipeline's retry policy).

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "compute/sandbox.h"
#include "compute/step.h"

namespace fieldstack::compute {

// The module's path and limits from a step declaration ({"type": "module", ...}).
struct ModuleCall {
  std::string path;  // modules_dir/<module>
  std::vector<std::string> args;
  ModuleLimits limits;
};
Result<ModuleCall> ResolveModule(const nlohmann::json& decl, const std::string& modules_dir);

// A "jsonl" module step. `log` receives the module's stderr and a summary line.
Result<std::unique_ptr<Step>> MakeModuleStep(const nlohmann::json& decl, ModuleRunner* runner,
                                             const std::string& modules_dir,
                                             const std::string& tmp_dir,
                                             std::function<void(std::string_view)> log);

}  // namespace fieldstack::compute
