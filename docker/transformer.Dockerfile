# syntax=docker/dockerfile:1.7
#
# Transformer image: KServe transformer that reads Feast online features.
# The same image is also the cluster's "Feast image": the feature server (`feast serve`),
# the registry server (`feast serve_registry`) and the apply/materialize Jobs run it with
# `command: ["feast", ...]`, so every pod uses one Feast version and one feature repo.
#
#   docker build -f docker/transformer.Dockerfile -t kind.local/feast-kserve-transformer:dev .
#
# Runtime contract (docs/CONTRACT.md): user 10001, working dir /app, feature repo at
# /app/feature_repo, entrypoint `python -m transformer`. Nothing is written outside /tmp
# (HOME=/tmp, no bytecode writes), so it runs with readOnlyRootFilesystem and an emptyDir
# on /tmp.

# Exact tag, same for both stages. To pin by digest instead:
#   --build-arg PYTHON_IMAGE=docker.io/library/python:3.11.13-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=docker.io/library/python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the build needs (see .dockerignore): metadata, then the packages.
COPY pyproject.toml README.md ./
COPY transformer/ ./transformer/
COPY predictor/ ./predictor/
# Non-editable install of the `transformer` extra (Feast with Redis). For collocated mode
# (the model scored inside the transformer) add the model frameworks:
#   --build-arg EXTRAS=transformer,predictor       (scikit-learn + XGBoost, ~+150 MB)
ARG EXTRAS=transformer
# Bytecode is compiled
# here, at build time, also for -O, so the read-only runtime never writes .pyc files.
# PYTHONOPTIMIZE=1 at runtime turns Feast's typeguard @typechecked into a no-op (its
# documented production setting): instrumenting Feast's classes at import took ~3 s of a
# 5 s cold start, and the checks cost CPU on every call.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[${EXTRAS}]" \
 && python -O -m compileall -q -j 0 /opt/venv/lib > /dev/null \
 && python -m transformer --help > /dev/null \
 && feast version

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="feast-kserve-transformer" \
      org.opencontainers.image.description="KServe transformer reading Feast online features (also runs feast serve / serve_registry)" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed, unprivileged identity (matches runAsUser/runAsGroup in the manifests).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The feature definitions (no data/, no local registry: see .dockerignore). Owned by root
# and read-only for the app user; Jobs that need a writable repo copy it to an emptyDir.
COPY feature_repo/ /app/feature_repo/

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/tmp/.cache

USER 10001:10001

# HTTP (REST v1/v2, /metrics) and gRPC v2.
EXPOSE 8080 8081

ENTRYPOINT ["python", "-m", "transformer"]
