#pragma once

// SQLite access for the Store: a connection wrapper with cached statements, a pool of read
// connections, and the Committer, the single writer that does group commit.
//
// Group commit (DESIGN.md section 7, "One SQLite writer"): callers hand the Committer a
// transaction body; its thread runs every queued body inside one BEGIN ... COMMIT, each in its
// own SAVEPOINT so that one failing body does not undo the others, then wakes every caller once
// the COMMIT is durable (WAL, synchronous=FULL). Many small files share one fsync of the WAL.
//
// Thread safety: a Db is used by one thread at a time (the pool and the Committer see to it).
// ReadPool and Committer may be used from any thread.

#include <sqlite3.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace fieldstack::store {

// A prepared statement; reset and unbound when the Stmt (a borrowed view) goes away.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  ~Stmt() {
    if (s_ == nullptr) return;
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  // true: a row is ready; false: done.
  Result<bool> Step();
  // Runs to completion (for statements without rows).
  Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string Text(int col) const;
  std::string Blob(int col) const;

 private:
  sqlite3_stmt* s_;
};

class Db {
 public:
  ~Db();
  // Opens (and with `create`, creates) the db at `path` in WAL mode with synchronous=FULL.
  // Corruption when the file is not a SQLite database.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool create);

  Status Exec(std::string_view sql);
  // A cached prepared statement for `sql` (prepared once per connection).
  Result<Stmt> Prepare(const char* sql);
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* raw() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// Converts a SQLite result code into a Status (SQLITE_FULL -> NoSpace, SQLITE_CORRUPT and
// SQLITE_NOTADB -> Corruption, SQLITE_BUSY -> Unavailable, others Internal).
Status SqliteStatus(int rc, std::string_view what, sqlite3* db = nullptr);

// Read connections, borrowed one at a time.
class ReadPool {
 public:
  ReadPool(std::string path) : path_(std::move(path)) {}
  class Lease {
   public:
    Lease(ReadPool* pool, std::unique_ptr<Db> db) : pool_(pool), db_(std::move(db)) {}
    Lease(Lease&&) = default;
    ~Lease();
    Db& db() { return *db_; }
    Db* operator->() { return db_.get(); }

   private:
    ReadPool* pool_;
    std::unique_ptr<Db> db_;
  };
  Result<Lease> Borrow();

 private:
  std::string path_;
  Mutex mu_;
  std::vector<std::unique_ptr<Db>> free_ GUARDED_BY(mu_);
};

class Committer {
 public:
  using Body = std::function<Status(Db&)>;
  // Takes ownership of the write connection and starts the committer thread.
  explicit Committer(std::unique_ptr<Db> db);
  ~Committer();  // commits what is queued, then stops

  // Runs `body` in a transaction and returns once it is durably committed: the body's Status if
  // it failed (its changes are rolled back), or the COMMIT's Status.
  Status Run(Body body);

  uint64_t commits() const { return commits_; }
  uint64_t batches() const { return batches_; }

 private:
  struct Request {
    Body body;
    Status result;
    bool done = false;
  };
  void Loop();

  std::unique_ptr<Db> db_;
  Mutex mu_;
  CondVar work_cv_;
  CondVar done_cv_;
  std::deque<Request*> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> batches_{0};
  std::thread thread_;
};

}  // namespace fieldstack::store
