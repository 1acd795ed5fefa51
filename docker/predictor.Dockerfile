# syntax=docker/dockerfile:1.7
#
# Predictor image: the click model behind kserve.ModelServer (v1 + v2 REST, v2 gRPC).
# Used by the ServingRuntime `feast-click-predictor`; KServe's storage initializer puts the
# model (model.joblib | model.ubj + metadata.json) in /mnt/models.
#
#   docker build -f docker/predictor.Dockerfile -t kind.local/feast-kserve-predictor:dev .
#
# Runtime contract (docs/CONTRACT.md): user 10001, working dir /app, entrypoint
# `python -m predictor`. Nothing is written outside /tmp, so it runs with
# readOnlyRootFilesystem and an emptyDir on /tmp.

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
COPY pyproject.toml README.md ./
COPY predictor/ ./predictor/
COPY transformer/ ./transformer/
# Non-editable install of the `predictor` extra (scikit-learn, xgboost). Bytecode is
# compiled here, also for -O (PYTHONOPTIMIZE=1 at runtime: see the transformer image), so
# the read-only runtime never writes .pyc files.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[predictor]" \
 && python -O -m compileall -q -j 0 /opt/venv/lib > /dev/null \
 && python -m predictor --help > /dev/null

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="feast-kserve-predictor" \
      org.opencontainers.image.description="Click model (scikit-learn / XGBoost) served by kserve.ModelServer" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    OMP_NUM_THREADS=1

USER 10001:10001

# HTTP (REST v1/v2, /metrics) and gRPC v2.
EXPOSE 8080 8081

ENTRYPOINT ["python", "-m", "predictor"]
