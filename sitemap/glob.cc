// Glob matching for --exclude, --include and header rules.
//
// The pattern is compiled into a few tokens and run as an NFA over the path (a set of live pattern positions,
// advanced one character at a time), so matching costs O(pattern x path) whatever the pattern: a backtracking
// matcher goes exponential on `*a*a*a*a*b` or `**/**/**/*a` against long paths, and a regex would need escaping
// and bring its own surprises. Running over the whole path once also gives the "matches a parent folder" rule
// for free: the pattern matched a folder when it accepts just before one of the path's '/'.
//
// Characters are UTF-8 code points, so `?` and `[é]` take one character, not one byte; bytes that are not valid
// UTF-8 stand for themselves. Matching is case-sensitive, like S3 keys.

#include <algorithm>
#include <cstddef>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

// A byte that is not part of valid UTF-8 decodes to kRawByte + byte: outside Unicode, so it only ever equals
// itself.
constexpr char32_t kRawByte = 0x110000;

/// Decodes the code point at `s[i]` and advances `i` past it.
char32_t NextCodePoint(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    ++i;
    return lead;
  }
  std::size_t length = 0;
  char32_t value = 0;
  char32_t min_value = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1Fu, min_value = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0Fu, min_value = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07u, min_value = 0x10000;
  }
  if (length == 0 || i + length > s.size()) {
    ++i;
    return kRawByte + lead;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return kRawByte + lead;
    }
    value = (value << 6) | (byte(i + k) & 0x3Fu);
  }
  if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    ++i;
    return kRawByte + lead;
  }
  i += length;
  return value;
}

enum class Op : std::uint8_t {
  kLiteral,     // One given character.
  kAny,         // `?`: one character other than '/'.
  kClass,       // `[...]`: one character other than '/' in (or, negated, not in) the class.
  kStar,        // `*`: any run of characters other than '/'.
  kDoubleStar,  // `**` not followed by '/' as a whole segment: any run of characters, '/' included.
  kFolders,     // `**/` as a whole segment: zero or more whole folders. The NFA is at a segment start here.
  kInFolder,    // Always right after kFolders: inside one of those folders, before its closing '/'.
};

struct Token {
  Op op = Op::kLiteral;
  bool negated = false;
  char32_t literal = 0;
  std::uint32_t ranges_begin = 0;  // Class members: ranges_[ranges_begin, ranges_end).
  std::uint32_t ranges_end = 0;
};

struct Range {
  char32_t low = 0;
  char32_t high = 0;
};

}  // namespace

/// A pattern split into its flags and tokens.
struct Glob::Impl {
  explicit Impl(std::string_view pattern);

  /// Parses the class starting at `pattern[i]` == '['; false (and nothing added) when it is not closed.
  bool ParseClass(std::string_view pattern, std::size_t& i);
  bool InClass(const Token& token, char32_t c) const {
    for (std::uint32_t r = token.ranges_begin; r < token.ranges_end; ++r) {
      if (c >= ranges[r].low && c <= ranges[r].high) return true;
    }
    return false;
  }

  bool anchored = false;     // Contains '/' (or starts with one): matched against the path from SOURCE.
  bool folder_only = false;  // Ended in '/': matches folders only.
  std::vector<Token> tokens;
  std::vector<Range> ranges;
};

Glob::Impl::Impl(std::string_view pattern) {
  std::size_t begin = 0;
  while (begin < pattern.size() && pattern[begin] == '/') ++begin;
  const bool leading_slash = begin > 0;
  std::size_t end = pattern.size();
  while (end > begin && pattern[end - 1] == '/') {
    // An escaped trailing slash ("a\/") is a literal, not the folder marker.
    std::size_t backslashes = 0;
    while (end - 1 - backslashes > begin && pattern[end - 2 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) break;
    --end;
    folder_only = true;
  }
  const std::string_view body = pattern.substr(begin, end - begin);
  anchored = leading_slash || body.find('/') != std::string_view::npos;

  std::size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (c == '*') {
      const bool segment_start = i == 0 || body[i - 1] == '/';
      std::size_t stars = 0;
      while (i < body.size() && body[i] == '*') ++i, ++stars;
      if (stars == 1) {
        tokens.push_back({.op = Op::kStar});
      } else if (segment_start && i < body.size() && body[i] == '/') {
        ++i;  // The '/' belongs to `**/`.
        tokens.push_back({.op = Op::kFolders});
        tokens.push_back({.op = Op::kInFolder});
      } else {
        tokens.push_back({.op = Op::kDoubleStar});
      }
    } else if (c == '?') {
      tokens.push_back({.op = Op::kAny});
      ++i;
    } else if (c == '[' && ParseClass(body, i)) {
      // ParseClass added the token and moved i past ']'.
    } else if (c == '\\' && i + 1 < body.size()) {
      ++i;
      tokens.push_back({.op = Op::kLiteral, .literal = NextCodePoint(body, i)});
    } else {
      tokens.push_back({.op = Op::kLiteral, .literal = NextCodePoint(body, i)});
    }
  }
}

bool Glob::Impl::ParseClass(std::string_view pattern, std::size_t& i) {
  std::size_t j = i + 1;
  Token token{.op = Op::kClass};
  if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
    token.negated = true;
    ++j;
  }
  const std::size_t ranges_before = ranges.size();
  token.ranges_begin = static_cast<std::uint32_t>(ranges_before);
  const auto member = [&](std::size_t& k) {
    if (pattern[k] == '\\' && k + 1 < pattern.size()) ++k;
    return NextCodePoint(pattern, k);
  };
  bool first = true;
  while (j < pattern.size()) {
    if (pattern[j] == ']' && !first) {
      token.ranges_end = static_cast<std::uint32_t>(ranges.size());
      tokens.push_back(token);
      i = j + 1;
      return true;
    }
    first = false;
    const char32_t low = member(j);
    char32_t high = low;
    if (j + 1 < pattern.size() && pattern[j] == '-' && pattern[j + 1] != ']') {
      ++j;
      high = member(j);
    }
    ranges.push_back({low, high});
  }
  ranges.resize(ranges_before);  // Not closed: '[' is a literal.
  return false;
}

namespace {

/// One run of the NFA: `current[k]` says the match may be before token k (k == tokens.size(): matched).
class Nfa {
 public:
  Nfa(const Glob::Impl& glob, std::span<char> current, std::span<char> next)
      : glob_(glob), current_(current), next_(next) {}

  bool Matches(std::string_view rel_path);

 private:
  void Closure(std::span<char> states) const;
  bool Step(char32_t c);
  bool Accepts() const { return current_[glob_.tokens.size()] != 0; }
  void Start();
  bool MatchesWhole(std::string_view text);

  const Glob::Impl& glob_;
  std::span<char> current_;
  std::span<char> next_;
};

// Adds the positions reachable without consuming a character. Those moves only go forward (past a token that
// may match nothing), so one pass in order is enough.
void Nfa::Closure(std::span<char> states) const {
  const std::vector<Token>& tokens = glob_.tokens;
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    if (states[k] == 0) continue;
    const Op op = tokens[k].op;
    if (op == Op::kStar || op == Op::kDoubleStar) states[k + 1] = 1;
    // Zero folders, or as many as were consumed: only from a segment start, never from inside a folder name
    // (else `**/x` would match "ax").
    if (op == Op::kFolders) states[k + 2] = 1;
  }
}

void Nfa::Start() {
  std::ranges::fill(current_, 0);
  current_[0] = 1;
  Closure(current_);
}

// Consumes `c`; false when no position is live any more (the pattern cannot match any continuation).
bool Nfa::Step(char32_t c) {
  std::ranges::fill(next_, 0);
  bool live = false;
  const std::vector<Token>& tokens = glob_.tokens;
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    if (current_[k] == 0) continue;
    const Token& token = tokens[k];
    switch (token.op) {
      case Op::kLiteral:
        if (c == token.literal) next_[k + 1] = 1, live = true;
        break;
      case Op::kAny:
        if (c != '/') next_[k + 1] = 1, live = true;
        break;
      case Op::kClass:
        if (c != '/' && glob_.InClass(token, c) != token.negated) next_[k + 1] = 1, live = true;
        break;
      case Op::kStar:
        if (c != '/') next_[k] = 1, live = true;
        break;
      case Op::kDoubleStar:
        next_[k] = 1, live = true;
        break;
      case Op::kFolders:  // At a segment start: a name begins (an empty one, "//", stays at the start).
        next_[c == '/' ? k : k + 1] = 1, live = true;
        break;
      case Op::kInFolder:  // Inside a folder name: '/' ends it and the NFA is at a segment start again.
        next_[c == '/' ? k - 1 : k] = 1, live = true;
        break;
    }
  }
  Closure(next_);
  std::swap(current_, next_);
  return live;
}

bool Nfa::MatchesWhole(std::string_view text) {
  Start();
  for (std::size_t i = 0; i < text.size();) {
    if (!Step(NextCodePoint(text, i))) return false;
  }
  return Accepts();
}

bool Nfa::Matches(std::string_view rel_path) {
  if (glob_.tokens.empty()) return false;  // "" or "/": matches nothing rather than everything.

  if (!glob_.anchored) {
    // Base-name pattern: try each segment. Segments followed by '/' are folders; the last one is the file (or,
    // for a folder query "dir/", the empty name after it, standing for "anything directly inside").
    std::size_t begin = 0;
    while (true) {
      const std::size_t slash = rel_path.find('/', begin);
      const bool is_folder = slash != std::string_view::npos;
      const std::size_t end = is_folder ? slash : rel_path.size();
      if ((is_folder || !glob_.folder_only) && MatchesWhole(rel_path.substr(begin, end - begin))) return true;
      if (!is_folder) return false;
      begin = slash + 1;
    }
  }

  // Anchored: one pass over the whole path; accepting just before a '/' means a parent folder matched.
  Start();
  for (std::size_t i = 0; i < rel_path.size();) {
    if (rel_path[i] == '/' && i > 0 && Accepts()) return true;
    if (!Step(NextCodePoint(rel_path, i))) return false;
  }
  return !glob_.folder_only && Accepts();
}

}  // namespace

Glob::Glob(std::string_view pattern) : impl_(std::make_shared<const Impl>(pattern)) {}

bool Glob::Matches(std::string_view rel_path) const {
  // Two state arrays; on the stack for any pattern of sane length, so matching allocates nothing.
  const std::size_t states = impl_->tokens.size() + 1;
  std::array<char, 512> stack_storage;
  std::vector<char> heap_storage;
  std::span<char> storage(stack_storage);
  if (2 * states > stack_storage.size()) {
    heap_storage.resize(2 * states);
    storage = heap_storage;
  }
  Nfa nfa(*impl_, storage.first(states), storage.subspan(states, states));
  return nfa.Matches(rel_path);
}

bool GlobMatch(std::string_view pattern, std::string_view rel_path) { return Glob(pattern).Matches(rel_path); }

}  // namespace sitesync::sitemap
