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
# Layers of the image, bottom to top, in the order they change least often: Debian and python3,
# the service user, the torch family (torch with its vendored ROCm libraries, triton), the rest
# of the venv (requirements.lock), the app. The venv is one environment built and tested in one
# stage (deps); only the image stores it in several layers, so a change to requirements.lock
# leaves the torch layer byte-identical (same digest) and a host holding the previous image
# pulls only the venv and app layers. The layering is the same as Dockerfile.cuda's (built and
# measured); this file cannot be built where the ROCm index is unreachable.
#
# No `# syntax=` directive on purpose: it makes BuildKit pull a frontend image from a registry,
# and the frontend built into BuildKit already has RUN --mount (cache, secret, bind) and
# COPY --link.

# The official image, by tag. For reproducible builds pin it by digest, e.g.
#   --build-arg BASE_IMAGE=debian:trixie-slim@sha256:<digest>
# with the digest from `docker buildx imagetools inspect debian:trixie-slim`.
# `cargo xtask build` passes the offline base (localhost/debian:trixie-slim) when it exists.
ARG BASE_IMAGE=debian:trixie-slim

# ---------------------------------------------------------------------------------------------
# Two platforms meet here. Everything that installs, downloads, compiles or trims runs on the
# build machine ($BUILDPLATFORM, stages from build-base), at native speed whatever the target;
# the venv is installed for the target ($TARGETPLATFORM) by uv from the target's wheels. What
# runs for the target is its base (base), the service user and data directory copied in as files
# (users), and one step at the very end: the import test of the finished venv with the image's
# own Python (under emulation when the target is another CPU: see docs/MULTI_PLATFORM.md).

# base: the target's Debian and its python3 at /usr/bin/python3. The venv made in deps points at
# that path, so it works because the build machine's python3 (build-base) is the same version
# there. With the offline base python3 is in the base image already and nothing runs here.
FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV LANG=C.UTF-8
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=bind,source=app/docker/debian_python3.sh,target=/tmp/debian_python3.sh \
    bash /tmp/debian_python3.sh

# build-base: the same for the build machine (the same step: natively the two stages are one).
FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build-base
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV LANG=C.UTF-8
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=bind,source=app/docker/debian_python3.sh,target=/tmp/debian_python3.sh \
    bash /tmp/debian_python3.sh

# ---------------------------------------------------------------------------------------------
# tools: what builds the venv, on the build machine. Nothing here that is not in /opt/venv (uv,
# pip, binutils, caches) reaches the final image.
FROM build-base AS tools
ARG TARGETARCH
# The target's binutils for `strip` in the trim steps (`target-strip`, the native one for a
# native build), and pip only to bootstrap uv: as Debian's bare wheel (python3-pip-whl), run
# from the wheel itself — python3-pip would byte-compile all of pip and pull in python3-wheel
# for one run (1.3 s of every cold build, measured: docs/DOCKER_OPTIMIZATION.md §12c). No
# package descriptions in other languages: nothing here reads them.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    case "$TARGETARCH" in \
      amd64) binutils=binutils-x86-64-linux-gnu strip=x86_64-linux-gnu-strip ;; \
      arm64) binutils=binutils-aarch64-linux-gnu strip=aarch64-linux-gnu-strip ;; \
      *) echo "error: no binutils for TARGETARCH=$TARGETARCH" >&2; exit 2 ;; \
    esac \
 && rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >/etc/apt/apt.conf.d/keep-cache \
 && echo 'Acquire::Languages "none";' >/etc/apt/apt.conf.d/no-languages \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "$binutils" python3-pip-whl \
 && ln -s "/usr/bin/$strip" /usr/local/bin/target-strip
# uv from PyPI, hash-pinned, into a directory outside the venv. The CA bundle is a secret
# mounted only for the steps that download: it never lands in a layer, ENV or the history.
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=app/requirements-uv.lock,target=/tmp/requirements-uv.lock \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && pip_wheel=$(echo /usr/share/python-wheels/pip-*.whl) \
 && python3 "$pip_wheel/pip" install --disable-pip-version-check --root-user-action=ignore \
      --no-deps --require-hashes \
      --target /opt/uv -r /tmp/requirements-uv.lock \
 && /opt/uv/bin/uv --version
# The target, as uv's --python-platform and --python-version, read from the target base's dpkg
# status (its glibc and python3.X-minimal); fails unless the build machine's python3 is the same
# X.Y. Every uv step below installs and checks wheels for it.
RUN --mount=type=bind,from=base,source=/var/lib/dpkg/status,target=/tmp/target-status \
    --mount=type=bind,source=app/docker/target_python.py,target=/tmp/target_python.py \
    python3 /tmp/target_python.py /tmp/target-status "$TARGETARCH" >/opt/uv/target \
 && echo "venv for $TARGETARCH: $(cat /opt/uv/target)"
# copy: the uv cache is a mount on another filesystem, hard links cannot reach it.
# No UV_COMPILE_BYTECODE: the venv is byte-compiled after the trim, so no time goes into
# compiling test suites that are deleted right after; .pyc files are made in the build as the
# runtime filesystem is read-only and the runtime user may not write them anyway; byte code is
# the same on every CPU.
ENV PATH=/opt/venv/bin:/opt/uv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    UV_CACHE_DIR=/root/.cache/uv \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    STRIP=target-strip

# ---------------------------------------------------------------------------------------------
# lock-names: the distributions requirements.lock pins, by name only. The torch stage leaves
# those to the lock, and it mounts this list rather than the lock: BuildKit keys a mount by its
# content, so a version bump in the lock (the same names) does not re-run the torch stage.
FROM build-base AS lock-names
RUN --mount=type=bind,source=app/requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,source=app/docker/venv_layers.py,target=/tmp/venv_layers.py \
    python3 /tmp/venv_layers.py lock-names /tmp/requirements.lock >/lock-names.txt

# ---------------------------------------------------------------------------------------------
# torch: the torch family from TORCH_INDEX_URL, together with the dependencies it declares. It
# is not in requirements.lock, and that lock is installed in deps with --no-deps, so nothing can
# resolve torch again and replace this build of it by another (the default index serves the
# CUDA build).
# torch 2.15.0 is built against triton 3.9.0 (its CUDA wheel requires triton==3.9.0); on the ROCm
# index that triton is published as `triton-rocm` (`pytorch-triton-rocm` before ROCm 7), pinned
# here so the pair cannot drift. Not verifiable on the build machine (the index is unreachable
# there): check `uv pip install --dry-run` against the index when moving versions.
# triton stays here, unlike in the CUDA image: the ROCm torch wheel requires it, and it is part
# of the torch family this image is meant to carry (torch.compile works on ROCm). Its headers are
# kept for its JIT. torch/lib is not stripped: the ROCm wheel vendors the HIP runtime and GPU
# libraries there, and stripped HIP libraries are known to break kernel lookup — untestable
# without an AMD GPU.
# One RUN, because its last command hard-links every file of the torch family (not of the
# lock's packages) into /layers/torch for a COPY of its own: links to files made in the same
# step cost nothing, in a later step each file would first be copied up from the layer below.
FROM tools AS torch
ARG TORCH_SPEC="torch==2.15.0+rocm7.2 triton-rocm==3.9.0"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/rocm7.2
# The guard fails the build right after the install, before the slow trim, when the torch that
# came in is not a ROCm build or brought NVIDIA/CUDA wheels.
# TORCH_SPEC is split into words on purpose (SC2086): it may list several requirements; so is
# /opt/uv/target (SC2046): the target's two uv options and their values.
# hadolint ignore=SC2046,SC2086
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,from=lock-names,source=/lock-names.txt,target=/tmp/lock-names.txt \
    --mount=type=bind,source=app/docker/check_torch_variant.py,target=/tmp/check_torch_variant.py \
    --mount=type=bind,source=app/docker/trim_venv.py,target=/tmp/trim_venv.py \
    --mount=type=bind,source=app/docker/venv_layers.py,target=/tmp/venv_layers.py \
    uv venv --python /usr/bin/python3 /opt/venv \
 && if [ "$TORCH_INDEX_URL" = default ]; then set --; else set -- --index-url "$TORCH_INDEX_URL"; fi \
 && SSL_CERT_FILE=/run/secrets/ca-bundle uv pip install $(cat /opt/uv/target) "$@" $TORCH_SPEC \
 && python -B /tmp/check_torch_variant.py rocm \
 && python /tmp/trim_venv.py /opt/venv --keep-headers-of triton --no-strip-under torch/lib \
 && python -m compileall -q -j 0 /opt/venv/lib \
 && python /tmp/venv_layers.py split /opt/venv /layers --leave /tmp/lock-names.txt

# ---------------------------------------------------------------------------------------------
# deps: the whole venv, on the build machine, on top of the torch stage's. It is tested as one
# environment in the image (app), by the target's Python.
FROM torch AS deps
# One step (one container and one snapshot on every dependency change):
# - everything else, exactly as locked: versions and sha256 of every file. A package the torch
#   step also brought (typing-extensions, …) is moved to the locked version; `uv pip check`
#   then proves torch's own requirements still hold;
# - trim what the lock brought (the torch family was trimmed in its own stage), then take the
#   torch family's files out of /opt/venv — after proving they are unchanged since they were
#   linked into /layers, so the image's torch layer holds what the torch stage made;
# - byte-compile what is left, the lock's packages (the torch stage compiled the torch family).
# Dropped from the lock's packages, as nothing outside them imports them:
#   sqlalchemy/testing  SQLAlchemy's pytest plugin and fixtures for dialect test suites
#   numpy/f2py          the Fortran-to-Python interface generator, a build tool (`numpy.f2py`
#                       is imported only when that attribute is asked for)
# /opt/uv/target is split into words on purpose (SC2046): the target's two uv options.
# hadolint ignore=SC2046
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=app/requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,source=app/docker/trim_venv.py,target=/tmp/trim_venv.py \
    --mount=type=bind,source=app/docker/venv_layers.py,target=/tmp/venv_layers.py \
    SSL_CERT_FILE=/run/secrets/ca-bundle uv pip install $(cat /opt/uv/target) --no-deps \
      --require-hashes -r /tmp/requirements.lock \
 && uv pip check $(cat /opt/uv/target) \
 && python /tmp/trim_venv.py /opt/venv --leave-listed /layers/manifest.json \
      --drop sqlalchemy/testing --drop numpy/f2py \
 && python /tmp/venv_layers.py drop /opt/venv /layers \
 && python -m compileall -q -j 0 /opt/venv/lib

# ---------------------------------------------------------------------------------------------
# users: the service user and its data directory, made on the build machine in a copy of the
# target's account files (`useradd --prefix` runs nothing of the target), then copied in as
# files.
# Fixed non-root UID in group 0: volumes can be prepared for a known UID, and platforms that
# run images under an arbitrary UID (always in group 0) still get access through the group.
# The data directory is the only thing the service writes; it is created owned by that user
# (no chown -R layer), and declared a VOLUME after that so an anonymous volume inherits the
# ownership.
FROM build-base AS users
RUN --mount=type=bind,from=base,source=/etc,target=/tmp/target-etc \
    mkdir -p /users/etc \
 && cp -a /tmp/target-etc/passwd /tmp/target-etc/group /tmp/target-etc/shadow \
      /tmp/target-etc/gshadow /users/etc/ \
 && useradd --prefix /users --uid 10001 --gid 0 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin voxserve \
 && install -d -o 10001 -g 0 -m 0770 /users/data

# ---------------------------------------------------------------------------------------------
# app: the runtime. No uv, pip, compilers, apt lists or caches: only python3, the venv and the
# code.
FROM base AS app
COPY --from=users /users/ /
# Here, below every layer an app or dependency change makes, so no rebuild runs it again.
WORKDIR /opt/voxserve
# --link: the layers do not depend on the ones below them, so a new Debian base reuses them as
# they are. The venv and the code stay owned by root and read-only for the service user: a
# compromised process cannot rewrite its own code, even where the root filesystem is writable.
COPY --link --from=torch --chown=0:0 /layers/torch/ /opt/venv/
COPY --link --from=deps --chown=0:0 /opt/venv /opt/venv
# The proof that the finished venv imports and computes, with the image's own Python: for a
# foreign target the one emulated step of the build (with torch, the slowest: see
# docs/MULTI_PLATFORM.md). It writes nothing.
RUN --mount=type=bind,source=app/docker/smoke_test.py,target=/tmp/smoke_test.py \
    /opt/venv/bin/python -B /tmp/smoke_test.py --torch required
# The app as source, straight from the context: an app change is one copy, no build step.
# Python compiles the app's modules in memory when the service starts (they cannot be written
# back: read-only filesystem, PYTHONDONTWRITEBYTECODE) — 8 small modules, measured in
# docs/DOCKER_OPTIMIZATION.md §12c; the venv, thousands of files, is byte-compiled above.
COPY --link --chown=0:0 app/src/voxserve /opt/voxserve/voxserve
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/voxserve \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VOXSERVE_DATA_DIR=/data
LABEL org.opencontainers.image.title="voxserve" \
      org.opencontainers.image.description="Speech-analysis web service (ROCm)" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:0
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-m", "voxserve.healthcheck"]
CMD ["python3", "-m", "uvicorn", "voxserve.main:app", "--host", "0.0.0.0", "--port", "8000"]
