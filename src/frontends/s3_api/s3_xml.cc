#include "frontends/s3_api/s3_xml.h"

#include <algorithm>
#include <cctype>
#include <pugixml.hpp>

namespace fieldstack::frontends::s3_api {

void XmlWriter::Open(std::string_view name, std::string_view xmlns) {
  if (!started_) {
    out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    started_ = true;
  }
  out_ += "<" + std::string(name);
  if (!xmlns.empty()) out_ += " xmlns=\"" + std::string(xmlns) + "\"";
  out_ += ">";
}

void XmlWriter::Close(std::string_view name) { out_ += "</" + std::string(name) + ">"; }

void XmlWriter::Leaf(std::string_view name, std::string_view text) {
  out_ += "<" + std::string(name) + ">" + XmlEscape(text) + "</" + std::string(name) + ">";
}

std::string XmlWriter::Done() { return std::move(out_); }

namespace {

bool Parse(std::string_view xml, pugi::xml_document* doc, S3Error* err) {
  pugi::xml_parse_result r =
      doc->load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) {
    *err = {400, "MalformedXML",
            std::string("The XML you provided was not well-formed or did not validate against "
                        "our published schema: ") +
                r.description()};
    return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

S3Error Malformed(std::string why) {
  return {400, "MalformedXML",
          "The XML you provided was not well-formed or did not validate against our published "
          "schema: " +
              why};
}

}  // namespace

bool ParseDeleteRequest(std::string_view xml, std::vector<std::string>* keys, bool* quiet,
                        S3Error* err) {
  pugi::xml_document doc;
  if (!Parse(xml, &doc, err)) return false;
  pugi::xml_node root = doc.child("Delete");
  if (!root) {
    *err = Malformed("the root element must be Delete");
    return false;
  }
  *quiet = std::string_view(root.child_value("Quiet")) == "true";
  for (pugi::xml_node o : root.children("Object")) {
    pugi::xml_node k = o.child("Key");
    if (!k) {
      *err = Malformed("an Object without a Key");
      return false;
    }
    keys->emplace_back(k.child_value());
    if (keys->size() > 1000) {
      *err = Malformed("at most 1000 keys may be deleted at once");
      return false;
    }
  }
  if (keys->empty()) {
    *err = Malformed("no Object to delete");
    return false;
  }
  return true;
}

bool ParseCompleteRequest(std::string_view xml, std::vector<CompletedPart>* parts, S3Error* err) {
  pugi::xml_document doc;
  if (!Parse(xml, &doc, err)) return false;
  pugi::xml_node root = doc.child("CompleteMultipartUpload");
  if (!root) {
    *err = Malformed("the root element must be CompleteMultipartUpload");
    return false;
  }
  for (pugi::xml_node p : root.children("Part")) {
    std::string num = p.child_value("PartNumber");
    if (num.empty() || num.size() > 5 || !std::all_of(num.begin(), num.end(), ::isdigit)) {
      *err = {400, "InvalidArgument", "PartNumber must be an integer between 1 and 10000"};
      return false;
    }
    CompletedPart cp;
    cp.number = std::stoi(num);
    if (cp.number < 1 || cp.number > 10000) {
      *err = {400, "InvalidArgument", "PartNumber must be an integer between 1 and 10000"};
      return false;
    }
    cp.etag = p.child_value("ETag");
    for (pugi::xml_node c : p.children()) {
      std::string_view n = c.name();
      if (n.starts_with("Checksum") && n.size() > 8)
        cp.checksums[Lower(n.substr(8))] = c.child_value();
    }
    parts->push_back(std::move(cp));
    if (parts->size() > 10000) {
      *err = Malformed("more than 10000 parts");
      return false;
    }
  }
  return true;
}

}  // namespace fieldstack::frontends::s3_api
