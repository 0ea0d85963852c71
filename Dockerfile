# syntax=docker/dockerfile:1
# One image for every CloudOps service. The service is the CMD:
#   docker run cloudops resources   |   costs   |   alerts   |   gateway
# (ENTRYPOINT is `python -m`, so the CMD names the module to run.)

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: resolve the locked dependencies into /app/.venv --------------------------------------
FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app

# Third-party dependencies first, from the lock file and the workspace manifests only, so that a
# code change does not reinstall them.
COPY pyproject.toml uv.lock .python-version ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY services/resources/pyproject.toml services/resources/pyproject.toml
COPY services/costs/pyproject.toml services/costs/pyproject.toml
COPY services/alerts/pyproject.toml services/alerts/pyproject.toml
COPY services/gateway/pyproject.toml services/gateway/pyproject.toml
RUN uv sync --locked --no-dev --no-install-workspace --compile-bytecode

# Then the workspace itself (libs/common and the four services, with their migrations).
COPY . .
RUN uv sync --locked --no-dev --compile-bytecode

# --- runtime: no uv, no build tools, a non-root user -----------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG UID=10001
RUN groupadd --system --gid ${UID} cloudops \
 && useradd --system --uid ${UID} --gid ${UID} --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cloudops

WORKDIR /app
# Workspace members are installed editable, so the code must stay at the same path (/app).
COPY --from=build --chown=root:root /app /app

ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLOUDOPS_ENVIRONMENT=production \
    CLOUDOPS_GATEWAY_HOST=0.0.0.0 \
    CLOUDOPS_RESOURCES_HOST=0.0.0.0 \
    CLOUDOPS_COSTS_HOST=0.0.0.0 \
    CLOUDOPS_ALERTS_HOST=0.0.0.0

# Numeric UID so that Kubernetes can verify runAsNonRoot.
USER 10001:10001

EXPOSE 8100 8101 8102 8103

# Liveness of whichever service this container runs: the module after `-m` in PID 1's command
# line gives the service, CLOUDOPS_<SERVICE>_PORT (or the default port) gives the port.
# CLOUDOPS_HEALTHCHECK_PORT overrides both. python's urllib, no curl in the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; a = open('/proc/1/cmdline', 'rb').read().decode().split(chr(0)); n = a[a.index('-m') + 1] if '-m' in a else 'gateway'; p = os.environ.get('CLOUDOPS_HEALTHCHECK_PORT') or os.environ.get('CLOUDOPS_' + n.upper() + '_PORT') or {'gateway': 8100, 'resources': 8101, 'costs': 8102, 'alerts': 8103}[n]; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % p, timeout=2)"]

ENTRYPOINT ["python", "-m"]
CMD ["gateway"]
