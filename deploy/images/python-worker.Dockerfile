# The Python SDK's example worker (worker/python/examples/example_worker.py, pool
# py-example), as a template for Python workers. Build from the repository root:
#
#   docker build -f deploy/images/python-worker.Dockerfile -t mcpbus-python-worker .
#
# Prebuilt: `--build-arg PACKAGES=prebuilt` takes from the build context a folder
# `site-packages` (`pip install --target site-packages ./worker/python`, with a Python 3.11
# on glibc) and `example_worker.py`, instead of installing them in PYTHON_BUILDER_IMAGE.
#
# BuildKit is needed, as for deploy/images/Dockerfile. The digests were read from public
# build files, not checked against the registries from here: check them before relying on
# them (docs/adr/0032-container-images.md).
ARG PYTHON_BUILDER_IMAGE=docker.io/library/python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
# Distroless python3 is Debian 12's python3.11: the builder's minor version must match it,
# since compiled wheels (pydantic-core) are built for one.
ARG PYTHON_RUNTIME_IMAGE=gcr.io/distroless/python3-debian12:nonroot@sha256:7d1042ce588ab97019fe95c24ffca7bc5a82ccdac572511d5e09bda4435c89c5
ARG PACKAGES=source

FROM ${PYTHON_BUILDER_IMAGE} AS packages-source
COPY worker/python /src/worker-python
RUN pip install --no-cache-dir --disable-pip-version-check --target /out/site-packages /src/worker-python \
    && mkdir -p /out/app && cp /src/worker-python/examples/example_worker.py /out/app/

FROM scratch AS packages-prebuilt
COPY site-packages /out/site-packages
COPY example_worker.py /out/app/

FROM packages-${PACKAGES} AS packages

# No shell, nothing written (no .pyc on a read-only root filesystem), nonroot.
FROM ${PYTHON_RUNTIME_IMAGE} AS python-worker
COPY --from=packages /out/site-packages /usr/local/lib/mcpbus/site-packages
COPY --from=packages /out/app/example_worker.py /app/example_worker.py
ENV PYTHONPATH=/usr/local/lib/mcpbus/site-packages PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["/usr/bin/python3.11", "/app/example_worker.py"]
