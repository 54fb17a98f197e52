// The local record of what was published (sync::Record) in SQLite: one file per destination, WAL mode so that a
// watch and a sync can use it at once. A cache: a file that cannot be read as a record is recreated.
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <system_error>

#include <fmt/format.h>

#include "sync/sync.h"

namespace sitesync::sync {
namespace {

// The layout of `entries`. A file with another version (an older or newer sitesync) is emptied and laid out
// anew: the record is a cache, so losing it costs one hashing pass.
constexpr int kSchemaVersion = 1;
// How long a write waits for the other writer (a watch and a sync at once) before it gives up.
constexpr int kBusyTimeoutMs = 10000;

struct DbDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbDeleter>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

aws::Error IoError(const std::filesystem::path& file, std::string_view what, sqlite3* db, int rc) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return aws::Error{aws::ErrorCode::kIo,
                    fmt::format("record {}: {} failed ({}); it is a cache: delete it to start afresh", file.string(),
                                what, detail),
                    false, 0, {}};
}

int Exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

// True when `rc` says the file is not a usable SQLite database (rather than, say, unreadable or locked).
bool Damaged(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
}

class SqliteRecord final : public Record {
 public:
  SqliteRecord(Db db, std::filesystem::path file) : db_(std::move(db)), file_(std::move(file)) {}

  aws::Result<std::unordered_map<std::string, RecordEntry>> Load() override {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(),
                                "SELECT key, file_size, mtime_ns, ino, body_size, md5, etag, headers_digest "
                                "FROM entries",
                                -1, &raw, nullptr);
    const Stmt stmt(raw);
    if (rc != SQLITE_OK) return std::unexpected(IoError(file_, "reading", db_.get(), rc));
    std::unordered_map<std::string, RecordEntry> out;
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
      RecordEntry e;
      e.file_size = static_cast<std::uint64_t>(sqlite3_column_int64(raw, 1));
      e.mtime_ns = sqlite3_column_int64(raw, 2);
      e.ino = static_cast<std::uint64_t>(sqlite3_column_int64(raw, 3));
      e.body_size = static_cast<std::uint64_t>(sqlite3_column_int64(raw, 4));
      e.md5 = Text(raw, 5);
      e.etag = Text(raw, 6);
      e.headers_digest = Text(raw, 7);
      out.insert_or_assign(Text(raw, 0), std::move(e));
    }
    if (rc != SQLITE_DONE) return std::unexpected(IoError(file_, "reading", db_.get(), rc));
    return out;
  }

  aws::Result<void> Update(std::span<const std::pair<std::string, RecordEntry>> upserts,
                           std::span<const std::string> erased) override {
    if (upserts.empty() && erased.empty()) return {};
    // BEGIN IMMEDIATE takes the write lock at once, so that the busy timeout applies to it (a deferred
    // transaction that upgrades later can fail with SQLITE_BUSY without waiting).
    int rc = Exec(db_.get(), "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return std::unexpected(IoError(file_, "writing", db_.get(), rc));
    auto ok = Write(upserts, erased);
    if (!ok) {
      Exec(db_.get(), "ROLLBACK");
      return ok;
    }
    rc = Exec(db_.get(), "COMMIT");
    if (rc != SQLITE_OK) {
      auto error = IoError(file_, "writing", db_.get(), rc);
      Exec(db_.get(), "ROLLBACK");
      return std::unexpected(std::move(error));
    }
    return {};
  }

 private:
  static std::string Text(sqlite3_stmt* s, int column) {
    const unsigned char* text = sqlite3_column_text(s, column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(s, column)));
  }

  aws::Result<void> Write(std::span<const std::pair<std::string, RecordEntry>> upserts,
                          std::span<const std::string> erased) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(),
                                "INSERT OR REPLACE INTO entries (key, file_size, mtime_ns, ino, body_size, md5, etag, "
                                "headers_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                -1, &raw, nullptr);
    const Stmt put(raw);
    if (rc != SQLITE_OK) return std::unexpected(IoError(file_, "writing", db_.get(), rc));
    for (const auto& [key, e] : upserts) {
      sqlite3_reset(raw);
      sqlite3_bind_text(raw, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
      sqlite3_bind_int64(raw, 2, static_cast<sqlite3_int64>(e.file_size));
      sqlite3_bind_int64(raw, 3, e.mtime_ns);
      sqlite3_bind_int64(raw, 4, static_cast<sqlite3_int64>(e.ino));
      sqlite3_bind_int64(raw, 5, static_cast<sqlite3_int64>(e.body_size));
      sqlite3_bind_text(raw, 6, e.md5.data(), static_cast<int>(e.md5.size()), SQLITE_STATIC);
      sqlite3_bind_text(raw, 7, e.etag.data(), static_cast<int>(e.etag.size()), SQLITE_STATIC);
      sqlite3_bind_text(raw, 8, e.headers_digest.data(), static_cast<int>(e.headers_digest.size()), SQLITE_STATIC);
      if ((rc = sqlite3_step(raw)) != SQLITE_DONE) return std::unexpected(IoError(file_, "writing", db_.get(), rc));
    }
    raw = nullptr;
    rc = sqlite3_prepare_v2(db_.get(), "DELETE FROM entries WHERE key = ?1", -1, &raw, nullptr);
    const Stmt del(raw);
    if (rc != SQLITE_OK) return std::unexpected(IoError(file_, "writing", db_.get(), rc));
    for (const std::string& key : erased) {
      sqlite3_reset(raw);
      sqlite3_bind_text(raw, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
      if ((rc = sqlite3_step(raw)) != SQLITE_DONE) return std::unexpected(IoError(file_, "writing", db_.get(), rc));
    }
    return {};
  }

  Db db_;
  std::filesystem::path file_;
};

// Opens `file` and lays out the schema. Returns the SQLite code of the first failure with the database.
int OpenDb(const std::filesystem::path& file, Db& out) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return rc;
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  // WAL: readers never block the writer and the other way round (a watch reads while a sync writes); NORMAL
  // synchronous is durable enough for a cache and much cheaper than FULL.
  if ((rc = Exec(raw, "PRAGMA journal_mode=WAL")) != SQLITE_OK) return rc;
  if ((rc = Exec(raw, "PRAGMA synchronous=NORMAL")) != SQLITE_OK) return rc;
  // The record is read once, in order, and then written a batch at a time: a page cache of 256 KiB (SQLite's
  // default is 2 MB, filled by the read and held to the end, 1.1 MB of a 256-transfer run's peak) serves that
  // as well; a page not cached is read again from the OS's cache.
  if ((rc = Exec(raw, "PRAGMA cache_size=-256")) != SQLITE_OK) return rc;
  if ((rc = Exec(raw, "BEGIN IMMEDIATE")) != SQLITE_OK) return rc;
  rc = Exec(raw, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  int version = 0;
  if (rc == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    rc = sqlite3_prepare_v2(raw, "SELECT version FROM schema_version", -1, &s, nullptr);
    const Stmt stmt(s);
    if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
  }
  if (rc == SQLITE_OK && version != kSchemaVersion) {
    rc = Exec(raw, fmt::format("DROP TABLE IF EXISTS entries; DELETE FROM schema_version; "
                               "INSERT INTO schema_version (version) VALUES ({}); "
                               "CREATE TABLE entries (key TEXT PRIMARY KEY, file_size INTEGER NOT NULL, "
                               "mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, body_size INTEGER NOT NULL, "
                               "md5 TEXT NOT NULL, etag TEXT NOT NULL, headers_digest TEXT NOT NULL) WITHOUT ROWID",
                               kSchemaVersion)
                       .c_str());
  }
  if (rc != SQLITE_OK) {
    Exec(raw, "ROLLBACK");
    return rc;
  }
  if ((rc = Exec(raw, "COMMIT")) != SQLITE_OK) return rc;
  out = std::move(db);
  return SQLITE_OK;
}

}  // namespace

aws::Result<std::unique_ptr<Record>> Record::Open(const std::filesystem::path& file) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) {
    return aws::Fail(aws::ErrorCode::kIo, fmt::format("record {}: cannot create its folder ({}); check the "
                                                      "permissions of $XDG_CACHE_HOME",
                                                      file.string(), ec.message()));
  }
  Db db;
  int rc = OpenDb(file, db);
  if (rc != SQLITE_OK && Damaged(rc)) {
    // Not a database, or a damaged one: a cache is recreated rather than repaired.
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix, ec);
    rc = OpenDb(file, db);
  }
  if (rc != SQLITE_OK) return std::unexpected(IoError(file, "opening", nullptr, rc));
  return std::unique_ptr<Record>(std::make_unique<SqliteRecord>(std::move(db), file));
}

std::filesystem::path Record::FileFor(const std::filesystem::path& cache_dir, const Destination& destination,
                                      std::string_view endpoint_identity) {
  // Readable (bucket and prefix, other characters as '_'), and unique by a hash of everything that names the
  // objects: the same bucket name at two endpoints is two destinations.
  std::string name = destination.bucket;
  if (!destination.prefix.empty()) name += "_" + destination.prefix;
  for (char& c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) c = '_';
  }
  while (name.ends_with('_')) name.pop_back();
  if (name.size() > 80) name.resize(80);
  const std::string hash =
      aws::Sha256Hex(fmt::format("{}|{}|{}", endpoint_identity, destination.bucket, destination.prefix)).substr(0, 12);
  return cache_dir / fmt::format("{}-{}.sqlite", name, hash);
}

}  // namespace sitesync::sync
