// The CLI11 App of sitesync and what is generated from it (man page, shell completions). Private to cli/.
// One function builds the App; --help, parsing, `--generate-man` and `--generate-completion` all read the same
// tree, so the man page and the completions cannot drift from the options.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace sitesync::cli {

/// The help group of the options a command accepts and ignores (with a -v note): every command takes the common
/// options, so that scripts can pass one option set to all of them. --help lists them by name only; the man page
/// names them in a sentence; the completions do not offer them.
inline constexpr const char* kIgnoredGroup = "Accepted and ignored (scripts may pass every command the same options)";

/// Flags whose presence is read after parsing (they set optionals in Settings only when given), and the options
/// the command ignores.
struct CommandFlags {
  CLI::Option* wait = nullptr;
  CLI::Option* no_invalidate = nullptr;
  CLI::Option* delete_on = nullptr;
  CLI::Option* delete_off = nullptr;
  CLI::Option* path_style = nullptr;
  std::vector<CLI::Option*> ignored;  ///< In kIgnoredGroup: the command accepts them and does nothing with them.
};

/// The App with handles to its subcommands and to the flags read after parsing. Options store into the
/// Settings given to BuildApp, which must outlive it.
struct AppTree {
  std::unique_ptr<CLI::App> app;
  CLI::App* sync = nullptr;
  CLI::App* plan = nullptr;
  CLI::App* watch = nullptr;
  CLI::App* invalidate = nullptr;
  CLI::App* sitemap = nullptr;
  CLI::App* init = nullptr;
  CLI::App* check = nullptr;
  CommandFlags sync_flags, plan_flags, watch_flags, invalidate_flags, sitemap_flags, check_flags;
  // Hidden (empty group): not in --help, used by the build to write the man page and the completions.
  CLI::Option* generate_man = nullptr;
  CLI::Option* generate_completion = nullptr;
  std::string completion_shell;  ///< The value of --generate-completion: "bash" or "zsh".
  /// Where the options a command ignores store their values: never read.
  std::unique_ptr<Settings> ignored_sink;
};

/// Builds the whole command line: every subcommand with its positionals and options, their descriptions and
/// value names. Never fails.
AppTree BuildApp(Settings& settings);

/// One example of the help footer and the man page's EXAMPLES.
struct Example {
  const char* command;
  const char* what;  ///< A sentence, capitalized, without the final period.
};

/// The examples shown by --help and in the man page.
std::span<const Example> HelpExamples();

/// The man page sitesync(1) in roff (man macros) for the App built by BuildApp: every subcommand with its
/// positionals and options, plus configuration, environment, exit status, files and examples.
std::string ManPage(const CLI::App& app);

/// A bash completion script (`complete -F _sitesync sitesync`) for the App: subcommands, each subcommand's
/// options, choice values (e.g. --compare size|checksum), file names for FILE values, folders for SOURCE.
std::string BashCompletion(const CLI::App& app);

/// A zsh completion function (#compdef sitesync) for the App: `_arguments` per subcommand.
std::string ZshCompletion(const CLI::App& app);

// What the generators need to know about one option, shared by the man page and the completions.
namespace gen {

/// The subcommands shown in --help (those with a name and a non-empty group), in definition order.
std::vector<const CLI::App*> Commands(const CLI::App& app);

/// The options shown in --help with their description (non-empty group, not kIgnoredGroup), in definition order;
/// positionals included.
std::vector<const CLI::Option*> VisibleOptions(const CLI::App& cmd);

/// The options the command accepts and ignores (kIgnoredGroup), in definition order.
std::vector<const CLI::Option*> IgnoredOptions(const CLI::App& cmd);

/// What a value of the option is, for completion.
enum class ValueKind { kNone, kFlag, kFile, kDirectory, kChoice };
ValueKind KindOf(const CLI::Option& opt);

/// The accepted values of an option checked with CLI::IsMember (empty otherwise), read from the validator's
/// own description so that they are exactly what parsing accepts.
std::vector<std::string> Choices(const CLI::Option& opt);

/// The value's name as shown in --help ("FILE", "N", "size|checksum"); the positional's name for positionals;
/// empty for flags.
std::string ValueName(const CLI::Option& opt);

/// "sitesync sync [OPTIONS] [SOURCE] [DEST]"-style synopsis of a subcommand.
std::string Synopsis(const CLI::App& cmd);

}  // namespace gen
}  // namespace sitesync::cli
