#!/usr/bin/env bash
# Debian's python3 at /usr/bin/python3, for the platform of the stage that runs this: the target's
# in the Dockerfiles' `base`, the build machine's in `build-base`. The venv is made on the build
# machine with its python3 and run by the target's, at the same path and of the same version.
#
# A base image that has python3 already (the offline base of `cargo xtask base`, which trims the
# same files through [base].remove of images.toml) is left as it is: for a foreign target this
# step runs emulated, and then it runs one shell test instead of apt.
#
# Otherwise: downloaded .debs and package lists live in BuildKit cache mounts (the RUN mounts
# them), never in a layer — the official image's docker-clean hook would delete that cache, so it
# goes, and apt is told to keep what it downloads. Versions are not pinned: they come from the
# Debian release the base image is pinned to. Three parts of Python's standard library that a
# service never imports go right after the install, in the same step, so no layer holds them
# (sizes and reasons: docs/DOCKER_OPTIMIZATION.md): the `test` package (CPython's own test-suite
# helpers), `pydoc_data` (the topics of interactive help(), which says so when they are missing)
# and turtle (needs tkinter, not installed). dpkg's path-exclude cannot do it: python3.13's
# postinst byte-compiles every file it shipped. The packages stay registered for dpkg and Trivy.
set -euo pipefail

if [ -x /usr/bin/python3 ]; then
  echo "python3: from the base image"
  exit 0
fi
# Reproducible layer: what this step wrote gets mtime 0 at the end (a second before it began is
# the mark: file times come from a coarser clock than `date`); dpkg's and apt's logs, ldconfig's
# cache of inode numbers and the *-old backups go.
mark=/tmp/.python3-start
touch -d "@$(($(date +%s) - 1))" "$mark"
rm -f /etc/apt/apt.conf.d/docker-clean
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >/etc/apt/apt.conf.d/keep-cache
apt-get update
apt-get install -y --no-install-recommends python3
rm -r /usr/lib/python3.*/test /usr/lib/python3.*/pydoc_data \
  /usr/lib/python3.*/turtle.py /usr/lib/python3.*/__pycache__/turtle.*
rm -f /var/log/dpkg.log /var/log/apt/*.log /var/log/apt/eipp.log.xz \
  /var/cache/ldconfig/aux-cache /var/cache/debconf/*-old /var/lib/dpkg/*-old
# The RUN's own mounts (kernel file systems, this script, the DNS files) are not the layer's.
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp/debian_python3.sh \
  -o -path /etc/hosts -o -path /etc/hostname -o -path /etc/resolv.conf \) -prune \
  -o -newer "$mark" -exec touch -h -d @0 {} +
rm "$mark"
touch -d @0 /tmp
python3 --version
