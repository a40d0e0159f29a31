# The serving image: the gated model behind the FastAPI app of model/.
#
#   DOCKER_BUILDKIT=1 docker build --build-arg MODEL_DIR=out/model --build-arg FLAVOUR=onnx -t churn-model .
#   (or: python -m pipeline image build --out out, which picks the flavour and sets the labels)
#
# FLAVOUR: onnx, the lean image for a model whose artefact ships model.onnx (ONNX Runtime, NumPy,
# the HTTP stack and model/: requirements-serve.txt); or sklearn (the default, any model:
# scikit-learn, SciPy and pandas instead of ONNX Runtime: requirements-serve-sklearn.txt). Either
# list, with requirements-serve-common.txt, is the whole closure, installed with --no-deps.
#
# BASE_IMAGE: any Debian-based image with python3 and its venv module. The default is the
# official Python 3.13.14 slim (trixie) image pinned by its index digest, as docker-library/repo-info
# records it (repos/python/remote/3.13.14-slim-trixie.md at commit 2986dca3a80cb11b70fc4599941096374ea9e509);
# the Dagger module builds on the same reference (src/ml_cicd/spec.py), so its steps and this image
# run one Python, and every pin in requirements*.txt has cp313 wheels for x86_64 and aarch64. Where
# Docker Hub is out of reach, scripts/docker-engine.sh builds a stand-in of the same Debian release
# and Python minor (local/python:3.13-trixie, Debian's Python 3.13) and --build-arg BASE_IMAGE
# selects it.
# The runtime layer is that base trimmed (documentation, locales, apt and its state, Perl, the
# Python test suite and bundled wheels) and squashed into one layer, so deleted files take no
# space. The image installs nothing at run time; dpkg's database stays, for image scanners.
#
# Behind a TLS-intercepting proxy pip needs its CA bundle: pass it as the BuildKit secret
# "ca-bundle" (--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt). It is mounted
# for the install only and is in no layer, no ENV and no history entry.
# Another package index (its URL may carry credentials) is the BuildKit secret "pip-index-url"
# (--secret id=pip-index-url,env=PIP_INDEX_URL), never a build argument: a build argument shows
# in `ps` while the build runs and in the history. pip reads it from its environment, not its
# command line. Without it pip uses PyPI.
ARG BASE_IMAGE=python:3.13.14-slim-trixie@sha256:9662417aace5ae7b8e2609cce472b72a8958e134ba372808abe9cc1a0c0125e6
ARG FLAVOUR=sklearn

FROM ${BASE_IMAGE} AS build
ARG FLAVOUR
RUN python3 -m venv /opt/venv
COPY requirements-serve-common.txt requirements-serve.txt requirements-serve-sklearn.txt /tmp/
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=secret,id=pip-index-url,required=false \
    case "$FLAVOUR" in \
      onnx) requirements=/tmp/requirements-serve.txt ;; \
      sklearn) requirements=/tmp/requirements-serve-sklearn.txt ;; \
      *) echo "FLAVOUR must be onnx or sklearn, got '$FLAVOUR'" >&2; exit 1 ;; \
    esac; \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    if [ -s /run/secrets/pip-index-url ]; then \
      PIP_INDEX_URL="$(cat /run/secrets/pip-index-url)"; export PIP_INDEX_URL; \
    fi; \
    /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-deps \
        -r "$requirements"
# The three model inputs (pipeline/steps/model_inputs.py writes them; each may be absent, as in a build by
# hand from the repository: a wildcard COPY that matches nothing copies nothing in BuildKit):
# requirements-model.txt, the libraries this model needs that the flavour lacks (XGBoost, the team's),
# pinned at training's versions, every distribution listed; system-packages.txt, the Debian packages
# they link (LightGBM: libgomp1); team/, the team's modules the model unpickles, at their project paths.
COPY requirements-model.tx[t] /tmp/
RUN --mount=type=secret,id=ca-bundle,required=false \
    --mount=type=secret,id=pip-index-url,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    if [ -s /run/secrets/pip-index-url ]; then \
      PIP_INDEX_URL="$(cat /run/secrets/pip-index-url)"; export PIP_INDEX_URL; \
    fi; \
    if [ -s /tmp/requirements-model.txt ]; then \
      /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-deps \
          -r /tmp/requirements-model.txt || exit 1; \
    fi; \
    /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && find /opt/venv/lib -depth -type d -name tests -path '*site-packages/*/*' -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/_distutils_hack \
              /opt/venv/lib/python3*/site-packages/distutils-precedence.pth \
              /opt/venv/lib/python3*/site-packages/onnxruntime/tools \
              /opt/venv/lib/python3*/site-packages/onnxruntime/quantization \
              /opt/venv/lib/python3*/site-packages/onnxruntime/transformers
# onnxruntime's tools/, quantization/ and transformers/ build and tune models; serving imports none.

FROM ${BASE_IMAGE} AS trimmed
COPY system-packages.tx[t] /tmp/
RUN if [ -s /tmp/system-packages.txt ]; then \
      apt-get update && xargs apt-get install --yes --no-install-recommends < /tmp/system-packages.txt \
      || exit 1; \
    fi; \
    rm -f /tmp/system-packages.txt \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin model \
    && rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* \
              /usr/share/i18n /usr/share/lintian /usr/share/bash-completion /usr/share/perl* \
              /usr/lib/*-linux-gnu/perl* /usr/bin/perl* /usr/lib/*-linux-gnu/gconv \
              /usr/share/python-wheels /usr/lib/apt /usr/bin/apt* /usr/lib/*-linux-gnu/libapt-* \
              /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/* \
    && for lib in /usr/lib/python3* /usr/local/lib/python3*; do \
         [ -d "$lib" ] && rm -rf "$lib/test" "$lib/idlelib" "$lib/tkinter" "$lib/turtledemo" \
                                 "$lib/lib2to3" "$lib/ensurepip" "$lib/pydoc_data"; \
       done; true

FROM scratch
COPY --from=trimmed / /
ARG FLAVOUR
COPY --from=build /opt/venv /opt/venv
COPY model/ /app/src/model/
RUN ["/opt/venv/bin/python", "-m", "compileall", "-q", "/app/src/model"]
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONPATH=/app/src:/app/team \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    ML_CICD_MODEL_CHECKED_AT_BUILD=1
# ORT_DISABLE_TELEMETRY: ONNX Runtime (1.29 and later) otherwise tries to send usage events.
# ML_CICD_MODEL_CHECKED_AT_BUILD: whoever built this image checked the model's signature first
# (`python -m pipeline image build`, or the Dagger module's gate step); the server has no signing
# key, checks the sha256 again, and nothing but the image can change /app/model.
# Per-model arguments come after the heavy layers, so a new model reuses them from the cache.
COPY tea[m]/ /app/team/
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
      io.ml-cicd.model.metrics="${MODEL_METRICS}" \
      io.ml-cicd.image.flavour="${FLAVOUR}"
USER 10001
WORKDIR /app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["python", "-m", "model", "--model-dir", "/app/model", "--host", "0.0.0.0", "--port", "8080"]
