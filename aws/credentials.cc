// The shared config and credentials files as the AWS CLI reads them, their static keys, and the region. The
// credential chain that uses them is aws/credential_chain.cc. The INI files are parsed here (no library): "#"/";" comments,
// "[default]" and "[name]" sections in the credentials file, "[default]" and "[profile name]" in the config
// file, "name = value" (or "name: value") settings, and the indented lines of a nested block such as
// "s3 =", which belong to that setting.
//
// No message built here ever contains a secret: malformed lines are reported by file and line number only,
// never by their text, since the line may be a pasted key.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

constexpr std::string_view kDefaultRegion = "us-east-1";
constexpr std::size_t kMaxFileSize = 16 * 1024 * 1024;  // Far above any real config; stops /dev/zero.

// ---------------------------------------------------------------------------------------------------------------
// Small string helpers
// ---------------------------------------------------------------------------------------------------------------

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// The value of `name`, or nullopt when unset or empty (the AWS CLI treats an empty variable as unset).
std::optional<std::string> Env(const EnvLookup& env, std::string_view name) {
  if (!env) return std::nullopt;
  std::optional<std::string> value = env(name);
  if (!value || value->empty()) return std::nullopt;
  return value;
}

/// "~" and "~/x" expanded with $HOME; other paths unchanged.
std::string ExpandHome(std::string_view path, const EnvLookup& env) {
  if (path == "~" || path.starts_with("~/")) {
    if (std::optional<std::string> home = Env(env, "HOME")) return *home + std::string(path.substr(1));
  }
  return std::string(path);
}

// ---------------------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------------------

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

/// The bytes of `path`; nullopt when it does not exist; kConfig when it exists but cannot be read.
Result<std::optional<std::string>> ReadWholeFile(const std::string& path, std::string_view what) {
  errno = 0;
  File file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return std::optional<std::string>();
    return Fail(ErrorCode::kConfig, "read AWS " + std::string(what) + " file " + path + ": " + std::strerror(err) +
                                        "; fix its permissions or remove it");
  }
  std::string data;
  char buf[8192];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, file.get());
    data.append(buf, n);
    if (data.size() > kMaxFileSize) {
      return Fail(ErrorCode::kConfig, "read AWS " + std::string(what) + " file " + path +
                                          ": larger than 16 MiB, which is not a credentials or config file");
    }
    if (n < sizeof buf) break;
  }
  if (std::ferror(file.get())) {
    const int err = errno;
    return Fail(ErrorCode::kConfig, "read AWS " + std::string(what) + " file " + path + ": " +
                                        std::strerror(err != 0 ? err : EIO) + "; check the path");
  }
  return std::optional<std::string>(std::move(data));
}

// ---------------------------------------------------------------------------------------------------------------
// INI parsing
// ---------------------------------------------------------------------------------------------------------------

enum class IniKind { kCredentials, kConfig };

using Sections = std::map<std::string, ConfigSection, std::less<>>;

std::unexpected<Error> Malformed(const std::string& path, int line, std::string_view problem) {
  return Fail(ErrorCode::kConfig, path + ":" + std::to_string(line) + ": " + std::string(problem) +
                                      " (the line is not shown: it may hold a secret); fix or remove that line");
}

/// Where a section header puts its settings: a profile, an sso-session, a services section, or nowhere.
Sections* SectionTable(std::string_view section, IniKind kind, SharedConfig& into, std::string& name) {
  if (kind == IniKind::kCredentials) {
    name = std::string(section);
    return &into.credentials_profiles;
  }
  if (section == "default") {
    name = "default";
    return &into.config_profiles;
  }
  // "[profile name]": botocore splits on white space, so "[profile   name]" is the same profile.
  for (auto [prefix, table] : {std::pair<std::string_view, Sections*>{"profile", &into.config_profiles},
                               {"sso-session", &into.sso_sessions},
                               {"services", &into.services}}) {
    if (section.starts_with(prefix) && section.size() > prefix.size() && IsSpace(section[prefix.size()])) {
      std::string_view rest = Trim(section.substr(prefix.size()));
      if (!rest.empty()) {
        name = std::string(rest);
        return table;
      }
    }
  }
  return nullptr;
}

Result<void> ParseIni(std::string_view text, const std::string& path, IniKind kind, SharedConfig& into) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark (Windows editors).
  bool in_section = false;
  ConfigSection* current = nullptr;  // nullptr inside a section that is kept nowhere.
  std::string nested;                // After "name =" with no value: the indented lines below are its block.
  int line_no = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view raw = text.substr(start, end - start);
    start = end + 1;
    ++line_no;

    const std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;

    // The AWS CLI's nested blocks: "s3 =" with no value, then indented "  max_concurrent_requests = 20" lines.
    // They belong to that setting ("s3.max_concurrent_requests"). An indented line anywhere else is read as an
    // ordinary line (configparser would glue it onto the value above, which only ever yields a broken value).
    const bool in_block = IsSpace(raw.front()) && !nested.empty();
    if (!in_block) nested.clear();

    if (!in_block && line.front() == '[') {
      const std::size_t close = line.find(']');
      if (close == std::string_view::npos) return Malformed(path, line_no, "section header has no closing ']'");
      const std::string_view rest = Trim(line.substr(close + 1));
      if (!rest.empty() && rest.front() != '#' && rest.front() != ';') {
        return Malformed(path, line_no, "unexpected text after the section header's ']'");
      }
      const std::string_view name = Trim(line.substr(1, close - 1));
      if (name.empty()) return Malformed(path, line_no, "empty section name '[]'");
      in_section = true;
      current = nullptr;
      std::string key;
      if (Sections* table = SectionTable(name, kind, into, key)) {
        auto [it, inserted] = table->try_emplace(std::move(key));
        if (inserted) {
          it->second.line = line_no;
          it->second.file = path;
        }
        current = &it->second;  // A repeated section adds to the first; later settings win.
      }
      continue;
    }

    const std::size_t delim = line.find_first_of("=:");
    if (delim == std::string_view::npos) {
      return Malformed(path, line_no, "expected 'name = value', '[section]' or a comment");
    }
    const std::string_view name = Trim(line.substr(0, delim));
    if (name.empty()) return Malformed(path, line_no, "setting has no name before '='");
    if (!in_section) {
      return Malformed(path, line_no, "setting before the first section; put it under a section such as [default]");
    }
    std::string_view value = Trim(line.substr(delim + 1));
    // Inline comments: '#' or ';' after white space. Keys, secrets, tokens and regions never contain them.
    for (std::size_t i = 1; i < value.size(); ++i) {
      if ((value[i] == '#' || value[i] == ';') && IsSpace(value[i - 1])) {
        value = Trim(value.substr(0, i));
        break;
      }
    }
    const std::string key = in_block ? nested + "." + Lower(name) : Lower(name);
    if (!in_block && value.empty()) nested = Lower(name);
    if (current != nullptr) current->values[key] = ConfigValue{std::string(value), line_no};
  }
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// One file, as searched
// ---------------------------------------------------------------------------------------------------------------

/// The path of a credentials or config file: `variable` if set, else ~/.aws/`name`. Empty without HOME.
std::string FilePath(const EnvLookup& env, std::string_view variable, std::string_view name) {
  if (std::optional<std::string> set = Env(env, variable)) return ExpandHome(*set, env);
  if (std::optional<std::string> home = Env(env, "HOME")) return *home + "/.aws/" + std::string(name);
  return {};
}

Result<bool> LoadFile(IniKind kind, const std::string& path, SharedConfig& into) {
  if (path.empty()) return false;
  const std::string_view what = kind == IniKind::kCredentials ? "credentials" : "config";
  Result<std::optional<std::string>> text = ReadWholeFile(path, what);
  if (!text) return std::unexpected(std::move(text.error()));
  if (!text->has_value()) return false;
  if (auto ok = ParseIni(**text, path, kind, into); !ok) return std::unexpected(std::move(ok.error()));
  return true;
}

std::string SectionName(IniKind kind, std::string_view profile) {
  if (kind == IniKind::kConfig && profile != "default") return "[profile " + std::string(profile) + "]";
  return "[" + std::string(profile) + "]";
}

/// Credentials from the section for `profile`: nullopt when it has none, kConfig when only half.
Result<std::optional<Credentials>> FromSection(IniKind kind, const ConfigSection* section, std::string_view profile) {
  if (section == nullptr) return std::optional<Credentials>();
  const ConfigValue* key_id = section->Find("aws_access_key_id");
  const ConfigValue* secret = section->Find("aws_secret_access_key");
  if (key_id == nullptr && secret == nullptr) return std::optional<Credentials>();
  if (key_id == nullptr || secret == nullptr) {
    const int line = key_id != nullptr ? key_id->line : secret->line;
    return Fail(ErrorCode::kConfig,
                section->file + ":" + std::to_string(line) + ": " + SectionName(kind, profile) + " has " +
                    (key_id != nullptr ? "aws_access_key_id but no aws_secret_access_key"
                                       : "aws_secret_access_key but no aws_access_key_id") +
                    "; add the missing setting or run `aws configure --profile " + std::string(profile) + "`");
  }
  Credentials out;
  out.access_key_id = key_id->value;
  out.secret_access_key = secret->value;
  if (const ConfigValue* token = section->Find("aws_session_token")) {
    out.session_token = token->value;
  } else if (const ConfigValue* legacy = section->Find("aws_security_token")) {  // The AWS CLI still reads it.
    out.session_token = legacy->value;
  }
  out.source = "profile " + std::string(profile) + " in " + section->file;
  return std::optional<Credentials>(std::move(out));
}

class FixedProvider final : public CredentialProvider {
 public:
  explicit FixedProvider(Credentials credentials) : credentials_(std::move(credentials)) {}
  Result<Credentials> Get(bool) override { return credentials_; }

 private:
  Credentials credentials_;
};

}  // namespace

EnvLookup ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string key(name);
    const char* value = std::getenv(key.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

const ConfigValue* ConfigSection::Find(std::string_view name) const {
  auto it = values.find(std::string(name));
  return it == values.end() || it->second.value.empty() ? nullptr : &it->second;
}

std::string ConfigSection::Get(std::string_view name) const {
  const ConfigValue* v = Find(name);
  return v == nullptr ? std::string() : v->value;
}

const ConfigSection* SharedConfig::ConfigProfile(std::string_view name) const {
  auto it = config_profiles.find(name);
  return it == config_profiles.end() ? nullptr : &it->second;
}

const ConfigSection* SharedConfig::CredentialsProfile(std::string_view name) const {
  auto it = credentials_profiles.find(name);
  return it == credentials_profiles.end() ? nullptr : &it->second;
}

Result<SharedConfig> LoadSharedConfig(const EnvLookup& env) {
  SharedConfig shared;
  shared.credentials_path = FilePath(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  shared.config_path = FilePath(env, "AWS_CONFIG_FILE", "config");
  Result<bool> credentials = LoadFile(IniKind::kCredentials, shared.credentials_path, shared);
  if (!credentials) return std::unexpected(std::move(credentials.error()));
  shared.credentials_exists = *credentials;
  Result<bool> config = LoadFile(IniKind::kConfig, shared.config_path, shared);
  if (!config) return std::unexpected(std::move(config.error()));
  shared.config_exists = *config;
  return shared;
}

std::string ChosenProfile(std::string_view profile, const EnvLookup& env) {
  if (!profile.empty()) return std::string(profile);
  if (std::optional<std::string> from_env = Env(env, "AWS_PROFILE")) return *from_env;
  return "default";
}

std::shared_ptr<CredentialProvider> StaticCredentials(Credentials credentials) {
  return std::make_shared<FixedProvider>(std::move(credentials));
}

Result<std::optional<Credentials>> StaticKeysOf(const SharedConfig& shared, bool config_file,
                                                std::string_view profile) {
  return config_file ? FromSection(IniKind::kConfig, shared.ConfigProfile(profile), profile)
                     : FromSection(IniKind::kCredentials, shared.CredentialsProfile(profile), profile);
}

std::string ResolveRegion(std::string_view cli_region, std::string_view profile, const EnvLookup& env) {
  if (!cli_region.empty()) return std::string(cli_region);
  if (std::optional<std::string> region = Env(env, "AWS_REGION")) return *region;
  if (std::optional<std::string> region = Env(env, "AWS_DEFAULT_REGION")) return *region;
  // ResolveRegion cannot fail: an unreadable or malformed config file just gives no region here (and
  // the credential chain reports it, naming file and line, when it reads that file).
  if (Result<SharedConfig> shared = LoadSharedConfig(env)) {
    if (const ConfigSection* section = shared->ConfigProfile(ChosenProfile(profile, env))) {
      if (const ConfigValue* region = section->Find("region")) return region->value;
    }
  }
  return std::string(kDefaultRegion);
}

std::string ShortKeyId(std::string_view access_key_id) {
  if (access_key_id.size() < 16) return "...";
  return "..." + std::string(access_key_id.substr(access_key_id.size() - 4));
}

std::string RedactKeyId(std::string text, std::string_view access_key_id) {
  if (access_key_id.empty()) return text;
  const std::string shown = ShortKeyId(access_key_id);
  for (auto p = text.find(access_key_id); p != std::string::npos; p = text.find(access_key_id, p + shown.size())) {
    text.replace(p, access_key_id.size(), shown);
  }
  return text;
}

}  // namespace sitesync::aws
