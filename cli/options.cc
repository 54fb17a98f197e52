// The command line (CLI11). Names follow ../shared/CLI.md exactly.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/app.h"
#include "cli/cli.h"

#ifndef SITESYNC_VERSION
#define SITESYNC_VERSION "0.0.0"
#endif

namespace sitesync::cli {
namespace {

constexpr const char* kFooterText = R"(DEST is s3://BUCKET[/PREFIX]; s3://b/site and s3://b/site/ both mean the folder site/.
SOURCE and DEST may also come from the config file (./sitesync.yaml when present).

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the profile
(--profile, AWS_PROFILE, default) in ~/.aws/credentials and ~/.aws/config.

Main options (see 'sitesync sync --help' for all): --delete removes remote objects that have no local
file, at most --max-deletes N of them (default 256, -1: no limit); --compare checksum also compares MD5s;
--exclude/--include GLOB filter files; --dry-run changes nothing; --json prints one JSON object a line.

Exit codes: 0 ok; 1 an operation failed after retries (the rest was done);
2 usage, config or input error (nothing changed); 3 refused by a safety guard (nothing changed).
)";

constexpr Example kExamples[] = {
    {"sitesync plan public s3://my-site", "Show what would change"},
    {"sitesync sync public s3://my-site", "Upload what changed"},
    {"sitesync sync public s3://my-site/blog --delete", "Also delete what is gone (at most 256)"},
    {"sitesync sync public s3://my-site --distribution auto",
     "Upload, then invalidate exactly what changed on CloudFront"},
    {"sitesync watch public s3://my-site --distribution auto", "Publish every change while the generator rebuilds"},
    {"sitesync invalidate /blog/ '/img/*' --distribution E2ABC123", "Invalidate the given paths"},
    {"sitesync sync --endpoint http://127.0.0.1:9000 public s3://test", "Publish to an S3-compatible server"},
};

std::string Footer() {
  std::string out = kFooterText;
  out += "\nExamples:";
  for (const Example& e : kExamples) {
    out += "\n  # ";
    out += e.what;
    out += "\n  ";
    out += e.command;
  }
  return out;
}

// CLI11 2.1's formatter ends every option group but the last with a blank line, and counts the hidden (empty)
// group of --generate-man as the last one: --help would show two blank lines before "Subcommands:".
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    std::string out = CLI::Formatter::make_help(app, std::move(name), mode);
    if (const auto at = out.find("\n\n\n"); at != std::string::npos) out.erase(at, 1);
    return out;
  }
};

// Options every command that talks to AWS has.
void AddCommonOptions(CLI::App& cmd, Settings& s) {
  cmd.add_option("-c,--config", s.config_path, "Config file (default: ./sitesync.yaml if present)")
      ->option_text("FILE");
  cmd.add_option("--region", s.region, "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1)")
      ->option_text("NAME");
  cmd.add_option("--profile", s.profile,
                 "Profile in the shared credentials/config files (default: AWS_PROFILE, default)")
      ->option_text("NAME");
  cmd.add_flag("--dry-run", s.dry_run, "Print the plan and change nothing");
  cmd.add_flag("--json", s.json, "One JSON object per line on stdout");
  cmd.add_flag("-q,--quiet", s.quiet, "Print errors only");
  cmd.add_flag("-v,--verbose", s.verbose, "Print every request");
}

CLI::Option* AddCdnOptions(CLI::App& cmd, Settings& s) {
  cmd.add_option("--distribution", s.distribution,
                 "CloudFront distribution ID to invalidate, or 'auto' to find it by the bucket origin")
      ->option_text("ID|auto");
  cmd.add_option("--cloudfront-endpoint", s.cloudfront_endpoint,
                 "CloudFront API endpoint (default https://cloudfront.amazonaws.com)")
      ->option_text("URL");
  return cmd.add_flag("--wait")->description("Wait until CloudFront reports the invalidation Completed");
}

CLI::Option* AddEndpointOptions(CLI::App& cmd, Settings& s, const char* path_style_description) {
  cmd.add_option("--endpoint", s.endpoint, "S3-compatible endpoint URL (implies --path-style)")->option_text("URL");
  return cmd.add_flag("--path-style")->description(path_style_description);
}

void AddFilterOptions(CLI::App& cmd, Settings& s) {
  cmd.add_option("--exclude", s.exclude, "Skip paths matching GLOB (repeatable; ** crosses folders)")
      ->allow_extra_args(false)
      ->option_text("GLOB");
  cmd.add_option("--include", s.include, "Keep paths matching GLOB even if excluded (repeatable)")
      ->allow_extra_args(false)
      ->option_text("GLOB");
}

void AddSyncOptions(CLI::App& cmd, Settings& s, CommandFlags& f) {
  cmd.add_option("SOURCE", s.source, "The site folder the generator wrote (e.g. public/)");
  cmd.add_option("DEST", s.destination, "s3://BUCKET[/PREFIX]");
  AddCommonOptions(cmd, s);
  f.path_style = AddEndpointOptions(cmd, s, "Address the bucket in the path, not the host name");
  cmd.add_option("--compare", s.compare, "What makes a file changed: size (default) or checksum (also MD5 vs ETag)")
      ->check(CLI::IsMember({"size", "checksum"}))
      ->option_text("size|checksum");
  f.delete_on = cmd.add_flag("--delete")->description("Delete remote objects under the prefix that have no local file");
  f.delete_off = cmd.add_flag("--no-delete")->description("Do not delete (the default; overrides the config file)");
  cmd.add_option("--max-deletes", s.max_deletes,
                 "Refuse (exit 3) a run that would delete more (default 256, -1: no limit)")
      ->option_text("N");
  cmd.add_option("--jobs", s.jobs, "Transfers in flight (default 64)")->option_text("N");
  AddFilterOptions(cmd, s);
  f.wait = AddCdnOptions(cmd, s);
  f.no_invalidate = cmd.add_flag("--no-invalidate")->description("Upload and delete, but send no CloudFront invalidation");
  cmd.footer(Footer());
}

}  // namespace

std::span<const Example> HelpExamples() { return kExamples; }

AppTree BuildApp(Settings& s) {
  AppTree t;
  t.app = std::make_unique<CLI::App>("sitesync: publish a static site folder to S3, uploading only what changed.",
                                     "sitesync");
  CLI::App& app = *t.app;
  app.formatter(std::make_shared<HelpFormatter>());  // Before the subcommands: they take the parent's.
  app.set_version_flag("--version", std::string("sitesync ") + SITESYNC_VERSION);
  app.require_subcommand(0, 1);
  app.footer(Footer());
  t.generate_man = app.add_flag("--generate-man")->description("Print the man page sitesync(1) in roff")->group("");
  t.generate_completion =
      app.add_option("--generate-completion", t.completion_shell, "Print the completion script for SHELL")
          ->check(CLI::IsMember({"bash", "zsh"}))
          ->group("");

  t.sync = app.add_subcommand("sync", "List the bucket, upload what changed, delete what is gone (--delete)");
  AddSyncOptions(*t.sync, s, t.sync_flags);
  t.plan = app.add_subcommand("plan", "The same as sync --dry-run: print what sync would do");
  AddSyncOptions(*t.plan, s, t.plan_flags);
  t.watch = app.add_subcommand(
      "watch", "Sync once, then publish every quiet burst of changes in SOURCE (inotify) until Ctrl-C");
  AddSyncOptions(*t.watch, s, t.watch_flags);
  t.watch->add_option("--debounce", s.debounce_ms, "Quiet time in ms before a burst of changes is published (default 200)")
      ->option_text("MS");
  t.watch->add_option("--poll", s.poll_ms,
                      "Compare stat snapshots of SOURCE every MS ms instead of inotify (NFS, bind mounts, WSL)")
      ->check(CLI::NonNegativeNumber)
      ->option_text("MS");

  t.invalidate = app.add_subcommand("invalidate", "One CloudFront invalidation for the given URL paths");
  t.invalidate->add_option("PATH", s.invalidate_paths, "URL paths, e.g. /blog/post/ or '/img/*' (a final * is a wildcard)");
  t.invalidate->add_flag("--discard-owed", s.discard_owed,
                         "Print and drop the paths owed to the distribution (after a CloudFront error that will not "
                         "pass); takes no PATH");
  AddCommonOptions(*t.invalidate, s);
  t.invalidate_flags.wait = AddCdnOptions(*t.invalidate, s);

  t.sitemap = app.add_subcommand("sitemap", "Write sitemap.xml for the HTML pages of SOURCE");
  t.sitemap->add_option("SOURCE", s.source, "The site folder the generator wrote (e.g. public/)");
  t.sitemap->add_option("--base-url", s.base_url, "The site's public URL, e.g. https://example.com/")
      ->option_text("URL");
  t.sitemap->add_option("-o,--output", s.sitemap_output, "Where to write it (default: SOURCE/sitemap.xml)")
      ->option_text("FILE");
  t.sitemap->add_option("-c,--config", s.config_path, "Config file (default: ./sitesync.yaml if present)")
      ->option_text("FILE");
  AddFilterOptions(*t.sitemap, s);
  t.sitemap->add_flag("-q,--quiet", s.quiet, "Print errors only");
  t.sitemap->add_flag("-v,--verbose", s.verbose, "Print more");

  t.init = app.add_subcommand(
      "init", "Write a commented sitesync.yaml for the site generator found in the current folder");
  t.init->add_option("-c,--config", s.config_path, "File to write (default: ./sitesync.yaml; never overwritten)")
      ->option_text("FILE");
  t.init->add_flag("-q,--quiet", s.quiet, "Print errors only");

  t.check = app.add_subcommand(
      "check", "Read-only preflight: credentials, bucket, region, distribution; each line ok or fail with the fix");
  t.check->add_option("DEST", s.destination, "s3://BUCKET[/PREFIX]");
  AddCommonOptions(*t.check, s);
  t.check_flags.path_style = AddEndpointOptions(*t.check, s, "Address the bucket in the path");
  AddCdnOptions(*t.check, s);
  t.check->remove_option(t.check->get_option("--dry-run"));  // check changes nothing anyway
  t.check->remove_option(t.check->get_option("--wait"));     // and creates no invalidation to wait for
  return t;
}

ParsedArgs ParseCommandLine(int argc, const char* const* argv) {
  ParsedArgs out;
  Settings& s = out.settings;
  AppTree t = BuildApp(s);
  CLI::App& app = *t.app;
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
  if (t.generate_man->count() > 0 || t.generate_completion->count() > 0) {
    if (!app.get_subcommands().empty()) {
      std::cerr << "sitesync: --generate-man and --generate-completion take no command.\n";
      out.exit_now = kExitUsage;
      return out;
    }
    if (t.generate_man->count() > 0) {
      std::cout << ManPage(app);
    } else {
      std::cout << (t.completion_shell == "zsh" ? ZshCompletion(app) : BashCompletion(app));
    }
    std::cout.flush();
    out.exit_now = std::cout ? kExitOk : kExitFailed;
    return out;
  }
  CommandFlags* f = nullptr;
  if (t.sync->parsed()) {
    s.command = "sync";
    f = &t.sync_flags;
  } else if (t.plan->parsed()) {
    s.command = "plan";
    s.dry_run = true;
    f = &t.plan_flags;
  } else if (t.watch->parsed()) {
    s.command = "watch";
    f = &t.watch_flags;
  } else if (t.invalidate->parsed()) {
    s.command = "invalidate";
    if (t.invalidate_flags.wait->count() > 0) s.wait = true;
    if (s.quiet && s.verbose) {
      std::cerr << "sitesync: -q and -v contradict each other; give one.\n";
      out.exit_now = kExitUsage;
    }
    return out;
  } else if (t.sitemap->parsed()) {
    s.command = "sitemap";
    return out;
  } else if (t.init->parsed()) {
    s.command = "init";
    return out;
  } else if (t.check->parsed()) {
    s.command = "check";
    if (t.check_flags.path_style->count() > 0) s.path_style = true;
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
