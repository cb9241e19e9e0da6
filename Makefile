# hwmlp: two commands for a new user on Debian/Ubuntu.
#   make demo   set up (idempotent) and run the breast-cancer flow end to end
#   make test   set up (idempotent) and run the test suite
# Both create .venv with the verified pins, and install Debian's yosys and iverilog
# when they are missing and we are root (otherwise they say what to install).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.hwmlp-installed
OUT    ?= out
PYTEST_ARGS ?=

.PHONY: setup demo test test-all bench rtl clean tools

setup: $(STAMP) tools

$(STAMP): pyproject.toml requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

tools:
	@missing=""; \
	command -v yosys >/dev/null 2>&1 || missing="$$missing yosys"; \
	command -v iverilog >/dev/null 2>&1 || missing="$$missing iverilog"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "hwmlp: please install$$missing (e.g. sudo apt-get install$$missing), then re-run make" >&2; exit 1; \
	  fi; \
	fi

demo: setup
	$(VENV)/bin/hwmlp run flows/breast_cancer.yaml --out $(OUT)/breast_cancer

test: setup
	$(PY) -m pytest -q -m "not slow" -n 2 $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

bench: setup
	$(PY) bench/published_exact.py

# Reference designs of the embedded flows: integer model + Verilog, checked in under rtl/.
# tests/test_rtl_reference.py checks that the Verilog regenerates byte for byte.
RTL_FLOWS := breast_cancer iris
rtl: setup
	@for f in $(RTL_FLOWS); do \
	  $(VENV)/bin/hwmlp train flows/$$f.yaml --out build/rtl/$$f && \
	  $(VENV)/bin/hwmlp emit --out build/rtl/$$f || exit 1; \
	  rm -rf rtl/$$f; \
	  for d in build/rtl/$$f/designs/*/; do \
	    mkdir -p rtl/$$f/$$(basename $$d) && cp $$d/model.json $$d/*.v rtl/$$f/$$(basename $$d)/; \
	  done; \
	done

clean:
	rm -rf $(OUT) build sim_build .pytest_cache
