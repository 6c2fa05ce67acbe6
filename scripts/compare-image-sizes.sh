#!/usr/bin/env sh
# Compressed and unpacked size of each image against its budget (images.toml).
# A shim under the name the replaced setup used: the work is done by `cargo xtask sizes`,
# which runs the same on Linux, macOS and Windows. Arguments pass through (`--help` lists
# them). Inside the repository relative paths keep their meaning; from elsewhere it runs at
# the repository root.
set -eu
echo "note: scripts/compare-image-sizes.sh is a shim: run 'cargo xtask sizes' instead" >&2
root=$(cd "$(dirname "$0")/.." && pwd)
case "$PWD/" in
  "$root"/*) ;;
  *) cd "$root" ;;
esac
exec cargo xtask sizes "$@"
