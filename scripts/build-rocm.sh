#!/usr/bin/env sh
# Builds the ROCm image, voxserve:rocm (the default Dockerfile).
# A shim under the name the replaced setup used: the work is done by `cargo xtask build rocm`,
# which runs the same on Linux, macOS and Windows. Arguments pass through (`--help` lists
# them). Inside the repository relative paths keep their meaning; from elsewhere it runs at
# the repository root.
set -eu
echo "note: scripts/build-rocm.sh is a shim: run 'cargo xtask build rocm' instead" >&2
root=$(cd "$(dirname "$0")/.." && pwd)
case "$PWD/" in
  "$root"/*) ;;
  *) cd "$root" ;;
esac
exec cargo xtask build rocm "$@"
