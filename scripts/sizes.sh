#!/usr/bin/env sh
# Shim for muscle memory and old CI configs: the work is done by `cargo xtask sizes`, which runs
# the same on Linux, macOS and Windows. Arguments pass through unchanged.
set -eu
cd "$(dirname "$0")/.."
exec cargo xtask sizes "$@"
