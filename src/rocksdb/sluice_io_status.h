// Sluice Status -> rocksdb::IOStatus, keeping the message (which names the path).
#pragma once

#include <rocksdb/io_status.h>

#include "base/status.h"

namespace sluice::rocksdb_plugin {

inline ::rocksdb::IOStatus to_io_status(const Status& st) {
  using ::rocksdb::IOStatus;
  const std::string& msg = st.message();
  switch (st.code()) {
    case Errc::ok: return IOStatus::OK();
    case Errc::not_found: return IOStatus::PathNotFound(msg);
    case Errc::no_space: return IOStatus::NoSpace(msg);
    case Errc::invalid_argument:
    case Errc::not_a_directory:
    case Errc::is_a_directory:
    case Errc::name_too_long:
    case Errc::wrong_format: return IOStatus::InvalidArgument(msg);
    case Errc::not_supported: return IOStatus::NotSupported(msg);
    case Errc::busy:
    case Errc::not_empty: return IOStatus::Busy(msg);
    case Errc::corrupt: return IOStatus::Corruption(msg);
    case Errc::aborted: return IOStatus::Aborted(msg);
    default: return IOStatus::IOError(st.to_string());
  }
}

}  // namespace sluice::rocksdb_plugin
