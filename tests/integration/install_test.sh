#!/usr/bin/env bash
# The Debian package, built and used as a user would, without touching the system: cpack -G
# DEB from this build tree; its control data (Depends covers every library the binaries load,
# the config is a conffile); the package unpacked (dpkg-deb -x) into a scratch root and its
# files where README says; the unpacked `sluice --version`; `cmake --install` into another
# prefix (the unit follows it; an edited config is kept); a program compiled against the
# installed header and library; stock db_bench with the installed plugin on a file-backed
# device, read back by a second process and checked by the installed `sluice fsck`; and the
# daemon started from the unit's own ExecStart line (paths moved into the scratch root, as
# systemd would run it but without systemd), answering RPC, stopped with the unit's
# KillSignal: exit 0, socket gone. `dpkg -i` is not used: it would change the host.
# Usage: install_test.sh BUILD_DIR CPACK VERSION
set -uo pipefail

BUILD=${1:?usage: $0 BUILD_DIR CPACK VERSION}
CPACK=${2:?usage: $0 BUILD_DIR CPACK VERSION}
VERSION=${3:?usage: $0 BUILD_DIR CPACK VERSION}
CMAKE=$(dirname "$CPACK")/cmake  # the cmake that configured BUILD, beside its cpack
for tool in dpkg-deb dpkg-shlibdeps db_bench; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (dpkg-dev, rocksdb-tools)"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
make_tmp sluice-install

# ---- The package.
if ! (cd "$BUILD" && timeout 300 "$CPACK" -G DEB -B "$TMP/pkg") >"$TMP/cpack.log" 2>&1; then
  fail "cpack -G DEB: $(tail -5 "$TMP/cpack.log")"; finish
fi
debs=("$TMP"/pkg/sluice_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { fail "cpack made no single sluice_*.deb: $(ls "$TMP/pkg")"; finish; }
DEB=${debs[0]}
pass "cpack built $(basename "$DEB")"

field() { dpkg-deb -f "$DEB" "$1"; }
[[ $(field Package) == sluice && $(field Version) == "$VERSION" ]] && pass "package sluice, version $VERSION" ||
  fail "package '$(field Package)' version '$(field Version)', want sluice $VERSION"
for f in Maintainer Section Description Architecture; do
  [[ -n $(field $f) ]] || fail "the control file has no $f"
done
DEPENDS=$(field Depends)
echo "     Depends: $DEPENDS"
# depends_on PACKAGE: PACKAGE is one of Depends' entries (name alone, or with a version).
depends_on() { tr ',' '\n' <<<"$DEPENDS" | sed 's/^ *//; s/[ (].*//' | grep -qxF -- "$1"; }
# The libraries the issue names, each found in Depends by its Debian name...
for lib in liburing libaio libisal libblkid libfmt librocksdb libfuse3; do
  tr ',' '\n' <<<"$DEPENDS" | sed 's/^ *//' | grep -q "^$lib" || fail "Depends lacks $lib*"
done
# ...and every package owning a library the unpacked binaries link directly (their NEEDED
# entries, located as the loader finds them), so that a new link dependency that
# dpkg-shlibdeps missed is caught. usrmerge: dpkg knows a file by its /lib or its /usr/lib path.
ROOT=$TMP/root
dpkg-deb -x "$DEB" "$ROOT" || { fail "dpkg-deb -x"; finish; }
SLUICE=$ROOT/usr/bin/sluice
# usr/lib, or usr/lib/<multiarch> for a tree configured with the prefix /usr (GNUInstallDirs).
mapfile -t plugins < <(find "$ROOT/usr/lib" -name libsluice_rocksdb.so)
[[ ${#plugins[@]} -eq 1 ]] || { fail "want one libsluice_rocksdb.so under /usr/lib, found: ${plugins[*]:-none}"; finish; }
PLUGIN=${plugins[0]}
owners=()
for bin in "$SLUICE" "$PLUGIN"; do
  while read -r name; do
    path=$(ldd "$bin" | awk -v n="$name" '$1 == n && $2 == "=>" { print $3 }
      substr($1, length($1) - length(n)) == "/" n { print $1 }' | head -1)
    owner=""
    for p in "$path" "/usr$path" "${path#/usr}"; do
      [[ -n $path ]] && owner=$(dpkg -S "$p" 2>/dev/null) && break
    done
    [[ -n $owner ]] || { fail "no package owns $name (${path:-not found}, linked by $(basename "$bin"))"; continue; }
    owners+=("${owner%%[:]*}")
  done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done
mapfile -t owners < <(printf '%s\n' "${owners[@]}" | sort -u)
missing=()
for p in "${owners[@]}"; do depends_on "$p" || missing+=("$p"); done
if [[ ${#owners[@]} -ge 8 && ${#missing[@]} -eq 0 ]]; then pass "Depends covers the ${#owners[@]} packages the binaries link (${owners[*]})"
else fail "Depends ($DEPENDS) lacks ${missing[*]:-nothing} of ${owners[*]}"; fi
[[ $(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles 2>/dev/null) == /etc/sluice/sluice.json ]] &&
  pass "/etc/sluice/sluice.json is a conffile" || fail "conffiles: '$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles 2>&1)'"

# The maintainer scripts: ours (packaging/), executable, valid sh, running ldconfig.
dpkg-deb -e "$DEB" "$TMP/control" || fail "dpkg-deb -e"
for script in postinst prerm postrm; do
  f=$TMP/control/$script
  if [[ ! -x $f ]] || ! sh -n "$f"; then fail "$script: missing, not executable or not valid sh"; fi
done
grep -q '^ *ldconfig' "$TMP/control/postinst" && grep -q 'daemon-reload' "$TMP/control/postinst" && grep -q 'systemctl stop sluice.service' "$TMP/control/prerm" &&
  pass "maintainer scripts: ldconfig, daemon-reload, stop before removal" || fail "maintainer scripts are not packaging/'s"

# ---- The unpacked files.
UNIT=$ROOT/usr/lib/systemd/system/sluice.service
CONFIG=$ROOT/etc/sluice/sluice.json
bad=()
for f in "$SLUICE" "$PLUGIN" "$ROOT/usr/include/sluice/sluice_rocksdb.h" "$UNIT" "$CONFIG" \
         "$ROOT/usr/share/doc/sluice/README.md" "$ROOT/usr/share/doc/sluice/LICENSE" "$ROOT/usr/share/doc/sluice/docs/rpc.md"; do
  [[ -s $f ]] || bad+=("${f#"$ROOT"}")
done
[[ -x $SLUICE ]] || bad+=("/usr/bin/sluice (not executable)")
[[ ${#bad[@]} -eq 0 ]] && pass "the package holds the binary, plugin, header, unit, config and docs" || fail "missing from the package: ${bad[*]}"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$CONFIG" 2>/dev/null && pass "the default config is valid JSON" ||
  fail "the default config is not JSON: $(cat "$CONFIG")"

run --version
[[ $RC -eq 0 && $(cat "$TMP/out") == "sluice $VERSION" ]] && pass "installed sluice --version: $(cat "$TMP/out")" ||
  fail "sluice --version: exit $RC, '$(cat "$TMP/out" "$TMP/err")', want 'sluice $VERSION'"

# ---- cmake --install into a prefix other than /usr: the unit names the prefix's binary and
# config, and a second install keeps an edited config.
PREFIX=$TMP/prefix
if timeout 120 "$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 &&
   [[ -x $PREFIX/bin/sluice && -s $PREFIX/etc/sluice/sluice.json ]] &&
   grep -qxF "ExecStart=$PREFIX/bin/sluice serve -c $PREFIX/etc/sluice/sluice.json -r /run/sluice/sluice.sock" \
     "$PREFIX/lib/systemd/system/sluice.service"; then
  pass "cmake --install --prefix: the unit runs PREFIX/bin/sluice with PREFIX/etc/sluice/sluice.json"
else
  fail "cmake --install --prefix: $(tail -3 "$TMP/install.log"); $(grep ExecStart "$PREFIX/lib/systemd/system/sluice.service" 2>&1)"
fi
echo '{"subsystems": [], "edited": true}' >"$PREFIX/etc/sluice/sluice.json"
timeout 120 "$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 &&
  grep -q edited "$PREFIX/etc/sluice/sluice.json" && pass "a second install keeps the edited config" ||
  fail "a second install: $(tail -3 "$TMP/install.log"); config: $(cat "$PREFIX/etc/sluice/sluice.json")"

# ---- An application linking the installed library through the installed header: a file
# written and read back on a RAM device (formatted when opened).
if command -v g++ >/dev/null; then
  cat >"$TMP/app.cc" <<'CC'
#include <sluice/sluice_rocksdb.h>
#include <cstdio>
#include <cstring>
int main() {
  std::shared_ptr<rocksdb::FileSystem> fs;
  rocksdb::Status s = sluice::rocksdb_plugin::NewFileSystem("sluice://malloc:64M", &fs);
  if (!s.ok()) { std::fprintf(stderr, "NewFileSystem: %s\n", s.ToString().c_str()); return 1; }
  rocksdb::IOStatus io = rocksdb::WriteStringToFile(fs.get(), "installed", "/hello", true);
  std::string back;
  if (io.ok()) io = rocksdb::ReadFileToString(fs.get(), "/hello", &back);
  if (!io.ok() || back != "installed") { std::fprintf(stderr, "write/read: %s '%s'\n", io.ToString().c_str(), back.c_str()); return 1; }
  std::puts("read back");
  return 0;
}
CC
  if ! timeout 120 g++ -std=c++20 -I"$ROOT/usr/include" "$TMP/app.cc" -o "$TMP/app" -L"$(dirname "$PLUGIN")" -lsluice_rocksdb -lrocksdb \
       >"$TMP/cc.log" 2>&1; then
    fail "compiling against the installed header and library: $(head -5 "$TMP/cc.log")"
  elif LD_LIBRARY_PATH=$(dirname "$PLUGIN") timeout 60 "$TMP/app" >"$TMP/out" 2>"$TMP/err" && grep -q "read back" "$TMP/out"; then
    pass "a program built with -lsluice_rocksdb writes and reads a file"
  else
    fail "the linked program: $(cat "$TMP/err" "$TMP/out")"
  fi
fi

# ---- Stock db_bench with the installed plugin (lib.sh: plugin_ok), a few thousand ops.
IMG=$TMP/image
truncate -s 256M "$IMG"
BENCH=(db_bench "--fs_uri=sluice://uring:$IMG?format=1" --db=/bench --num=5000 --value_size=100
       --compression_type=none --write_buffer_size=262144 --statistics=0)
plugin_ok "db_bench fillrandom with the installed plugin" "${BENCH[@]}" --benchmarks=fillrandom,flush
if plugin_ok "db_bench readrandom in a second process" "${BENCH[@]}" --use_existing_db=1 --benchmarks=readrandom --reads=2000; then
  found=$(db_bench_found)
  [[ -n $found && $found -gt 0 ]] && pass "readrandom found $found of 2000 keys" || fail "readrandom found no keys: $(grep readrandom "$TMP/out")"
fi
run fsck "$IMG"
[[ $RC -eq 0 ]] && pass "installed sluice fsck: the image is clean" || fail "sluice fsck: exit $RC: $(tail -5 "$TMP/out" "$TMP/err")"

# ---- The daemon, as the unit runs it. ExecStart's absolute paths move into the scratch root,
# /run into $TMP/run where RuntimeDirectory= is made (mode 0700, as systemd would).
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
read -ra exec <<<"$(unit_value ExecStart)"
[[ $(unit_value Type) == simple && $(unit_value Restart) == on-failure && ${exec[0]:-} == /usr/bin/sluice && ${exec[1]:-} == serve ]] &&
  pass "unit: Type=simple, Restart=on-failure, ExecStart=${exec[*]}" ||
  fail "unit: Type=$(unit_value Type) Restart=$(unit_value Restart) ExecStart=${exec[*]}"
# systemd's own check of the unit (a mistyped key or value is only a warning to systemd, so any
# message fails), on a copy whose ExecStart names the unpacked binary: verify wants it to exist.
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$TMP/unit"
  sed "s|^ExecStart=/usr/bin/|ExecStart=$ROOT/usr/bin/|" "$UNIT" >"$TMP/unit/sluice.service"
  if timeout 60 systemd-analyze verify "$TMP/unit/sluice.service" >"$TMP/verify.log" 2>&1 && [[ ! -s $TMP/verify.log ]]; then
    pass "systemd-analyze verify: the unit is clean"
  else
    fail "systemd-analyze verify: $(head -5 "$TMP/verify.log")"
  fi
fi
RUN=$TMP/run
runtime=$(unit_value RuntimeDirectory)
[[ -n $runtime ]] && mkdir -p -m 0700 "$RUN/$runtime"
cmd=() sock=""
for ((i = 0; i < ${#exec[@]}; i++)); do
  w=${exec[i]}
  case $w in
    /run/*) w=$RUN/${w#/run/} ;;
    /*) [[ -e $ROOT$w ]] || fail "ExecStart names $w, which the package does not hold"; w=$ROOT$w ;;
  esac
  ((i > 0)) && [[ ${exec[i - 1]} == -r || ${exec[i - 1]} == --rpc-socket ]] && sock=$w
  cmd+=("$w")
done
[[ -n $sock && $(dirname "$sock") == "$RUN/$runtime" ]] || fail "the socket ($sock) is not in RuntimeDirectory ($runtime)"
signal=$(unit_value KillSignal); signal=${signal:-SIGTERM}
bg_start "${cmd[@]}" >"$TMP/daemon.out" 2>"$TMP/daemon.err"
DAEMON=$BG_PID
up=0 end=$((SECONDS + 20))
while [[ $SECONDS -lt $end ]]; do
  "$SLUICE" rpc -s "$sock" spdk_get_version >"$TMP/out" 2>/dev/null && { up=1; break; }
  kill -0 "$DAEMON" 2>/dev/null || break
  sleep 0.1
done
if [[ $up -eq 1 ]] && [[ $(json 'd["version"]') == *"$VERSION"* ]]; then
  pass "the unit's command answers spdk_get_version ($(json 'd["version"]'))"
  run rpc -s "$sock" save_config
  [[ $RC -eq 0 && $(json 'type(d["subsystems"]).__name__') == list ]] && pass "save_config on the default config" ||
    fail "save_config: exit $RC: $(cat "$TMP/out" "$TMP/err")"
  kill -s "${signal#SIG}" "$DAEMON"
  wait_or_kill "$DAEMON" 20
  [[ $KILLED -eq 0 && $RC -eq 0 ]] && pass "$signal: the daemon exits 0" || fail "after $signal: exit $RC, killed $KILLED; stderr: $(tail -5 "$TMP/daemon.err")"
  [[ ! -e $sock ]] && pass "the socket is gone" || fail "the socket $sock outlived the daemon"
else
  fail "the unit's command did not answer: $(cat "$TMP/out") $(tail -5 "$TMP/daemon.err")"
fi

finish
