// One filesystem conformance suite, run against RocksDB's POSIX FileSystem and against
// SluiceFS through the plugin: both must give the same answers.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>

#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include "backends.h"

namespace sluice::rocksdb_test {
namespace {

using ::rocksdb::FileOptions;
using ::rocksdb::IOOptions;
using ::rocksdb::IOStatus;
using ::rocksdb::Slice;

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

bool missing(const IOStatus& s) { return s.IsNotFound() || s.IsPathNotFound(); }

struct AlignedBuf {
  AlignedBuf(size_t align, size_t n) : p(static_cast<char*>(std::aligned_alloc(align, n))) { memset(p, 0, n); }
  ~AlignedBuf() { std::free(p); }
  char* p;
};

class FsConformance : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    b_ = std::make_unique<OpenBackend>(GetParam());
    ASSERT_TRUE(b_->error.empty()) << b_->error;
    fs_ = b_->fs.get();
  }
  void TearDown() override { b_.reset(); }

  std::string p(const std::string& name) { return b_->path(name); }

  void write_file(const std::string& name, const std::string& data, const FileOptions& fo = {}) {
    std::unique_ptr<::rocksdb::FSWritableFile> f;
    ASSERT_TRUE(fs_->NewWritableFile(p(name), fo, &f, nullptr).ok());
    // Appends of uneven sizes, as RocksDB's writer would flush them.
    for (size_t off = 0; off < data.size();) {
      size_t n = std::min<size_t>(data.size() - off, 1000 + off % 7777);
      ASSERT_TRUE(f->Append(Slice(data.data() + off, n), io_, nullptr).ok());
      off += n;
    }
    ASSERT_TRUE(f->Flush(io_, nullptr).ok());
    ASSERT_TRUE(f->Sync(io_, nullptr).ok());
    ASSERT_TRUE(f->Close(io_, nullptr).ok());
  }

  std::string read_file(const std::string& name) {
    std::unique_ptr<::rocksdb::FSSequentialFile> f;
    IOStatus s = fs_->NewSequentialFile(p(name), {}, &f, nullptr);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return "<missing>";
    std::string out;
    std::string scratch(4096, '\0');
    for (int i = 0; i < 100000; ++i) {
      Slice got;
      EXPECT_TRUE(f->Read(scratch.size(), io_, &got, scratch.data(), nullptr).ok());
      out.append(got.data(), got.size());
      if (got.size() < scratch.size()) break;
    }
    return out;
  }

  uint64_t size_of(const std::string& name) {
    uint64_t size = ~0ull;
    EXPECT_TRUE(fs_->GetFileSize(p(name), io_, &size, nullptr).ok());
    return size;
  }

  std::unique_ptr<OpenBackend> b_;
  ::rocksdb::FileSystem* fs_ = nullptr;
  IOOptions io_;
};

TEST_P(FsConformance, AppendThenRead) {
  write_file("a", "hello world");
  EXPECT_EQ(size_of("a"), 11u);
  std::unique_ptr<::rocksdb::FSRandomAccessFile> f;
  ASSERT_TRUE(fs_->NewRandomAccessFile(p("a"), {}, &f, nullptr).ok());
  char scratch[64];
  Slice got;
  ASSERT_TRUE(f->Read(0, 11, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), "hello world");
  ASSERT_TRUE(f->Read(6, 50, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), "world");  // short at end of file
  ASSERT_TRUE(f->Read(40, 5, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.size(), 0u);
}

TEST_P(FsConformance, PositionalReadsAndMultiRead) {
  const std::string data = pattern(3u << 20, 1);
  write_file("big", data);
  ASSERT_EQ(size_of("big"), data.size());
  std::unique_ptr<::rocksdb::FSRandomAccessFile> f;
  ASSERT_TRUE(fs_->NewRandomAccessFile(p("big"), {}, &f, nullptr).ok());
  std::string scratch(300000, '\0');
  uint64_t offsets[] = {0, 1, 4095, 4096, 65537, (1u << 20) - 3, (3u << 20) - 100000};
  for (uint64_t off : offsets) {
    size_t n = std::min<size_t>(scratch.size(), data.size() - off);
    Slice got;
    ASSERT_TRUE(f->Read(off, n, io_, &got, scratch.data(), nullptr).ok());
    ASSERT_EQ(got.ToString(), data.substr(off, n)) << "offset " << off;
  }
  // A batch, in no particular order, one request running past the end.
  std::vector<std::string> bufs(6, std::string(70000, '\0'));
  ::rocksdb::FSReadRequest reqs[6];
  uint64_t batch_offsets[] = {2000000, 5, 131072, 777777, 3000000, (3u << 20) - 1000};
  for (int i = 0; i < 6; ++i) {
    reqs[i].offset = batch_offsets[i];
    reqs[i].len = 70000;
    reqs[i].scratch = bufs[i].data();
  }
  ASSERT_TRUE(f->MultiRead(reqs, 6, io_, nullptr).ok());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(reqs[i].status.ok()) << reqs[i].status.ToString();
    size_t want = std::min<size_t>(70000, data.size() - batch_offsets[i]);
    ASSERT_EQ(reqs[i].result.ToString(), data.substr(batch_offsets[i], want)) << "request " << i;
  }
}

TEST_P(FsConformance, ReadAsyncCompletesThroughPoll) {
  const std::string data = pattern(200000, 2);
  write_file("async", data);
  std::unique_ptr<::rocksdb::FSRandomAccessFile> f;
  ASSERT_TRUE(fs_->NewRandomAccessFile(p("async"), {}, &f, nullptr).ok());
  std::string buf(50000, '\0');
  ::rocksdb::FSReadRequest req;
  req.offset = 12345;
  req.len = 50000;
  req.scratch = buf.data();
  std::string got;
  int calls = 0;
  void* handle = nullptr;
  ::rocksdb::IOHandleDeleter del;
  IOStatus s = f->ReadAsync(
      req, io_,
      [&](const ::rocksdb::FSReadRequest& r, void*) {
        ++calls;
        EXPECT_TRUE(r.status.ok()) << r.status.ToString();
        got = r.result.ToString();
      },
      nullptr, &handle, &del, nullptr);
  if (s.IsNotSupported()) GTEST_SKIP() << "ReadAsync not supported by this build";
  ASSERT_TRUE(s.ok()) << s.ToString();
  if (handle != nullptr) {
    std::vector<void*> handles{handle};
    ASSERT_TRUE(fs_->Poll(handles, 1).ok());
    del(handle);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, data.substr(12345, 50000));
}

TEST_P(FsConformance, ConcurrentReadersShareOneFile) {
  const std::string data = pattern(1u << 20, 3);
  write_file("shared", data);
  std::unique_ptr<::rocksdb::FSRandomAccessFile> f;
  ASSERT_TRUE(fs_->NewRandomAccessFile(p("shared"), {}, &f, nullptr).ok());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string scratch(8192, '\0');
      for (int i = 0; i < 200; ++i) {
        uint64_t off = (static_cast<uint64_t>(t) * 7919 + i * 104729u) % (data.size() - scratch.size());
        Slice got;
        if (!f->Read(off, scratch.size(), IOOptions(), &got, scratch.data(), nullptr).ok() ||
            got.ToString() != data.substr(off, scratch.size()))
          ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(FsConformance, SequentialReadAndSkip) {
  const std::string data = pattern(10000, 4);
  write_file("seq", data);
  std::unique_ptr<::rocksdb::FSSequentialFile> f;
  ASSERT_TRUE(fs_->NewSequentialFile(p("seq"), {}, &f, nullptr).ok());
  char scratch[200];
  Slice got;
  ASSERT_TRUE(f->Read(100, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), data.substr(0, 100));
  ASSERT_TRUE(f->Skip(900).ok());
  ASSERT_TRUE(f->Read(100, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), data.substr(1000, 100));
  ASSERT_TRUE(f->Skip(8850).ok());
  ASSERT_TRUE(f->Read(200, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), data.substr(9950));
  ASSERT_TRUE(f->Skip(1u << 20).ok());  // past the end: stops there
  ASSERT_TRUE(f->Read(100, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.size(), 0u);
}

TEST_P(FsConformance, RenameReplacesTarget) {
  write_file("from", "new contents");
  write_file("to", "old");
  ASSERT_TRUE(fs_->RenameFile(p("from"), p("to"), io_, nullptr).ok());
  EXPECT_EQ(read_file("to"), "new contents");
  EXPECT_TRUE(fs_->FileExists(p("from"), io_, nullptr).IsNotFound());
  EXPECT_FALSE(fs_->RenameFile(p("from"), p("to"), io_, nullptr).ok());
}

TEST_P(FsConformance, DeleteFile) {
  write_file("gone", "x");
  ASSERT_TRUE(fs_->FileExists(p("gone"), io_, nullptr).ok());
  ASSERT_TRUE(fs_->DeleteFile(p("gone"), io_, nullptr).ok());
  EXPECT_TRUE(fs_->FileExists(p("gone"), io_, nullptr).IsNotFound());
  EXPECT_FALSE(fs_->DeleteFile(p("gone"), io_, nullptr).ok());
}

TEST_P(FsConformance, ReadersKeepAnUnlinkedFile) {
  write_file("doomed", "still here");
  std::unique_ptr<::rocksdb::FSRandomAccessFile> f;
  ASSERT_TRUE(fs_->NewRandomAccessFile(p("doomed"), {}, &f, nullptr).ok());
  ASSERT_TRUE(fs_->DeleteFile(p("doomed"), io_, nullptr).ok());
  char scratch[32];
  Slice got;
  ASSERT_TRUE(f->Read(0, 10, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), "still here");
}

TEST_P(FsConformance, Children) {
  write_file("x", "1");
  write_file("y", "22");
  ASSERT_TRUE(fs_->CreateDir(p("d"), io_, nullptr).ok());
  std::vector<std::string> names;
  ASSERT_TRUE(fs_->GetChildren(b_->dir, io_, &names, nullptr).ok());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"d", "x", "y"}));
  std::vector<::rocksdb::FileAttributes> attrs;
  ASSERT_TRUE(fs_->GetChildrenFileAttributes(b_->dir, io_, &attrs, nullptr).ok());
  for (auto& a : attrs) {
    if (a.name == "x") {
      EXPECT_EQ(a.size_bytes, 1u);
    }
    if (a.name == "y") {
      EXPECT_EQ(a.size_bytes, 2u);
    }
  }
  // RocksDB's contract (env_basic_test checks it): a missing directory, or a file, is
  // NotFound, not an IOError, and the caller's vector is emptied on every call.
  names = {"stale"};
  IOStatus s = fs_->GetChildren(p("nodir"), io_, &names, nullptr);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_TRUE(names.empty());
  names = {"stale"};
  s = fs_->GetChildren(p("x"), io_, &names, nullptr);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_TRUE(names.empty());
  EXPECT_FALSE(fs_->GetChildrenFileAttributes(p("x"), io_, &attrs, nullptr).ok());
  EXPECT_FALSE(fs_->GetChildrenFileAttributes(p("nodir"), io_, &attrs, nullptr).ok());
  // A path running through a file does not exist (POSIX: ENOTDIR).
  s = fs_->FileExists(p("x/y"), io_, nullptr);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

TEST_P(FsConformance, Locks) {
  ::rocksdb::FileLock* lock = nullptr;
  ASSERT_TRUE(fs_->LockFile(p("LOCK"), io_, &lock, nullptr).ok());
  ASSERT_NE(lock, nullptr);
  EXPECT_TRUE(fs_->FileExists(p("LOCK"), io_, nullptr).ok());  // created
  ::rocksdb::FileLock* second = nullptr;
  EXPECT_FALSE(fs_->LockFile(p("LOCK"), io_, &second, nullptr).ok());
  EXPECT_EQ(second, nullptr);
  ASSERT_TRUE(fs_->UnlockFile(lock, io_, nullptr).ok());
  ASSERT_TRUE(fs_->LockFile(p("LOCK"), io_, &lock, nullptr).ok());
  ASSERT_TRUE(fs_->UnlockFile(lock, io_, nullptr).ok());
}

TEST_P(FsConformance, Directories) {
  ASSERT_TRUE(fs_->CreateDir(p("d"), io_, nullptr).ok());
  EXPECT_FALSE(fs_->CreateDir(p("d"), io_, nullptr).ok());
  EXPECT_TRUE(fs_->CreateDirIfMissing(p("d"), io_, nullptr).ok());
  write_file("d/f", "in d");
  EXPECT_FALSE(fs_->CreateDirIfMissing(p("d/f"), io_, nullptr).ok());  // a file is there
  bool is_dir = false;
  ASSERT_TRUE(fs_->IsDirectory(p("d"), io_, &is_dir, nullptr).ok());
  EXPECT_TRUE(is_dir);
  ASSERT_TRUE(fs_->IsDirectory(p("d/f"), io_, &is_dir, nullptr).ok());
  EXPECT_FALSE(is_dir);
  std::unique_ptr<::rocksdb::FSDirectory> dir;
  ASSERT_TRUE(fs_->NewDirectory(p("d"), io_, &dir, nullptr).ok());
  EXPECT_TRUE(dir->Fsync(io_, nullptr).ok());
  EXPECT_TRUE(dir->Close(io_, nullptr).ok());
  EXPECT_FALSE(fs_->NewDirectory(p("nodir"), io_, &dir, nullptr).ok());
  EXPECT_FALSE(fs_->DeleteDir(p("d"), io_, nullptr).ok());  // not empty
  ASSERT_TRUE(fs_->DeleteFile(p("d/f"), io_, nullptr).ok());
  ASSERT_TRUE(fs_->DeleteDir(p("d"), io_, nullptr).ok());
  EXPECT_TRUE(fs_->FileExists(p("d"), io_, nullptr).IsNotFound());
}

TEST_P(FsConformance, Truncate) {
  write_file("t", pattern(100, 5));
  // FileSystem::Truncate is optional (POSIX in 7.8 lacks it); when offered it must work.
  IOStatus s = fs_->Truncate(p("t"), 10, io_, nullptr);
  if (!s.IsNotSupported()) {
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(size_of("t"), 10u);
    EXPECT_EQ(read_file("t"), pattern(100, 5).substr(0, 10));
  }
  std::unique_ptr<::rocksdb::FSWritableFile> f;
  ASSERT_TRUE(fs_->NewWritableFile(p("w"), {}, &f, nullptr).ok());
  ASSERT_TRUE(f->Append(pattern(100, 6), io_, nullptr).ok());
  ASSERT_TRUE(f->Truncate(50, io_, nullptr).ok());
  ASSERT_TRUE(f->Close(io_, nullptr).ok());
  EXPECT_EQ(read_file("w"), pattern(100, 6).substr(0, 50));
}

TEST_P(FsConformance, FileSizeAndModificationTime) {
  std::unique_ptr<::rocksdb::FSWritableFile> f;
  ASSERT_TRUE(fs_->NewWritableFile(p("s"), {}, &f, nullptr).ok());
  ASSERT_TRUE(f->Append(pattern(5000, 7), io_, nullptr).ok());
  EXPECT_EQ(f->GetFileSize(io_, nullptr), 5000u);
  ASSERT_TRUE(f->Flush(io_, nullptr).ok());
  EXPECT_EQ(size_of("s"), 5000u);  // visible to others after Flush
  ASSERT_TRUE(f->Allocate(0, 1u << 20, io_, nullptr).ok());
  ASSERT_TRUE(f->Close(io_, nullptr).ok());
  EXPECT_EQ(size_of("s"), 5000u);  // preallocation does not show in the size
  uint64_t mtime = 0;
  ASSERT_TRUE(fs_->GetFileModificationTime(p("s"), io_, &mtime, nullptr).ok());
  uint64_t now = static_cast<uint64_t>(time(nullptr));
  EXPECT_LE(mtime, now + 5);
  EXPECT_GE(mtime + 300, now);
  uint64_t free_bytes = 0;
  ASSERT_TRUE(fs_->GetFreeSpace(b_->dir, io_, &free_bytes, nullptr).ok());
  EXPECT_GT(free_bytes, 0u);
}

TEST_P(FsConformance, ReopenAppendsAndReuseStartsEmpty) {
  write_file("r", "abc");
  std::unique_ptr<::rocksdb::FSWritableFile> f;
  ASSERT_TRUE(fs_->ReopenWritableFile(p("r"), {}, &f, nullptr).ok());
  ASSERT_TRUE(f->Append("def", io_, nullptr).ok());
  ASSERT_TRUE(f->Close(io_, nullptr).ok());
  EXPECT_EQ(read_file("r"), "abcdef");

  write_file("old.log", pattern(10000, 8));
  ASSERT_TRUE(fs_->ReuseWritableFile(p("new.log"), p("old.log"), {}, &f, nullptr).ok());
  ASSERT_TRUE(f->Append("xyz", io_, nullptr).ok());
  ASSERT_TRUE(f->Close(io_, nullptr).ok());
  // The new file starts with what was appended; POSIX keeps the old tail behind it (RocksDB's
  // recycled-log format tells the two apart), SluiceFS starts the file empty.
  EXPECT_EQ(read_file("new.log").substr(0, 3), "xyz");
  EXPECT_TRUE(fs_->FileExists(p("old.log"), io_, nullptr).IsNotFound());
}

TEST_P(FsConformance, RandomReadWriteFile) {
  write_file("rw", "0000000000");  // POSIX opens only existing files
  std::unique_ptr<::rocksdb::FSRandomRWFile> f;
  IOStatus s = fs_->NewRandomRWFile(p("rw"), {}, &f, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(f->Write(0, "0123456789", io_, nullptr).ok());
  ASSERT_TRUE(f->Write(3, "abc", io_, nullptr).ok());
  ASSERT_TRUE(f->Sync(io_, nullptr).ok());
  char scratch[16];
  Slice got;
  ASSERT_TRUE(f->Read(0, 10, io_, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), "012abc6789");
  ASSERT_TRUE(f->Close(io_, nullptr).ok());
  EXPECT_EQ(read_file("rw"), "012abc6789");
}

TEST_P(FsConformance, DirectIoIsAligned) {
  FileOptions fo;
  fo.use_direct_writes = true;
  fo.use_direct_reads = true;
  std::unique_ptr<::rocksdb::FSWritableFile> w;
  ASSERT_TRUE(fs_->NewWritableFile(p("direct"), fo, &w, nullptr).ok());
  ASSERT_TRUE(w->use_direct_io());
  size_t align = w->GetRequiredBufferAlignment();
  ASSERT_GE(align, 512u);
  ASSERT_EQ(align & (align - 1), 0u);
  // RocksDB's direct writer: whole aligned blocks at aligned offsets, then trim at close.
  const std::string data = pattern(3 * align, 9);
  AlignedBuf buf(align, 3 * align);
  memcpy(buf.p, data.data(), data.size());
  ASSERT_TRUE(w->PositionedAppend(Slice(buf.p, 2 * align), 0, io_, nullptr).ok());
  ASSERT_TRUE(w->PositionedAppend(Slice(buf.p + 2 * align, align), 2 * align, io_, nullptr).ok());
  ASSERT_TRUE(w->Truncate(2 * align + 100, io_, nullptr).ok());
  ASSERT_TRUE(w->Fsync(io_, nullptr).ok());
  ASSERT_TRUE(w->Close(io_, nullptr).ok());
  EXPECT_EQ(size_of("direct"), 2 * align + 100);

  std::unique_ptr<::rocksdb::FSRandomAccessFile> r;
  ASSERT_TRUE(fs_->NewRandomAccessFile(p("direct"), fo, &r, nullptr).ok());
  ASSERT_TRUE(r->use_direct_io());
  EXPECT_EQ(r->GetRequiredBufferAlignment(), align);
  AlignedBuf in(align, 2 * align);
  Slice got;
  ASSERT_TRUE(r->Read(align, 2 * align, io_, &got, in.p, nullptr).ok());
  EXPECT_EQ(got.ToString(), data.substr(align, align + 100));
  std::unique_ptr<::rocksdb::FSSequentialFile> s;
  ASSERT_TRUE(fs_->NewSequentialFile(p("direct"), fo, &s, nullptr).ok());
  ASSERT_TRUE(s->use_direct_io());
  ASSERT_TRUE(s->PositionedRead(0, align, io_, &got, in.p, nullptr).ok());
  EXPECT_EQ(got.ToString(), data.substr(0, align));
}

TEST_P(FsConformance, MissingFileErrors) {
  std::unique_ptr<::rocksdb::FSSequentialFile> s;
  std::unique_ptr<::rocksdb::FSRandomAccessFile> r;
  std::unique_ptr<::rocksdb::FSDirectory> d;
  uint64_t v = 0;
  bool is_dir = false;
  EXPECT_TRUE(fs_->FileExists(p("nope"), io_, nullptr).IsNotFound());
  EXPECT_TRUE(missing(fs_->NewSequentialFile(p("nope"), {}, &s, nullptr)));
  EXPECT_TRUE(missing(fs_->NewRandomAccessFile(p("nope"), {}, &r, nullptr)));
  EXPECT_TRUE(missing(fs_->GetFileSize(p("nope"), io_, &v, nullptr)));
  EXPECT_TRUE(missing(fs_->GetFileModificationTime(p("nope"), io_, &v, nullptr)));
  EXPECT_TRUE(missing(fs_->DeleteFile(p("nope"), io_, nullptr)));
  EXPECT_TRUE(missing(fs_->RenameFile(p("nope"), p("other"), io_, nullptr)));
  EXPECT_FALSE(fs_->IsDirectory(p("nope"), io_, &is_dir, nullptr).ok());
  EXPECT_FALSE(fs_->NewDirectory(p("nope"), io_, &d, nullptr).ok());
  EXPECT_FALSE(fs_->DeleteDir(p("nope"), io_, nullptr).ok());
  std::unique_ptr<::rocksdb::FSWritableFile> w;
  EXPECT_FALSE(fs_->NewWritableFile(p("nodir/f"), {}, &w, nullptr).ok());
}

TEST_P(FsConformance, InfoLogger) {
  std::shared_ptr<::rocksdb::Logger> logger;
  ASSERT_TRUE(fs_->NewLogger(p("LOG"), io_, &logger, nullptr).ok());
  ::rocksdb::Log(::rocksdb::InfoLogLevel::ERROR_LEVEL, logger, "conformance %d", 42);
  logger->Flush();
  ASSERT_TRUE(logger->Close().ok());
  logger.reset();
  std::string text = read_file("LOG");
  EXPECT_NE(text.find("conformance 42"), std::string::npos) << text;
}

TEST_P(FsConformance, AbsolutePaths) {
  std::string out;
  ASSERT_TRUE(fs_->GetAbsolutePath(p("x"), io_, &out, nullptr).ok());
  EXPECT_EQ(out, p("x"));
  std::string test_dir;
  ASSERT_TRUE(fs_->GetTestDirectory(io_, &test_dir, nullptr).ok());
  bool is_dir = false;
  ASSERT_TRUE(fs_->IsDirectory(test_dir, io_, &is_dir, nullptr).ok());
  EXPECT_TRUE(is_dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, FsConformance, testing::ValuesIn(all_backends()), backend_name);

}  // namespace
}  // namespace sluice::rocksdb_test
