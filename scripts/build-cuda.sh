#!/usr/bin/env sh
# Builds the CUDA image, voxserve:cuda (Dockerfile.cuda).
# A shim under the name the replaced setup used: the work is done by `cargo xtask build cuda`,
# which runs the same on Linux, macOS and Windows. Arguments pass through (`--help` lists
# them). Inside the repository relative paths keep their meaning; from elsewhere it runs at
# the repository root.
set -eu
echo "note: scripts/build-cuda.sh is a shim: run 'cargo xtask build cuda' instead" >&2
root=$(cd "$(dirname "$0")/.." && pwd)
case "$PWD/" in
  "$root"/*) ;;
  *) cd "$root" ;;
esac
exec cargo xtask build cuda "$@"
