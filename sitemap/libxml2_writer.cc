// sitemap.xml through libxml2's xmlTextWriter: libxml2 does the XML escaping ('&' in a URL becomes "&amp;", as
// the sitemaps.org protocol requires), so no XML is put together by hand.
#include <libxml/xmlwriter.h>

#include <memory>

#include "sitemap/xml_writer.h"

namespace sitesync::sitemap {
namespace {

struct BufferDeleter {
  void operator()(xmlBuffer* p) const { xmlBufferFree(p); }
};
struct WriterDeleter {
  void operator()(xmlTextWriter* p) const { xmlFreeTextWriter(p); }
};
using XmlBufferPtr = std::unique_ptr<xmlBuffer, BufferDeleter>;
using XmlWriterPtr = std::unique_ptr<xmlTextWriter, WriterDeleter>;

constexpr char kNamespace[] = "http://www.sitemaps.org/schemas/sitemap/0.9";

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

}  // namespace

Result<std::string> WriteSitemapXml(XmlRoot root, std::span<const XmlEntry> entries) {
  XmlBufferPtr buffer(xmlBufferCreate());
  if (!buffer) return Fail(ErrorCode::kInternal, "sitemap: out of memory");
  // The writer must be freed (it flushes) before the buffer is read, and before the buffer is freed.
  {
    XmlWriterPtr writer(xmlNewTextWriterMemory(buffer.get(), 0));
    if (!writer) return Fail(ErrorCode::kInternal, "sitemap: out of memory");
    xmlTextWriter* w = writer.get();
    const char* const outer = root == XmlRoot::kUrlset ? "urlset" : "sitemapindex";
    const char* const inner = root == XmlRoot::kUrlset ? "url" : "sitemap";
    bool ok = xmlTextWriterSetIndent(w, 1) >= 0 && xmlTextWriterSetIndentString(w, X("  ")) >= 0 &&
              xmlTextWriterStartDocument(w, "1.0", "UTF-8", nullptr) >= 0 &&
              xmlTextWriterStartElement(w, X(outer)) >= 0 &&
              xmlTextWriterWriteAttribute(w, X("xmlns"), X(kNamespace)) >= 0;
    for (const XmlEntry& e : entries) {
      if (!ok) break;
      ok = xmlTextWriterStartElement(w, X(inner)) >= 0 &&
           xmlTextWriterWriteElement(w, X("loc"), X(e.loc.c_str())) >= 0 &&
           (e.lastmod.empty() || xmlTextWriterWriteElement(w, X("lastmod"), X(e.lastmod.c_str())) >= 0) &&
           xmlTextWriterEndElement(w) >= 0;
    }
    ok = ok && xmlTextWriterEndDocument(w) >= 0;
    if (!ok) return Fail(ErrorCode::kInternal, "sitemap: libxml2 could not write the XML");
  }
  const int size = xmlBufferLength(buffer.get());
  return std::string(reinterpret_cast<const char*>(xmlBufferContent(buffer.get())), static_cast<std::size_t>(size));
}

std::size_t XmlSizes::Entry(const XmlEntry& entry) const {
  // xmlTextWriterWriteElement escapes text content as "&amp;", "&lt;", "&gt;" and "&#13;"; nothing else grows.
  std::size_t loc = 0;
  for (const char c : entry.loc) {
    switch (c) {
      case '&':
      case '\r':
        loc += 5;
        break;
      case '<':
      case '>':
        loc += 4;
        break;
      default:
        loc += 1;
    }
  }
  return fixed_per_entry + loc + entry.lastmod.size();
}

Result<XmlSizes> MeasureSitemapXml(XmlRoot root) {
  // Measured rather than hard-coded, so that a libxml2 with other indentation or line ends still splits right.
  // From one and two entries: a document without entries is written "<urlset .../>", shorter than the frame
  // around entries.
  const XmlEntry probes[2] = {{"x", "2000-01-01T00:00:00Z"}, {"yy", "2000-01-01T00:00:00Z"}};
  auto one = WriteSitemapXml(root, std::span<const XmlEntry>(probes, 1));
  if (!one) return std::unexpected(one.error());
  auto two = WriteSitemapXml(root, std::span<const XmlEntry>(probes, 2));
  if (!two) return std::unexpected(two.error());
  XmlSizes sizes;
  sizes.fixed_per_entry = two->size() - one->size() - probes[1].loc.size() - probes[1].lastmod.size();
  sizes.empty_document = one->size() - sizes.Entry(probes[0]);
  return sizes;
}

}  // namespace sitesync::sitemap
