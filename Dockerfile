# servestatic/base: gunicorn serving a site's precompressed static files, alone or in
# front of your own WSGI or ASGI app. Use it as `FROM servestatic/base` (see the README).
#
# Air-gapped builds (no PyPI): put the wheels in a directory (scripts/wheelhouse.sh),
# mount it into the build and point pip at it, e.g. with podman:
#   podman build --format docker --network none -v "$PWD/.cache/wheelhouse/py3.11:/wheelhouse:ro" \
#     --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheelhouse \
#     --build-arg BASE_IMAGE=<a local python image> -t servestatic/base:0.1 .
# (`--format docker` keeps the HEALTHCHECK: the OCI image format has no field for it.)
ARG BASE_IMAGE=python:3.12-slim-bookworm

# --- builder: make wheels for servestatic and its dependencies, install them into a venv.
# The final stage copies only the venv, so nothing used to build reaches it.
FROM ${BASE_IMAGE} AS builder
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml ./
COPY servestatic/ servestatic/
# With the zstd extra (backports.zstd, 1.4 MB; not zstandard, 23 MB): `servestatic compress
# --cache-dir` in an image FROM this one makes dcz deltas, and --zstd .zst variants.
# Left out to stay within 40 MB of the base: setuptools (not needed to pip install wheels
# or with build isolation) and pip's bytecode (pip runs only at build time).
RUN python3 -m venv /opt/servestatic \
    && /opt/servestatic/bin/pip wheel --wheel-dir /wheels ".[zstd]" \
    && /opt/servestatic/bin/pip install --no-index --find-links /wheels /wheels/*.whl \
    && /opt/servestatic/bin/pip uninstall --yes setuptools \
    && find /opt/servestatic/lib/python3*/site-packages/pip -name __pycache__ -prune -exec rm -rf {} +

# --- the image
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="servestatic/base" \
      org.opencontainers.image.description="Serve a Python web app's static files correctly and fast, as the origin behind a CDN." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/servestatic/servestatic" \
      org.opencontainers.image.documentation="https://github.com/servestatic/servestatic#container-image"

# The venv is on PATH, so `pip install` adds your app next to servestatic.
ENV VIRTUAL_ENV=/opt/servestatic \
    PATH=/opt/servestatic/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVESTATIC_ROOT=/srv/www \
    PORT=8000

# A fixed non-root UID in group 0: files are group-readable, so the image also runs as
# an arbitrary UID (OpenShift, `--user 12345:0`). The site root belongs to root: the
# server only reads it.
RUN useradd --no-log-init --uid 10001 --gid 0 --home-dir /srv --no-create-home \
        --shell /usr/sbin/nologin servestatic \
    && mkdir -p /srv/www

COPY --from=builder /opt/servestatic /opt/servestatic
COPY entrypoint/servestatic-entrypoint /usr/local/bin/servestatic-entrypoint

WORKDIR /srv
USER 10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# No curl in the image: `servestatic healthcheck` asks the readiness endpoint, then the
# app's health path if there is one, where the server listens (PORT, SERVESTATIC_BIND,
# SERVESTATIC_READY_PATH, SERVESTATIC_APP_HEALTH_PATH).
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["servestatic", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/servestatic-entrypoint"]
