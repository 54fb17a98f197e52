// The command line (CLI11). Names follow ../shared/CLI.md exactly.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <iterator>

#include "cli/app.h"
#include "cli/cli.h"

#ifndef SITESYNC_VERSION
#define SITESYNC_VERSION "0.0.0"
#endif

namespace sitesync::cli {
namespace {

constexpr const char* kFooterText = R"(DEST is s3://BUCKET[/PREFIX]; s3://b/site and s3://b/site/ both mean the folder site/.
SOURCE and DEST may also come from the config file (./sitesync.yaml when present).

Credentials: the AWS SDKs' chain, refreshed before they expire: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
(skipped when --profile is given), web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), the profile
(--profile, AWS_PROFILE, default: role_arn, SSO, credential_process, keys), container credentials, IMDSv2.
Endpoints as the AWS CLI: --endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's services section.

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
// The options a command accepts but ignores are listed by name only, after its own options.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    std::string out = CLI::Formatter::make_help(app, std::move(name), mode);
    if (const auto at = out.find("\n\n\n"); at != std::string::npos) out.erase(at, 1);
    return out;
  }
  std::string make_group(std::string group, bool is_positional, std::vector<const CLI::Option*> opts) const override {
    if (group != kIgnoredGroup) return CLI::Formatter::make_group(std::move(group), is_positional, std::move(opts));
    std::string out = "\n" + group + ":\n";
    std::string line = " ";
    for (std::size_t i = 0; i < opts.size(); ++i) {
      const std::string word = " " + opts[i]->get_name() + (i + 1 < opts.size() ? "," : "");
      if (line.size() + word.size() > 100) {
        out += line + "\n";
        line = " ";
      }
      line += word;
    }
    return out + line + "\n";
  }
};

// The commands, as bits: which of them an option means something to.
enum Command : unsigned {
  kSync = 1U << 0,
  kPlan = 1U << 1,
  kWatch = 1U << 2,
  kInvalidate = 1U << 3,
  kSitemap = 1U << 4,
  kCheck = 1U << 5,
};
constexpr unsigned kPublish = kSync | kPlan | kWatch;  // the commands that walk SOURCE and change the bucket
constexpr unsigned kAll = kPublish | kInvalidate | kSitemap | kCheck;

// Sorts the options of one command into those it uses and those it accepts and ignores (aws-cli's global options
// work on every command; scripts pass one option set to all of them). An ignored option stores its value in a
// sink, never in the command's Settings: it cannot change what the command does, not even by a bad value that a
// used option would be refused for later.
class CommandOptions {
 public:
  CommandOptions(Command self, Settings& settings, Settings& sink, CommandFlags& flags)
      : self_(self), settings_(settings), sink_(sink), flags_(flags) {}
  /// Adds the option `add` makes (given the Settings to store into) for the commands in `used_by`; for the
  /// others it goes to kIgnoredGroup, stores into the sink, and is remembered for the -v note.
  template <typename AddFn>
  CLI::Option* Use(unsigned used_by, AddFn add) const {
    const bool used = (used_by & self_) != 0;
    CLI::Option* opt = add(used ? settings_ : sink_);
    if (!used) {
      opt->group(kIgnoredGroup);
      flags_.ignored.push_back(opt);
    }
    return opt;
  }

 private:
  Command self_;
  Settings& settings_;
  Settings& sink_;
  CommandFlags& flags_;
};

// The options of every command (CLI.md's table), each with the commands it means something to. To add an option
// for all commands, add one line here: c.Use(COMMANDS, [&](Settings& to) { return cmd.add_option(..., to.x, ...); }).
void AddCommonOptions(CLI::App& cmd, Command self, Settings& s, Settings& sink, CommandFlags& f) {
  const CommandOptions c(self, s, sink, f);
  c.Use(kAll, [&](Settings& to) {
     return cmd.add_option("-c,--config", to.config_path, "Config file (default: ./sitesync.yaml if present)");
   })->option_text("FILE");
  // CloudFront signs in us-east-1 whatever --region says: the region is S3's.
  c.Use(kPublish | kCheck, [&](Settings& to) {
     return cmd.add_option("--region", to.region,
                           "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1)");
   })->option_text("NAME");
  c.Use(kPublish | kInvalidate | kCheck, [&](Settings& to) {
     return cmd.add_option("--profile", to.profile,
                           "Profile in the shared credentials/config files (default: AWS_PROFILE, default)");
   })->option_text("NAME");
  // check changes nothing anyway; watch refuses it (ignoring it would publish).
  c.Use(kPublish | kInvalidate | kSitemap,
        [&](Settings& to) { return cmd.add_flag("--dry-run", to.dry_run, "Print the plan and change nothing"); });
  c.Use(kPublish, [&](Settings& to) {
    return cmd.add_flag("--force", to.force, "Upload every file, changed or not (in watch: the initial sync)");
  });
  c.Use(kPublish, [&](Settings& to) {
    return cmd.add_flag("--refresh-headers", to.refresh_headers,
                        "HEAD the objects with no record of their headers and update those whose headers differ "
                        "from the config (CopyObject; no body sent)");
  });
  c.Use(kAll, [&](Settings& to) { return cmd.add_flag("--json", to.json, "One JSON object per line on stdout"); });
  c.Use(kAll, [&](Settings& to) { return cmd.add_flag("-q,--quiet", to.quiet, "Print errors only"); });
  c.Use(kAll, [&](Settings& to) { return cmd.add_flag("-v,--verbose", to.verbose, "Print every request"); });
  c.Use(kPublish | kCheck, [&](Settings& to) {
     return cmd.add_option("--endpoint", to.endpoint, "S3-compatible endpoint URL (implies --path-style)");
   })->option_text("URL");
  c.Use(kPublish | kInvalidate | kCheck, [&](Settings& to) {
     return cmd.add_option("--ca-bundle", to.ca_bundle,
                           "PEM file of the CAs to trust for HTTPS (default: AWS_CA_BUNDLE, the profile's ca_bundle, "
                           "the system's)");
   })->option_text("FILE");
  c.Use(kPublish | kInvalidate | kCheck, [&](Settings& to) {
    return cmd.add_flag("--no-verify-ssl", to.no_verify_ssl,
                        "Do not verify TLS certificates (insecure: warns on every run; prefer --ca-bundle)");
  });
  // Flags read after parsing (ApplyFlags), and only when the command uses them.
  f.path_style = c.Use(kPublish | kCheck, [&](Settings&) {
    return cmd.add_flag("--path-style")->description("Address the bucket in the path, not the host name");
  });
  c.Use(kPublish, [&](Settings& to) {
     return cmd.add_option("--compare", to.compare,
                           "What makes a file changed: size (default) or checksum (also MD5 vs ETag)");
   })->check(CLI::IsMember({"size", "checksum"}))->option_text("size|checksum");
  f.delete_on = c.Use(kPublish, [&](Settings&) {
    return cmd.add_flag("--delete")->description("Delete remote objects under the prefix that have no local file");
  });
  f.delete_off = c.Use(kPublish, [&](Settings&) {
    return cmd.add_flag("--no-delete")->description("Do not delete (the default; overrides the config file)");
  });
  c.Use(kPublish, [&](Settings& to) {
     return cmd.add_option("--max-deletes", to.max_deletes,
                           "Refuse (exit 3) a run that would delete more (default 256, -1: no limit)");
   })->option_text("N");
  c.Use(kPublish, [&](Settings& to) {
     return cmd.add_option("--max-delete-fraction", to.max_delete_fraction,
                           "Refuse (exit 3) deleting over 10 objects and over this share of the prefix's, or any from "
                           "an empty SOURCE (default 0.5, 1: off)");
   })->option_text("F");
  c.Use(kPublish, [&](Settings& to) {
     return cmd.add_option("--jobs", to.jobs,
                           "Transfers in flight (default: adaptive, 64 growing to 256, halved when the server "
                           "throttles; N fixes it)");
   })->option_text("N");
  c.Use(kPublish | kSitemap, [&](Settings& to) {
     return cmd.add_option("--exclude", to.exclude, "Skip paths matching GLOB (repeatable; ** crosses folders)");
   })->allow_extra_args(false)->option_text("GLOB");
  c.Use(kPublish | kSitemap, [&](Settings& to) {
     return cmd.add_option("--include", to.include, "Keep paths matching GLOB even if excluded (repeatable)");
   })->allow_extra_args(false)->option_text("GLOB");
  c.Use(kPublish | kInvalidate | kCheck, [&](Settings& to) {
     return cmd.add_option("--distribution", to.distribution,
                           "CloudFront distribution ID to invalidate, or 'auto' to find it by the bucket origin");
   })->option_text("ID|auto");
  c.Use(kPublish | kInvalidate | kCheck, [&](Settings& to) {
     return cmd.add_option("--cloudfront-endpoint", to.cloudfront_endpoint,
                           "CloudFront API endpoint (default https://cloudfront.amazonaws.com)");
   })->option_text("URL");
  f.wait = c.Use(kPublish | kInvalidate, [&](Settings&) {
    return cmd.add_flag("--wait")->description("Wait until CloudFront reports the invalidation Completed");
  });
  f.no_invalidate = c.Use(kPublish | kCheck, [&](Settings&) {
    return cmd.add_flag("--no-invalidate")->description("Upload and delete, but send no CloudFront invalidation");
  });
  c.Use(kWatch, [&](Settings& to) {
     return cmd.add_option("--debounce", to.debounce_ms,
                           "Quiet time in ms before a burst of changes is published (default 200)");
   })->option_text("MS");
  c.Use(kWatch, [&](Settings& to) {
     return cmd.add_option("--poll", to.poll_ms,
                           "Compare stat snapshots of SOURCE every MS ms instead of inotify (NFS, bind mounts, WSL)")
         ->check(CLI::NonNegativeNumber);
   })->option_text("MS");
  c.Use(kInvalidate, [&](Settings& to) {
    return cmd.add_flag("--discard-owed", to.discard_owed,
                        "Print and drop the paths owed to the distribution (after a CloudFront error that will not "
                        "pass); takes no PATH");
  });
  c.Use(kPublish | kSitemap, [&](Settings& to) {
     return cmd.add_option("--base-url", to.base_url,
                           "The site's public URL for sitemap.xml, e.g. https://example.com/ (sync, plan and watch: "
                           "with sitemap.enabled)");
   })->option_text("URL");
}

void AddSyncCommand(CLI::App& cmd, Command self, Settings& s, Settings& sink, CommandFlags& f) {
  cmd.add_option("SOURCE", s.source, "The site folder the generator wrote (e.g. public/)");
  cmd.add_option("DEST", s.destination, "s3://BUCKET[/PREFIX]");
  AddCommonOptions(cmd, self, s, sink, f);
  cmd.footer(Footer());
}

// Applies the flags whose presence sets an optional, unless the command ignores them.
void ApplyFlags(const CommandFlags& f, Settings& s) {
  const auto given = [&](const CLI::Option* o) {
    return o != nullptr && o->count() > 0 && std::find(f.ignored.begin(), f.ignored.end(), o) == f.ignored.end();
  };
  if (given(f.delete_on)) s.delete_stale = true;
  if (given(f.delete_off)) s.delete_stale = false;
  if (given(f.path_style)) s.path_style = true;
  if (given(f.wait)) s.wait = true;
  if (given(f.no_invalidate)) s.invalidate = false;
  for (const CLI::Option* o : f.ignored) {
    if (o->count() > 0) s.ignored_options.push_back(o->get_name());
  }
}

}  // namespace

std::span<const Example> HelpExamples() { return kExamples; }

AppTree BuildApp(Settings& s) {
  AppTree t;
  t.ignored_sink = std::make_unique<Settings>();
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
  AddSyncCommand(*t.sync, kSync, s, *t.ignored_sink, t.sync_flags);
  t.plan = app.add_subcommand("plan", "The same as sync --dry-run: print what sync would do");
  AddSyncCommand(*t.plan, kPlan, s, *t.ignored_sink, t.plan_flags);
  t.watch = app.add_subcommand(
      "watch", "Sync once, then publish every quiet burst of changes in SOURCE (inotify) until Ctrl-C");
  AddSyncCommand(*t.watch, kWatch, s, *t.ignored_sink, t.watch_flags);

  t.invalidate = app.add_subcommand("invalidate", "One CloudFront invalidation for the given URL paths");
  t.invalidate->add_option("PATH", s.invalidate_paths, "URL paths, e.g. /blog/post/ or '/img/*' (a final * is a wildcard)");
  AddCommonOptions(*t.invalidate, kInvalidate, s, *t.ignored_sink, t.invalidate_flags);

  t.sitemap = app.add_subcommand("sitemap", "Write sitemap.xml for the HTML pages of SOURCE");
  t.sitemap->add_option("SOURCE", s.source, "The site folder the generator wrote (e.g. public/)");
  t.sitemap->add_option("-o,--output", s.sitemap_output, "Where to write it (default: SOURCE/sitemap.xml)")
      ->option_text("FILE");
  AddCommonOptions(*t.sitemap, kSitemap, s, *t.ignored_sink, t.sitemap_flags);
  t.sitemap->get_option("--dry-run")->description("Say whether the sitemap would change, and write nothing");
  t.sitemap->get_option("--verbose")->description("Print more");
  t.sitemap->get_option("--base-url")->description("The site's public URL, e.g. https://example.com/");

  t.init = app.add_subcommand(
      "init", "Write a commented sitesync.yaml for the site generator found in the current folder");
  t.init->add_option("-c,--config", s.config_path, "File to write (default: ./sitesync.yaml; never overwritten)")
      ->option_text("FILE");
  t.init->add_flag("-q,--quiet", s.quiet, "Print errors only");

  t.check = app.add_subcommand(
      "check", "Read-only preflight: credentials, bucket, region, distribution; each line ok or fail with the fix");
  t.check->add_option("DEST", s.destination, "s3://BUCKET[/PREFIX]");
  AddCommonOptions(*t.check, kCheck, s, *t.ignored_sink, t.check_flags);
  t.check->get_option("--path-style")->description("Address the bucket in the path");
  t.check->get_option("--no-invalidate")->description("Skip the CloudFront checks (as cdn.invalidate: false)");
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
  struct Parsed {
    const CLI::App* cmd;
    const char* name;
    CommandFlags* flags;
  };
  const Parsed commands[] = {{t.sync, "sync", &t.sync_flags},
                             {t.plan, "plan", &t.plan_flags},
                             {t.watch, "watch", &t.watch_flags},
                             {t.invalidate, "invalidate", &t.invalidate_flags},
                             {t.sitemap, "sitemap", &t.sitemap_flags},
                             {t.init, "init", nullptr},
                             {t.check, "check", &t.check_flags}};
  const auto parsed =
      std::find_if(std::begin(commands), std::end(commands), [](const Parsed& p) { return p.cmd->parsed(); });
  if (parsed == std::end(commands)) {
    std::cerr << app.help() << "\nsitesync: no command given; try 'sitesync sync SOURCE s3://BUCKET'.\n";
    out.exit_now = kExitUsage;
    return out;
  }
  s.command = parsed->name;
  if (parsed->flags == nullptr) return out;  // init
  const CommandFlags& f = *parsed->flags;
  if (s.command == "plan") s.dry_run = true;
  if (f.delete_on->count() > 0 && f.delete_off->count() > 0 && f.delete_on->get_group() != kIgnoredGroup) {
    std::cerr << "sitesync: --delete and --no-delete contradict each other; give one.\n";
    out.exit_now = kExitUsage;
    return out;
  }
  ApplyFlags(f, s);
  if (s.quiet && s.verbose) {
    std::cerr << "sitesync: -q and -v contradict each other; give one.\n";
    out.exit_now = kExitUsage;
  }
  return out;
}

}  // namespace sitesync::cli
