# Installing Sluice, and the Debian package (README: Installing).
#
# `cmake --install build/release [--prefix DIR]` installs:
#   bin/sluice                                   the CLI and daemon
#   LIBDIR/libsluice_rocksdb.so                  the RocksDB plugin (LD_PRELOAD, or link it);
#                                                LIBDIR is lib (lib/<multiarch> if configured for /usr)
#   include/sluice/sluice_rocksdb.h              its entry points (needs only RocksDB's headers)
#   share/doc/sluice/                            README.md, LICENSE, docs/
#   lib/systemd/system/sluice.service            the daemon's unit
#   CONFDIR/sluice.json                          the daemon's config: an empty one, installed
#                                                only if none is there
# CONFDIR is /etc/sluice for the prefix /usr (the package) and DIR/etc/sluice otherwise, the
# rule GNUInstallDirs applies to sysconfdir. It, and the paths in the unit, are computed when
# installing, not when configuring: cpack installs with the prefix /usr into a staging
# directory while the build tree was configured for /usr/local.
#
# `cpack -G DEB` (in the build tree) builds sluice_VERSION_ARCH.deb: the same files under /usr
# (the config in /etc/sluice, a conffile) and Depends computed by dpkg-shlibdeps from what the
# binaries link. tests/integration/install_test.sh builds it, unpacks it and runs it.
include(GNUInstallDirs)

install(TARGETS sluice RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The plugin has no version in its name: stock tools load it by path or by name, and it has
# one ABI, the one of the RocksDB it was built against (the package's Depends pins that).
install(TARGETS sluice_rocksdb LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/src/rocksdb/sluice_rocksdb.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sluice)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The unit and the config, at install time (see above). The unit is generated for the
# prefix installed to; the config is never overwritten (an admin's own stays as it is).
set(SLUICE_UNIT_TEMPLATE ${PROJECT_SOURCE_DIR}/packaging/sluice.service.in)
set(SLUICE_DEFAULT_CONFIG ${PROJECT_SOURCE_DIR}/packaging/sluice.json)
install(CODE "
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  if(prefix STREQUAL \"/usr\")
    set(confdir /etc/sluice)
  else()
    set(confdir \"\${prefix}/etc/sluice\")
  endif()
  set(SLUICE_UNIT_BINDIR \"\${prefix}/${CMAKE_INSTALL_BINDIR}\")
  set(SLUICE_UNIT_CONFDIR \"\${confdir}\")
  set(SLUICE_UNIT_DOCDIR \"\${prefix}/${CMAKE_INSTALL_DOCDIR}\")
  # A scratch directory of this install's own: a cpack and a cmake --install may run at once.
  string(RANDOM LENGTH 16 scratch)
  set(scratch \"${CMAKE_CURRENT_BINARY_DIR}/packaging/unit-\${scratch}\")
  configure_file(\"${SLUICE_UNIT_TEMPLATE}\" \"\${scratch}/sluice.service\" @ONLY)
  file(INSTALL \"\${scratch}/sluice.service\" DESTINATION \"\${prefix}/lib/systemd/system\")
  file(REMOVE_RECURSE \"\${scratch}\")
  if(EXISTS \"\$ENV{DESTDIR}\${confdir}/sluice.json\")
    message(STATUS \"Kept: \$ENV{DESTDIR}\${confdir}/sluice.json\")
  else()
    file(INSTALL \"${SLUICE_DEFAULT_CONFIG}\" DESTINATION \"\${confdir}\")
  endif()
")

set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR "the Sluice authors")
# The project has no published address yet: .invalid says so rather than inventing one.
set(SLUICE_PACKAGE_MAINTAINER "the Sluice authors <maintainers@sluice.invalid>" CACHE STRING
    "The Debian package's Maintainer field")
set(CPACK_PACKAGE_CONTACT "${SLUICE_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "userspace storage stack with a RocksDB plugin")
set(CPACK_PACKAGE_DESCRIPTION
  "Sluice drives block devices from userspace with per-core polled reactors: io_uring, libaio,
RAM and userspace NVMe (VFIO/UIO) backends, a crash-safe blobstore with logical volumes, and
SluiceFS, a filesystem made for RocksDB. Stock RocksDB tools run on it through the plugin
libsluice_rocksdb.so (--fs_uri=sluice://DEVICE). The sluice command holds the tools (perf,
mkfs, fsck, blob, lvol, fs, migrate, mount) and the storage daemon, sluice serve, with a
systemd unit (config: /etc/sluice/sluice.json).")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # sluice_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the binaries' NEEDED entries (dpkg-shlibdeps): liburing, libaio, libisal,
# libblkid, libfmt, librocksdb, libfuse3 and the C/C++ runtime, at the versions built against.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# `sluice mount` by an ordinary user needs fusermount3 (docs/fuse.md); the stock RocksDB tools
# are what the plugin is for.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "rocksdb-tools")
# Our maintainer scripts replace the ones CPack would generate (ldconfig only): they also
# tell systemd about the unit, and stop the daemon before a removal.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/conffiles ${PROJECT_SOURCE_DIR}/packaging/postinst
  ${PROJECT_SOURCE_DIR}/packaging/prerm ${PROJECT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
