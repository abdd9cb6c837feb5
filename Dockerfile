# syntax=docker/dockerfile:1
# carebroker image: `carebroker run --role ROLE` against an existing PostgreSQL
# and Kafka (the Helm chart in charts/carebroker runs one role per Deployment).
#
#   docker build -t carebroker .
#   docker run -e CAREBROKER_DATABASE_URL=... -e CAREBROKER_KAFKA_BOOTSTRAP_SERVERS=... \
#     carebroker run --role router
#
# Two stages: the first builds carebroker and its dependencies into a virtual
# environment, the second copies only that environment onto a slim Python, so
# the final image has no compiler, no pip cache and no source tree.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/carebroker
WORKDIR /src
# Metadata first, so a source change does not invalidate the dependency layer.
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY adapters ./adapters
COPY routing ./routing
# A regular (not editable) install: the package, its migrations and the
# `carebroker` entry point land in /opt/carebroker, with their bytecode compiled
# now (pip's default), as the pods' root filesystem is read-only.
RUN /opt/carebroker/bin/pip install .

FROM python:${PYTHON_VERSION}-slim-bookworm
# A fixed numeric user, so Kubernetes' runAsNonRoot can check it (the chart
# runs as 10001:10001).
RUN groupadd --system --gid 10001 carebroker \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin carebroker
COPY --from=build /opt/carebroker /opt/carebroker
ENV PATH=/opt/carebroker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    CAREBROKER_MLLP__HOST=0.0.0.0 \
    CAREBROKER_HTTP_HOST=0.0.0.0 \
    CAREBROKER_DATA_DIR=/tmp/carebroker
USER 10001:10001
WORKDIR /tmp
# MLLP (HL7 v2) and HTTP (health, metrics, FHIR, console).
EXPOSE 2575 8080
# Kubernetes probes /healthz itself; this is for plain `docker run`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CAREBROKER_HTTP_PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["carebroker"]
# Every role in one process against the configured PostgreSQL and Kafka; the
# chart passes `run --role ROLE` for each Deployment.
CMD ["run", "--role", "mllp", "--role", "fhir", "--role", "files", "--role", "relay", "--role", "router", "--role", "delivery", "--role", "audit", "--role", "console"]
