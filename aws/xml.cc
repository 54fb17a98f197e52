// libxml2 behind aws.h's small owned XML tree. Parsers return structs that own their strings, so no caller
// ever holds a pointer into a live xmlDoc.
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include <climits>

#include "aws/aws.h"
#include "aws/c_handles.h"

namespace sitesync::aws {
namespace {

std::string_view AsView(const xmlChar* s) {
  return s == nullptr ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(s));
}

const xmlChar* AsXml(const std::string& s) { return reinterpret_cast<const xmlChar*>(s.c_str()); }

XmlElement Convert(const xmlNode* node) {
  XmlElement out;
  out.name = std::string(AsView(node->name));
  for (const xmlNode* child = node->children; child != nullptr; child = child->next) {
    if (child->type == XML_ELEMENT_NODE) {
      out.children.push_back(Convert(child));
    } else if (child->type == XML_TEXT_NODE || child->type == XML_CDATA_SECTION_NODE) {
      out.text += AsView(child->content);
    }
  }
  return out;
}

void Build(xmlNodePtr parent, const XmlElement& element) {
  for (const XmlElement& child : element.children) {
    xmlNodePtr node = xmlNewChild(parent, nullptr, AsXml(child.name), nullptr);
    if (!child.text.empty()) {
      // xmlNodeAddContent escapes &, < and > itself; xmlNewChild's content argument would not.
      xmlNodeAddContentLen(node, AsXml(child.text), static_cast<int>(child.text.size()));
    }
    Build(node, child);
  }
}

}  // namespace

const XmlElement* XmlElement::Child(std::string_view child) const {
  for (const XmlElement& c : children) {
    if (c.name == child) return &c;
  }
  return nullptr;
}

std::string XmlElement::ChildText(std::string_view child) const {
  const XmlElement* c = Child(child);
  return c == nullptr ? std::string{} : c->text;
}

Result<XmlElement> ParseXml(std::string_view xml) {
  if (xml.size() > static_cast<std::size_t>(INT_MAX)) return Fail(ErrorCode::kParse, "XML document too large");
  // XML_PARSE_NONET: never fetch anything; no XML_PARSE_NOENT: entities are not expanded (no XXE).
  XmlDoc doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "response.xml", nullptr,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) {
    const xmlError* err = xmlGetLastError();
    std::string detail = err != nullptr && err->message != nullptr ? err->message : "not well-formed";
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    return Fail(ErrorCode::kParse, "could not parse XML answer: " + detail);
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr) return Fail(ErrorCode::kParse, "XML answer has no root element");
  return Convert(root);
}

std::string WriteXml(const XmlElement& root, std::string_view xmlns) {
  XmlDoc doc(xmlNewDoc(reinterpret_cast<const xmlChar*>("1.0")));
  xmlNodePtr node = xmlNewNode(nullptr, AsXml(root.name));
  xmlDocSetRootElement(doc.get(), node);
  if (!xmlns.empty()) xmlNewNs(node, AsXml(std::string(xmlns)), nullptr);
  if (!root.text.empty()) xmlNodeAddContentLen(node, AsXml(root.text), static_cast<int>(root.text.size()));
  Build(node, root);
  xmlChar* mem = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(doc.get(), &mem, &size, "UTF-8");
  std::string out(reinterpret_cast<const char*>(mem), static_cast<std::size_t>(size));
  xmlFree(mem);
  return out;
}

std::pair<std::string, std::string> ParseErrorBody(std::string_view body) {
  if (body.empty()) return {};
  auto doc = ParseXml(body);
  if (!doc) return {};
  const XmlElement* error = nullptr;
  if (doc->name == "Error") {
    error = &*doc;
  } else if (doc->name == "ErrorResponse") {
    // CloudFront: <ErrorResponse><Error>; moto's query-protocol form: <ErrorResponse><Errors><Error>.
    error = doc->Child("Error");
    if (error == nullptr) {
      if (const XmlElement* errors = doc->Child("Errors")) error = errors->Child("Error");
    }
  }
  if (error == nullptr) return {};
  return {error->ChildText("Code"), error->ChildText("Message")};
}

}  // namespace sitesync::aws
