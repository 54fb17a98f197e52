// `<meta name="robots" content="noindex">` through libxml2's HTML parser (push mode, SAX callbacks). A parser
// rather than a string search: attribute order, quoting (or none), case, entities, comments and <script> text
// are HTML's business, and libxml2's HTML parser recovers from any input without complaint. It stops where the
// body starts, so a page costs about its head, read in 64 KiB chunks.
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "base/unique_fd.h"
#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

constexpr std::size_t kChunk = 64 * 1024;
// A head longer than this (inline scripts and styles) is not read further: the page is taken as indexable.
constexpr std::size_t kMaxRead = 1024 * 1024;

std::string_view View(const xmlChar* s) {
  return s == nullptr ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(s));
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The robots meta tag's content is a comma-separated list of directives ("noindex, nofollow"); "none" means
// "noindex, nofollow". Whitespace is taken as a separator too, as crawlers do.
bool HasNoindexDirective(std::string_view content) {
  std::size_t i = 0;
  while (i < content.size()) {
    while (i < content.size() && (content[i] == ',' || IsSpace(content[i]))) ++i;
    std::size_t end = i;
    while (end < content.size() && content[end] != ',' && !IsSpace(content[end])) ++end;
    const std::string_view directive = content.substr(i, end - i);
    if (EqualsIgnoreCase(directive, "noindex") || EqualsIgnoreCase(directive, "none")) return true;
    i = end;
  }
  return false;
}

struct ParserDeleter {
  void operator()(htmlParserCtxt* p) const { htmlFreeParserCtxt(p); }
};

class RobotsScanner {
 public:
  RobotsScanner() {
    handler_ = {};
    handler_.startElement = &RobotsScanner::OnStart;
    handler_.endElement = &RobotsScanner::OnEnd;
    // Errors and warnings have no handler, and HTML_PARSE_NOERROR keeps libxml2 from printing them itself.
    parser_.reset(htmlCreatePushParserCtxt(&handler_, this, nullptr, 0, nullptr, XML_CHAR_ENCODING_NONE));
    if (parser_) {
      htmlCtxtUseOptions(parser_.get(), HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                            HTML_PARSE_NOBLANKS | HTML_PARSE_RECOVER);
    }
  }
  RobotsScanner(const RobotsScanner&) = delete;
  RobotsScanner& operator=(const RobotsScanner&) = delete;

  /// Feeds the next bytes; true when the answer is known (the head ended, or a noindex was found).
  bool Feed(std::string_view bytes) {
    if (!parser_ || done_) return true;
    // libxml2's push parser takes a UTF-8 byte order mark for text, which starts an implied <body>.
    if (first_ && bytes.starts_with("\xEF\xBB\xBF")) bytes.remove_prefix(3);
    first_ = false;
    // Callbacks never throw (they only compare strings), so nothing unwinds through libxml2.
    htmlParseChunk(parser_.get(), bytes.data(), static_cast<int>(bytes.size()), 0);
    return done_;
  }
  bool Finish() {
    if (parser_ && !done_) htmlParseChunk(parser_.get(), nullptr, 0, 1);
    done_ = true;
    return noindex_;
  }

 private:
  void Stop() {
    done_ = true;
    xmlStopParser(parser_.get());
  }
  static void OnStart(void* user, const xmlChar* name, const xmlChar** attributes) {
    auto* self = static_cast<RobotsScanner*>(user);
    if (self->done_) return;
    const std::string_view element = View(name);
    // libxml2 reports <body> also where it is implied: at the first content that cannot be in a head.
    if (EqualsIgnoreCase(element, "body")) return self->Stop();
    if (!EqualsIgnoreCase(element, "meta") || attributes == nullptr) return;
    std::string_view meta_name;
    std::string_view content;
    for (std::size_t i = 0; attributes[i] != nullptr; i += 2) {
      const std::string_view key = View(attributes[i]);
      if (EqualsIgnoreCase(key, "name")) meta_name = Trim(View(attributes[i + 1]));
      if (EqualsIgnoreCase(key, "content")) content = View(attributes[i + 1]);
    }
    if (EqualsIgnoreCase(meta_name, "robots") && HasNoindexDirective(content)) {
      self->noindex_ = true;
      self->Stop();
    }
  }
  static void OnEnd(void* user, const xmlChar* name) {
    auto* self = static_cast<RobotsScanner*>(user);
    if (!self->done_ && EqualsIgnoreCase(View(name), "head")) self->Stop();
  }

  htmlSAXHandler handler_;
  std::unique_ptr<htmlParserCtxt, ParserDeleter> parser_;
  bool first_ = true;
  bool done_ = false;
  bool noindex_ = false;
};

}  // namespace

bool RobotsNoindex(std::string_view html) {
  RobotsScanner scanner;
  for (std::size_t at = 0; at < html.size() && at < kMaxRead; at += kChunk) {
    if (scanner.Feed(html.substr(at, std::min(kChunk, html.size() - at)))) break;
  }
  return scanner.Finish();
}

namespace {

// RobotsNoindex() of the open file `fd` (`name` in messages), reading only as far as its head.
Result<bool> ScanRobots(int fd, const std::string& name) {
  RobotsScanner scanner;
  std::string buffer(kChunk, '\0');
  std::size_t total = 0;
  while (total < kMaxRead) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Fail(ErrorCode::kIo,
                  "cannot read " + name + " (" + std::error_code(errno, std::generic_category()).message() + ")");
    }
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
    if (scanner.Feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) break;
  }
  return scanner.Finish();
}

}  // namespace

Result<bool> FileRobotsNoindex(const std::filesystem::path& file) {
  const UniqueFd owned(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!owned) {
    return Fail(ErrorCode::kIo, "cannot read " + file.string() + " (" +
                                              std::error_code(errno, std::generic_category()).message() + ")");
  }
  return ScanRobots(owned.get(), file.string());
}

Result<bool> FileRobotsNoindex(const LocalFile& file) {
  auto opened = OpenInSource(file);
  if (!opened) return std::unexpected(opened.error());
  return ScanRobots(opened->fd.get(), file.AbsPath());
}

}  // namespace sitesync::sitemap
