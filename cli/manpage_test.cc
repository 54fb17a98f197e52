// The man page and completion generators on small Apps with tricky text, and on the real App.
#include <gtest/gtest.h>

#include <string>

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
  EXPECT_EQ(gen::Synopsis(*t.invalidate), "sitesync invalidate PATH... [OPTIONS]");
}

}  // namespace
}  // namespace sitesync::cli
