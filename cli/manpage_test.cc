// The man page and completion generators on small Apps with tricky text, and on the real App.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "cli/app.h"

namespace sitesync::cli {
namespace {

// An App shaped like sitesync's, with text that roff would take as requests or escapes.
struct TrickyApp {
  std::string file, mode, name;
  bool flag = false;
  CLI::App app{"sitesync: a test app.", "sitesync"};
  TrickyApp() {
    CLI::App* cmd = app.add_subcommand("demo", ".starts like a request");
    cmd->add_option("SOURCE", name, "'quoted at the start");
    cmd->add_option("-f,--from-file", file, "back\\slash and a-hyphen")->option_text("FILE");
    cmd->add_option("--mode", mode, "One of them")->check(CLI::IsMember({"fast", "slow"}))->option_text("fast|slow");
    cmd->add_flag("--dry-run", flag, "Line one\n.line two starts with a dot");
    app.add_flag("--hidden")->group("");
  }
};

TEST(ManPage, EscapesRoffSpecials) {
  TrickyApp t;
  const std::string page = ManPage(t.app);
  EXPECT_NE(page.find("\n\\&.starts like a request.\n"), std::string::npos) << page;
  EXPECT_NE(page.find("\n\\&'quoted at the start.\n"), std::string::npos) << page;
  EXPECT_NE(page.find("back\\eslash and a\\-hyphen."), std::string::npos) << page;
  EXPECT_NE(page.find("Line one\n\\&.line two starts with a dot."), std::string::npos) << page;
  EXPECT_NE(page.find("\\fB\\-f\\fR, \\fB\\-\\-from\\-file\\fR \\fIFILE\\fR"), std::string::npos) << page;
  EXPECT_NE(page.find("\\fB\\-\\-mode\\fR \\fIfast|slow\\fR"), std::string::npos) << page;
  EXPECT_NE(page.find(".SS demo\n"), std::string::npos) << page;
  EXPECT_EQ(page.find("hidden"), std::string::npos) << "an option in the empty group is not documented";
}

TEST(ManPage, WalkerReadsKindsAndChoices) {
  TrickyApp t;
  const CLI::App* demo = t.app.get_subcommand("demo");
  EXPECT_EQ(gen::Synopsis(*demo), "sitesync demo [SOURCE] [OPTIONS]");
  const CLI::Option* mode = demo->get_option("--mode");
  EXPECT_EQ(gen::Choices(*mode), (std::vector<std::string>{"fast", "slow"}));
  EXPECT_EQ(gen::KindOf(*mode), gen::ValueKind::kChoice);
  EXPECT_EQ(gen::KindOf(*demo->get_option("--from-file")), gen::ValueKind::kFile);
  EXPECT_EQ(gen::KindOf(*demo->get_option("--dry-run")), gen::ValueKind::kFlag);
  EXPECT_EQ(gen::KindOf(*demo->get_option("SOURCE")), gen::ValueKind::kDirectory);
  EXPECT_EQ(gen::ValueName(*demo->get_option("--dry-run")), "");
  EXPECT_EQ(gen::ValueName(*demo->get_option("--from-file")), "FILE");
}

TEST(Completion, QuotesTextForTheShells) {
  TrickyApp t;
  const std::string bash = BashCompletion(t.app);
  EXPECT_NE(bash.find("_sitesync_compgen -W 'fast slow'"), std::string::npos) << bash;
  EXPECT_NE(bash.find("-f|--from-file)\n                    _sitesync_compgen -f"), std::string::npos) << bash;
  EXPECT_EQ(bash.find("--hidden"), std::string::npos);
  const std::string zsh = ZshCompletion(t.app);
  // "'" inside a single-quoted spec, ':' and '[' ']' inside an _arguments description.
  EXPECT_NE(zsh.find("'1:SOURCE:_files -/'"), std::string::npos) << zsh;
  EXPECT_NE(zsh.find("'--mode=[One of them]:fast|slow:(fast slow)'"), std::string::npos) << zsh;
  EXPECT_NE(zsh.find("'demo:.starts like a request'"), std::string::npos) << zsh;
}

TEST(BuildApp, EveryCommandOfCliMdAndHiddenGenerators) {
  Settings s;
  AppTree t = BuildApp(s);
  std::vector<std::string> names;
  for (const CLI::App* c : gen::Commands(*t.app)) names.push_back(c->get_name());
  EXPECT_EQ(names, (std::vector<std::string>{"sync", "plan", "watch", "invalidate", "sitemap", "init", "check"}));
  EXPECT_TRUE(t.generate_man->get_group().empty());
  EXPECT_TRUE(t.generate_completion->get_group().empty());
  EXPECT_EQ(gen::Choices(*t.sync->get_option("--compare")), (std::vector<std::string>{"size", "checksum"}));
  EXPECT_EQ(gen::Synopsis(*t.invalidate), "sitesync invalidate [PATH...] [OPTIONS]");
}

// One option set for every command (aws-cli's global options): what a command does not use is accepted, ignored,
// and named for the -v note.
std::vector<std::string> EveryCommonOption() {
  return {"-c", "site.yaml", "--region", "us-east-1", "--profile", "p", "--dry-run", "--json", "-v",
          "--endpoint", "http://127.0.0.1:9", "--path-style", "--compare", "checksum", "--delete",
          "--max-deletes", "5", "--jobs", "8", "--exclude", "*.map", "--include", ".htaccess",
          "--distribution", "E2ABC", "--cloudfront-endpoint", "http://127.0.0.1:9", "--wait", "--no-invalidate",
          "--debounce", "300", "--base-url", "https://example.com/"};
}

ParsedArgs Parse(std::vector<std::string> args) {
  std::vector<const char*> argv{"sitesync"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

TEST(CommonOptions, EveryCommandButInitAcceptsThemAll) {
  const std::pair<std::vector<std::string>, std::vector<std::string>> commands[] = {
      {{"sync", "public", "s3://b"}, {"--debounce"}},
      {{"plan", "public", "s3://b"}, {"--debounce"}},
      {{"watch", "public", "s3://b"}, {}},
      {{"invalidate", "/a"},
       {"--region", "--endpoint", "--path-style", "--compare", "--delete", "--max-deletes", "--jobs", "--exclude",
        "--include", "--no-invalidate", "--debounce", "--base-url"}},
      {{"sitemap", "public"},
       {"--region", "--profile", "--endpoint", "--path-style", "--compare", "--delete", "--max-deletes", "--jobs",
        "--distribution", "--cloudfront-endpoint", "--wait", "--no-invalidate", "--debounce"}},
      {{"check", "s3://b"},
       {"--dry-run", "--compare", "--delete", "--max-deletes", "--jobs", "--exclude", "--include", "--wait",
        "--debounce", "--base-url"}},
  };
  for (const auto& [command, ignored] : commands) {
    std::vector<std::string> args = command;
    for (const std::string& a : EveryCommonOption()) args.push_back(a);
    const ParsedArgs parsed = Parse(args);
    EXPECT_FALSE(parsed.exit_now) << command[0];
    EXPECT_EQ(parsed.settings.command, command[0]);
    EXPECT_EQ(parsed.settings.ignored_options, ignored) << command[0];
  }
}

TEST(CommonOptions, IgnoredFlagsChangeNothing) {
  // The script line: every option of a sync given to invalidate.
  const ParsedArgs p = Parse({"invalidate", "/a", "--endpoint", "http://127.0.0.1:9", "--cloudfront-endpoint",
                              "http://127.0.0.1:9", "--distribution", "E2ABC", "--region", "us-east-1", "--delete",
                              "--jobs", "8", "--path-style", "--no-delete"});
  ASSERT_FALSE(p.exit_now);
  EXPECT_FALSE(p.settings.delete_stale) << "--delete and --no-delete: ignored, not even a contradiction";
  EXPECT_FALSE(p.settings.path_style);
  EXPECT_EQ(p.settings.distribution, "E2ABC");
  EXPECT_EQ(p.settings.ignored_options,
            (std::vector<std::string>{"--region", "--endpoint", "--path-style", "--delete", "--no-delete", "--jobs"}));
  // Used flags still apply, and still contradict.
  const ParsedArgs sync = Parse({"sync", "a", "s3://b", "--delete", "--path-style", "--wait", "--no-invalidate"});
  ASSERT_FALSE(sync.exit_now);
  EXPECT_EQ(sync.settings.delete_stale, true);
  EXPECT_EQ(sync.settings.path_style, true);
  EXPECT_EQ(sync.settings.wait, true);
  EXPECT_EQ(sync.settings.invalidate, false);
  EXPECT_TRUE(sync.settings.ignored_options.empty());
  EXPECT_EQ(Parse({"sync", "a", "s3://b", "--delete", "--no-delete"}).exit_now, 2);
  EXPECT_TRUE(Parse({"plan", "a", "s3://b"}).settings.dry_run);
  EXPECT_EQ(Parse({"invalidate", "/a", "--compare", "bogus"}).exit_now, 2) << "a value CLI11 checks is still checked";
  // An ignored option's value reaches no setting: sitemap never sees --distribution, invalidate never --region.
  const ParsedArgs map = Parse({"sitemap", "public", "--distribution", "bad/id", "--jobs", "0"});
  ASSERT_FALSE(map.exit_now);
  EXPECT_FALSE(map.settings.distribution);
  EXPECT_FALSE(map.settings.jobs);
  EXPECT_FALSE(p.settings.region);
  EXPECT_FALSE(p.settings.endpoint);
  EXPECT_FALSE(p.settings.jobs);
}

TEST(CommonOptions, HelpManAndCompletionsTellIgnoredApart) {
  Settings s;
  AppTree t = BuildApp(s);
  const std::string help = t.invalidate->help();
  const auto group = help.find(std::string(kIgnoredGroup) + ":\n");
  ASSERT_NE(group, std::string::npos) << help;
  EXPECT_NE(help.find("--endpoint, --path-style,", group), std::string::npos) << help;
  EXPECT_EQ(help.find("--endpoint URL"), std::string::npos) << "listed by name only: " << help;
  std::vector<std::string> visible;
  for (const CLI::Option* o : gen::VisibleOptions(*t.invalidate)) visible.push_back(o->get_name());
  EXPECT_EQ(std::count(visible.begin(), visible.end(), "--endpoint"), 0);
  EXPECT_EQ(std::count(visible.begin(), visible.end(), "--distribution"), 1);
  const auto names = [](const CLI::App& cmd) {
    std::vector<std::string> out;
    for (const CLI::Option* o : gen::IgnoredOptions(cmd)) out.push_back(o->get_name());
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(names(*t.sync), (std::vector<std::string>{"--debounce", "--discard-owed", "--poll"}));
  EXPECT_EQ(names(*t.watch), (std::vector<std::string>{"--discard-owed"}));
  const std::string page = ManPage(*t.app);
  const auto section = page.find(".SS invalidate\n");
  ASSERT_NE(section, std::string::npos);
  EXPECT_NE(page.find("Also accepted, and ignored", section), std::string::npos);
  EXPECT_NE(page.find("\\fB\\-\\-endpoint\\fR, ", section), std::string::npos);
  const std::string bash = BashCompletion(*t.app);
  const auto inval = bash.find("        invalidate)\n");
  ASSERT_NE(inval, std::string::npos);
  const std::string block = bash.substr(inval, bash.find("            ;;\n", inval) - inval);
  // Not offered, but their values are not taken for positionals.
  const auto offered = block.substr(block.find("-W '"), block.find('\n', block.find("-W '")) - block.find("-W '"));
  EXPECT_EQ(offered.find("--endpoint"), std::string::npos) << offered;
  EXPECT_NE(offered.find("--distribution"), std::string::npos) << offered;
  EXPECT_NE(block.find(" --endpoint "), std::string::npos) << "valued, for counting positionals: " << block;
  const std::string zsh = ZshCompletion(*t.app);
  EXPECT_NE(zsh.find("'!--endpoint=: : '"), std::string::npos);
  EXPECT_NE(zsh.find("'!--delete'"), std::string::npos);
}

}  // namespace
}  // namespace sitesync::cli
