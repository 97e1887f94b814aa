#!/usr/bin/env bash
# Configures and builds one tree.
# Usage: scripts/build.sh DIR [cmake args...] [-- ninja targets...]
set -euo pipefail
dir=$1; shift
cmake_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
cd "$(dirname "$0")/.."
cmake -S . -B "$dir" -G Ninja "${cmake_args[@]}" >/dev/null
ninja -C "$dir" "$@"
