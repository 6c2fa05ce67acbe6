# The peer of `cargo xtask bench rebuild cpu-minimal`: the same service, dependencies and base
# as Dockerfile.cpu's cpu-minimal, built the way uv's Docker guide builds a project in a
# multi-stage image ("Using uv in Docker": intermediate layers, caching, non-editable installs,
# a final image without uv), as a careful engineer would write it for this repository:
#   - a uv cache mount and the lock bind-mounted, so a dependency change re-installs from the
#     warm cache and an app change does not re-install at all;
#   - UV_COMPILE_BYTECODE=1 and UV_LINK_MODE=copy, as the guide sets them;
#   - the venv and the code copied into a slim final stage in separate layers, so an app change
#     re-copies only the code; a non-root user; the same HEALTHCHECK and CMD.
# Adapted where this repository differs from the guide's example: no uv.lock but hash-pinned
# requirement files (so `uv pip install --require-hashes` instead of `uv sync --locked`); no
# registry is reachable, so Debian's python3 on the offline base instead of python:*-slim, and
# uv from its hash-pinned wheel instead of COPY --from=ghcr.io/astral-sh/uv. Left out on
# purpose, as the guide has none of it: trimming the venv, an import test in the build, the
# torch stages.
#
#   docker buildx build -f xtask/benches/peer/cpu-minimal.Dockerfile \
#     --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt -t voxserve-peer .
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE} AS python
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >/etc/apt/apt.conf.d/keep-cache \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3

FROM python AS builder
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update \
 && apt-get install -y --no-install-recommends python3-pip
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=app/requirements-uv.lock,target=/tmp/requirements-uv.lock \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m pip install --disable-pip-version-check --root-user-action=ignore \
      --no-deps --require-hashes --target /opt/uv -r /tmp/requirements-uv.lock
ENV PATH=/opt/uv/bin:$PATH \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0
WORKDIR /app
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=app/requirements.lock,target=requirements.lock \
    uv venv --python /usr/bin/python3 /app/.venv \
 && SSL_CERT_FILE=/run/secrets/ca-bundle uv pip install --python /app/.venv/bin/python \
      --require-hashes -r requirements.lock
COPY app/src/voxserve /app/src/voxserve
RUN python3 -m compileall -q /app/src

FROM python
RUN useradd --uid 10001 --gid 0 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app \
 && install -d -o 10001 -g 0 -m 0770 /data
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/src /app/src
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app/src \
    PYTHONUNBUFFERED=1 \
    VOXSERVE_DATA_DIR=/data
USER 10001:0
WORKDIR /app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-m", "voxserve.healthcheck"]
CMD ["python3", "-m", "uvicorn", "voxserve.main:app", "--host", "0.0.0.0", "--port", "8000"]
