# The plain peer of `cargo xtask bench rebuild cpu-minimal`: the same service, lock and base as
# Dockerfile.cpu's cpu-minimal, written as uv's Docker guide writes its multi-stage example
# ("Using uv in Docker": caching, intermediate layers, a final image without uv), nothing more:
#   - the dependencies installed from the lock with a uv cache mount and the lock bind-mounted,
#     before the code is copied; UV_COMPILE_BYTECODE=1, UV_LINK_MODE=copy, no Python downloads;
#   - the whole /app (venv and code) copied into a slim final stage in one COPY, owned by a
#     non-root system user, as the guide's final stage does.
# Where the guide cannot be followed here: the lock is hash-pinned requirements (so
# `uv pip install -r` into the guide's /app/.venv instead of `uv sync --locked`); no registry is
# reachable, so Debian's python3 on the offline base instead of python:*-slim, and uv from its
# hash-pinned wheel instead of COPY --from=ghcr.io/astral-sh/uv; the app runs from source
# (PYTHONPATH) instead of being installed as a project.
#
#   docker buildx build -f xtask/benches/peer/cpu-minimal.uv-guide.Dockerfile \
#     --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt -t voxserve-peer .
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE} AS python
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*

FROM python AS builder
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=bind,source=app/requirements-uv.lock,target=/tmp/requirements-uv.lock \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
      --no-deps --require-hashes --target /opt/uv -r /tmp/requirements-uv.lock
ENV PATH=/opt/uv/bin:$PATH \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0
WORKDIR /app
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=app/requirements.lock,target=requirements.lock \
    uv venv --python /usr/bin/python3 \
 && SSL_CERT_FILE=/run/secrets/ca-bundle uv pip install --require-hashes -r requirements.lock
COPY app/src/voxserve /app/src/voxserve

FROM python
RUN groupadd --system --gid 999 nonroot \
 && useradd --system --gid 999 --uid 999 --create-home nonroot
COPY --from=builder --chown=nonroot:nonroot /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app/src
# hadolint ignore=DL3066
USER nonroot
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-m", "voxserve.healthcheck"]
CMD ["python3", "-m", "uvicorn", "voxserve.main:app", "--host", "0.0.0.0", "--port", "8000"]
