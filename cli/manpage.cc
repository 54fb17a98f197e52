// sitesync(1), generated from the CLI11 App that --help prints (`sitesync --generate-man`; the build runs it).
// The per-command part walks the App; the rest (configuration, environment, exit status) follows CLI.md.
#include <string>
#include <string_view>
#include <vector>

#include "cli/app.h"

#ifndef SITESYNC_VERSION
#define SITESYNC_VERSION "0.0.0"
#endif

namespace sitesync::cli {
namespace gen {

std::vector<const CLI::App*> Commands(const CLI::App& app) {
  return app.get_subcommands(
      [](const CLI::App* c) { return !c->get_name().empty() && !c->get_group().empty(); });
}

std::vector<const CLI::Option*> VisibleOptions(const CLI::App& cmd) {
  return cmd.get_options(
      [](const CLI::Option* o) { return !o->get_group().empty() && o->get_group() != kIgnoredGroup; });
}

std::vector<const CLI::Option*> IgnoredOptions(const CLI::App& cmd) {
  return cmd.get_options([](const CLI::Option* o) { return o->get_group() == kIgnoredGroup; });
}

std::vector<std::string> Choices(const CLI::Option& opt) {
  // CLI::IsMember describes itself as "{a,b,c}", appended to the type name after a ':' ("TEXT:{size,checksum}").
  const std::string type = opt.get_type_name();
  const auto open = type.find(":{");
  if (open == std::string::npos || type.back() != '}') return {};
  std::vector<std::string> out;
  std::string_view rest(type);
  rest = rest.substr(open + 2, rest.size() - open - 3);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    out.emplace_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

std::string ValueName(const CLI::Option& opt) {
  if (opt.get_positional()) return opt.get_name(true);
  if (opt.get_expected_max() == 0) return {};  // A flag.
  if (!opt.get_option_text().empty()) return opt.get_option_text();
  return opt.get_type_name();
}

ValueKind KindOf(const CLI::Option& opt) {
  if (!opt.get_positional() && opt.get_expected_max() == 0) return ValueKind::kFlag;
  if (!Choices(opt).empty()) return ValueKind::kChoice;
  const std::string value = ValueName(opt);
  if (value == "FILE") return ValueKind::kFile;
  if (value == "SOURCE" || value == "DIR") return ValueKind::kDirectory;
  return ValueKind::kNone;
}

std::string Synopsis(const CLI::App& cmd) {
  std::string out = "sitesync " + cmd.get_name();
  for (const CLI::Option* o : VisibleOptions(cmd)) {
    if (!o->get_positional()) continue;
    std::string word = o->get_name(true);
    if (o->get_items_expected_max() > 1) word += "...";
    out += " " + (o->get_required() ? word : "[" + word + "]");
  }
  return out + " [OPTIONS]";
}

}  // namespace gen

namespace {

// Text for a roff text line: backslash, hyphen-minus (\- so that options copy and search as ASCII '-'), and a
// '.' or '\'' at the start of a line (a request otherwise) are escaped. See groff_man(7), "Portability".
std::string Roff(std::string_view text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = c == '\n';
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Bold(std::string_view s) { return "\\fB" + Roff(s) + "\\fR"; }
std::string Italic(std::string_view s) { return "\\fI" + Roff(s) + "\\fR"; }

// "\fB\-c\fR, \fB\-\-config\fR \fIFILE\fR" for an option; "\fISOURCE\fR" for a positional.
std::string OptionTag(const CLI::Option& opt) {
  if (opt.get_positional()) {
    std::string tag = Italic(opt.get_name(true));
    return opt.get_items_expected_max() > 1 ? tag + "..." : tag;
  }
  std::string tag;
  for (const std::string& s : opt.get_snames()) tag += (tag.empty() ? "" : ", ") + Bold("-" + s);
  for (const std::string& l : opt.get_lnames()) tag += (tag.empty() ? "" : ", ") + Bold("--" + l);
  const std::string value = gen::ValueName(opt);
  if (!value.empty()) tag += " " + Italic(value);
  return tag;
}

// The description of --help as a sentence.
std::string Sentence(std::string text) {
  if (!text.empty() && text.back() != '.') text += '.';
  return text;
}

// Positionals first (as in the synopsis), then the options in the order of --help.
void AppendOptions(std::string& out, const CLI::App& cmd) {
  for (const bool positional : {true, false}) {
    for (const CLI::Option* o : gen::VisibleOptions(cmd)) {
      if (o->get_positional() != positional) continue;
      out += ".TP\n" + OptionTag(*o) + "\n" + Roff(Sentence(o->get_description())) + "\n";
    }
  }
  const std::vector<const CLI::Option*> ignored = gen::IgnoredOptions(cmd);
  if (ignored.empty()) return;
  std::string names;
  for (const CLI::Option* o : ignored) names += (names.empty() ? "" : ", ") + Bold(o->get_name());
  out += ".PP\nAlso accepted, and ignored (with a note under \\fB\\-v\\fR), so that scripts can pass every command "
         "the same options:\n" + names + ".\n";
}

// The sentence of the App's description without "sitesync: " and the final period, for NAME.
std::string Summary(const CLI::App& app) {
  std::string d = app.get_description();
  const std::string prefix = app.get_name() + ": ";
  if (d.starts_with(prefix)) d.erase(0, prefix.size());
  if (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}

constexpr const char* kDescription = R"(.SH DESCRIPTION
.B sitesync
publishes the folder a static site generator wrote (Hugo, Jekyll, Zola, Eleventy) to an S3 bucket.
It lists the bucket once, uploads only what changed with many transfers in flight, deletes what is gone when
asked to, and never lets a page go live before the assets it references: every other file goes up first, then
HTML, then deletes.
With a CloudFront distribution, each run that changed anything ends with one invalidation for exactly the URL
paths that changed; the owed paths are journaled, so a failed or interrupted run is made good by the next one.
.PP
Without
.B \-\-jobs
(or
.BR jobs ),
the number of transfers in flight finds its own level: it starts at 64 and grows while the throughput grows, up
to 256, and halves (at most once per round trip, never below 8) when the server asks to slow down (503 SlowDown,
429, Throttling); then it grows again by one per round trip.
The requests the server throttled are retried, none lost; the summary says how many answers asked to slow down.
.B \-\-jobs
.I N
fixes the number at
.IR N .
.PP
.I DEST
is
.BI s3:// BUCKET\fR[\fB/\fIPREFIX\fR];
.B s3://b/site
and
.B s3://b/site/
both mean the folder
.BR site/ ,
and keys outside it are never touched.
A missing
.I SOURCE
or a
.I DEST
not of that form is a usage error (exit status 2).
.I SOURCE
and
.I DEST
may also come from the configuration file.
)";

constexpr const char* kConfiguration = R"(.SH CONFIGURATION
Settings are read from
.B ./sitesync.yaml
when present, or from the file given with
.B \-c
or
.BR \-\-config .
Keys mirror the long options; options given on the command line win; lists (exclude, include) add to the
file's; a relative
.B source
is relative to the file's folder.
Errors name the file and the line.
.TP
.BR source ", " destination
.I SOURCE
and
.IR DEST .
.TP
.BR endpoint ", " region ", " profile ", " path_style ", " compare ", " delete ", " max_deletes ", " max_delete_fraction ", " jobs
The options of the same name (delete: true or false).
.TP
.BR exclude ", " include
Lists of globs.
.TP
.B headers
A list of rules
.RB { match ", " cache_control ", " content_type ", " content_encoding ", " content_disposition ,
.BR content_language ", " metadata ", " storage_class ", " acl ", " sse ", " kms_key_id ", " website_redirect },
applied in order; the last matching rule wins per field (metadata, a map of names to values sent as
x\-amz\-meta\-NAME, is replaced whole; sse and kms_key_id go together). storage_class is one of STANDARD,
REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE, GLACIER_IR,
EXPRESS_ONEZONE; acl a canned ACL (private, public\-read, public\-read\-write, authenticated\-read,
aws\-exec\-read, bucket\-owner\-read, bucket\-owner\-full\-control); sse AES256, aws:kms or aws:kms:dsse
(kms_key_id only with aws:kms); website_redirect a path starting with / or an http(s) URL. An empty value sends
no such header. When the headers a file gets change, its object is updated by CopyObject (no body sent).
.TP
.B compress
A list of rules
.RB { match ", " encoding }
with encoding gzip or br: matching files are uploaded compressed, with that Content\-Encoding (the last
matching rule wins).
.TP
.BR cdn.distribution ", " cdn.endpoint ", " cdn.invalidate ", " cdn.wait
.BR \-\-distribution ,
.BR \-\-cloudfront\-endpoint ,
.B \-\-no\-invalidate
(as cdn.invalidate: false) and
.BR \-\-wait .
.TP
.BR cdn.index_document ", " cdn.bare_alias ", " cdn.max_paths ", " cdn.max_wildcards
The index document (index.html), whether its folder is also invalidated without the trailing slash (true),
and the number of exact paths past which the set is collapsed to at most max_wildcards wildcard paths (1000, 8).
.TP
.BR cdn.skip ", " cdn.invalidate_new
A list of globs (exclude syntax) of keys never invalidated, e.g. fingerprinted assets; and false to leave out
keys that did not exist before the run or watch batch (true: CloudFront caches the 403 or 404 a URL got before
its object existed).
.TP
.B redirects
A list of
.RB { from ", " to }:
each becomes a zero\-byte object with x\-amz\-website\-redirect\-location (from /old/ the key old/index.html),
as does each line /from /to [301|302] of SOURCE/_redirects, which is never uploaded itself. S3 answers them with
a 301 on its website endpoint only.
.TP
.B clean_urls
true publishes about.html as the key about (text/html), for /about on a REST origin; index documents keep their
key. Invalidation paths and sitemap.xml follow (false).
.TP
.BR watch.debounce_ms ", " watch.max_delay_ms
The quiet time (200) and the longest delay (2000) of a batch in
.BR "sitesync watch" .
.TP
.BR watch.poll_ms ", " watch.rescan_interval_s
As \-\-poll: compare stat snapshots every poll_ms instead of inotify (0, the default: inotify); and how often a
folder whose inotify watch could not be added (ENOSPC) is rescanned instead (30 seconds).
.TP
.B watch.delete_delay_ms
How long the whole tree must be quiet before a file gone from SOURCE is deleted in
.B sitesync watch
(2000), counted from the last change and from the return of a SOURCE that was removed: a file that a
rebuild writes again within it is never deleted.
.TP
.B watch.invalidate_interval_s
0 (the default): each
.B sitesync watch
batch invalidates what it changed. N: the paths owed by the batches of N seconds go in one invalidation when
they end, and at exit; they wait in the journal, so a killed watcher loses none.
.PP
Example:
.PP
.RS 4
.nf
source: public
destination: s3://my\-site
delete: true
exclude: ["*.map", "drafts/**"]
headers:
  \- match: "css/**"
    cache_control: "public, max\-age=31536000, immutable"
cdn:
  distribution: auto
.fi
.RE
)";

constexpr const char* kEnvironment = R"(.SH ENVIRONMENT
.TP
.BR AWS_ACCESS_KEY_ID ", " AWS_SECRET_ACCESS_KEY ", " AWS_SESSION_TOKEN
Credentials, first in the chain unless
.B \-\-profile
(or profile: in the config) names a profile. Then web identity, the profile (role_arn with source_profile or
credential_source, SSO, credential_process, static keys), container credentials and IMDSv2, as the AWS SDKs
search them; temporary credentials are fetched again five minutes before they expire.
.TP
.BR AWS_WEB_IDENTITY_TOKEN_FILE ", " AWS_ROLE_ARN ", " AWS_ROLE_SESSION_NAME
Web identity (OIDC in GitHub Actions, GitLab CI, EKS): the role assumed with the token in the file.
.TP
.BR AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ", " AWS_CONTAINER_CREDENTIALS_FULL_URI ", " AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
The container credentials endpoint (CodeBuild, ECS, Fargate).
.TP
.BR AWS_EC2_METADATA_DISABLED ", " AWS_EC2_METADATA_SERVICE_ENDPOINT
The instance metadata service (IMDSv2), last in the chain.
.TP
.BR AWS_ENDPOINT_URL_S3 ", " AWS_ENDPOINT_URL_CLOUDFRONT ", " AWS_ENDPOINT_URL_STS ", " AWS_ENDPOINT_URL
Endpoints, as the AWS CLI reads them, below
.B \-\-endpoint
and
.BR \-\-cloudfront\-endpoint ;
AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns them and the profile's off.
.TP
.BR AWS_USE_FIPS_ENDPOINT ", " AWS_USE_DUALSTACK_ENDPOINT
FIPS and dual\-stack AWS endpoints.
.TP
.B AWS_CA_BUNDLE
The CAs to trust (below
.BR \-\-ca\-bundle ).
HTTPS_PROXY and NO_PROXY are read as curl reads them.
.TP
.B AWS_PROFILE
The profile when
.B \-\-profile
is not given (else default).
.TP
.BR AWS_REGION ", " AWS_DEFAULT_REGION
The region when
.B \-\-region
is not given; then the profile's region, else us\-east\-1.
.TP
.BR AWS_SHARED_CREDENTIALS_FILE ", " AWS_CONFIG_FILE
The shared credentials and config files (default
.B ~/.aws/credentials
and
.BR ~/.aws/config ).
.TP
.B XDG_STATE_HOME
Where the journal of owed invalidation paths is kept:
.BR $XDG_STATE_HOME/sitesync/ ,
else
.BR ~/.local/state/sitesync/ .
.TP
.B XDG_CACHE_HOME
Where the local record of what was published is kept:
.BR $XDG_CACHE_HOME/sitesync/ ,
else
.BR ~/.cache/sitesync/ .
.TP
.B NO_COLOR
When set, the output uses no colors.
)";

constexpr const char* kExitStatus = R"(.SH EXIT STATUS
.TP
.B 0
Success.
.TP
.B 1
An operation failed after retries (the rest was still done and reported).
.TP
.B 2
Usage, configuration or input error (nothing was changed).
.TP
.B 3
Refused by a safety guard, e.g. \-\-max\-deletes (nothing was changed).
)";

constexpr const char* kFiles = R"(.SH FILES
.TP
.B ./sitesync.yaml
The configuration file, when
.B \-\-config
is not given.
.TP
.BR ~/.aws/credentials ", " ~/.aws/config
The shared AWS credentials and config files.
.TP
.B $XDG_STATE_HOME/sitesync/ID.json
Invalidation paths owed to distribution ID, removed once CloudFront accepted them (default
.BR ~/.local/state/sitesync/ ).
.TP
.B $XDG_CACHE_HOME/sitesync/BUCKET_PREFIX\-HASH.sqlite
The local record of what was published to one destination (SQLite): per key the file's size, mtime and inode,
the MD5 of the body sent, the ETag and a digest of the headers. A cache: deleting it costs one hashing pass
(default
.BR ~/.cache/sitesync/ ).
.PP
sitesync never uploads its own files, even when they are inside
.IR SOURCE :
the configuration file in use (under any name that leads to it, and a file of its name at the root of
.IR SOURCE ,
such as the copy Jekyll makes in _site/), and its state and cache folders.
Nor does it delete them from the bucket: a copy published before is removed once by hand;
.B sitesync check
names it.
)";

constexpr const char* kSeeAlso = R"(.SH SEE ALSO
.BR aws (1),
.BR rclone (1)
)";

}  // namespace

std::string ManPage(const CLI::App& app) {
  std::string out;
  out += ".\\\" Generated by 'sitesync --generate-man' from the option definitions behind --help; do not edit.\n";
  out += ".TH SITESYNC 1 \"\" \"sitesync " SITESYNC_VERSION "\" \"User Commands\"\n";
  // No hyphenation (an option broken across lines could not be copied or searched for), ragged right.
  out += ".nh\n.ad l\n";
  out += ".SH NAME\nsitesync \\- " + Roff(Summary(app)) + "\n";

  const std::vector<const CLI::App*> commands = gen::Commands(app);
  out += ".SH SYNOPSIS\n.nf\n";
  for (const CLI::App* cmd : commands) out += Roff(gen::Synopsis(*cmd)) + "\n";
  out += "sitesync \\-\\-version | \\-\\-help\n.fi\n";

  out += kDescription;

  out += ".SH OPTIONS\nEach command takes the options listed with it under COMMANDS.\nWithout a command:\n";
  AppendOptions(out, app);

  out += ".SH COMMANDS\n";
  for (const CLI::App* cmd : commands) {
    out += ".SS " + cmd->get_name() + "\n";
    out += Bold(gen::Synopsis(*cmd)) + "\n.br\n";
    out += Roff(Sentence(cmd->get_description())) + "\n";
    AppendOptions(out, *cmd);
  }

  out += kConfiguration;
  out += kEnvironment;
  out += kExitStatus;
  out += kFiles;

  out += ".SH EXAMPLES\n";
  for (const Example& e : HelpExamples()) {
    out += ".PP\n" + Roff(e.what) + ":\n.PP\n.RS 4\n.nf\n" + Roff(e.command) + "\n.fi\n.RE\n";
  }
  out += kSeeAlso;
  return out;
}

}  // namespace sitesync::cli
