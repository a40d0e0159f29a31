# The serving image: the gated model behind the FastAPI app of model/.
#
#   DOCKER_BUILDKIT=1 docker build --build-arg MODEL_DIR=out/model -t churn-model .
#   (or: python -m pipeline image build --out out, which also sets the labels)
#
# BASE_IMAGE: any Debian-based image with python3 and its venv module. The default is the
# official Python 3.14.7 slim (bookworm) image pinned by its index digest, as docker-library/repo-info
# records it (repos/python/remote/3.14.7-slim-bookworm.md at commit 422f3cfe488dc9ae394c5058b27db617f72c91db);
# the Dagger module builds on the same reference, so its steps and this image run one Python, and
# every pin in requirements-serve.txt has cp314 wheels for x86_64 and aarch64. Where Docker Hub is
# out of reach, scripts/docker-engine.sh builds a stand-in (local/python:3.11-bookworm, Debian's
# Python 3.11, which the same pins also install on) and --build-arg BASE_IMAGE selects it.
#
# Behind a TLS-intercepting proxy pip needs its CA bundle: pass it as the BuildKit secret
# "ca-bundle" (--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt). It is mounted
# for the install only and is in no layer, no ENV and no history entry.
ARG BASE_IMAGE=python:3.14.7-slim-bookworm@sha256:9ab8d9c8514b44f90cf0029dd42fdd7e9e211e639c8b995304cc04568dee900f

FROM ${BASE_IMAGE} AS build
# An index URL is a build-stage argument only: the final stage does not inherit it.
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN python3 -m venv /opt/venv
COPY requirements-serve.txt /tmp/requirements-serve.txt
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --index-url "$PIP_INDEX_URL" -r /tmp/requirements-serve.txt \
    && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && find /opt/venv/lib -depth -type d -name tests -path '*site-packages/*/*' -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/_distutils_hack \
              /opt/venv/lib/python3*/site-packages/distutils-precedence.pth

FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin model
COPY --from=build /opt/venv /opt/venv
COPY model/ /app/src/model/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Per-model arguments come after the heavy layers, so a new model reuses them from the cache.
ARG MODEL_DIR=out/model
COPY ${MODEL_DIR}/ /app/model/
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=
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
USER 10001
WORKDIR /app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["python", "-m", "model", "--model-dir", "/app/model", "--host", "0.0.0.0", "--port", "8080"]
