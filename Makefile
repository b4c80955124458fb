# Set-up and the two commands of the README: `make repro` and `make test`.
# Everything installs into .venv; nothing outside the repository is touched.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_PROGRESS_BAR := off

.PHONY: setup repro repro-paper test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

repro: setup
	dvc repro

test: setup
	python -m pytest

# reruns every stage on its own (forced), so it needs no `repro` first
bench: setup
	python scripts/bench.py

clean:
	rm -rf data .dvc/tmp .dvc/cache

# the paper's settings, as one DVC experiment (needs a CUDA GPU and the ImageNet weights file)
PAPER := -S data.image_size=256 -S prepare.crop=none -S model.width=1.0 -S model.pretrained=imagenet \
	-S train.epochs=50 -S train.batch_size=32 -S train.lr=0.0001 -S train.lr_schedule=constant -S train.device=cuda \
	-S 'survival.rf_trees=[100,200,300,400,500]'

repro-paper: setup
	dvc exp run $(PAPER)
