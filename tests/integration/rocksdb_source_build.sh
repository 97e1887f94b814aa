#!/usr/bin/env bash
# Builds RocksDB's own FileSystem tests from Debian's rocksdb source package, against the
# INSTALLED librocksdb (librocksdb-dev exports what they need, test-only symbols included):
#   env_basic_test  env/env_basic_test.cc with RocksDB's test harness and the gtest 1.8.1
#                   bundled in the source package (its headers are what the test expects)
#   db_stress       db_stress_tool/, RocksDB's stress and crash-test driver
# The source (apt-get source rocksdb=<installed version>: needs the deb-src entry that
# scripts/deps.sh adds, and dpkg-dev) and the binaries are cached under CACHE/<version>/; a
# second run with the same installed version and the same flags rebuilds nothing. Nothing of
# it belongs in git: the cache lives under build/.
# CACHE/bin links to the binaries of the installed version once they are there.
# Usage: rocksdb_source_build.sh CACHE
# Exit: 0 built or cached, 77 the machine lacks what scripts/deps.sh installs, 1 a failure.
set -euo pipefail

CACHE=$(realpath -m "${1:?usage: $0 CACHE-DIR}")
version=$(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null || true)
if [[ -z "$version" ]]; then echo "SKIP: librocksdb-dev is not installed (scripts/deps.sh)"; exit 77; fi
if ! command -v dpkg-source >/dev/null; then echo "SKIP: dpkg-source missing: install dpkg-dev (scripts/deps.sh)"; exit 77; fi

dir=$CACHE/$version
bin=$dir/bin
mkdir -p "$dir"
# One builder at a time: ctest may start several tests needing the binaries at once.
exec 9>"$dir/.lock"
flock 9
rm -f "$CACHE/bin"  # until this version's binaries are known good

# The defines RocksDB's CMakeLists.txt sets on Linux, which Debian's build used. NDEBUG is
# deliberately absent: Debian builds with CMAKE_BUILD_TYPE=None, so its library keeps its
# assertions and the debug-only members of internal classes (port::Mutex's owner, ...) that
# db_stress reaches through db/db_impl headers; the layouts must match. Not
# ROCKSDB_IOURING_PRESENT: Debian's library is not linked with liburing.
defs=(-DROCKSDB_PLATFORM_POSIX -DROCKSDB_LIB_IO_POSIX -DOS_LINUX -DGFLAGS=1
      -DSNAPPY -DZLIB -DBZIP2 -DLZ4 -DZSTD
      -DROCKSDB_FALLOCATE_PRESENT -DROCKSDB_RANGESYNC_PRESENT -DROCKSDB_PTHREAD_ADAPTIVE_MUTEX
      -DROCKSDB_MALLOC_USABLE_SIZE -DROCKSDB_SCHED_GETCPU_PRESENT -DROCKSDB_AUXV_GETAUXVAL_PRESENT)
opts=(-std=c++17 -O1 -fno-omit-frame-pointer -w)
libs=(-lrocksdb -lgflags -lsnappy -lz -lbz2 -llz4 -lzstd -lpthread -ldl)

# The stamp names what the binaries were built from: the library version and the flags.
stamp="$version ${opts[*]} ${defs[*]} ${libs[*]}"
if [[ -x $bin/env_basic_test && -x $bin/db_stress && "$(cat "$bin/.stamp" 2>/dev/null)" == "$stamp" ]]; then
  ln -sfn "$version/bin" "$CACHE/bin"
  echo "cached: $bin (rocksdb $version)"
  exit 0
fi

start=$SECONDS
src=$dir/src
if [[ ! -f $src/.unpacked ]]; then
  if ! apt-cache showsrc rocksdb 2>/dev/null | grep -q '^Package: rocksdb'; then
    echo "SKIP: apt has no source index for rocksdb: run scripts/deps.sh (it adds a deb-src entry)"
    exit 77
  fi
  rm -rf "$src" && mkdir -p "$src"
  echo "fetching Debian's rocksdb $version source package"
  # apt-get source warns that it downloads unsandboxed as root: harmless here.
  if ! (cd "$src" && apt-get source -q "rocksdb=$version" >fetch.log 2>&1); then
    echo "FAIL: apt-get source rocksdb=$version:"; tail -20 "$src/fetch.log"; exit 1
  fi
  touch "$src/.unpacked"
fi
tree=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'rocksdb-*' | head -1)
if [[ -z "$tree" || ! -f $tree/env/env_basic_test.cc || ! -d $tree/db_stress_tool ]]; then
  echo "FAIL: no RocksDB tree with env/env_basic_test.cc and db_stress_tool/ under $src"; exit 1
fi

gtest_dir=$tree/third-party/gtest-1.8.1/fused-src
cxxflags=("${opts[@]}" "${defs[@]}" -I"$tree" -I"$tree/include" -I"$gtest_dir")
obj=$dir/obj
rm -rf "$obj" "$bin" && mkdir -p "$obj" "$bin"
env_sources=(env/env_basic_test.cc test_util/testharness.cc)
stress_sources=()
for f in "$tree"/db_stress_tool/*.cc; do stress_sources+=("db_stress_tool/${f##*/}"); done
compile_one() {  # SOURCE, relative to the tree: obj/<path with _ for />.o, its errors in .log
  local o
  o=$obj/$(tr / _ <<<"${1%.cc}")
  if ! (cd "$tree" && g++ "${cxxflags[@]}" -c "$1" -o "$o.o") 2>"$o.log"; then
    echo "FAIL: compiling $1:"; head -30 "$o.log"; return 1
  fi
}
sources=("${env_sources[@]}" "${stress_sources[@]}" third-party/gtest-1.8.1/fused-src/gtest/gtest-all.cc)
echo "compiling ${#sources[@]} files ($(nproc) at a time)"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # no compiler outlives an interrupted build
running=0 failed=0
for s in "${sources[@]}"; do
  compile_one "$s" &
  running=$((running + 1))
  if [[ $running -ge $(nproc) ]]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [[ $running -gt 0 ]]; do wait -n || failed=1; running=$((running - 1)); done
if [[ $failed -ne 0 ]]; then echo "FAIL: compiling RocksDB's tests (logs in $obj)"; exit 1; fi

g++ -o "$bin/env_basic_test" "$obj"/env_env_basic_test.o "$obj"/test_util_testharness.o \
  "$obj"/third-party_gtest-1.8.1_fused-src_gtest_gtest-all.o "${libs[@]}"
g++ -o "$bin/db_stress" "$obj"/db_stress_tool_*.o "${libs[@]}"
echo "$stamp" >"$bin/.stamp"
ln -sfn "$version/bin" "$CACHE/bin"
echo "built env_basic_test and db_stress against librocksdb $version in $((SECONDS - start)) s: $bin"
