# shellcheck shell=bash
# Sourced by the host-side guest scripts: scratch_dir PREFIX makes a fresh scratch directory
# ${TMPDIR:-/tmp}/PREFIX.XXXXXX owned by this shell, first removing the ones of PREFIX whose
# owner died without cleaning up (SIGKILL, e.g. a ctest timeout: no trap runs). The caller
# removes its own directory on exit.
scratch_dir() {
  local d
  for d in "${TMPDIR:-/tmp}/$1".*; do
    if [[ -f $d/.owner ]] && ! kill -0 "$(cat "$d/.owner")" 2>/dev/null; then rm -rf "$d"; fi
  done
  d=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  echo $$ >"$d/.owner"
  echo "$d"
}
