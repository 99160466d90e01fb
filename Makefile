# catalens developer entry points. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch and torchvision are pinned to the builds this project is tested with (pip finds them locally here).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

# Debian packages the tests use: Tesseract, the second OCR engine (RapidOCR, the default, ships in its wheel),
# and Chromium, the browser the web page's tests drive through Playwright (never a downloaded browser).
SYSTEM_PACKAGES := tesseract-ocr chromium

.PHONY: install sysdeps lint typecheck test test-fast demo bench mini clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Installs the Debian packages when they are missing and we are root; otherwise says how, and the tests that
# need them skip with that reason.
sysdeps:
	@if ! command -v tesseract >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing $(SYSTEM_PACKAGES) with apt-get"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				$(SYSTEM_PACKAGES) >/dev/null; } || echo "warning: apt-get failed; the OCR and browser tests that need them skip"; \
		else \
			echo "note: $(SYSTEM_PACKAGES) is missing; run: sudo apt-get install $(SYSTEM_PACKAGES)"; \
		fi; \
	fi

lint: install typecheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy cannot follow setuptools' package-dir mapping (catalens.models -> models/, ...), so it checks a view of the
# installed layout made of symlinks under .cache/typecheck (see [tool.mypy] in pyproject.toml).
TYPECHECK_VIEW := .cache/typecheck/catalens
typecheck: install
	@rm -rf $(TYPECHECK_VIEW) && mkdir -p $(TYPECHECK_VIEW)
	@ln -s $(CURDIR)/catalens/__init__.py $(CURDIR)/catalens/py.typed $(TYPECHECK_VIEW)/
	@for d in models indexer search; do ln -s $(CURDIR)/$$d $(TYPECHECK_VIEW)/$$d; done
	$(VENV)/bin/mypy

# The suite runs in parallel: one worker per core, at most 4 (each file on one worker, so a module's fixtures are
# built once); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile)

# The 20 slowest tests are listed at the end, so a test that grows past its share of the CI budget shows.
test: lint sysdeps
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) --durations=20

# The development loop: lint and every test not marked slow. `make test` (and CI) still runs everything.
test-fast: lint sysdeps
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) -m "not slow"

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) scripts/bench_ingest.py

# Retrains catalens-mini from a fresh clone with the shipped recipe into MINI_OUT and scores it on the held-out
# sets: a first run of 2,750 steps at lr 3e-3; from its weights two second runs of 1,125 steps at 1.5e-3, one
# plain and one trained on mirror images where the meaning survives; then the weight average of the two ("model
# soup", scripts/soup_mini.py). All in bfloat16 mixed precision (50-55 minutes in all on the 2-core machine
# with MINI_THREADS=2, which is how the shipped weights were made; on a CPU without bfloat16 instructions
# MINI_PRECISION=auto trains in float32). Needs npm (emoji art) and Debian's openclipart drawings.
MINI_OUT ?= .cache/catalens-mini/run
# torch threads per run: the shipped weights were trained with 2; another count sums in another order, so its
# weights need not match the shipped ones bit for bit.
MINI_THREADS ?= 2
# auto (bf16 where the hardware runs it natively: AMX or AVX512-BF16, a recent GPU; else fp32), bf16 or fp32.
MINI_PRECISION ?= auto
TRAIN_PACKAGES := openclipart-png openclipart-svg
mini: install
	$(PY) -m pip install --quiet -e '.[train]'
	@if [ ! -d /usr/share/openclipart/svg ] || [ ! -d /usr/share/openclipart/png ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing $(TRAIN_PACKAGES) with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				$(TRAIN_PACKAGES) >/dev/null; \
		else \
			echo "error: the training data needs: sudo apt-get install $(TRAIN_PACKAGES)"; exit 1; \
		fi; \
	fi
	$(PY) scripts/train_mini.py --threads $(MINI_THREADS) --precision $(MINI_PRECISION) --out $(MINI_OUT)-phase-1
	$(PY) scripts/train_mini.py --threads $(MINI_THREADS) --precision $(MINI_PRECISION) --init $(MINI_OUT)-phase-1 \
		--steps 1125 --warmup 30 --lr 1.5e-3 --out $(MINI_OUT)-plain
	$(PY) scripts/train_mini.py --threads $(MINI_THREADS) --precision $(MINI_PRECISION) --init $(MINI_OUT)-phase-1 \
		--steps 1125 --warmup 30 --lr 1.5e-3 --mirror --out $(MINI_OUT)-mirror
	$(PY) scripts/soup_mini.py --out $(MINI_OUT) $(MINI_OUT)-plain $(MINI_OUT)-mirror
	$(PY) scripts/eval_mini.py --model $(MINI_OUT)

clean:
	rm -rf .demo build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
