# make install: .venv with the project (editable) and its dev tools, at the versions CI tested
#               (constraints.txt).
# make weights: MTCNN's face-detector weights, once (pip download of the facenet-pytorch wheel, sha256
#               checked, converted to ~/.cache/faceparse/mtcnn/mtcnn.safetensors or $FACEPARSE_MTCNN).
# make lock:    constraints.txt from what .venv holds now (after upgrading something on purpose).
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
# Exact versions of everything else (make lock writes it); CONSTRAINTS= installs the newest releases
# pyproject.toml allows instead.
CONSTRAINTS ?= constraints.txt
DEMO   ?= runs/demo

.PHONY: install weights lock demo test test-fast lint clean-demo bench gpu-check-smoke

install: $(STAMP) weights

# Nothing downloads at run time: `predict --detector mtcnn` reads only the converted file.
weights: $(STAMP)
	$(PY) scripts/fetch_mtcnn.py

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev,export,detect]'
	touch $(STAMP)

# torch, torchvision and the CUDA wheels torch pins exactly are TORCH_PINS's business: left out.
LOCK_SKIP := ^(torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)==
lock:
	test -x $(PY) || { echo "no $(VENV): run make install first" >&2; exit 1; }
	{ echo '# The exact versions CI tested: `make install` installs the project with `pip install -c constraints.txt`.'; \
	  echo '# Regenerated from .venv by `make lock`. torch, torchvision and the CUDA wheels torch pins (nvidia-*,'; \
	  echo '# cuda-*, triton) are left out: the Makefile'"'"'s TORCH_PINS chooses those.'; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -E '^(#|-e )' | grep -viE '$(LOCK_SKIP)'; \
	} > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt
	test ! -e $(STAMP) || touch $(STAMP)

demo: install
	bash scripts/demo.sh $(DEMO)

# FACEPARSE_REQUIRE_WEIGHTS: the MTCNN tests fail (not skip) when the weights are missing.
test: install lint
	FACEPARSE_REQUIRE_WEIGHTS=1 $(PY) -m pytest tests

test-fast: install
	$(PY) -m pytest tests -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) benchmarks/prepare_throughput.py

clean-demo:
	rm -rf $(DEMO) data/demo

# benchmarks/gpu_check.sh --smoke (python -m benchmarks.gpu_check, the package benchmarks/gpu_check/):
# the GPU check's code paths at 64 px on a CPU (3-7 min on 2 cores); fails when a section fails.
# On a GPU machine run `bash benchmarks/gpu_check.sh` (see its header).
gpu-check-smoke: install
	PYTHON=$(PY) bash benchmarks/gpu_check.sh --smoke --out runs/gpu_check/smoke
