// libFuzzer target for the S3 API's parsers of untrusted input: the DeleteObjects and
// CompleteMultipartUpload XML, the SigV4 verifier (header and presigned forms) and the
// aws-chunked decoder (signed and unsigned, with trailers). The input is split at NULs:
// [0] XML and chunked body, [1] a request ("METHOD target\nName: value\n..."). Nothing may
// crash, hang or leak, and a random input never verifies.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "frontends/s3_api/s3_auth.h"
#include "frontends/s3_api/s3_xml.h"

using namespace fieldstack;
using namespace fieldstack::frontends::s3_api;

namespace {

void Decode(std::string_view body, bool signed_chunks, bool trailer, const SigV4Identity* id) {
  size_t pos = 0;
  AwsChunkedDecoder d(
      [&](std::span<uint8_t> out) -> Result<size_t> {
        size_t n = std::min(out.size(), std::min<size_t>(body.size() - pos, 97));
        std::copy(body.begin() + pos, body.begin() + pos + n, out.begin());
        pos += n;
        return n;
      },
      signed_chunks, trailer, id);
  uint8_t buf[1024];
  for (int i = 0; i < 100000; ++i) {
    auto n = d.Read(buf);
    if (!n.ok() || *n == 0) break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view body = in.substr(0, nul);
  std::string_view request = nul == std::string_view::npos ? "" : in.substr(nul + 1);

  std::vector<std::string> keys;
  bool quiet = false;
  S3Error err;
  (void)ParseDeleteRequest(body, &keys, &quiet, &err);
  std::vector<CompletedPart> parts;
  (void)ParseCompleteRequest(body, &parts, &err);

  SigV4Identity id;
  id.signing_key = std::string(32, 'k');
  id.amz_date = "20261127T000000Z";
  id.scope = "20261127/us-east-1/s3/aws4_request";
  id.signature = std::string(64, '0');
  Decode(body, false, false, nullptr);
  Decode(body, false, true, nullptr);
  Decode(body, true, true, &id);

  SigV4Request req;
  size_t eol = request.find('\n');
  std::string_view first = request.substr(0, eol);
  size_t space = first.find(' ');
  req.method = std::string(first.substr(0, space));
  std::string_view target = space == std::string_view::npos ? "/" : first.substr(space + 1);
  size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  std::string_view rest = eol == std::string_view::npos ? "" : request.substr(eol + 1);
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view line = rest.substr(0, e);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      req.headers.emplace_back(std::string(line.substr(0, colon)),
                               std::string(line.substr(colon + 1)));
    }
    if (e == std::string_view::npos) break;
    rest.remove_prefix(e + 1);
  }
  std::vector<frontends::objects::AccessKey> keys_db = {
      {"u", "AKIAFUZZ", "c2VjcmV0c2VjcmV0", {}, {"*"}}};
  SigV4Identity who;
  if (VerifySigV4(req, keys_db, 1795737600LL * 1000000000LL, &who, &err)) __builtin_trap();
  return 0;
}
