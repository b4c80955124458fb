# Set-up and the two commands of the README: `make repro` and `make test`.
# Everything installs into .venv; nothing outside the repository is touched.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_PROGRESS_BAR := off

.PHONY: setup repro test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

repro: setup
	dvc repro

test: setup
	python -m pytest

bench: repro
	python scripts/bench.py

clean:
	rm -rf data .dvc/tmp .dvc/cache
