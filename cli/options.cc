// The command line (CLI11). Names follow ../shared/CLI.md exactly.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/cli.h"

#ifndef SITESYNC_VERSION
#define SITESYNC_VERSION "0.0.0"
#endif

namespace sitesync::cli {
namespace {

constexpr const char* kFooter = R"(DEST is s3://BUCKET[/PREFIX]; s3://b/site and s3://b/site/ both mean the folder site/.
SOURCE and DEST may also come from the config file (./sitesync.yaml when present).

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the profile
(--profile, AWS_PROFILE, default) in ~/.aws/credentials and ~/.aws/config.

Main options (see 'sitesync sync --help' for all): --delete removes remote objects that have no local
file, at most --max-deletes N of them (default 256, -1: no limit); --compare checksum also compares MD5s;
--exclude/--include GLOB filter files; --dry-run changes nothing; --json prints one JSON object a line.

Exit codes: 0 ok; 1 an operation failed after retries (the rest was done);
2 usage, config or input error (nothing changed); 3 refused by a safety guard (nothing changed).

Examples:
  sitesync plan public s3://my-site                 show what would change
  sitesync sync public s3://my-site                 upload what changed
  sitesync sync public s3://my-site/blog --delete   also delete what is gone (at most 256)
  sitesync sync public s3://my-site --distribution auto   and invalidate exactly what changed on CloudFront
  sitesync invalidate /blog/ '/img/*' --distribution E2ABC123   invalidate given paths
  sitesync sync --endpoint http://127.0.0.1:9000 public s3://test   an S3-compatible server)";

struct Flags {
  CLI::Option* wait = nullptr;
  CLI::Option* no_invalidate = nullptr;
  CLI::Option* delete_on = nullptr;
  CLI::Option* delete_off = nullptr;
  CLI::Option* path_style = nullptr;
};

// Options every command that talks to AWS has.
void AddCommonOptions(CLI::App& cmd, Settings& s) {
  cmd.add_option("-c,--config", s.config_path, "Config file (default: ./sitesync.yaml if present)");
  cmd.add_option("--region", s.region, "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1)");
  cmd.add_option("--profile", s.profile, "Profile in the shared credentials/config files (default: AWS_PROFILE, default)");
  cmd.add_flag("--dry-run", s.dry_run, "Print the plan and change nothing");
  cmd.add_flag("--json", s.json, "One JSON object per line on stdout");
  cmd.add_flag("-q,--quiet", s.quiet, "Print errors only");
  cmd.add_flag("-v,--verbose", s.verbose, "Print every request");
}

CLI::Option* AddCdnOptions(CLI::App& cmd, Settings& s) {
  cmd.add_option("--distribution", s.distribution,
                 "CloudFront distribution ID to invalidate, or 'auto' to find it by the bucket origin");
  cmd.add_option("--cloudfront-endpoint", s.cloudfront_endpoint,
                 "CloudFront API endpoint (default https://cloudfront.amazonaws.com)");
  cmd.add_flag("--wait")->description("Wait until CloudFront reports the invalidation Completed");
  return cmd.get_option("--wait");
}

void AddSyncOptions(CLI::App& cmd, Settings& s, Flags& f) {
  cmd.add_option("SOURCE", s.source, "The site folder the generator wrote (e.g. public/)");
  cmd.add_option("DEST", s.destination, "s3://BUCKET[/PREFIX]");
  AddCommonOptions(cmd, s);
  cmd.add_option("--endpoint", s.endpoint, "S3-compatible endpoint URL (implies --path-style)");
  f.path_style = cmd.add_flag("--path-style")->description("Address the bucket in the path, not the host name");
  cmd.add_option("--compare", s.compare, "What makes a file changed: size (default) or checksum (also MD5 vs ETag)")
      ->check(CLI::IsMember({"size", "checksum"}));
  f.delete_on = cmd.add_flag("--delete")->description("Delete remote objects under the prefix that have no local file");
  f.delete_off = cmd.add_flag("--no-delete")->description("Do not delete (the default; overrides the config file)");
  cmd.add_option("--max-deletes", s.max_deletes, "Refuse (exit 3) a run that would delete more (default 256, -1: no limit)");
  cmd.add_option("--jobs", s.jobs, "Transfers in flight (default 64)");
  cmd.add_option("--exclude", s.exclude, "Skip paths matching GLOB (repeatable; ** crosses folders)")->allow_extra_args(false);
  cmd.add_option("--include", s.include, "Keep paths matching GLOB even if excluded (repeatable)")->allow_extra_args(false);
  f.wait = AddCdnOptions(cmd, s);
  f.no_invalidate = cmd.add_flag("--no-invalidate")->description("Upload and delete, but send no CloudFront invalidation");
  cmd.footer(kFooter);
}

}  // namespace

ParsedArgs ParseCommandLine(int argc, const char* const* argv) {
  ParsedArgs out;
  Settings& s = out.settings;
  CLI::App app{"sitesync: publish a static site folder to S3, uploading only what changed."};
  app.set_version_flag("--version", std::string("sitesync ") + SITESYNC_VERSION);
  app.require_subcommand(0, 1);
  app.footer(kFooter);
  Flags sync_flags, plan_flags;
  CLI::App* sync_cmd = app.add_subcommand("sync", "List the bucket, upload what changed, delete what is gone (--delete)");
  CLI::App* plan_cmd = app.add_subcommand("plan", "The same as sync --dry-run: print what sync would do");
  AddSyncOptions(*sync_cmd, s, sync_flags);
  AddSyncOptions(*plan_cmd, s, plan_flags);
  CLI::App* watch_cmd = app.add_subcommand(
      "watch", "Sync once, then publish every quiet burst of changes in SOURCE (inotify) until Ctrl-C");
  Flags watch_flags;
  AddSyncOptions(*watch_cmd, s, watch_flags);
  watch_cmd->add_option("--debounce", s.debounce_ms, "Quiet time in ms before a burst of changes is published (default 200)");
  CLI::App* invalidate_cmd = app.add_subcommand("invalidate", "One CloudFront invalidation for the given URL paths");
  invalidate_cmd->add_option("PATH", s.invalidate_paths, "URL paths, e.g. /blog/post/ or '/img/*' (a final * is a wildcard)")
      ->required();
  AddCommonOptions(*invalidate_cmd, s);
  Flags invalidate_flags;
  invalidate_flags.wait = AddCdnOptions(*invalidate_cmd, s);
  CLI::App* sitemap_cmd = app.add_subcommand("sitemap", "Write sitemap.xml for the HTML pages of SOURCE");
  sitemap_cmd->add_option("SOURCE", s.source, "The site folder the generator wrote (e.g. public/)");
  sitemap_cmd->add_option("--base-url", s.base_url, "The site's public URL, e.g. https://example.com/");
  sitemap_cmd->add_option("-o,--output", s.sitemap_output, "Where to write it (default: SOURCE/sitemap.xml)");
  sitemap_cmd->add_option("-c,--config", s.config_path, "Config file (default: ./sitesync.yaml if present)");
  sitemap_cmd->add_option("--exclude", s.exclude, "Skip paths matching GLOB (repeatable; ** crosses folders)")
      ->allow_extra_args(false);
  sitemap_cmd->add_option("--include", s.include, "Keep paths matching GLOB even if excluded (repeatable)")
      ->allow_extra_args(false);
  sitemap_cmd->add_flag("-q,--quiet", s.quiet, "Print errors only");
  sitemap_cmd->add_flag("-v,--verbose", s.verbose, "Print more");
  CLI::App* init_cmd = app.add_subcommand(
      "init", "Write a commented sitesync.yaml for the site generator found in the current folder");
  init_cmd->add_option("-c,--config", s.config_path, "File to write (default: ./sitesync.yaml; never overwritten)");
  init_cmd->add_flag("-q,--quiet", s.quiet, "Print errors only");
  CLI::App* check_cmd = app.add_subcommand(
      "check", "Read-only preflight: credentials, bucket, region, distribution; each line ok or fail with the fix");
  check_cmd->add_option("DEST", s.destination, "s3://BUCKET[/PREFIX]");
  AddCommonOptions(*check_cmd, s);
  check_cmd->add_option("--endpoint", s.endpoint, "S3-compatible endpoint URL (implies --path-style)");
  Flags check_flags;
  check_flags.path_style = check_cmd->add_flag("--path-style")->description("Address the bucket in the path");
  AddCdnOptions(*check_cmd, s);
  check_cmd->remove_option(check_cmd->get_option("--dry-run"));  // check changes nothing anyway
  check_cmd->remove_option(check_cmd->get_option("--wait"));     // and creates no invalidation to wait for
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    out.exit_now = app.exit(e);
    return out;
  } catch (const CLI::CallForVersion& e) {
    out.exit_now = app.exit(e);
    return out;
  } catch (const CLI::ParseError& e) {
    std::cerr << "sitesync: " << e.what() << "\nRun 'sitesync --help' for usage.\n";
    out.exit_now = kExitUsage;
    return out;
  }
  Flags* f = nullptr;
  if (sync_cmd->parsed()) {
    s.command = "sync";
    f = &sync_flags;
  } else if (plan_cmd->parsed()) {
    s.command = "plan";
    s.dry_run = true;
    f = &plan_flags;
  } else if (watch_cmd->parsed()) {
    s.command = "watch";
    f = &watch_flags;
  } else if (invalidate_cmd->parsed()) {
    s.command = "invalidate";
    if (invalidate_flags.wait->count() > 0) s.wait = true;
    if (s.quiet && s.verbose) {
      std::cerr << "sitesync: -q and -v contradict each other; give one.\n";
      out.exit_now = kExitUsage;
    }
    return out;
  } else if (sitemap_cmd->parsed()) {
    s.command = "sitemap";
    return out;
  } else if (init_cmd->parsed()) {
    s.command = "init";
    return out;
  } else if (check_cmd->parsed()) {
    s.command = "check";
    if (check_flags.path_style->count() > 0) s.path_style = true;
    return out;
  } else {
    std::cerr << app.help() << "\nsitesync: no command given; try 'sitesync sync SOURCE s3://BUCKET'.\n";
    out.exit_now = kExitUsage;
    return out;
  }
  if (f->delete_on->count() > 0 && f->delete_off->count() > 0) {
    std::cerr << "sitesync: --delete and --no-delete contradict each other; give one.\n";
    out.exit_now = kExitUsage;
    return out;
  }
  if (f->delete_on->count() > 0) s.delete_stale = true;
  if (f->delete_off->count() > 0) s.delete_stale = false;
  if (f->path_style->count() > 0) s.path_style = true;
  if (f->wait->count() > 0) s.wait = true;
  if (f->no_invalidate->count() > 0) s.invalidate = false;
  if (s.quiet && s.verbose) {
    std::cerr << "sitesync: -q and -v contradict each other; give one.\n";
    out.exit_now = kExitUsage;
  }
  return out;
}

}  // namespace sitesync::cli
