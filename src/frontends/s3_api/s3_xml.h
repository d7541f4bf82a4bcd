#pragma once

// XML of the S3 API: a small writer for responses, and parsers (pugixml) for the request
// bodies of DeleteObjects and CompleteMultipartUpload. The parsers are fuzzed (s3_fuzz.cc).

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "frontends/s3_api/s3_auth.h"

namespace fieldstack::frontends::s3_api {

inline constexpr char kS3Namespace[] = "http://s3.amazonaws.com/doc/2006-03-01/";

using objects::XmlEscape;

// Builds a document: an XML declaration, then elements in the order written.
class XmlWriter {
 public:
  // Without the declaration: a fragment for Raw into another writer.
  explicit XmlWriter(bool declaration = true) : started_(!declaration) {}
  void Open(std::string_view name, std::string_view xmlns = "");
  void Close(std::string_view name);
  void Leaf(std::string_view name, std::string_view text);
  void Raw(std::string_view xml) { out_ += xml; }
  std::string Done();

 private:
  std::string out_;
  bool started_ = false;
};

struct CompletedPart {
  int number = 0;
  std::string etag;
  std::map<std::string, std::string> checksums;  // "crc32" -> base64
};

// At most 1000 keys. false with MalformedXML (or another S3 error) in `err`.
bool ParseDeleteRequest(std::string_view xml, std::vector<std::string>* keys, bool* quiet,
                        S3Error* err);
// At most 10000 parts, numbers 1..10000.
bool ParseCompleteRequest(std::string_view xml, std::vector<CompletedPart>* parts, S3Error* err);

}  // namespace fieldstack::frontends::s3_api
