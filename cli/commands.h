// The commands that are not a sync: each in its own file. Private to cli/.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "aws/aws.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "sitemap/sitemap.h"

namespace sitesync::cli {

/// `sitesync sitemap [SOURCE] --base-url URL [-o FILE]` (cli/sitemap_cmd.cc). The config is already loaded.
int RunSitemap(const Settings& settings, Output& out);

/// Where and how sitemap.xml is written, resolved from settings (SOURCE, --base-url / sitemap.base_url, -o /
/// sitemap.output, cdn.index_document) and the sync's filters.
struct SitemapSetup {
  std::filesystem::path source;
  std::filesystem::path output;  ///< Empty: standard output (-o -).
  bool inside_source = false;    ///< The output is under SOURCE: it is published by the sync.
  sitemap::SitemapOptions options;
  sitemap::WalkOptions filters;
};
/// Fails with kUsage (no base URL, a bad one, no SOURCE, an output that is a folder) or kInput (SOURCE missing).
[[nodiscard]] aws::Result<SitemapSetup> ResolveSitemap(const Settings& settings, const sitemap::WalkOptions& filters);

/// sitemap.enabled in sync, plan and watch (cli/sitemap_cmd.cc): the sitemap is written before the sync, and
/// again in each watch batch that changes a page.
class SitemapStep {
 public:
  explicit SitemapStep(SitemapSetup setup);
  /// Walks SOURCE and writes the sitemap if its content changed (with `dry_run`, only says whether it would).
  /// Returns the sitemap's files under SOURCE (relative to it), current and removed: what the sync must make
  /// equal remotely.
  [[nodiscard]] aws::Result<std::vector<std::string>> Refresh(Output& out, bool dry_run);
  /// For a watch batch: looks at `paths` (relative to SOURCE; everything with `rescan`) and writes the
  /// sitemap when the pages changed. Returns the files it wrote or removed under SOURCE (relative to it).
  [[nodiscard]] aws::Result<std::vector<std::string>> Update(const std::set<std::string>& paths, bool rescan,
                                                             Output& out);

 private:
  aws::Result<std::vector<std::string>> Publish(Output& out, bool dry_run, bool all_files);

  SitemapSetup setup_;
  sitemap::PageSet pages_;
};

/// Fails with kInput, saying how to fix it, when `source` is missing or not a folder (cli/run.cc).
[[nodiscard]] aws::Result<void> CheckSourceFolder(const std::string& source);

/// `sitesync init` (cli/init.cc): runs in the current folder and loads no config.
int RunInit(const Settings& settings);

/// `sitesync check [DEST]` (cli/check.cc): read-only preflight. The config is already loaded.
int RunCheck(const Settings& settings, const aws::EnvLookup& env);

/// sitesync's own files for a walk of settings.source (cli/run.cc): the config in use (settings.config_path, by
/// identity, and its file name at SOURCE's root), the journal's folder and the cache's folder.
[[nodiscard]] sitemap::OwnFiles OwnFilesOf(const Settings& settings, const aws::EnvLookup& env);

/// What the credential chain needs from this run (cli/credentials.cc): the profile if given explicitly
/// (--profile, `profile:`), the run's region for STS, the STS endpoint (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL,
/// else https://sts.REGION.amazonaws.com signed for REGION) and the SSO portal's (AWS_ENDPOINT_URL_SSO, ...), and an
/// MFA prompt on /dev/tty when stdin is a terminal.
[[nodiscard]] aws::CredentialChainOptions CredentialChainSettings(const Settings& settings, const aws::EnvLookup& env,
                                                                  const std::string& region);
/// Resolves the credential chain with the real fetcher (its requests use `transport`'s TLS settings and trace).
/// Fails with kConfig or kCredentials naming every place looked at, before any other request is made.
[[nodiscard]] aws::Result<std::shared_ptr<aws::CredentialProvider>> ResolveCredentials(
    const Settings& settings, const aws::EnvLookup& env, const std::string& region,
    const aws::ClientOptions& transport);

/// The S3 endpoint, addressing and region from settings (cli/run.cc); kUsage for a bad --endpoint URL.
[[nodiscard]] aws::Result<sync::S3Endpoint> ResolveS3Endpoint(const Settings& settings, const aws::EnvLookup& env);

// ---------------------------------------------------------------------------------------------------------------
// init: generator detection and the config text (pure; cli/init.cc)
// ---------------------------------------------------------------------------------------------------------------

/// What `sitesync init` looks at in a folder: the generator config files that exist, read whole (name -> text),
/// and which marker folders exist. Built-site markers ("public/index.html", ...) are listed with empty text.
struct SiteFolder {
  std::map<std::string, std::string> files;
  std::set<std::string> dirs;
};

/// Reads the files and folders DetectGenerator looks at from `dir` (config files over 1 MiB are not read).
[[nodiscard]] SiteFolder ReadSiteFolder(const std::filesystem::path& dir);

/// What DetectGenerator found.
struct Detection {
  std::string generator;            ///< "Hugo", "Zola", "Jekyll", "Eleventy", "Astro"; empty when none.
  std::string evidence;             ///< What gave it away, e.g. "hugo.toml" or "config.toml with base_url".
  std::string source;               ///< The output folder relative to the site folder, ending in '/'.
  std::string site_url;             ///< The site's URL from the generator config (baseURL, base_url, url, site).
  std::string build_command;        ///< How the site is usually built, e.g. "hugo"; empty when unknown.
  std::vector<std::string> others;  ///< Other generators that matched too (for the message).
};

/// Hugo (hugo.toml/.yaml/.json, config/_default/, or config.toml/.yaml/.json with baseURL or Hugo folders) ->
/// public/; Zola (config.toml with base_url) -> public/; Jekyll (_config.yml) -> _site/; Eleventy
/// (.eleventy.js, eleventy.config.js/.mjs/.cjs, or package.json depending on @11ty/eleventy) -> _site/; Astro
/// (astro.config.*, or package.json depending on astro) -> dist/. An output folder set in the generator config
/// (publishDir, output_dir, destination, dir.output, outDir) wins. None found: generator empty and source the
/// first built folder holding an index.html (public/, _site/, dist/, build/, out/), else "public/".
[[nodiscard]] Detection DetectGenerator(const SiteFolder& folder);

/// The commented sitesync.yaml `sitesync init` writes: `source` as given (relative to the file's folder), the
/// destination left commented out so that sync asks for it, header rules, cdn.distribution auto, and a commented
/// sitemap section.
[[nodiscard]] std::string InitConfigText(const Detection& detection, const std::string& source);

/// "an" before a word that starts with a vowel letter ("an Eleventy site", "an Astro site"), else "a".
[[nodiscard]] std::string_view Article(std::string_view word);

/// What AddJekyllExclude decided.
struct ExcludeEdit {
  enum class Outcome { kAdded, kAlreadyThere, kManual };
  Outcome outcome = Outcome::kManual;
  std::string text;  ///< kAdded: the whole new file.
  std::string why;   ///< kManual: why the file was left alone, e.g. "its exclude: is not a simple block list".
};

/// Jekyll copies every file of the site folder into _site/, sitesync.yaml included: `entry` is added to the
/// top-level `exclude:` of a _config.yml when that is safe: no `exclude:` key (a block list is appended at the
/// end), or a block list of plain items (one more item, indented as the others). Anything unusual (a flow list,
/// anchors, aliases, tags, several documents, CRLF or tabs, a key given twice) is kManual; so is a result that
/// yaml-cpp does not read back as the same document with `entry` added to exclude.
[[nodiscard]] ExcludeEdit AddJekyllExclude(std::string_view config_text, std::string_view entry);

// ---------------------------------------------------------------------------------------------------------------
// check: what each answer means (pure; cli/check.cc)
// ---------------------------------------------------------------------------------------------------------------

/// One line of `sitesync check`.
struct CheckLine {
  enum class Status { kOk, kFail, kSkip };
  std::string name;  ///< "credentials", "bucket", "region", "cloudfront-list", "distribution", "origin".
  Status status = Status::kOk;
  std::string detail;
  std::string fix;  ///< What to do; set on kFail.
};

/// "ending in WXYZ": the last 4 characters of an access key ID, never more, and only when the ID is long enough
/// (16+) that they give nothing away; else "".
[[nodiscard]] std::string KeyIdHint(std::string_view access_key_id);

/// The region S3 says the bucket is in: Error::bucket_region, else the region named by the message of a 400
/// AuthorizationHeaderMalformed ("... expecting 'us-west-2'") or IllegalLocationConstraintException ("The
/// af-south-1 location constraint is incompatible ..."); empty when the error names none.
[[nodiscard]] std::string RegionHint(const aws::Error& error);

/// What the bucket listing's failure means, as a "bucket" check line with the fix. `where` is the credentials'
/// source (Credentials::source), `key_hint` from KeyIdHint, `region` the region the request was signed for.
[[nodiscard]] CheckLine BucketFailure(const aws::Error& error, const sync::Destination& destination,
                                      std::string_view region, std::string_view where, std::string_view key_hint);

/// True when the error says the credentials themselves were refused (wrong secret, unknown key, expired token),
/// not just a missing permission.
[[nodiscard]] bool CredentialsRefused(const aws::Error& error);

}  // namespace sitesync::cli
