# syntax=docker/dockerfile:1
#
# CarML: one image for the web app, the workers and the CLI (docs/deploy.md).
#
#   docker build -t carml .                    # target `cpu` (the default, last stage): python:3.11-slim, CPU torch
#   docker build --target gpu -t carml:gpu .   # GPU workers: CUDA runtime + cuDNN, onnxruntime-gpu, NVML
#
# Nothing secret is baked in: every setting is a CARML_* environment variable given at run time.
#
# NB: the project is installed *editable* from /app on purpose. carml/db/migrate.py finds the alembic
# scripts at <project root>/migrations, next to the `carml` package, and migrations/ is not part of the
# wheel: a plain `pip install .` into site-packages would make `carml db upgrade` fail. The heavy
# dependencies ('.[all]') are installed first, from pyproject.toml alone, so a code change does not
# reinstall torch and TensorFlow.

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ============================================================================ gpu
# GPU workers. torch comes from PyPI (its Linux wheels are the CUDA builds); onnxruntime-gpu uses the
# base image's CUDA 12 and cuDNN 9; nvidia-ml-py lets `carml worker --hardware auto` read the GPU model.
FROM ${CUDA_IMAGE} AS gpu

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CARML_HOME=/var/lib/carml \
    CARML_CACHE_DIR=/var/cache/carml \
    CARML_MANIFEST_DIRS=/app/manifests

# Ubuntu 24.04's Python is 3.12 (CarML needs >= 3.11); pip installs go into a venv (PEP 668).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && groupadd --system --gid 10001 carml \
 && useradd --system --uid 10001 --gid carml --create-home --home-dir /home/carml carml \
 && mkdir -p /var/lib/carml /var/cache/carml \
 && chown carml:carml /var/lib/carml /var/cache/carml

WORKDIR /app

COPY pyproject.toml README.md ./
# Dependencies only: an empty stand-in of each package is installed, then removed.
# '.[all]' pulls the CPU onnxruntime (also a dependency of the zoo's packages) next to onnxruntime-gpu;
# both own the `onnxruntime` module, so the CPU one is removed and the GPU one reinstalled over it.
RUN mkdir -p carml predictors webapp worker \
 && touch carml/__init__.py predictors/__init__.py webapp/__init__.py worker/__init__.py \
 && pip install '.[all,gpu]' gunicorn \
 && pip uninstall -y carml onnxruntime \
 && ort_version="$(python -c 'import importlib.metadata as m; print(m.version("onnxruntime-gpu"))')" \
 && pip install --no-deps --force-reinstall "onnxruntime-gpu==${ort_version}" \
 && rm -rf carml predictors webapp worker build ./*.egg-info

COPY carml ./carml
COPY predictors ./predictors
COPY webapp ./webapp
COPY worker ./worker
COPY migrations ./migrations
COPY manifests ./manifests
RUN pip install --no-deps -e . && carml --version

USER carml
EXPOSE 8080
CMD ["carml", "worker", "--hardware", "auto"]

# ============================================================================ cpu (default)
# The web app, CPU workers and the CLI.
FROM python:3.11-slim AS cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CARML_HOME=/var/lib/carml \
    CARML_CACHE_DIR=/var/cache/carml \
    CARML_MANIFEST_DIRS=/app/manifests

# The wheels bring their own libraries (OpenCV is the headless build): no system package is needed.
RUN groupadd --system --gid 10001 carml \
 && useradd --system --uid 10001 --gid carml --create-home --home-dir /home/carml carml \
 && mkdir -p /var/lib/carml /var/cache/carml \
 && chown carml:carml /var/lib/carml /var/cache/carml

WORKDIR /app

COPY pyproject.toml README.md ./
# Dependencies only (see the note at the top). The `torch` extra pins torch==2.13.0 exactly: with the
# CPU index added, pip takes 2.13.0+cpu instead of PyPI's multi-GB CUDA build.
RUN mkdir -p carml predictors webapp worker \
 && touch carml/__init__.py predictors/__init__.py webapp/__init__.py worker/__init__.py \
 && pip install --extra-index-url https://download.pytorch.org/whl/cpu '.[all]' gunicorn \
 && pip uninstall -y carml \
 && rm -rf carml predictors webapp worker build ./*.egg-info

COPY carml ./carml
COPY predictors ./predictors
COPY webapp ./webapp
COPY worker ./worker
COPY migrations ./migrations
COPY manifests ./manifests
RUN pip install --no-deps -e . && carml --version

USER carml
EXPOSE 8080
CMD ["gunicorn", "webapp:create_app()", "-b", "0.0.0.0:8080", "-w", "2", "--threads", "16", "--timeout", "300", "--access-logfile", "-"]
