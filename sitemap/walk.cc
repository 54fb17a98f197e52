// Walk(): SOURCE to a sorted list of LocalFile, with POSIX readdir/fstatat (nothing here throws).
//
// Speed: one opendir + fstat per folder and one fstatat per file; d_type saves a stat for folders. Only symlinks
// are resolved (realpath); canonicalizing every file would triple the syscalls for nothing. Folders are read to
// the end and closed before descending, so the walk holds one descriptor whatever the depth.
//
// Which entries are kept:
// - Names starting with '.' (files and folders) are skipped, except `.well-known` at any depth (RFC 8615
//   well-known URIs; a folder at any depth may be the root of a site served from an origin path).
//   Inside `.well-known`, dotfiles are still skipped. The SOURCE folder's own name never counts.
//   This is Excluded() (filter.cc), applied folder by folder so that skipped folders can be pruned.
// - Editor and generator temp files (IsTempFile: `*.swp`, `*~`, `4913`, `*.tmp`, ...) are skipped as files, the
//   same names watch ignores; folders with such names are walked.
// - A file is skipped when it or a parent folder matches an exclude glob (GlobMatch's parent rule).
// - A file matching an include glob is kept whatever the two rules above say.
// - Skipped folders are not even read when there are no include globs (nothing inside could come back).
// - sitesync's own files (WalkOptions::own: the config in use, the journal's and cache's folders) are skipped by
//   path and by device and inode, whatever the globs say.
// - Symlinks are judged by their own path for the rules above, then followed when their fully resolved target
//   is inside canonical SOURCE. The file is published under the link's path and read through the link.
//   Links that point outside, broken links and links that lead back to a folder being walked (a loop) are
//   skipped with a warning. Following is per path, not "once per target": `latest -> posts/2024` publishes the
//   posts under both names, as a web server following the link would serve them.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

std::string ErrnoText(int error) { return std::error_code(error, std::generic_category()).message(); }

/// How a folder's files start out before their own names and the globs are looked at.
struct FolderState {
  bool hidden = false;    // The folder or a parent starts with '.' (and is not .well-known).
  bool excluded = false;  // An exclude glob matches everything under the folder.
  bool own = false;       // One of sitesync's own folders (or under one): never walked, whatever the globs say.
};

/// A folder being walked, kept for loop detection.
struct Ancestor {
  dev_t dev = 0;
  ino_t ino = 0;
  std::string rel_path;
};

struct Entry {
  std::string name;
  unsigned char type = DT_UNKNOWN;
};

/// A folder found while reading its parent, walked once the parent is closed.
struct PendingFolder {
  std::string rel_path;
  FolderState state;
  bool via_link = false;
};

std::vector<Glob> Compile(const std::vector<std::string>& patterns) {
  std::vector<Glob> globs;
  globs.reserve(patterns.size());
  for (const std::string& pattern : patterns) globs.emplace_back(pattern);
  return globs;
}

bool AnyMatch(const std::vector<Glob>& globs, std::string_view rel_path) {
  return std::ranges::any_of(globs, [&](const Glob& glob) { return glob.Matches(rel_path); });
}

std::string Quoted(std::string_view rel_path) {
  return rel_path.empty() ? std::string("SOURCE") : "'" + std::string(rel_path) + "'";
}

bool SetsExtra(const HeaderRule& r) {
  return r.content_encoding || r.content_disposition || r.content_language || r.storage_class || r.acl || r.sse ||
         r.kms_key_id || r.website_redirect || r.metadata;
}

// One rule's fields over what earlier rules set. `sse` and `kms_key_id` go together: a rule that sets sse also
// sets the key (to its own, or none), so that an AES256 rule after an aws:kms one never sends a KMS key ID.
// `metadata` replaces the earlier rules' map as a whole.
void ApplyExtra(const HeaderRule& r, ExtraHeaders& to) {
  if (r.content_encoding) to.content_encoding = *r.content_encoding;
  if (r.content_disposition) to.content_disposition = *r.content_disposition;
  if (r.content_language) to.content_language = *r.content_language;
  if (r.storage_class) to.storage_class = *r.storage_class;
  if (r.acl) to.acl = *r.acl;
  if (r.sse) to.kms_key_id = r.kms_key_id.value_or("");
  if (r.sse) to.sse = *r.sse;
  if (r.kms_key_id) to.kms_key_id = *r.kms_key_id;
  if (r.website_redirect) to.website_redirect = *r.website_redirect;
  if (r.metadata) {
    to.metadata = *r.metadata;
    std::ranges::sort(to.metadata);
  }
}

class Walker {
 public:
  Walker(const WalkOptions& options, std::string root)
      : exclude_(Compile(options.exclude)), include_(Compile(options.include)), own_(options.own),
        root_(std::move(root)) {
    for (const HeaderRule& rule : options.headers) {
      if (rule.cache_control || rule.content_type) headers_.push_back({Glob(rule.match), &rule});
      if (SetsExtra(rule)) extra_rules_.push_back({Glob(rule.match), &rule});
    }
    for (const CompressRule& rule : options.compress) compress_.emplace_back(Glob(rule.match), rule.encoding);
  }

  /// Walks `folder` and what is under it. Returns the error text when the folder itself cannot be read (the
  /// caller decides whether that is fatal); problems further down become warnings.
  std::optional<std::string> VisitFolder(const PendingFolder& folder);

  SiteMap Take() && {
    std::ranges::sort(map_.files, {}, &LocalFile::rel_path);
    // WalkPaths may reach a file twice (as a path and under a folder path).
    const auto dup = std::ranges::unique(map_.files, {}, &LocalFile::rel_path);
    map_.files.erase(dup.begin(), dup.end());
    return std::move(map_);
  }

  /// Visits one path below the root as the full walk would see it: a file, a folder (walked), a symlink; nothing
  /// when it does not exist, a parent folder is pruned, or its folder resolves outside the root.
  void VisitPath(const std::string& rel) {
    FolderState state{};
    std::size_t begin = 0;
    for (std::size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', begin)) {
      state = ChildFolderState(state, std::string_view(rel).substr(begin, slash - begin), rel.substr(0, slash));
      if (FolderPruned(state)) return;
      begin = slash + 1;
    }
    const std::string name = rel.substr(begin);
    if (name.empty() || name == "." || name == "..") return;
    if (begin > 0) {
      // A parent may be a symlink: the full walk follows it only when it stays inside the root.
      const std::unique_ptr<char, FreeDeleter> parent(realpath(AbsPath(rel.substr(0, begin - 1)).c_str(), nullptr));
      if (!parent) return;
      const std::string_view p(parent.get());
      if (!(root_ == "/" || p == root_ || (p.starts_with(root_) && p.size() > root_.size() && p[root_.size()] == '/'))) {
        return;
      }
    }
    struct stat st{};
    if (lstat(AbsPath(rel).c_str(), &st) != 0) return;  // gone: the caller decides what that means
    std::vector<PendingFolder> subfolders;
    if (S_ISREG(st.st_mode)) {
      if (FileKept(state, name, rel)) AddFile(rel, st);
    } else if (S_ISDIR(st.st_mode)) {
      const FolderState folder = ChildFolderState(state, name, rel);
      if (!FolderPruned(folder)) subfolders.push_back({rel, folder, false});
    } else if (S_ISLNK(st.st_mode)) {
      VisitLink(state, name, rel, subfolders);
    }
    for (const PendingFolder& sub : subfolders) {
      if (std::optional<std::string> error = VisitFolder(sub)) {
        Warn("skipped folder '" + sub.rel_path + "': cannot read it (" + *error + ")");
        map_.incomplete_folders.push_back(sub.rel_path);
      }
    }
  }

 private:
  std::string AbsPath(std::string_view rel_path) const {
    if (rel_path.empty()) return root_;
    std::string abs;
    abs.reserve(root_.size() + 1 + rel_path.size());
    abs += root_;
    if (abs.back() != '/') abs += '/';  // The root may be "/".
    abs += rel_path;
    return abs;
  }

  FolderState ChildFolderState(const FolderState& parent, std::string_view name, const std::string& rel) const {
    FolderState state = parent;
    if (name.front() == '.' && name != ".well-known") state.hidden = true;
    if (!state.excluded && !exclude_.empty()) state.excluded = AnyMatch(exclude_, rel + "/");
    if (!state.own && !own_.rel_paths.empty()) state.own = IsOwnPath(rel, own_);
    return state;
  }

  bool FolderPruned(const FolderState& state) const {
    return state.own || ((state.hidden || state.excluded) && include_.empty());
  }

  // sitesync's own file or folder under another name (a hard link, a symlink, a bind mount).
  bool IsOwnId(const struct stat& st) const {
    return std::ranges::any_of(own_.ids, [&](const auto& id) {
      return id.first == static_cast<std::uint64_t>(st.st_dev) && id.second == static_cast<std::uint64_t>(st.st_ino);
    });
  }

  bool FileKept(const FolderState& folder, std::string_view name, std::string_view rel) const {
    if (folder.own || (!own_.rel_paths.empty() && IsOwnPath(rel, own_))) return false;  // never, whatever includes
    const bool temp = IsTempFile(name);  // Dotfiles (not .well-known) and editor temp files, as in Excluded().
    const bool skipped = folder.hidden || temp || folder.excluded || AnyMatch(exclude_, rel);
    return !skipped || AnyMatch(include_, rel);
  }

  void AddFile(std::string rel, const struct stat& st) {
    if (IsOwnId(st)) return;  // sitesync's config (or a file of its own) under another name: never published
    LocalFile file;
    file.root = shared_root_;
    file.size = static_cast<std::uint64_t>(st.st_size);
    file.disk_size = file.size;
    file.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    file.dev = static_cast<std::uint64_t>(st.st_dev);
    file.ino = static_cast<std::uint64_t>(st.st_ino);
    file.content_type = ContentTypeFor(rel);
    for (const auto& [glob, rule] : headers_) {
      if (!glob.Matches(rel)) continue;
      if (rule->cache_control) file.cache_control = Intern(*rule->cache_control);
      if (rule->content_type) file.content_type = Intern(*rule->content_type);
    }
    if (!extra_rules_.empty()) file.extra = ExtraFor(rel);
    for (const auto& [glob, encoding] : compress_) {  // the last matching compress: rule wins
      if (glob.Matches(rel)) file.encoding = encoding;
    }
    file.rel_path = std::move(rel);
    map_.files.push_back(std::move(file));
  }

  void Warn(std::string message) { map_.warnings.push_back(std::move(message)); }

  /// Follows the symlink `name` (at `rel`) found in a folder in state `folder`: adds the file it leads to, or
  /// queues the folder, or warns.
  void VisitLink(const FolderState& folder, const std::string& name, const std::string& rel,
                 std::vector<PendingFolder>& subfolders);

  const std::vector<Glob> exclude_;
  const std::vector<Glob> include_;
  const OwnFiles own_;
  std::vector<std::pair<Glob, const HeaderRule*>> headers_;  // Rules that set something, in order.
  // Rules that set a field of ExtraHeaders, in order, and the interned result per set of matching rules (a site
  // has a few such sets, and a file's lookup then costs its glob matches and one small map search).
  std::vector<std::pair<Glob, const HeaderRule*>> extra_rules_;
  std::map<std::vector<std::size_t>, const ExtraHeaders*> extra_by_rules_;

  /// The ExtraHeaders of a file at `rel`: per field, the last matching rule that sets it; null when none sets
  /// anything.
  const ExtraHeaders* ExtraFor(std::string_view rel) {
    std::vector<std::size_t> matching;
    for (std::size_t i = 0; i < extra_rules_.size(); ++i) {
      if (extra_rules_[i].first.Matches(rel)) matching.push_back(i);
    }
    if (matching.empty()) return nullptr;
    auto [it, fresh] = extra_by_rules_.try_emplace(std::move(matching), nullptr);
    if (!fresh) return it->second;
    ExtraHeaders extra;
    for (std::size_t i : it->first) ApplyExtra(*extra_rules_[i].second, extra);
    it->second = extra == ExtraHeaders{} ? nullptr : InternHeaders(extra);
    return it->second;
  }
  std::vector<std::pair<Glob, Encoding>> compress_;           // compress: rules, in order.
  const std::string root_;  // Canonical SOURCE.
  const std::shared_ptr<const std::string> shared_root_ = std::make_shared<const std::string>(root_);
  std::vector<Ancestor> ancestors_;
  SiteMap map_;
};

void Walker::VisitLink(const FolderState& folder, const std::string& name, const std::string& rel,
                       std::vector<PendingFolder>& subfolders) {
  // Judge the link by its own path first: an excluded or hidden link is skipped silently, wherever it points.
  const FolderState as_folder = ChildFolderState(folder, name, rel);
  const bool file_kept = FileKept(folder, name, rel);
  if (!file_kept && FolderPruned(as_folder)) return;
  // A hidden or excluded link is still followed when an include glob might bring back something under it, but
  // it is not worth a warning if it turns out to be broken or outside.
  const bool wanted = file_kept || !(as_folder.hidden || as_folder.excluded);
  const auto warn = [&](std::string message) {
    if (wanted) Warn(std::move(message));
  };

  const std::string abs = AbsPath(rel);
  errno = 0;
  const std::unique_ptr<char, FreeDeleter> resolved(realpath(abs.c_str(), nullptr));
  if (!resolved) {
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      std::string target(4096, '\0');
      const ssize_t length = readlink(abs.c_str(), target.data(), target.size());
      target.resize(length > 0 ? static_cast<std::size_t>(length) : 0);
      warn("skipped symlink '" + rel + "': broken link (its target '" + target +
           "' does not exist); fix or remove the link");
    } else if (error == ELOOP) {
      warn("skipped symlink '" + rel + "': broken link (too many levels of symbolic links); fix the link");
    } else {
      warn("skipped symlink '" + rel + "': cannot resolve it (" + ErrnoText(error) + ")");
    }
    return;
  }
  const std::string_view target(resolved.get());
  const bool inside = root_ == "/" || target == root_ ||
                      (target.starts_with(root_) && target.size() > root_.size() && target[root_.size()] == '/');
  if (!inside) {
    warn("skipped symlink '" + rel + "': points outside SOURCE (to '" + std::string(target) +
         "'); only links that stay inside SOURCE are followed, copy the target into SOURCE to publish it");
    return;
  }
  struct stat st{};
  if (stat(resolved.get(), &st) != 0) {
    warn("skipped symlink '" + rel + "': cannot stat its target (" + ErrnoText(errno) + ")");
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    if (!FolderPruned(as_folder)) subfolders.push_back({rel, as_folder, true});
  } else if (S_ISREG(st.st_mode)) {
    if (file_kept) AddFile(rel, st);
  } else if (file_kept) {
    warn("skipped symlink '" + rel + "': its target is not a regular file or folder");
  }
}

std::optional<std::string> Walker::VisitFolder(const PendingFolder& folder) {
  const std::string abs = AbsPath(folder.rel_path);
  std::vector<PendingFolder> subfolders;
  {
    const UniqueDir dir(opendir(abs.c_str()));
    if (!dir) return ErrnoText(errno);
    const int fd = dirfd(dir.get());
    struct stat self{};
    if (fstat(fd, &self) != 0) return ErrnoText(errno);
    // One of sitesync's own folders (its journal or cache) reached under another name. Never SOURCE itself: an
    // empty walk would make --delete empty the bucket.
    if (!folder.rel_path.empty() && IsOwnId(self)) return std::nullopt;

    // A loop can only come through a symlink (or a bind mount): the folder is one we are already inside.
    for (const Ancestor& ancestor : ancestors_) {
      if (ancestor.dev == self.st_dev && ancestor.ino == self.st_ino) {
        if (!folder.state.hidden && !folder.state.excluded) {
          Warn(std::string(folder.via_link ? "skipped symlink '" : "skipped folder '") + folder.rel_path +
               "': it leads back to " + Quoted(ancestor.rel_path) + ", which contains it (a folder loop)");
        }
        return std::nullopt;
      }
    }
    ancestors_.push_back({self.st_dev, self.st_ino, folder.rel_path});

    std::vector<Entry> entries;
    while (true) {
      errno = 0;
      const dirent* entry = readdir(dir.get());
      if (entry == nullptr) {
        if (errno != 0) {
          Warn("folder " + Quoted(folder.rel_path) + ": reading it failed part way (" + ErrnoText(errno) +
               "); some of its files may be missing");
          map_.incomplete_folders.push_back(folder.rel_path);
        }
        break;
      }
      const std::string_view name(entry->d_name);
      if (name == "." || name == "..") continue;
      entries.push_back({std::string(name), entry->d_type});
    }
    // Sorted so that warnings come out in a stable order; files are sorted again by full path at the end.
    std::ranges::sort(entries, {}, &Entry::name);

    for (const Entry& entry : entries) {
      const std::string rel = folder.rel_path.empty() ? entry.name : folder.rel_path + "/" + entry.name;
      // Whether the rules keep it as a file; asked at most once (it runs the globs).
      std::optional<bool> kept_cache;
      const auto kept = [&] {
        if (!kept_cache) kept_cache = FileKept(folder.state, entry.name, rel);
        return *kept_cache;
      };
      struct stat st{};
      unsigned char type = entry.type;
      if (type == DT_REG && !kept()) continue;  // Skipped files need no stat.
      if (type == DT_UNKNOWN || type == DT_REG) {
        // Regular files need size and mtime anyway; unknown types (some filesystems) need the mode.
        if (fstatat(fd, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
          const int error = errno;
          if (kept()) {
            Warn("skipped '" + rel + "': cannot stat it (" + ErrnoText(error) +
                 (error == ENOENT ? "; it vanished during the walk)" : ")"));
          }
          continue;
        }
        type = S_ISREG(st.st_mode)   ? DT_REG
               : S_ISDIR(st.st_mode) ? DT_DIR
               : S_ISLNK(st.st_mode) ? DT_LNK
                                     : DT_UNKNOWN;
      }
      switch (type) {
        case DT_DIR: {
          const FolderState state = ChildFolderState(folder.state, entry.name, rel);
          if (!FolderPruned(state)) subfolders.push_back({rel, state, false});
          break;
        }
        case DT_REG:  // Only set above, after a successful fstatat.
          if (kept()) AddFile(rel, st);
          break;
        case DT_LNK:
          VisitLink(folder.state, entry.name, rel, subfolders);
          break;
        default:
          if (kept()) {
            Warn("skipped '" + rel + "': not a regular file, folder or symlink (a socket, FIFO or device)");
          }
          break;
      }
    }
  }  // The folder is closed here: one descriptor at a time, whatever the depth.

  for (const PendingFolder& subfolder : subfolders) {
    // Hidden and excluded folders are only walked for the sake of include globs: no warnings about them.
    const bool quiet = subfolder.state.hidden || subfolder.state.excluded;
    if (std::optional<std::string> error = VisitFolder(subfolder); error && !quiet) {
      Warn("skipped folder '" + subfolder.rel_path + "': cannot read it (" + *error +
           "); its files are left out, fix its permissions to publish them");
      map_.incomplete_folders.push_back(subfolder.rel_path);
    }
  }
  ancestors_.pop_back();
  return std::nullopt;
}

}  // namespace

namespace {

// The canonical root of `source`, or the kInput error that Walk reports.
Result<std::string> CanonicalRoot(const std::filesystem::path& source);

}  // namespace

Result<SiteMap> WalkPaths(const std::filesystem::path& source, std::span<const std::string> rel_paths,
                               const WalkOptions& options) {
  auto root = CanonicalRoot(source);
  if (!root) return std::unexpected(root.error());
  Walker walker(options, *root);
  for (const std::string& rel : rel_paths) walker.VisitPath(rel);
  return std::move(walker).Take();
}

namespace {

Result<std::string> CanonicalRoot(const std::filesystem::path& source) {
  const std::string& given = source.native();
  struct stat st{};
  if (stat(given.c_str(), &st) != 0) {
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      return Fail(ErrorCode::kInput, "source '" + given +
                                                   "' does not exist; check the SOURCE argument, or build the "
                                                   "site first");
    }
    return Fail(ErrorCode::kInput,
                     "source '" + given + "': cannot access it (" + ErrnoText(error) + "); check its permissions");
  }
  if (!S_ISDIR(st.st_mode)) {
    return Fail(ErrorCode::kInput, "source '" + given +
                                                 "' is not a directory; SOURCE must be the folder that holds the "
                                                 "built site (such as public/)");
  }
  const std::unique_ptr<char, FreeDeleter> root(realpath(given.c_str(), nullptr));
  if (!root) {
    return Fail(ErrorCode::kInput, "source '" + given + "': cannot resolve its path (" +
                                                 ErrnoText(errno) + "); check its permissions");
  }
  return std::string(root.get());
}

}  // namespace

std::string LocalFile::AbsPath() const {
  if (root == nullptr) return rel_path;
  std::string abs;
  abs.reserve(root->size() + 1 + rel_path.size());
  abs += *root;
  if (!abs.empty() && abs.back() != '/') abs += '/';  // The root may be "/".
  abs += rel_path;
  return abs;
}

Result<SiteMap> Walk(const std::filesystem::path& source, const WalkOptions& options) {
  const std::string& given = source.native();
  auto root = CanonicalRoot(source);
  if (!root) return std::unexpected(root.error());
  Walker walker(options, *root);
  // An unreadable SOURCE is fatal, not a warning: an empty site would make --delete empty the bucket.
  if (std::optional<std::string> error = walker.VisitFolder({})) {
    return Fail(ErrorCode::kInput,
                     "source '" + given + "': cannot read it (" + *error + "); check its permissions");
  }
  return std::move(walker).Take();
}

}  // namespace sitesync::sitemap
