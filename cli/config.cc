// sitesync.yaml (yaml-cpp). yaml-cpp throws; everything is caught here and turned into a kConfig error that names
// the file, the line and the way out.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/cli.h"

namespace sitesync::cli {
namespace {

using aws::ErrorCode;

struct Ctx {
  const std::string& file;
  std::unexpected<aws::Error> At(const YAML::Node& node, const std::string& what) const {
    return aws::Fail(ErrorCode::kConfig, fmt::format("{}:{}: {}", file, node.Mark().line + 1, what));
  }
};

template <class T>
aws::Result<T> Scalar(const Ctx& ctx, const YAML::Node& node, const std::string& key, std::string_view expected) {
  if (!node.IsScalar()) return ctx.At(node, fmt::format("'{}' must be {}", key, expected));
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    return ctx.At(node, fmt::format("'{}' must be {}, not '{}'", key, expected, node.Scalar()));
  }
}

aws::Result<std::vector<std::string>> StringList(const Ctx& ctx, const YAML::Node& node, const std::string& key) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return out;
  }
  if (!node.IsSequence()) return ctx.At(node, fmt::format("'{}' must be a list of globs", key));
  for (const YAML::Node& item : node) {
    auto s = Scalar<std::string>(ctx, item, key + " item", "a glob string");
    if (!s) return std::unexpected(s.error());
    out.push_back(*s);
  }
  return out;
}

// The values S3 takes for the `headers:` fields that are enumerations (S3 API reference, PutObject: the
// x-amz-storage-class, x-amz-acl and x-amz-server-side-encryption request headers). OUTPOSTS, SNOW and the FSX
// classes are left out: they name storage that a bucket behind CloudFront is not in.
constexpr std::array<std::string_view, 9> kStorageClasses = {
    "STANDARD",   "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",     "INTELLIGENT_TIERING",
    "GLACIER",    "DEEP_ARCHIVE",       "GLACIER_IR",  "EXPRESS_ONEZONE"};
constexpr std::array<std::string_view, 7> kCannedAcls = {
    "private",           "public-read",       "public-read-write",        "authenticated-read",
    "aws-exec-read",     "bucket-owner-read", "bucket-owner-full-control"};
constexpr std::array<std::string_view, 3> kSseValues = {"AES256", "aws:kms", "aws:kms:dsse"};

// S3 limits the user-defined metadata of an object to 2 KB: the bytes of every name (without x-amz-meta-) and
// value together (S3 User Guide, "Working with object metadata").
constexpr std::size_t kMaxMetadataBytes = 2048;

template <std::size_t N>
std::string OneOf(const std::array<std::string_view, N>& values) {
  std::string out;
  for (std::string_view v : values) out += (out.empty() ? "" : ", ") + std::string(v);
  return out;
}

template <std::size_t N>
bool IsOneOf(const std::array<std::string_view, N>& values, std::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// RFC 9110's tchar: what a header field name may hold.
bool TokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool PrintableAscii(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// Why `value` cannot be `field` of a headers rule (beyond a control character, checked for every field), or
// nullopt when it can. An empty value is always taken: the header is not sent (it undoes an earlier rule).
std::optional<std::string> HeaderFieldProblem(std::string_view field, const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (field == "storage_class" && !IsOneOf(kStorageClasses, value)) {
    return fmt::format("'storage_class' is '{}'; use one of {}", value, OneOf(kStorageClasses));
  }
  if (field == "acl" && !IsOneOf(kCannedAcls, value)) {
    return fmt::format("'acl' is '{}'; use a canned ACL: one of {}", value, OneOf(kCannedAcls));
  }
  if (field == "sse" && !IsOneOf(kSseValues, value)) {
    return fmt::format("'sse' is '{}'; use one of {}", value, OneOf(kSseValues));
  }
  if (field == "website_redirect") {
    // S3 takes "/path" (a redirect within the bucket's website) or an absolute http(s) URL, of at most 2 KB.
    const bool form = value.starts_with('/') || value.starts_with("http://") || value.starts_with("https://");
    if (!form || value.size() > 2048 || !PrintableAscii(value) || value.find(' ') != std::string::npos) {
      return fmt::format("'website_redirect' is '{}'; use a path starting with '/' or an absolute http:// or "
                         "https:// URL of at most 2048 characters, without spaces or non-ASCII characters "
                         "(percent-encode them)",
                         value);
    }
  }
  return std::nullopt;
}

// `metadata:` of a headers rule: a map of names (without x-amz-meta-) to values, sorted by name. Names are
// lowercased (S3 stores and returns them so), values printable ASCII (S3 would RFC 2047-encode anything else, and
// the object would never compare equal to the config). `problem` receives the first problem.
aws::Result<std::vector<std::pair<std::string, std::string>>> Metadata(
    const Ctx& ctx, const YAML::Node& node, std::optional<std::pair<YAML::Node, std::string>>& problem) {
  std::vector<std::pair<std::string, std::string>> out;
  if (node.IsNull()) return out;  // `metadata:` with nothing under it: no metadata (replaces earlier rules')
  if (!node.IsMap()) {
    return ctx.At(node, "'headers.metadata' must be a map of names to values, e.g. {author: docs-team}");
  }
  std::size_t bytes = 0;
  for (const auto& kv : node) {
    auto name_text = Scalar<std::string>(ctx, kv.first, "headers.metadata name", "a string");
    if (!name_text) return std::unexpected(name_text.error());
    auto value = Scalar<std::string>(ctx, kv.second, "headers.metadata." + *name_text, "a string");
    if (!value) return std::unexpected(value.error());
    std::string name = *name_text;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    auto note = [&](const YAML::Node& at, std::string message) {
      if (!problem) problem.emplace(at, std::move(message));
    };
    if (name.starts_with("x-amz-meta-")) {
      note(kv.first, fmt::format("metadata name '{}' includes the x-amz-meta- prefix; write it without: '{}'",
                                 *name_text, name.substr(11)));
    } else if (name.empty() || !std::all_of(name.begin(), name.end(), TokenChar)) {
      note(kv.first, fmt::format("metadata name '{}' is not a header name; use letters, digits and - _ . "
                                 "(no spaces, colons or non-ASCII characters)",
                                 *name_text));
    } else if (!PrintableAscii(*value)) {
      note(kv.second, fmt::format("metadata '{}' has a value with a character that is not printable ASCII; use "
                                  "ASCII letters, digits, punctuation and spaces (percent-encode the rest)",
                                  name));
    } else if (std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.first == name; })) {
      note(kv.first, fmt::format("metadata name '{}' is given twice (names are not case-sensitive)", name));
    }
    bytes += name.size() + value->size();
    out.emplace_back(std::move(name), std::move(*value));
  }
  if (bytes > kMaxMetadataBytes && !problem) {
    problem.emplace(node, fmt::format("'metadata' holds {} bytes of names and values; S3 takes at most {}", bytes,
                                      kMaxMetadataBytes));
  }
  std::sort(out.begin(), out.end());
  return out;
}

constexpr std::string_view kHeaderKeys =
    "match, cache_control, content_type, content_encoding, content_disposition, content_language, metadata, "
    "storage_class, acl, sse, kms_key_id, website_redirect";

aws::Result<std::vector<sitemap::HeaderRule>> HeaderRules(const Ctx& ctx, const YAML::Node& node) {
  if (!node.IsSequence()) {
    return ctx.At(node, fmt::format("'headers' must be a list of rules {{{}}}", kHeaderKeys));
  }
  std::vector<sitemap::HeaderRule> out;
  for (const YAML::Node& item : node) {
    if (!item.IsMap()) return ctx.At(item, "each 'headers' entry must be a map with 'match' and a header");
    sitemap::HeaderRule rule;
    // The first value that cannot be sent (a CR or LF would inject a header) or is not one S3 takes, reported
    // once the rule's match glob is known, so that the message names the rule.
    std::optional<std::pair<YAML::Node, std::string>> bad_value;
    for (const auto& kv : item) {
      const std::string k = kv.first.Scalar();
      if (k == "metadata") {
        auto metadata = Metadata(ctx, kv.second, bad_value);
        if (!metadata) return std::unexpected(metadata.error());
        rule.metadata = std::move(*metadata);
        continue;
      }
      auto v = Scalar<std::string>(ctx, kv.second, "headers." + k, "a string");
      if (!v) return std::unexpected(v.error());
      if (k != "match" && !bad_value) {
        if (auto problem = aws::HeaderValueProblem(*v)) {
          bad_value.emplace(kv.second, fmt::format("'{}' {}; remove the control character (in YAML, a '|' block or "
                                                   "\\n in double quotes makes a newline)",
                                                   k, *problem));
        } else if (auto field_problem = HeaderFieldProblem(k, *v)) {
          bad_value.emplace(kv.second, std::move(*field_problem));
        }
      }
      std::optional<std::string>* field = k == "match"                 ? nullptr
                                          : k == "cache_control"       ? &rule.cache_control
                                          : k == "content_type"        ? &rule.content_type
                                          : k == "content_encoding"    ? &rule.content_encoding
                                          : k == "content_disposition" ? &rule.content_disposition
                                          : k == "content_language"    ? &rule.content_language
                                          : k == "storage_class"       ? &rule.storage_class
                                          : k == "acl"                 ? &rule.acl
                                          : k == "sse"                 ? &rule.sse
                                          : k == "kms_key_id"          ? &rule.kms_key_id
                                          : k == "website_redirect"    ? &rule.website_redirect
                                                                       : nullptr;
      if (k == "match") {
        rule.match = *v;
      } else if (field != nullptr) {
        *field = *v;
      } else {
        return ctx.At(kv.first, fmt::format("unknown key 'headers.{}' (known: {})", k, kHeaderKeys));
      }
    }
    if (rule.match.empty()) return ctx.At(item, "a 'headers' entry needs 'match: GLOB'");
    if (!bad_value && rule.kms_key_id && !rule.kms_key_id->empty() && !(rule.sse && rule.sse->starts_with("aws:kms"))) {
      // A key ID means SSE-KMS: S3 refuses x-amz-server-side-encryption-aws-kms-key-id without it.
      bad_value.emplace(item["kms_key_id"], "'kms_key_id' is given without 'sse: aws:kms' (or aws:kms:dsse) in the "
                                            "same rule; add it, or remove the key ID");
    }
    if (bad_value) {
      return ctx.At(bad_value->first, fmt::format("headers rule with match '{}' (line {}): {}", rule.match,
                                                  item.Mark().line + 1, bad_value->second));
    }
    out.push_back(std::move(rule));
  }
  return out;
}

// compress: [{match: GLOB, encoding: gzip|br}]. A rule is named in messages by its match (else its position).
aws::Result<std::vector<sitemap::CompressRule>> CompressRules(const Ctx& ctx, const YAML::Node& node) {
  constexpr std::string_view kForm = "{match: GLOB, encoding: gzip|br}";
  if (!node.IsSequence()) return ctx.At(node, fmt::format("'compress' must be a list of {}", kForm));
  std::vector<sitemap::CompressRule> out;
  for (const YAML::Node& item : node) {
    const std::string position = fmt::format("compress rule {}", out.size() + 1);
    if (!item.IsMap()) return ctx.At(item, fmt::format("{} must be a map {}", position, kForm));
    std::optional<std::string> match;
    std::optional<std::pair<YAML::Node, std::string>> encoding;
    std::optional<YAML::Node> unknown;  // reported once the rule's match is known
    for (const auto& kv : item) {
      const std::string k = kv.first.Scalar();
      if (k == "match" || k == "encoding") {
        auto v = Scalar<std::string>(ctx, kv.second, "compress." + k, k == "match" ? "a glob string" : "gzip or br");
        if (!v) return std::unexpected(v.error());
        if (k == "match") {
          match = *v;
        } else {
          encoding.emplace(kv.second, *v);
        }
      } else if (!unknown) {
        unknown = kv.first;
      }
    }
    const std::string name = match && !match->empty() ? fmt::format("compress rule with match '{}'", *match) : position;
    if (unknown) {
      return ctx.At(*unknown, fmt::format("{}: unknown key '{}' (known: match, encoding)", name, unknown->Scalar()));
    }
    if (!match || match->empty()) return ctx.At(item, fmt::format("{} needs 'match: GLOB'", name));
    if (!encoding) return ctx.At(item, fmt::format("{} needs 'encoding: gzip' or 'encoding: br'", name));
    sitemap::CompressRule rule;
    rule.match = *match;
    if (encoding->second == "gzip") {
      rule.encoding = sitemap::Encoding::kGzip;
    } else if (encoding->second == "br") {
      rule.encoding = sitemap::Encoding::kBrotli;
    } else {
      return ctx.At(encoding->first, fmt::format("{}: unknown encoding '{}' (use gzip or br)", name, encoding->second));
    }
    out.push_back(std::move(rule));
  }
  return out;
}

// Sections that later features read; their keys are checked so a typo is caught now.
aws::Result<void> CheckSection(const Ctx& ctx, const YAML::Node& node, const std::string& name,
                               std::initializer_list<std::string_view> keys) {
  if (node.IsNull()) return {};  // `cdn:` with every key commented out: nothing set
  if (!node.IsMap()) return ctx.At(node, fmt::format("'{}' must be a map", name));
  for (const auto& kv : node) {
    const std::string k = kv.first.Scalar();
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      std::string known;
      for (auto key : keys) known += (known.empty() ? "" : ", ") + std::string(key);
      return ctx.At(kv.first, fmt::format("unknown key '{}.{}' (known: {})", name, k, known));
    }
  }
  return {};
}

aws::Result<void> LoadCdn(const Ctx& ctx, const YAML::Node& cdn, Settings& into) {
  for (const auto& kv : cdn) {
    const std::string key = "cdn." + kv.first.Scalar();
    const YAML::Node& v = kv.second;
    auto str = [&](std::optional<std::string>& field, std::string_view expected) -> aws::Result<void> {
      auto s = Scalar<std::string>(ctx, v, key, expected);
      if (!s) return std::unexpected(s.error());
      if (!field) field = *s;
      return {};
    };
    auto flag = [&](std::optional<bool>& field) -> aws::Result<void> {
      auto b = Scalar<bool>(ctx, v, key, "true or false");
      if (!b) return std::unexpected(b.error());
      if (!field) field = *b;
      return {};
    };
    auto count = [&](std::optional<std::int64_t>& field) -> aws::Result<void> {
      auto n = Scalar<std::int64_t>(ctx, v, key, "a whole number");
      if (!n) return std::unexpected(n.error());
      if (*n < 1) return ctx.At(v, fmt::format("'{}' must be at least 1", key));
      if (!field) field = *n;
      return {};
    };
    aws::Result<void> ok;
    if (key == "cdn.distribution") ok = str(into.distribution, "a distribution ID or auto");
    if (key == "cdn.endpoint") ok = str(into.cloudfront_endpoint, "a URL");
    if (key == "cdn.invalidate") ok = flag(into.invalidate);
    if (key == "cdn.wait") ok = flag(into.wait);
    if (key == "cdn.bare_alias") ok = flag(into.bare_alias);
    if (key == "cdn.index_document") ok = str(into.index_document, "a file name such as index.html");
    if (key == "cdn.max_paths") {
      ok = count(into.max_paths);
      if (ok && v.IsScalar() && v.as<std::int64_t>() > static_cast<std::int64_t>(cdn::kMaxInvalidationPaths)) {
        return ctx.At(v, fmt::format("'cdn.max_paths' must be at most {} (CloudFront takes no more paths in one "
                                     "invalidation: BatchTooLarge)",
                                     cdn::kMaxInvalidationPaths));
      }
    }
    if (key == "cdn.url_prefix") {
      ok = str(into.url_prefix, "a URL path such as /blog/");
      if (ok && into.url_prefix) {
        if (auto valid = cdn::NormalizeUrlPrefix(*into.url_prefix); !valid) {
          return ctx.At(v, "'cdn.url_prefix': " + valid.error().message);
        }
      }
    }
    if (key == "cdn.max_wildcards") ok = count(into.max_wildcards);
    if (key == "cdn.invalidate_new") ok = flag(into.invalidate_new);
    if (key == "cdn.skip") {
      if (!v.IsSequence()) return ctx.At(v, "'cdn.skip' must be a list of globs, e.g. [\"*.min.*.css\"]");
      auto list = StringList(ctx, v, key);
      if (!list) return std::unexpected(list.error());
      for (const std::string& pattern : *list) {
        if (pattern.empty()) return ctx.At(v, "'cdn.skip' holds an empty glob, which matches nothing; remove it");
      }
      into.cdn_skip = std::move(*list);
    }
    if (!ok) return ok;
  }
  return {};
}

// sitemap.enabled, sitemap.base_url, sitemap.output. `output_from_config` says whether sitemap.output was taken
// from here (it is then relative to SOURCE; a -o on the command line is relative to the current folder).
aws::Result<void> LoadSitemap(const Ctx& ctx, const YAML::Node& node, Settings& into, bool& output_from_config) {
  for (const auto& kv : node) {
    const std::string key = "sitemap." + kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "sitemap.enabled") {
      auto b = Scalar<bool>(ctx, v, key, "true or false");
      if (!b) return std::unexpected(b.error());
      if (!into.sitemap_enabled) into.sitemap_enabled = *b;
    } else if (key == "sitemap.base_url") {
      auto s = Scalar<std::string>(ctx, v, key, "the site's public URL, such as https://example.com/");
      if (!s) return std::unexpected(s.error());
      if (auto ok = sitemap::NormalizeBaseUrl(*s); !ok) return ctx.At(v, "'sitemap.base_url': " + ok.error().message);
      if (!into.base_url) into.base_url = *s;
    } else if (key == "sitemap.output") {
      auto s = Scalar<std::string>(ctx, v, key, "a file path relative to SOURCE, such as sitemap.xml");
      if (!s) return std::unexpected(s.error());
      if (s->empty() || *s == "-" || s->ends_with('/')) {
        return ctx.At(v, "'sitemap.output' must be a file path relative to SOURCE, such as sitemap.xml");
      }
      if (!into.sitemap_output) {
        into.sitemap_output = *s;
        output_from_config = true;
      }
    }
  }
  return {};
}

}  // namespace

aws::Result<void> LoadConfig(const std::string& path, Settings& into) {
  std::ifstream in(path);
  if (!in) return aws::Fail(ErrorCode::kConfig, fmt::format("cannot read config file {}", path));
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::ParserException& e) {
    return aws::Fail(ErrorCode::kConfig, fmt::format("{}:{}: YAML syntax error: {}", path, e.mark.line + 1, e.msg));
  } catch (const YAML::Exception& e) {
    return aws::Fail(ErrorCode::kConfig, fmt::format("{}: cannot parse YAML: {}", path, e.what()));
  }
  const Ctx ctx{path};
  if (root.IsNull()) return {};
  if (!root.IsMap()) return ctx.At(root, "the config must be a map of keys (source:, destination:, ...)");

  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  bool sitemap_output_from_config = false;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    auto set_string = [&](std::optional<std::string>& field, std::string_view expected) -> aws::Result<void> {
      auto s = Scalar<std::string>(ctx, v, key, expected);
      if (!s) return std::unexpected(s.error());
      if (!field) field = *s;
      return {};
    };
    aws::Result<void> ok;
    if (key == "source") {
      auto s = Scalar<std::string>(ctx, v, key, "a folder path");
      if (!s) return std::unexpected(s.error());
      std::filesystem::path p(*s);
      if (!into.source) into.source = (p.is_relative() && !base.empty() ? base / p : p).string();
    } else if (key == "destination") {
      ok = set_string(into.destination, "s3://BUCKET[/PREFIX]");
    } else if (key == "region") {
      ok = set_string(into.region, "a region name");
    } else if (key == "endpoint") {
      ok = set_string(into.endpoint, "a URL");
    } else if (key == "profile") {
      ok = set_string(into.profile, "a profile name");
    } else if (key == "ca_bundle") {
      // Relative to the config file's folder, like source: the file travels with the config.
      auto s = Scalar<std::string>(ctx, v, key, "the path of a PEM file of CA certificates");
      if (!s) return std::unexpected(s.error());
      if (s->empty()) return ctx.At(v, "'ca_bundle' must be the path of a PEM file of CA certificates");
      std::filesystem::path p(*s);
      if (!into.ca_bundle) into.ca_bundle = (p.is_relative() && !base.empty() ? base / p : p).string();
    } else if (key == "compare") {
      ok = set_string(into.compare, "size or checksum");
    } else if (key == "path_style" || key == "delete") {
      auto b = Scalar<bool>(ctx, v, key, "true or false");
      if (!b) return std::unexpected(b.error());
      auto& field = key == "delete" ? into.delete_stale : into.path_style;
      if (!field) field = *b;
    } else if (key == "max_deletes") {
      auto n = Scalar<std::int64_t>(ctx, v, key, "a whole number (-1: no limit)");
      if (!n) return std::unexpected(n.error());
      if (!into.max_deletes) into.max_deletes = *n;
    } else if (key == "max_delete_fraction") {
      auto f = Scalar<double>(ctx, v, key, "a number from 0 to 1 (1: off)");
      if (!f) return std::unexpected(f.error());
      if (!(*f >= 0 && *f <= 1)) return ctx.At(v, fmt::format("'{}' must be from 0 to 1 (1: off), not {}", key, *f));
      if (!into.max_delete_fraction) into.max_delete_fraction = *f;
    } else if (key == "jobs") {
      auto n = Scalar<int>(ctx, v, key, "a whole number of transfers");
      if (!n) return std::unexpected(n.error());
      if (!into.jobs) into.jobs = *n;
    } else if (key == "exclude" || key == "include") {
      auto list = StringList(ctx, v, key);
      if (!list) return std::unexpected(list.error());
      auto& field = key == "exclude" ? into.exclude : into.include;
      field.insert(field.begin(), list->begin(), list->end());
    } else if (key == "headers") {
      auto rules = HeaderRules(ctx, v);
      if (!rules) return std::unexpected(rules.error());
      into.headers = std::move(*rules);
    } else if (key == "compress") {
      auto rules = CompressRules(ctx, v);
      if (!rules) return std::unexpected(rules.error());
      into.compress = std::move(*rules);
    } else if (key == "cdn") {
      ok = CheckSection(ctx, v, key, {"distribution", "endpoint", "invalidate", "index_document", "bare_alias",
                                      "max_paths", "max_wildcards", "wait", "url_prefix", "skip", "invalidate_new"});
      if (!ok) return ok;
      ok = LoadCdn(ctx, v, into);
    } else if (key == "watch") {
      ok = CheckSection(ctx, v, key,
                        {"debounce_ms", "max_delay_ms", "poll_ms", "rescan_interval_s", "delete_delay_ms"});
      if (!ok) return ok;
      for (const auto& item : v) {
        const std::string name = "watch." + item.first.Scalar();
        const bool seconds = name == "watch.rescan_interval_s";
        auto n = Scalar<std::int64_t>(ctx, item.second, name,
                                      seconds ? "a number of seconds" : "a number of milliseconds");
        if (!n) return std::unexpected(n.error());
        if (*n < 0) return ctx.At(item.second, fmt::format("'{}' must not be negative", name));
        if (seconds && *n == 0) return ctx.At(item.second, fmt::format("'{}' must be at least 1", name));
        auto& field = name == "watch.debounce_ms"       ? into.debounce_ms
                      : name == "watch.poll_ms"         ? into.poll_ms
                      : name == "watch.delete_delay_ms" ? into.delete_delay_ms
                      : seconds                         ? into.rescan_interval_s
                                                        : into.max_delay_ms;
        if (!field) field = *n;
      }
    } else if (key == "sitemap") {
      ok = CheckSection(ctx, v, key, {"enabled", "base_url", "output"});
      if (!ok) return ok;
      ok = LoadSitemap(ctx, v, into, sitemap_output_from_config);
    } else {
      return ctx.At(kv.first, fmt::format("unknown key '{}' (known: source, destination, region, endpoint, "
                                          "path_style, profile, compare, delete, max_deletes, max_delete_fraction, "
                                          "jobs, exclude, include, headers, compress, cdn, watch, sitemap, ca_bundle)",
                                          key));
    }
    if (!ok) return ok;
  }
  // sitemap.output is relative to SOURCE (wherever SOURCE came from), so that the sitemap lands in the site.
  if (sitemap_output_from_config && into.source) {
    const std::filesystem::path output(*into.sitemap_output);
    if (output.is_relative()) into.sitemap_output = (std::filesystem::path(*into.source) / output).string();
  }
  return {};
}

}  // namespace sitesync::cli
