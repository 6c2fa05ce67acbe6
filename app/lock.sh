#!/usr/bin/env bash
# Regenerates the hash-pinned requirement files from pyproject.toml (run from anywhere, uv on
# PATH). Existing pins are kept unless pyproject.toml forces a change; `./lock.sh --upgrade`
# moves everything to the newest allowed versions.
#
# Why requirement files and no uv.lock: a uv.lock records the index and download URLs of every
# file, i.e. registry host names, and this repository must not name them. Exported requirement
# files carry only names, versions, markers and sha256 hashes; the index comes from the
# environment (uv's default, or UV_INDEX_URL / UV_DEFAULT_INDEX where a mirror is used).
#
#   requirements.lock      runtime set installed in the images (no torch: per variant)
#   requirements-dev.lock  runtime + dev group, for the tests on a developer machine or CI
#   requirements-uv.lock   the uv that the image builds use (deps stage only)
set -euo pipefail
cd "$(dirname "$0")"
common=(--universal --python-version 3.11 --generate-hashes --quiet
        --custom-compile-command "app/lock.sh" "$@")
uv pip compile pyproject.toml "${common[@]}" -o requirements.lock
uv pip compile pyproject.toml --group dev "${common[@]}" -o requirements-dev.lock
uv pip compile --group pyproject.toml:image-build "${common[@]}" -o requirements-uv.lock
