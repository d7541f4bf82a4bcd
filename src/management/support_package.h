#pragma once

// Support package: one .tar.zst with what support needs to understand a box, and never a
// secret.
//
// Contents (paths inside the archive, all under "fieldstack-support-<time>/"):
//   versions.json, diagnostics.json, metrics.txt, config.toml (already redacted by the caller),
//   and every file of `log_dirs` (the newest `max_log_bytes` of each file).
// Redaction: every byte added goes through Redact(): each secret in `secrets` (and its base64
// and URL-encoded forms) becomes "[REDACTED]", and so do values of keys that look secret in
// "key = value" / "key: value" / "\"key\":\"value\"" text (password, secret, key, token, sas,
// signature, credential, authorization) and the sig= parameter of SAS URLs.
// Refinements, to keep useful text (support_package.cc has the full rule): "key" and "sas" match
// words of the name ("AccountKey", "api_key", "sasUrl"; not "keyspace", "sasl"); a name ending in
// a descriptor word (file, path, dir, id, name, type, size, bits, length, count, format, version,
// algorithm) is kept ("key_file", "access_key_id"); "Authorization: Bearer x" keeps the scheme;
// an unquoted value also ends at ';' (connection strings); PEM PRIVATE KEY bodies are redacted.
// Secrets of any length are redacted (a very short one mangles text; never leaks it). Log members
// are "logs/<log dir name>/<file>"; a log cut to max_log_bytes starts at its first whole line.
// A cancel returns FailedPrecondition.
//
// Thread safety: none needed (free functions).

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace fieldstack::management {

struct SupportPackageInput {
  std::string versions_json;
  std::string diagnostics_json;
  std::string metrics_text;
  std::string config_text;
  std::vector<std::string> log_dirs;  // every regular file in them (not recursive)
  std::vector<std::string> secrets;   // values that must not appear (empty ones are ignored)
  uint64_t max_log_bytes = 32 << 20;
  int64_t now_unix = 0;
};

// Redacts `text` as described above.
std::string Redact(std::string_view text, const std::vector<std::string>& secrets);

// Writes the package to `out_path` (atomically: a temporary file renamed at the end).
// `cancelled` is checked between files. Internal naming the file on I/O errors.
Status WriteSupportPackage(const SupportPackageInput& in, const std::string& out_path,
                           const std::function<bool()>& cancelled = {});

// Reads back a .tar.zst made by WriteSupportPackage: {path inside the archive: contents}.
// For tests and `fieldstack support-package --list`. Corruption for a bad archive.
Result<std::map<std::string, std::string>> ReadSupportPackage(const std::string& path);

}  // namespace fieldstack::management
