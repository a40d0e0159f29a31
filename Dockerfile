# The serving image: the gated model behind the FastAPI app of model/.
#
#   docker build --build-arg MODEL_DIR=out/model -t churn-model .
#   (or: python -m pipeline image build --out out)
#
# BASE_IMAGE defaults to the official Python slim image pinned by tag and digest; the
# digest is the one pinned in dagger/dagger at tag v0.21.8
# (core/integration/module_python_test.go), the same image the Dagger step containers
# use. Any Debian-based image with python3 and its venv module works (CI builds one
# locally with debootstrap). An optional CA bundle for pip behind a TLS-intercepting
# proxy is a build secret (id ca-bundle): mounted for the install only, never in a layer.
ARG BASE_IMAGE=python:3.12.1-slim@sha256:a64ac5be6928c6a94f00b16e09cdf3ba3edd44452d10ffa4516a58004873573e

FROM ${BASE_IMAGE} AS build
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN python3 -m venv /opt/venv
COPY requirements-serve.txt /tmp/requirements-serve.txt
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --index-url "$PIP_INDEX_URL" -r /tmp/requirements-serve.txt \
    && find /opt/venv/lib -depth -type d -name tests -path '*site-packages/*/*' -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/pip /opt/venv/lib/python3*/site-packages/pip-*

FROM ${BASE_IMAGE}
ARG MODEL_DIR=out/model
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG MODEL_VERSION=unknown
ARG MODEL_SHA256=unknown
ARG MODEL_METRICS=
LABEL org.opencontainers.image.title="ml-cicd model server" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.ml-cicd.model.version="${MODEL_VERSION}" \
      io.ml-cicd.model.sha256="${MODEL_SHA256}" \
      io.ml-cicd.model.metrics="${MODEL_METRICS}"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin model
COPY --from=build /opt/venv /opt/venv
COPY model/ /app/src/model/
COPY ${MODEL_DIR}/ /app/model/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["python", "-m", "model", "--model-dir", "/app/model", "--host", "0.0.0.0", "--port", "8080"]
