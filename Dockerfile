# mlthreat in a container, for CI runners that take images rather than Python set-ups.
#
#   docker build -t mlthreat .
#   docker run --rm -v "$PWD:/work" mlthreat scan . --fail-on high
#   docker run --rm -v "$PWD:/work" mlthreat assess pipeline.yaml --out-dir reports
#
# Two stages: the first builds mlthreat's wheel from this checkout; the second installs the CPU
# build of PyTorch at the pin mlthreat is tested with, then the wheel with the model-format
# extras. tests/test_packaging.py builds the wheel from exactly the files copied here.
ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY examples ./examples
RUN pip install --no-cache-dir "hatchling>=1.25" \
 && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:${PYTHON}-slim
# git: --diff-base and the authors of inline suppressions; safe.directory because the mounted
# repository belongs to another user than the container's
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*'
# the CPU wheel at the tested pin: PyPI's torch for Linux brings gigabytes of CUDA libraries
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" torch==2.13.0
ARG EXTRAS=torch,xgboost,lightgbm,onnx,parquet,lz4
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/mlthreat-*.whl)[${EXTRAS}]" \
 && rm -rf /wheels \
 && useradd --create-home --uid 10001 mlthreat
USER mlthreat
WORKDIR /work
ENTRYPOINT ["mlthreat"]
CMD ["--help"]
