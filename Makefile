# Everything a developer or CI needs; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
PYTHON38 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.8*/bin/python3) python3.8)
VENV := .venv
PY := $(VENV)/bin/python
VENV38 := .venv38
PORT ?= 8080

.PHONY: run test system-deps lint typecheck unit test-py38 peers bench demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(VENV38)/.installed: pyproject.toml
	$(PYTHON38) -m venv $(VENV38)
	$(VENV38)/bin/python -m pip install --quiet --upgrade pip
	$(VENV38)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

## run: serve the function on http://127.0.0.1:$(PORT)/ with the embedded default policy
run: $(VENV)/.installed
	$(PY) -m function serve --port $(PORT)

## test: lint, type-check, build the test bed's peers, run every test (also on Python 3.8)
test: system-deps lint typecheck peers unit test-py38

# iproute2 and openssl for the test bed (apt-get, as root); quick when already there.
system-deps:
	bash tests/testbed/install-system-deps.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check function adapters tests bench scripts

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy function adapters/knative_func

# Every peer the tests run must build, or make stops here naming the reason.
peers: $(VENV)/.installed system-deps
	$(PY) -m tests.testbed.build

unit: $(VENV)/.installed
	$(VENV)/bin/pytest

# The Kubeless runtime's newest image is Python 3.8: the core's offline tests run there too.
test-py38: $(VENV38)/.installed
	$(VENV38)/bin/pytest -m "not cluster" tests/function

## demo: the blog demo with real components (test bed, function, alert, pod gone, Event)
demo: $(VENV)/.installed peers
	$(PY) -m scripts.demo

## bench: decision time per alert, an alert storm against the real API server, and Falco Talon side by side
bench: $(VENV)/.installed peers
	$(PY) -m tests.testbed.build falco-talon
	$(PY) -m bench.server
	$(PY) -m bench.versus
	$(PY) -m bench.decision
	$(PY) -m bench.storm
	$(PY) -m bench.guards
	$(PY) -m bench.chain
	$(PY) -m bench.adapters_knative_func
	$(PY) -m bench.adapters_parliament
	$(PY) -m bench.adapters_functions_framework
	$(PY) -m bench.adapters_openfaas
	$(PY) -m bench.adapters_kubeless

clean:
	rm -rf $(VENV) $(VENV38) .mypy_cache .pytest_cache .ruff_cache
