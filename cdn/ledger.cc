// The invalidation ledger: the policy of what is owed to a distribution and when it is paid. Everything it
// changes is a read-modify-write of the journal file under a flock, so two processes (a `watch` and a manual
// `sync`, two CI jobs) merge what they owe; it clears only the paths CloudFront accepted.
#include <algorithm>
#include <iterator>
#include <thread>

#include <fmt/format.h>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

using aws::ErrorCode;
using aws::Fail;

class RealClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point WallNow() override { return std::chrono::system_clock::now(); }
  void SleepFor(std::chrono::milliseconds duration) override { std::this_thread::sleep_for(duration); }
};

void SortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool Merge(std::vector<std::string>& into, std::span<const std::string> more) {
  const std::size_t before = into.size();
  std::vector<std::string> old = into;
  into.insert(into.end(), more.begin(), more.end());
  SortUnique(into);
  return into.size() != before || into != old;
}

std::string MappingNote(const KeyMapping& m, const std::string& id, const std::string& bucket,
                        const std::string& prefix) {
  const std::string dest = "s3://" + bucket + "/" + prefix;
  switch (m.source) {
    case KeyMapping::Source::kOtherBucket:
      return fmt::format("distribution {} has no origin for {} (its origins: {}): invalidation paths are the keys "
                         "relative to the DEST prefix (/KEY); if the site is served under another URL path, set "
                         "cdn.url_prefix in sitesync.yaml, or give the distribution that serves this bucket",
                         id, dest, m.origin);
    case KeyMapping::Source::kCustomOrigin:
      return fmt::format("none of the origins of distribution {} is an S3 bucket (its origins: {}; a custom origin "
                         "in front of {}?): invalidation paths are the keys relative to the DEST prefix (/KEY); set "
                         "cdn.url_prefix in sitesync.yaml if the site is served under another URL path",
                         id, m.origin, dest);
    default:
      return {};
  }
}

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

Ledger::Ledger(LedgerOptions options, CloudFrontApi& api, Clock& clock, std::function<void(std::string_view)> note)
    : options_(std::move(options)),
      api_(api),
      clock_(clock),
      note_(std::move(note)),
      journal_(options_.state_dir),
      id_(options_.distribution) {}

namespace {

/// An error that a later try may not get: the keys are journaled instead of failing the run.
bool Transient(const aws::Error& e) {
  return e.code == ErrorCode::kNetwork || e.retryable || e.http_status >= 500 || e.code == ErrorCode::kParse;
}

}  // namespace

aws::Result<void> Ledger::Start(bool need_mapping) {
  if (options_.distribution == "auto") {
    if (options_.bucket.empty()) {
      return Fail(ErrorCode::kUsage,
                  "--distribution auto needs DEST to find the distribution: set 'destination:' in sitesync.yaml, or "
                  "give --distribution ID");
    }
    auto found = FindAuto();
    if (found || !Transient(found.error())) return found;
    // CloudFront is unreachable: publishing goes on; what changes is journaled for this DEST until the
    // distribution can be found (at the end of this run, or by a later one).
    id_ = PendingId();
    lookup_error_ = found.error().message;
    if (note_) {
      note_(fmt::format("the distributions could not be listed to find the one for s3://{}/{} ({}); publishing "
                        "goes on: the changed keys are journaled and invalidated once CloudFront answers",
                        options_.bucket, options_.prefix, found.error().message));
    }
    return {};
  }
  if (!need_mapping) return {};
  if (options_.url_prefix) {
    mapping_ = KeyMapping{KeyMapping::Source::kConfig, *options_.url_prefix, {}};
    return {};
  }
  return Lookup();
}

aws::Result<void> Ledger::FindAuto() {
  auto all = api_.ListDistributions();
  if (!all) return std::unexpected(all.error());
  auto match = MatchDistribution(*all, options_.bucket, options_.prefix);
  if (!match) return std::unexpected(match.error());
  id_ = match->distribution_id;
  for (const Distribution& d : *all) {
    if (d.id == id_) distribution_ = d;
  }
  if (options_.url_prefix) {
    mapping_ = KeyMapping{KeyMapping::Source::kConfig, *options_.url_prefix, {}};
  } else if (distribution_) {
    mapping_ = MapKeys(*distribution_, options_.bucket, options_.prefix);
  } else {
    mapping_ = KeyMapping{KeyMapping::Source::kOrigin, match->url_prefix, {}};
  }
  return AdoptPending();
}

aws::Result<void> Ledger::AdoptPending() {
  const std::string pending = PendingId();
  // Peek first: most runs have nothing pending and need not take the lock.
  auto peek = journal_.Load(pending);
  if (!peek || peek->Empty()) return {};
  auto lock = journal_.Lock(clock_, options_.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto from = journal_.Load(pending);
  if (!from) return std::unexpected(from.error());
  if (from->Empty()) return {};
  auto into = journal_.Load(id_);
  if (!into) return std::unexpected(into.error());
  into->distribution_id = id_;
  Merge(into->paths, from->paths);
  for (UnmappedKeys& u : from->unmapped) {
    auto it = std::find_if(into->unmapped.begin(), into->unmapped.end(), [&](const UnmappedKeys& v) {
      return v.bucket == u.bucket && v.prefix == u.prefix;
    });
    if (it == into->unmapped.end()) {
      into->unmapped.push_back(std::move(u));
    } else {
      Merge(it->keys, u.keys);
    }
  }
  into->caller_reference = NewCallerReference(clock_.WallNow());
  // Written before the pending file is removed: a crash in between owes the keys twice, never not at all.
  if (auto ok = journal_.Save(*into); !ok) return ok;
  return journal_.Clear(pending);
}

aws::Result<void> Ledger::Lookup() {
  auto d = api_.GetDistribution(id_);
  if (d) {
    distribution_ = *d;
    mapping_ = MapKeys(*d, options_.bucket, options_.prefix);
    const std::string note = MappingNote(*mapping_, id_, options_.bucket, options_.prefix);
    if (!note.empty() && note_) note_(note);
    return {};
  }
  const aws::Error& e = d.error();
  if (e.service_code == "NoSuchDistribution" || (e.code == ErrorCode::kNotFound && e.service_code.empty())) {
    return Fail(ErrorCode::kUsage,
                fmt::format("distribution {} does not exist for these credentials (GetDistribution: "
                            "NoSuchDistribution): correct --distribution / cdn.distribution (aws cloudfront "
                            "list-distributions shows the IDs), or use --distribution auto. Nothing was changed",
                            id_));
  }
  if (e.service_code == "AccessDenied") {
    // Least-privilege users may create invalidations without reading the distribution: publishing goes on with
    // the keys relative to the DEST prefix, and the note says how to make the mapping right.
    mapping_ = KeyMapping{KeyMapping::Source::kUnread, "", {}};
    if (note_) {
      note_(fmt::format("distribution {} may not be read (GetDistribution: AccessDenied), so its origin path is "
                        "unknown: invalidation paths are the keys relative to the DEST prefix (/KEY); allow "
                        "cloudfront:GetDistribution to these credentials, or set cdn.url_prefix in sitesync.yaml",
                        id_));
    }
    return {};
  }
  // Unreachable or failing for now: publishing must not wait for CloudFront. The keys are journaled with their
  // DEST and mapped to URL paths once the distribution answers (at the end of this run, or a later one).
  lookup_error_ = e.message;
  if (note_) {
    note_(fmt::format("distribution {} could not be read ({}); publishing goes on: the changed keys are journaled "
                      "and invalidated once CloudFront answers",
                      id_, e.message));
  }
  return {};
}

std::vector<std::string> Ledger::PathsOf(std::span<const std::string> rel_keys, const std::string& url_prefix) const {
  std::vector<std::string> keys;
  keys.reserve(rel_keys.size());
  for (const std::string& k : rel_keys) keys.push_back(url_prefix + k);
  return InvalidationPaths(keys, options_.paths);
}

bool Ledger::MapUnmapped(Owed& owed) const {
  bool changed = false;
  std::vector<UnmappedKeys> still;
  for (UnmappedKeys& u : owed.unmapped) {
    std::optional<std::string> url_prefix;
    const bool this_dest = u.bucket == options_.bucket && u.prefix == options_.prefix;
    if (this_dest && options_.url_prefix) {
      url_prefix = *options_.url_prefix;
    } else if (distribution_) {
      url_prefix = MapKeys(*distribution_, u.bucket, u.prefix).url_prefix;
    } else if (this_dest && mapping_) {
      url_prefix = mapping_->url_prefix;
    }
    if (!url_prefix) {
      still.push_back(std::move(u));
      continue;
    }
    Merge(owed.paths, PathsOf(u.keys, *url_prefix));
    changed = true;
  }
  owed.unmapped = std::move(still);
  return changed;
}

aws::Result<void> Ledger::Update(const std::function<aws::Result<bool>(Owed&)>& change) {
  auto lock = journal_.Lock(clock_, options_.lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto owed = journal_.Load(id_);
  if (!owed) return std::unexpected(owed.error());
  owed->distribution_id = id_;
  auto changed = change(*owed);
  if (!changed) return std::unexpected(changed.error());
  if (!*changed) return {};
  if (owed->Empty()) return journal_.Clear(id_);
  return journal_.Save(*owed);
}

aws::Result<void> Ledger::Owe(std::span<const std::string> all_keys, std::span<const std::string> new_keys) {
  const std::vector<std::string> kept = KeysToInvalidate(all_keys, new_keys, options_.paths);
  const std::span<const std::string> rel_keys(kept);
  if (rel_keys.empty()) return {};
  Merge(attempted_, rel_keys);
  return Update([&](Owed& owed) -> aws::Result<bool> {
    if (mapping_) {
      Merge(owed.paths, PathsOf(rel_keys, mapping_->url_prefix));
    } else {
      auto it = std::find_if(owed.unmapped.begin(), owed.unmapped.end(), [&](const UnmappedKeys& u) {
        return u.bucket == options_.bucket && u.prefix == options_.prefix;
      });
      if (it == owed.unmapped.end()) it = owed.unmapped.insert(owed.unmapped.end(), {options_.bucket, options_.prefix, {}});
      Merge(it->keys, rel_keys);
    }
    // CloudFront (CreateInvalidation, CallerReference): a repeated reference with the same paths returns the
    // earlier invalidation, which for new content would be one made before it went up. New content: new batch.
    owed.caller_reference = NewCallerReference(clock_.WallNow());
    return true;
  });
}

aws::Result<void> Ledger::OwePaths(std::span<const std::string> paths) {
  if (paths.empty()) return {};
  return Update([&](Owed& owed) -> aws::Result<bool> {
    Merge(owed.paths, paths);
    owed.caller_reference = NewCallerReference(clock_.WallNow());
    return true;
  });
}

aws::Result<Owed> Ledger::Peek() const {
  auto owed = journal_.Load(id_);
  if (owed) owed->distribution_id = id_;
  return owed;
}

aws::Result<PathSet> Ledger::Preview(std::span<const std::string> all_keys,
                                     std::span<const std::string> new_keys) const {
  const std::vector<std::string> rel_keys = KeysToInvalidate(all_keys, new_keys, options_.paths);
  auto owed = Peek();
  if (!owed) return std::unexpected(owed.error());
  MapUnmapped(*owed);
  Merge(owed->paths, PathsOf(rel_keys, mapping_ ? mapping_->url_prefix : std::string()));
  return Collapse(owed->paths, options_.paths);
}

aws::Result<Settlement> Ledger::SubmitOwed() {
  if (Pending()) {
    // auto could not find the distribution at the start: try again now.
    const std::string pending = PendingId();
    if (auto found = FindAuto(); !found) {
      if (!Transient(found.error())) return std::unexpected(found.error());
      id_ = pending;
      lookup_error_ = found.error().message;
      auto owed = Peek();
      if (!owed) return std::unexpected(owed.error());
      Settlement settlement;
      for (const UnmappedKeys& u : owed->unmapped) settlement.unmapped_left += u.keys.size();
      if (settlement.unmapped_left > 0) {
        settlement.unmapped_reason = fmt::format(
            "{} changed keys under s3://{}/{} are not invalidated yet: the distribution that serves them could not "
            "be found (ListDistributions: {}); they stay owed in {}: the next run with --distribution auto "
            "submits them",
            settlement.unmapped_left, options_.bucket, options_.prefix, lookup_error_, File().string());
      }
      return settlement;
    }
  }
  // Keys journaled while the distribution could not be read need it now; the lookup is a network call, so it is
  // made before the lock is taken.
  if (!distribution_ && !(options_.url_prefix && !options_.bucket.empty())) {
    auto peek = Peek();
    if (!peek) return std::unexpected(peek.error());
    if (!peek->unmapped.empty()) {
      auto d = api_.GetDistribution(id_);
      if (d) {
        distribution_ = *d;
      } else {
        lookup_error_ = d.error().message;
      }
    }
  }

  Owed snapshot;
  auto taken = Update([&](Owed& owed) -> aws::Result<bool> {
    bool changed = MapUnmapped(owed);
    if (!owed.paths.empty() && (changed || owed.caller_reference.empty())) {
      owed.caller_reference = NewCallerReference(clock_.WallNow());
      changed = true;
    }
    snapshot = owed;
    return changed;
  });
  if (!taken) return std::unexpected(taken.error());

  Settlement settlement;
  for (const UnmappedKeys& u : snapshot.unmapped) settlement.unmapped_left += u.keys.size();
  if (settlement.unmapped_left > 0) {
    settlement.unmapped_reason = fmt::format(
        "the URL paths of {} changed keys are not known until distribution {} can be read (GetDistribution: {}); "
        "they stay owed in {}: the next run submits them, or drop them with `sitesync invalidate --discard-owed "
        "--distribution {}`",
        settlement.unmapped_left, id_, lookup_error_.empty() ? std::string("not tried") : lookup_error_,
        File().string(), id_);
  }
  if (snapshot.paths.empty()) return settlement;

  const PathSet set = Collapse(snapshot.paths, options_.paths);
  auto inv = api_.CreateInvalidation(id_, set.paths, snapshot.caller_reference);
  if (!inv && inv.error().service_code == "InvalidationBatchAlreadyExists") {
    // The reference was used with other paths (the settings changed since): a new batch, once.
    const std::string fresh = NewCallerReference(clock_.WallNow());
    auto saved = Update([&](Owed& owed) -> aws::Result<bool> {
      owed.caller_reference = fresh;
      return !owed.Empty();
    });
    if (!saved) return std::unexpected(saved.error());
    snapshot.caller_reference = fresh;
    inv = api_.CreateInvalidation(id_, set.paths, snapshot.caller_reference);
  }
  if (!inv) {
    aws::Error e = inv.error();
    const std::string advice = PermanentErrorAdvice(e, id_);
    if (!advice.empty()) e.message += ". " + advice;
    e.message += fmt::format(". The {} paths stay owed in {}: the next run submits them; to drop them instead, run "
                             "`sitesync invalidate --discard-owed --distribution {}`",
                             snapshot.paths.size(), File().string(), id_);
    return std::unexpected(std::move(e));
  }

  // Paid: remove exactly what was submitted. Paths another process owed meanwhile stay (it gave them a new
  // CallerReference when it journaled them).
  auto cleared = Update([&](Owed& owed) -> aws::Result<bool> {
    std::vector<std::string> left;
    std::set_difference(owed.paths.begin(), owed.paths.end(), snapshot.paths.begin(), snapshot.paths.end(),
                        std::back_inserter(left));
    if (left == owed.paths) return false;
    owed.paths = std::move(left);
    if (!owed.paths.empty() && owed.caller_reference == snapshot.caller_reference) {
      owed.caller_reference = NewCallerReference(clock_.WallNow());
    }
    return true;
  });
  if (!cleared) {
    aws::Error e = cleared.error();
    e.message = fmt::format("invalidation {} was created, but the journal could not be updated: {}; the next run "
                            "submits its paths again",
                            inv->id, e.message);
    return std::unexpected(std::move(e));
  }
  settlement.invalidation_id = inv->id;
  settlement.submitted = set.paths;
  settlement.exact_count = set.exact_count;
  settlement.collapsed = set.collapsed;
  return settlement;
}

aws::Result<Settlement> Ledger::Settle(std::span<const std::string> done_keys) {
  std::vector<std::string> done(done_keys.begin(), done_keys.end());
  SortUnique(done);
  std::vector<std::string> again;
  std::set_difference(attempted_.begin(), attempted_.end(), done.begin(), done.end(), std::back_inserter(again));
  auto settled = SubmitOwed();
  if (!settled) return settled;  // everything stays owed, the attempted keys with it
  attempted_.clear();
  if (!again.empty() && !settled->invalidation_id.empty()) {
    if (auto ok = Owe(again); !ok) return std::unexpected(ok.error());
    attempted_.clear();  // owed for the next run; not attempted again by it unless it changes them
    settled->owed_again = again.size();
  }
  return settled;
}

aws::Result<Owed> Ledger::Discard() { return DiscardOwed(options_.state_dir, id_, clock_, options_.lock_timeout); }

aws::Result<Owed> DiscardOwed(const std::filesystem::path& state_dir, const std::string& distribution_id,
                              Clock& clock, std::chrono::milliseconds lock_timeout) {
  const Journal journal(state_dir);
  auto lock = journal.Lock(clock, lock_timeout);
  if (!lock) return std::unexpected(lock.error());
  auto owed = journal.Load(distribution_id);
  if (!owed) return std::unexpected(owed.error());
  owed->distribution_id = distribution_id;
  if (owed->Empty()) return owed;
  if (auto cleared = journal.Clear(distribution_id); !cleared) return std::unexpected(cleared.error());
  return owed;
}

}  // namespace sitesync::cdn
