# make install: .venv with the project (editable) and its dev tools.
# make demo:    install + the whole path on generated faces (CPU, minutes).
# make test:    install + lint (ruff) + the whole test suite (what CI runs).
# make test-fast: the suite without the slow Ray tests, for the edit loop.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch/torchvision pinned to the releases served from this machine's disk (a CUDA build that
# also runs on CPUs); override TORCH_PINS to use another build.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
DEMO   ?= runs/demo

.PHONY: install demo test test-fast lint clean-demo bench gpu-check-smoke

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev,export,detect]'
	touch $(STAMP)

demo: install
	bash scripts/demo.sh $(DEMO)

test: install lint
	$(PY) -m pytest tests

test-fast: install
	$(PY) -m pytest tests -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) benchmarks/prepare_throughput.py

clean-demo:
	rm -rf $(DEMO) data/demo

# benchmarks/gpu_check.sh --smoke: the GPU check's code paths at 64 px on a CPU (3-7 min on 2 cores);
# fails when a section fails. On a GPU machine run `bash benchmarks/gpu_check.sh` (see its header).
gpu-check-smoke: install
	PYTHON=$(PY) bash benchmarks/gpu_check.sh --smoke --out runs/gpu_check/smoke
