# syntax=docker/dockerfile:1
# The operator image: `docker build -t modelgate:0.1.0 .` (the chart's default image is
# modelgate:<appVersion>). Stage 1 builds the wheel from pyproject.toml and operator/; the final stage
# is a slim Python with only that wheel (and its dependencies from PyPI) installed, running as the
# unprivileged user 65532. ENTRYPOINT is `modelgate` and CMD `run`, so the image runs `modelgate run`
# by default, and the chart's `args: [run, --leader-elect, ...]` replace CMD: still `modelgate run ...`.
# Tested short of `docker build` by tests/hack/test_image.py (no Docker engine on our machines).

ARG PYTHON=python:3.11-slim

FROM ${PYTHON} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl
USER 65532:65532
ENTRYPOINT ["modelgate"]
CMD ["run"]
