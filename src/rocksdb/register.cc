// libsluice_rocksdb.so registers its factories when loaded (e.g. by LD_PRELOAD), so that
// stock RocksDB tools find sluice:// URIs.
#include "rocksdb/sluice_rocksdb.h"

namespace {

[[maybe_unused]] const bool registered = [] {
  sluice::rocksdb_plugin::RegisterFactories();
  return true;
}();

}  // namespace
