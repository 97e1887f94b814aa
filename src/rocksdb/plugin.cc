// The public entry points (sluice_rocksdb.h) and the ObjectLibrary factories.
#include <mutex>

#include <fmt/format.h>

#include <rocksdb/utilities/object_registry.h>

#include "rocksdb/sluice_file_system.h"
#include "rocksdb/sluice_rocksdb.h"

namespace sluice::rocksdb_plugin {
namespace {

::rocksdb::Status open_file_system(const std::string& uri, std::unique_ptr<SluiceFileSystem>* out) {
  auto parsed = parse_uri(uri);
  if (!parsed.ok()) return ::rocksdb::Status::InvalidArgument(parsed.status().message());
  auto mount = acquire_mount(*parsed);
  if (!mount.ok()) return ::rocksdb::Status::InvalidArgument(mount.status().message());
  auto fs = std::make_unique<SluiceFileSystem>(*parsed, std::move(*mount));
  if (!parsed->fallback.empty() && fs->fallback() == nullptr)
    return ::rocksdb::Status::InvalidArgument(fmt::format(
        "fallback={}: that directory is not under root={}, so SluiceFS would never see it", parsed->fallback,
        parsed->root));
  *out = std::move(fs);
  return ::rocksdb::Status::OK();
}

}  // namespace

::rocksdb::Status NewFileSystem(const std::string& uri, std::shared_ptr<::rocksdb::FileSystem>* out) {
  out->reset();
  std::unique_ptr<SluiceFileSystem> fs;
  ::rocksdb::Status s = open_file_system(uri, &fs);
  if (s.ok()) *out = std::move(fs);
  return s;
}

::rocksdb::Status NewEnv(const std::string& uri, std::unique_ptr<::rocksdb::Env>* out) {
  out->reset();
  std::shared_ptr<::rocksdb::FileSystem> fs;
  ::rocksdb::Status s = NewFileSystem(uri, &fs);
  if (!s.ok()) return s;
  *out = ::rocksdb::NewCompositeEnv(fs);
  return ::rocksdb::Status::OK();
}

// A factory that fails must set *errmsg: the stock tools wrap a null result without looking
// and crash otherwise. For the same reason the pattern claims every URI that starts with
// "sluice:" (even "sluice://" with no device, or a mistyped "sluice:/dev"), so that a bad one
// reaches parse_uri and its message instead of no factory at all.
void RegisterFactories() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto library = ::rocksdb::ObjectLibrary::Default();
    auto pattern = ::rocksdb::ObjectLibrary::PatternEntry("sluice", false).AddSeparator(":", false);
    library->AddFactory<::rocksdb::FileSystem>(
        pattern, [](const std::string& uri, std::unique_ptr<::rocksdb::FileSystem>* guard, std::string* errmsg) {
          std::unique_ptr<SluiceFileSystem> fs;
          ::rocksdb::Status s = open_file_system(uri, &fs);
          if (!s.ok()) {
            *errmsg = s.getState() ? s.getState() : s.ToString();
            return static_cast<::rocksdb::FileSystem*>(nullptr);
          }
          guard->reset(fs.release());
          return guard->get();
        });
    library->AddFactory<::rocksdb::Env>(
        pattern, [](const std::string& uri, std::unique_ptr<::rocksdb::Env>* guard, std::string* errmsg) {
          ::rocksdb::Status s = NewEnv(uri, guard);
          if (!s.ok()) {
            *errmsg = s.getState() ? s.getState() : s.ToString();
            return static_cast<::rocksdb::Env*>(nullptr);
          }
          return guard->get();
        });
  });
}

}  // namespace sluice::rocksdb_plugin
