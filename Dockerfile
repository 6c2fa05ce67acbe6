# voxserve, ROCm variant (the default Dockerfile): torch for AMD GPUs and its triton, from the
# PyTorch ROCm index; without a GPU torch computes on the CPU. `cargo xtask build rocm`; run with
# --device=/dev/kfd --device=/dev/dri and the video/render groups (the service is UID 10001).
# No `# syntax=` line: it would pull a frontend image, and the built-in one has all this uses.
# Layers bottom to top change least often first: Debian, user, torch (+triton), venv, app.

# Pin by digest to reproduce a build; `cargo xtask build` passes the offline base when present.
ARG BASE_IMAGE=debian:trixie-slim
# The stage the app comes from; `cargo xtask build` names a build context instead (app-src below).
ARG APP_SRC=app-src-build

# ---- base: the target's Debian with python3 at /usr/bin/python3, where the venv points.
FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV LANG=C.UTF-8
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=bind,source=app/docker/debian_python3.sh,target=/tmp/debian_python3.sh \
    bash /tmp/debian_python3.sh

# The same for the build machine: everything that installs runs there, natively (MULTI_PLATFORM).
FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build-base
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV LANG=C.UTF-8
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=bind,source=app/docker/debian_python3.sh,target=/tmp/debian_python3.sh \
    bash /tmp/debian_python3.sh

# The service user, UID 10001 in group 0 (arbitrary-UID platforms get access through the group),
# added to a copy of the target's account files without running the target; /data is its own.
# Reproducible: its password-change day is root's in the base, every mtime 0 (as in each tree
# below that the image copies: a copy to / makes no directory with the build's time).
FROM build-base AS users
RUN --mount=type=bind,from=base,source=/etc,target=/tmp/target-etc \
    mkdir -p /users/etc /users/opt/voxserve \
 && cp -a /tmp/target-etc/passwd /tmp/target-etc/group /tmp/target-etc/shadow \
      /tmp/target-etc/gshadow /users/etc/ \
 && day=$(awk -F: '$1 == "root" { print $3 }' /users/etc/shadow) \
 && SOURCE_DATE_EPOCH=$((${day:-0} * 86400)) useradd --prefix /users --uid 10001 --gid 0 \
      --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin voxserve \
 && install -d -o 10001 -g 0 -m 0770 /users/data \
 && find /users -exec touch -h -d @0 {} +

# The app at /app-src/opt/voxserve/voxserve, every mtime 0 (not the checkout's). `cargo xtask
# build` passes this tree prepared, as a build context named by its content's hash (APP_SRC):
# an app change runs one COPY, and no stale sync of the context is reused. `docker build` runs
# this stage.
FROM build-base AS app-src-build
RUN --mount=type=bind,source=app/src/voxserve,target=/tmp/voxserve \
    mkdir -p /app-src/opt/voxserve \
 && cp -r /tmp/voxserve /app-src/opt/voxserve/voxserve \
 && find /app-src -exec touch -h -d @0 {} +
# hadolint ignore=DL3006
FROM ${APP_SRC} AS app-src

# ---- deps: uv, the torch family and the locked venv, on the build machine.
FROM build-base AS tools
ARG TARGETARCH
# The target's strip for the trim; pip as Debian's bare wheel, only to bootstrap uv.
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
# The CA bundle is a secret, mounted only where something downloads: never in a layer or history.
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=app/requirements-uv.lock,target=/tmp/requirements-uv.lock \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && pip_wheel=$(echo /usr/share/python-wheels/pip-*.whl) \
 && python3 "$pip_wheel/pip" install --disable-pip-version-check --root-user-action=ignore \
      --no-deps --require-hashes \
      --target /opt/uv -r /tmp/requirements-uv.lock \
 && /opt/uv/bin/uv --version
# uv's --python-platform and --python-version for the target, from the target's dpkg status.
RUN --mount=type=bind,from=base,source=/var/lib/dpkg/status,target=/tmp/target-status \
    --mount=type=bind,source=app/docker/target_python.py,target=/tmp/target_python.py \
    python3 /tmp/target_python.py /tmp/target-status "$TARGETARCH" >/opt/uv/target \
 && echo "venv for $TARGETARCH: $(cat /opt/uv/target)"
# copy: the uv cache is another filesystem. No UV_COMPILE_BYTECODE: compiled after the trim,
# by source hash, not mtime (reproducible; the image never changes its sources). No byte code
# from the build's scripts: a .pth import would write it after the mtimes are reset.
ENV PATH=/opt/venv/bin:/opt/uv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    UV_CACHE_DIR=/root/.cache/uv \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PYTHONDONTWRITEBYTECODE=1 \
    STRIP=target-strip

# The lock's names only: a version bump in the lock does not re-run the torch stage.
FROM build-base AS lock-names
RUN --mount=type=bind,source=app/requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,source=app/docker/venv_layers.py,target=/tmp/venv_layers.py \
    python3 /tmp/venv_layers.py lock-names /tmp/requirements.lock >/lock-names.txt

# One RUN, so that hard-linking the torch family into /layers/torch (a layer of its own) is free.
FROM tools AS torch
# torch 2.15.0 requires triton 3.9.0, named triton-rocm on this index; check both when moving.
ARG TORCH_SPEC="torch==2.15.0+rocm7.2 triton-rocm==3.9.0"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/rocm7.2
# triton stays (the ROCm wheel requires it), headers too for its JIT; torch/lib is not stripped:
# stripped HIP libraries are known to break kernel lookup. TORCH_SPEC, /opt/uv/target: word lists.
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
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
 && find /opt/venv -exec touch -h -d @0 {} + \
 && python /tmp/venv_layers.py split /opt/venv /layers --leave /tmp/lock-names.txt

FROM torch AS deps
# The lock with --no-deps, so nothing resolves torch again; then the trim, the torch family's
# files (proven unchanged) out of /opt/venv, and byte code. sqlalchemy/testing, numpy/f2py: a
# test plugin and a build tool nothing imports. /image is what the image copies. /opt/uv/target
# is a word list on purpose.
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
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
 && mkdir -p /image/opt \
 && cp -al /opt/venv /image/opt/venv \
 && find /image -exec touch -h -d @0 {} +

# ---- app: the runtime, python3 with the venv and the code; no uv, pip, apt lists or caches.
FROM base AS app
COPY --from=users /users/ /
# --link: a new Debian base reuses these layers. Owned by root: the service cannot rewrite them.
COPY --link --from=torch --chown=0:0 /layers/torch/ /
COPY --link --from=deps --chown=0:0 /image/ /
# The import proof, by the image's own Python on the finished venv; it writes nothing.
RUN --mount=type=bind,source=app/docker/smoke_test.py,target=/tmp/smoke_test.py \
    /opt/venv/bin/python -B /tmp/smoke_test.py --torch required
# Just before the app: the step takes SOURCE_DATE_EPOCH, new with every commit, and re-runs with
# it but not with an app change (the directory is the users').
WORKDIR /opt/voxserve
COPY --link --from=app-src --chown=0:0 /app-src/ /
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
