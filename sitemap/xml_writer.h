// The libxml2 side of sitemap.xml: serializing <urlset> and <sitemapindex>, and the size of an entry in that
// serialization (to split before a file passes 50 MB). Private to sitemap/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"

namespace sitesync::sitemap {

/// One <url> of a <urlset>, or one <sitemap> of a <sitemapindex>.
struct XmlEntry {
  std::string loc;      ///< The absolute URL, percent-encoded; XML escaping is the writer's.
  std::string lastmod;  ///< W3C Datetime; omitted when empty.
};

enum class XmlRoot { kUrlset, kSitemapIndex };

/// The document: XML declaration (UTF-8), the root in the sitemaps.org 0.9 namespace, one child per entry,
/// indented. Fails with kInternal when libxml2 cannot write (out of memory).
[[nodiscard]] Result<std::string> WriteSitemapXml(XmlRoot root, std::span<const XmlEntry> entries);

/// Bytes WriteSitemapXml() spends around its entries, and on `entry` (which must have a lastmod). Exact: the
/// split into parts relies on it (sitemap_xml_test checks it against real output).
struct XmlSizes {
  std::size_t empty_document = 0;   ///< Declaration, root start and end tags (of a document with entries).
  std::size_t fixed_per_entry = 0;  ///< Besides the escaped loc and the lastmod.
  [[nodiscard]] std::size_t Entry(const XmlEntry& entry) const;
};
[[nodiscard]] Result<XmlSizes> MeasureSitemapXml(XmlRoot root);

}  // namespace sitesync::sitemap
