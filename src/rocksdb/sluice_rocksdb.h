// The RocksDB plugin: a rocksdb::FileSystem over SluiceFS (libsluice_rocksdb.so).
//
// Stock RocksDB tools load it with LD_PRELOAD and a URI:
//   LD_PRELOAD=libsluice_rocksdb.so db_bench --fs_uri='sluice://uring:/dev/nvme0n1?cache=256M'
// Applications that link the library call the entry points below instead.
//
// URI: sluice://<device>[?option=value&...]
//   <device>  a bdev spec as `sluice perf -T` takes it (uring:PATH, aio:PATH, malloc:SIZE,
//             lvol:STORE/VOLUME, crashsim:SPEC, ...), or the name of a bdev already
//             registered in this process. A malloc: device is formatted when opened.
//   cache=SIZE       read cache shared by every file of the mount (default none)
//   reserve=SIZE     free space that file growth may not take, kept so that a database that
//                    filled the device can still be reopened and compacted (default 1/32
//                    of the device in [8 MiB, 256 MiB], at most a quarter; 0: none).
//                    GetFreeSpace leaves it out.
//   format=1         format the device if it holds no SluiceFS image and is blank; one that
//                    holds anything else (another store, a filesystem, data) is refused with
//                    a message naming it, and never written (blob/probe.h)
//   root=/PREFIX     only paths under PREFIX go to SluiceFS (PREFIX is its "/"); the rest
//                    fall through to the default POSIX FileSystem. Default "/".
//   wal_dir=/DIR     WAL files (*.log) go to the POSIX FileSystem under DIR instead,
//                    at DIR/<their SluiceFS path>
//   fallback=/DIR    migrate a running database: RocksDB's directory /DIR (same path, under
//                    root) lives in SluiceFS, and a file SluiceFS lacks is read from the
//                    kernel directory /DIR. New files go to SluiceFS; deleting a kernel file
//                    records a tombstone in SluiceFS (the kernel directory is never
//                    written). `sluice migrate status` lists what is left on the kernel
//                    side, `sluice migrate finish` copies it, after which the option is a
//                    no-op (docs/migration.md, src/rocksdb/fallback.h). Not with wal_dir=.
//   Every other option (bs=, qd=, mt=) belongs to the device spec. An option given twice, a
//   cache larger than the machine's memory, and a fallback= directory that is not the
//   database's own are errors.
// One mounted SluiceFS per device per process: every FileSystem made for the same device
// shares it (several DBs in one image; the first opener's cache= and reserve= size it); it is unmounted
// when the last one goes away (at process exit too, from a helper thread).
// --env_uri: RocksDB reads a value containing '=' as an option list, so give --env_uri a
// URI without options (or use --fs_uri, which takes any).
// Each RocksDB thread does its own I/O on its own channel; the plugin starts no threads.
#pragma once

#include <memory>
#include <string>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/status.h>

namespace sluice::rocksdb_plugin {

// Mounts (or shares the mount of) the device named by `uri`. On failure *out is reset and
// the status says what is wrong (bad URI, missing device, not a SluiceFS image, ...).
::rocksdb::Status NewFileSystem(const std::string& uri, std::shared_ptr<::rocksdb::FileSystem>* out);

// An Env (Env::Default()'s threads and clock) whose FileSystem is NewFileSystem(uri).
::rocksdb::Status NewEnv(const std::string& uri, std::unique_ptr<::rocksdb::Env>* out);

// Registers FileSystem and Env factories for "sluice://..." with
// rocksdb::ObjectLibrary::Default(), so that FileSystem::CreateFromString, --fs_uri and
// --env_uri find them. libsluice_rocksdb.so calls it when loaded; idempotent.
void RegisterFactories();

}  // namespace sluice::rocksdb_plugin
