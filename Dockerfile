# One image for every NileCare process (gateway, workers, exporter, simulator, migrations).
# BASE_IMAGE is any Debian bookworm image, with Python (python:3.11-slim-bookworm) or without
# it (a debootstrap rootfs on a host with no registry): Debian's python3 is 3.11 too.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 DEBIAN_FRONTEND=noninteractive
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/nilecare
# Optional, filled by the build script: the host's CA bundle (a TLS-inspecting proxy) and/or
# wheels built on the host (no index reachable from the build). Never copied to the runtime.
COPY docker/build-extras/ /tmp/build-extras/
WORKDIR /src
COPY pyproject.toml constraints.tx[t] ./
COPY service ./service
RUN set -eu; \
    if [ -f /tmp/build-extras/ca-certificates.crt ]; then \
        export PIP_CERT=/tmp/build-extras/ca-certificates.crt; fi; \
    set --; \
    if [ -d /tmp/build-extras/wheels ]; then \
        set -- --no-index --find-links /tmp/build-extras/wheels; fi; \
    if [ -f constraints.txt ]; then set -- "$@" --constraint constraints.txt; fi; \
    /opt/nilecare/bin/pip install "$@" . \
    && /opt/nilecare/bin/nilecare --help >/dev/null

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent \
        --shell /usr/sbin/nologin nilecare \
    && mkdir -p /var/lib/nilecare/statements \
    && chown -R nilecare:nilecare /var/lib/nilecare
COPY --from=build /opt/nilecare /opt/nilecare
ENV PATH=/opt/nilecare/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SECRETS_DIR=/run/secrets \
    GATEWAY_HOST=0.0.0.0 \
    EXPORTER_HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/nilecare
EXPOSE 7001 9101 9102 9103
# Python, not curl: the probe is part of the CLI.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["nilecare", "healthcheck", "http://127.0.0.1:7001/health"]
CMD ["nilecare", "serve"]
