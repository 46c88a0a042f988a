# syntax=docker/dockerfile:1
# One image for every role of Entativa Graph; docker-compose.yml runs each with its command:
#   entativa serve --subgraph NAME --host 0.0.0.0 --no-demo --no-migrate   one subgraph
#   entativa serve --host 0.0.0.0 --no-demo --no-migrate                   the whole graph
#   entativa worker                                                        outbox relay, consumers
#   entativa migrate                                                       one-shot migrations
# Settings come from ENTATIVA_* variables (README "Configuration"); nothing is baked in
# but the paths below.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ── build: the project and its dependencies in a virtualenv ─────────────────────────
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/entativa
ENV PATH=/opt/entativa/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they
# change, not on every code change. (Every dependency ships manylinux wheels; one
# that does not would need build-essential here, never in the runtime stage.)
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install -r requirements.txt
# The packages pyproject.toml installs ([tool.setuptools] packages), and README.md (its readme).
COPY README.md ./
COPY schema ./schema
COPY resolvers ./resolvers
COPY datasources ./datasources
COPY subscriptions ./subscriptions
COPY server ./server
COPY clients ./clients
COPY migrations ./migrations
RUN pip install --no-deps . \
 && python -m compileall -q /opt/entativa/lib

# ── runtime: the virtualenv, a non-root user, nothing else ──────────────────────────
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/entativa/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENTATIVA_ENVIRONMENT=production \
    ENTATIVA_DATA_DIR=/data \
    ENTATIVA_MEDIA_DIR=/data/media \
    ENTATIVA_READY_URL=http://127.0.0.1:8000/readyz
RUN groupadd --system --gid 10001 entativa \
 && useradd --system --uid 10001 --gid entativa --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin entativa \
 && mkdir -p /data/media \
 && chown -R entativa:entativa /data
COPY --from=build /opt/entativa /opt/entativa
USER entativa:entativa
WORKDIR /data
EXPOSE 8000
# Readiness: every configured store answers (server/observability.py /readyz; 503 names
# the one that does not). The worker serves no HTTP: docker-compose.yml disables this
# check for it and for the migration job. Python, not curl: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['ENTATIVA_READY_URL'], timeout=4).status == 200 else 1)"]
# SIGTERM (docker stop): sockets closed with 1001, requests drained, the outbox flushed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["entativa"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--no-demo"]
