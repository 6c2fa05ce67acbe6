# voxserve — ROCm variant (the default Dockerfile): torch built for AMD GPUs, and the triton
# it depends on, both from the PyTorch ROCm index. Backend torch-rocm; without a GPU (or without
# the devices passed in) torch computes on the CPU. ROCm exposes GPUs through torch.cuda.
#
#   docker buildx build --target app \
#     --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt -t voxserve:rocm .
#   docker run --device=/dev/kfd --device=/dev/dri --group-add video \
#     --group-add "$(getent group render | cut -d: -f3)" -p 8000:8000 voxserve:rocm
#   (the service runs as UID 10001: GPU access comes from the device groups, not from root)
#
# No `# syntax=` directive on purpose: it makes BuildKit pull a frontend image from a registry,
# and the frontend built into BuildKit already has RUN --mount (cache, secret, bind).

# The official image, by tag. For reproducible builds pin it by digest, e.g.
#   --build-arg BASE_IMAGE=debian:trixie-slim@sha256:<digest>
# with the digest from `docker buildx imagetools inspect debian:trixie-slim`.
# `cargo xtask build` passes the offline base (localhost/debian:trixie-slim) when it exists.
ARG BASE_IMAGE=debian:trixie-slim

# ---------------------------------------------------------------------------------------------
# base: what both later stages share — Debian's python3 at /usr/bin/python3. The venv made in
# deps points at that interpreter, so it only works because app has it at the same path.
FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV LANG=C.UTF-8
# Downloaded .debs and package lists live in BuildKit cache mounts, never in a layer: the
# official image's docker-clean hook would delete the cache, so it goes, and apt is told to keep
# what it downloads. sharing=locked: two apt runs (parallel builds) must not use one cache at once.
# Versions are not pinned (DL3008): they come from the Debian release the base image is pinned to.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >/etc/apt/apt.conf.d/keep-cache \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && python3 --version

# ---------------------------------------------------------------------------------------------
# deps: builds /opt/venv. Everything here that is not in /opt/venv (uv, pip, binutils, caches)
# never reaches the final image.
FROM base AS deps
# binutils for `strip` in the trim step; python3-pip only to bootstrap uv.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update \
 && apt-get install -y --no-install-recommends binutils python3-pip
# uv from PyPI, hash-pinned, into a directory outside the venv. The CA bundle is a secret
# mounted only for the steps that download: it never lands in a layer, ENV or the history.
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=app/requirements-uv.lock,target=/tmp/requirements-uv.lock \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m pip install --disable-pip-version-check --root-user-action=ignore \
      --no-deps --require-hashes \
      --target /opt/uv -r /tmp/requirements-uv.lock \
 && /opt/uv/bin/uv --version
# copy: the uv cache is a mount on another filesystem, hard links cannot reach it.
# compile: .pyc files are made now, as the runtime filesystem is read-only and the runtime
# user may not write them anyway.
ENV PATH=/opt/venv/bin:/opt/uv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    UV_CACHE_DIR=/root/.cache/uv \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never
RUN uv venv --python /usr/bin/python3 /opt/venv

# The torch family goes in first and alone, from TORCH_INDEX_URL (`default`: uv's default
# index), together with the dependencies it declares. It is not in requirements.lock, and that
# lock is installed next with --no-deps, so nothing can resolve torch again and replace this
# build of it by another (the default index serves the CUDA build). Separate layer: the lock
# changes more often than torch, and torch is the slow download.
# torch 2.15.0 is built against triton 3.9.0 (its CUDA wheel requires triton==3.9.0); on the ROCm
# index that triton is published as `triton-rocm` (`pytorch-triton-rocm` before ROCm 7), pinned
# here so the pair cannot drift. Not verifiable on the build machine (the index is unreachable
# there): check `uv pip install --dry-run` against the index when moving versions.
ARG TORCH_SPEC="torch==2.15.0+rocm7.2 triton-rocm==3.9.0"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/rocm7.2
# TORCH_SPEC is split into words on purpose (SC2086): it may list several requirements.
# hadolint ignore=SC2086
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    if [ "$TORCH_INDEX_URL" = default ]; then set --; else set -- --index-url "$TORCH_INDEX_URL"; fi \
 && SSL_CERT_FILE=/run/secrets/ca-bundle uv pip install "$@" $TORCH_SPEC

# Guard: the torch that came in must be a ROCm build, with no NVIDIA/CUDA wheels beside it.
RUN --mount=type=bind,source=app/docker/check_torch_variant.py,target=/tmp/check_torch_variant.py \
    python /tmp/check_torch_variant.py rocm

# Everything else, exactly as locked: versions and sha256 of every file. A package the torch
# step already brought (typing-extensions, …) is moved to the locked version; `uv pip check`
# then proves torch's own requirements still hold.
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=app/requirements.lock,target=/tmp/requirements.lock \
    SSL_CERT_FILE=/run/secrets/ca-bundle uv pip install --no-deps --require-hashes \
      -r /tmp/requirements.lock \
 && uv pip check

# triton stays here, unlike in the CUDA image: the ROCm torch wheel requires it, and it is part
# of the torch family this image is meant to carry (torch.compile works on ROCm). Its headers are
# kept below for its JIT.

# Trim, then prove in the same stage that the trimmed venv still imports and computes.
# torch/lib is not stripped: the ROCm wheel vendors the HIP runtime and GPU libraries there, and
# stripped HIP libraries are known to break kernel lookup — untestable without an AMD GPU.
RUN --mount=type=bind,source=app/docker/trim_venv.py,target=/tmp/trim_venv.py \
    --mount=type=bind,source=app/docker/smoke_test.py,target=/tmp/smoke_test.py \
    python /tmp/trim_venv.py /opt/venv --keep-headers-of triton --no-strip-under torch/lib \
 && python /tmp/smoke_test.py --torch required

# ---------------------------------------------------------------------------------------------
# app: the runtime. No uv, pip, compilers, apt lists or caches: only python3, the venv and the
# code.
FROM base AS app
# Fixed non-root UID in group 0: volumes can be prepared for a known UID, and platforms that
# run images under an arbitrary UID (always in group 0) still get access through the group.
# The data directory is the only thing the service writes; it is created owned by that user
# (no chown -R layer), and declared a VOLUME after that so an anonymous volume inherits the
# ownership.
RUN useradd --uid 10001 --gid 0 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin voxserve \
 && install -d -o 10001 -g 0 -m 0770 /data
# The venv and the code stay owned by root and read-only for the service user: a compromised
# process cannot rewrite its own code, even where the root filesystem is writable.
COPY --from=deps --chown=0:0 /opt/venv /opt/venv
COPY --chown=0:0 app/src/voxserve /opt/voxserve/voxserve
# Byte-compile the app here; a hash-checked .pyc stays valid whatever the file times are.
RUN python3 -m compileall -q --invalidation-mode checked-hash /opt/voxserve
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/voxserve \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VOXSERVE_DATA_DIR=/data
LABEL org.opencontainers.image.title="voxserve" \
      org.opencontainers.image.description="Speech-analysis web service (ROCm)" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:0
WORKDIR /opt/voxserve
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-m", "voxserve.healthcheck"]
CMD ["python3", "-m", "uvicorn", "voxserve.main:app", "--host", "0.0.0.0", "--port", "8000"]
