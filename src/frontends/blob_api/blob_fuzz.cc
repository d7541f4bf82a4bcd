// libFuzzer target for the Blob API's parsers of untrusted input: the Put Block List XML, block
// ids, query strings, the Shared Key verifier and the SAS verifier (all in blob_auth.h). The
// input is split at the first NUL: the first part is fed to the block-list parser whole, and
// also read as a request ("METHOD target\nName: value\n..."); the second is an Authorization
// signature. Nothing may crash, hang or leak; a random input never verifies.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "frontends/blob_api/blob_auth.h"

using namespace fieldstack::frontends::blob_api;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view text = in.substr(0, nul);
  std::string_view signature = nul == std::string_view::npos ? "" : in.substr(nul + 1);

  (void)ParseBlockList(text);
  (void)DecodeBlockId(text);
  (void)ParseIso8601(text);
  (void)ParseSharedKeyHeader(text);

  SignedRequest req;
  size_t eol = text.find('\n');
  std::string_view first = text.substr(0, eol);
  size_t space = first.find(' ');
  req.method = std::string(first.substr(0, space));
  req.target = space == std::string_view::npos ? "/" : std::string(first.substr(space + 1));
  std::string_view rest = eol == std::string_view::npos ? "" : text.substr(eol + 1);
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view line = rest.substr(0, e);
    rest = e == std::string_view::npos ? "" : rest.substr(e + 1);
    size_t colon = line.find(':');
    req.headers.emplace_back(
        std::string(line.substr(0, colon)),
        colon == std::string_view::npos ? "" : std::string(line.substr(colon + 1)));
  }
  static const std::string kKey(32, '\x5a');
  if (VerifySharedKey(req, "acct", kKey, signature)) __builtin_trap();

  size_t q = req.target.find('?');
  if (q != std::string::npos) {
    auto params = ParseQuery(std::string_view(req.target).substr(q + 1));
    if (params) {
      auto grant = VerifySas(*params, "acct", "container", "blob", kKey,
                             1767225600LL * 1'000'000'000LL, false, "127.0.0.1");
      if (grant.ok()) __builtin_trap();
    }
  }
  return 0;
}
