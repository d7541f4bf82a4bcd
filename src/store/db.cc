#include "store/db.h"

namespace fieldstack::store {

Status SqliteStatus(int rc, std::string_view what, sqlite3* db) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return NoSpaceError(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return CorruptionError(std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(std::move(msg));
    case SQLITE_CONSTRAINT:
      return AlreadyExistsError(std::move(msg));
    case SQLITE_CANTOPEN:
      return NotFoundError(std::move(msg));
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return PermissionDeniedError(std::move(msg));
    default:
      return InternalError(std::move(msg));
  }
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(rc, "sqlite step", sqlite3_db_handle(s_));
}

Status Stmt::Run() {
  for (;;) {
    FS_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col))
           : std::string();
}

std::string Stmt::Blob(int col) const {
  const void* p = sqlite3_column_blob(s_, col);
  return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(s_, col))
           : std::string();
}

Db::~Db() {
  for (auto& [sql, s] : cache_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<Db> db(new Db(raw));
  if (rc != SQLITE_OK) return SqliteStatus(rc, "open metadata db " + path, raw);
  sqlite3_busy_timeout(raw, 10000);
  // journal_mode reads the header: a file that is not a database fails here.
  FS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL").WithContext("metadata db " + path));
  FS_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  FS_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=OFF"));
  return db;
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, std::string(sql.substr(0, 40)), db_);
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Result<Stmt> Db::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Stmt(it->second);
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(rc, std::string("prepare ") + sql, db_);
  cache_.emplace(sql, s);
  return Stmt(s);
}

ReadPool::Lease::~Lease() {
  if (db_) {
    MutexLock l(pool_->mu_);
    pool_->free_.push_back(std::move(db_));
  }
}

Result<ReadPool::Lease> ReadPool::Borrow() {
  {
    MutexLock l(mu_);
    if (!free_.empty()) {
      auto db = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(db));
    }
  }
  FS_ASSIGN_OR_RETURN(auto db, Db::Open(path_, false));
  return Lease(this, std::move(db));
}

Committer::Committer(std::unique_ptr<Db> db) : db_(std::move(db)) {
  thread_ = std::thread([this] { Loop(); });
}

Committer::~Committer() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

Status Committer::Run(Body body) {
  Request req{std::move(body), Status(), false};
  {
    MutexLock l(mu_);
    if (stopping_) return UnavailableError("store is closing");
    queue_.push_back(&req);
  }
  work_cv_.notify_one();
  MutexLock l(mu_);
  done_cv_.wait(mu_, [&] { return req.done; });
  return req.result;
}

void Committer::Loop() {
  constexpr size_t kMaxBatch = 512;
  for (;;) {
    std::vector<Request*> batch;
    {
      MutexLock l(mu_);
      work_cv_.wait(mu_, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    Status begin = db_->Exec("BEGIN IMMEDIATE");
    if (begin.ok()) {
      for (Request* r : batch) {
        Status s = db_->Exec("SAVEPOINT body");
        if (s.ok()) {
          s = r->body(*db_);
          if (!s.ok()) (void)db_->Exec("ROLLBACK TO body");
          Status rel = db_->Exec("RELEASE body");
          if (s.ok()) s = rel;
        }
        r->result = s;
      }
      Status commit = db_->Exec("COMMIT");
      if (!commit.ok()) {
        (void)db_->Exec("ROLLBACK");
        for (Request* r : batch) r->result = commit;
      }
    } else {
      for (Request* r : batch) r->result = begin;
    }
    commits_ += batch.size();
    ++batches_;
    {
      MutexLock l(mu_);
      for (Request* r : batch) r->done = true;
    }
    done_cv_.notify_all();
  }
}

}  // namespace fieldstack::store
