// The built-in Content-Type table. Deliberately independent of the OS (no /etc/mime.types): the same SOURCE must
// give the same objects on every machine, or two people publishing the same site would fight over headers.

#include <algorithm>
#include <array>
#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

struct TypeEntry {
  std::string_view extension;  // Lowercase, without the dot.
  std::string_view content_type;
};

constexpr std::string_view kOctetStream = "application/octet-stream";

// Sorted by extension (byte order) for binary search; a static_assert below keeps it so.
// Text types carry "; charset=utf-8": S3 serves the bytes as uploaded and browsers otherwise guess (often
// windows-1252). JSON, XML and friends are left without a charset: their specs define the encoding.
constexpr std::array kTypes = {
    TypeEntry{"7z", "application/x-7z-compressed"},
    TypeEntry{"aac", "audio/aac"},
    TypeEntry{"apng", "image/apng"},
    TypeEntry{"atom", "application/atom+xml"},
    TypeEntry{"avi", "video/x-msvideo"},
    TypeEntry{"avif", "image/avif"},
    TypeEntry{"bmp", "image/bmp"},
    TypeEntry{"bz2", "application/x-bzip2"},
    TypeEntry{"cjs", "text/javascript; charset=utf-8"},
    TypeEntry{"css", "text/css; charset=utf-8"},
    TypeEntry{"csv", "text/csv; charset=utf-8"},
    TypeEntry{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    TypeEntry{"eot", "application/vnd.ms-fontobject"},
    TypeEntry{"epub", "application/epub+zip"},
    TypeEntry{"flac", "audio/flac"},
    TypeEntry{"geojson", "application/geo+json"},
    TypeEntry{"gif", "image/gif"},
    TypeEntry{"glb", "model/gltf-binary"},
    TypeEntry{"gltf", "model/gltf+json"},
    TypeEntry{"gpx", "application/gpx+xml"},
    TypeEntry{"gz", "application/gzip"},
    TypeEntry{"heic", "image/heic"},
    TypeEntry{"heif", "image/heif"},
    TypeEntry{"htm", "text/html; charset=utf-8"},
    TypeEntry{"html", "text/html; charset=utf-8"},
    TypeEntry{"ico", "image/x-icon"},
    TypeEntry{"ics", "text/calendar; charset=utf-8"},
    TypeEntry{"jfif", "image/jpeg"},
    TypeEntry{"jpeg", "image/jpeg"},
    TypeEntry{"jpg", "image/jpeg"},
    TypeEntry{"js", "text/javascript; charset=utf-8"},
    TypeEntry{"json", "application/json"},
    TypeEntry{"jsonld", "application/ld+json"},
    TypeEntry{"jxl", "image/jxl"},
    TypeEntry{"kml", "application/vnd.google-earth.kml+xml"},
    TypeEntry{"log", "text/plain; charset=utf-8"},
    TypeEntry{"m3u8", "application/vnd.apple.mpegurl"},
    TypeEntry{"m4a", "audio/mp4"},
    TypeEntry{"m4v", "video/mp4"},
    TypeEntry{"map", "application/json"},
    TypeEntry{"markdown", "text/markdown; charset=utf-8"},
    TypeEntry{"md", "text/markdown; charset=utf-8"},
    TypeEntry{"mid", "audio/midi"},
    TypeEntry{"midi", "audio/midi"},
    TypeEntry{"mjs", "text/javascript; charset=utf-8"},
    TypeEntry{"mkv", "video/x-matroska"},
    TypeEntry{"mov", "video/quicktime"},
    TypeEntry{"mp3", "audio/mpeg"},
    TypeEntry{"mp4", "video/mp4"},
    TypeEntry{"mpd", "application/dash+xml"},
    TypeEntry{"mpeg", "video/mpeg"},
    TypeEntry{"mpg", "video/mpeg"},
    TypeEntry{"oga", "audio/ogg"},
    TypeEntry{"ogg", "audio/ogg"},
    TypeEntry{"ogv", "video/ogg"},
    TypeEntry{"opus", "audio/ogg"},
    TypeEntry{"otf", "font/otf"},
    TypeEntry{"pdf", "application/pdf"},
    TypeEntry{"png", "image/png"},
    TypeEntry{"rss", "application/rss+xml"},
    TypeEntry{"rtf", "application/rtf"},
    TypeEntry{"svg", "image/svg+xml"},
    TypeEntry{"tar", "application/x-tar"},
    TypeEntry{"tif", "image/tiff"},
    TypeEntry{"tiff", "image/tiff"},
    TypeEntry{"toml", "application/toml"},
    // MPEG transport stream (HLS segments), not TypeScript: a published site serves video, not .ts sources.
    TypeEntry{"ts", "video/mp2t"},
    TypeEntry{"tsv", "text/tab-separated-values; charset=utf-8"},
    TypeEntry{"ttf", "font/ttf"},
    TypeEntry{"txt", "text/plain; charset=utf-8"},
    TypeEntry{"vcf", "text/vcard; charset=utf-8"},
    TypeEntry{"vtt", "text/vtt; charset=utf-8"},
    TypeEntry{"wasm", "application/wasm"},
    TypeEntry{"wav", "audio/wav"},
    TypeEntry{"weba", "audio/webm"},
    TypeEntry{"webm", "video/webm"},
    TypeEntry{"webmanifest", "application/manifest+json"},
    TypeEntry{"webp", "image/webp"},
    TypeEntry{"woff", "font/woff"},
    TypeEntry{"woff2", "font/woff2"},
    TypeEntry{"xhtml", "application/xhtml+xml"},
    TypeEntry{"xml", "application/xml"},
    // XSLT for sitemap.xml/feed stylesheets: every browser applies an XSLT served as application/xml.
    TypeEntry{"xsl", "application/xml"},
    TypeEntry{"xslt", "application/xml"},
    TypeEntry{"xz", "application/x-xz"},
    TypeEntry{"yaml", "application/yaml"},
    TypeEntry{"yml", "application/yaml"},
    TypeEntry{"zip", "application/zip"},
    TypeEntry{"zst", "application/zstd"},
};

static_assert(std::ranges::is_sorted(kTypes, {}, &TypeEntry::extension), "kTypes must stay sorted by extension");

// Longer than any extension in the table: a longer one cannot match, so it need not be lowered.
constexpr std::size_t kMaxExtension = 16;

/// The extension of the base name, lowered into `buffer`; empty when the name has none (".htaccess" has none).
std::string_view LowerExtension(std::string_view rel_path, std::array<char, kMaxExtension>& buffer) {
  const std::size_t slash = rel_path.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? rel_path : rel_path.substr(slash + 1);
  const std::size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  const std::string_view extension = base.substr(dot + 1);
  if (extension.size() > buffer.size()) return {};
  for (std::size_t i = 0; i < extension.size(); ++i) {
    const char c = extension[i];
    buffer[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return {buffer.data(), extension.size()};
}

}  // namespace

std::string_view ContentTypeFor(std::string_view rel_path) {
  std::array<char, kMaxExtension> buffer{};
  const std::string_view extension = LowerExtension(rel_path, buffer);
  if (extension.empty()) return kOctetStream;
  const auto it = std::ranges::lower_bound(kTypes, extension, {}, &TypeEntry::extension);
  if (it == kTypes.end() || it->extension != extension) return kOctetStream;
  return it->content_type;
}

std::string_view Intern(std::string_view value) {
  // Never freed: the values are the few distinct header values of the config and the table above.
  static std::mutex mutex;
  static auto* const pool = new std::set<std::string, std::less<>>();
  const std::lock_guard lock(mutex);
  auto it = pool->find(value);
  if (it == pool->end()) it = pool->emplace(value).first;
  return *it;
}

const ExtraHeaders* InternHeaders(const ExtraHeaders& headers) {
  // Never freed, as Intern: one copy per distinct set of the config's rules (a handful).
  struct Less {
    static auto Tie(const ExtraHeaders& h) {
      return std::tie(h.content_encoding, h.content_disposition, h.content_language, h.storage_class, h.acl, h.sse,
                      h.kms_key_id, h.website_redirect, h.metadata);
    }
    bool operator()(const ExtraHeaders& a, const ExtraHeaders& b) const { return Tie(a) < Tie(b); }
  };
  static std::mutex mutex;
  static auto* const pool = new std::set<ExtraHeaders, Less>();
  const std::lock_guard lock(mutex);
  return &*pool->insert(headers).first;
}

bool IsHtml(std::string_view rel_path) {
  std::array<char, kMaxExtension> buffer{};
  const std::string_view extension = LowerExtension(rel_path, buffer);
  return extension == "html" || extension == "htm";
}

}  // namespace sitesync::sitemap
