# Set-up and the two commands of the README: `make repro` and `make test`.
# Everything installs into .venv; nothing outside the repository is touched.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_PROGRESS_BAR := off

.PHONY: setup lock repro repro-paper test bench stability clean

setup: $(VENV)/.installed

# the exact versions that produced the committed metrics (requirements.lock), then the package itself
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# regenerate requirements.lock from pyproject.toml's ranges for Linux x86_64 (PyPI's torch wheels run on
# CPU and CUDA); versions already in the lock are kept where they still fit, `rm requirements.lock` first
# to move everything to the newest. A machine-wide pip constraints file, where there is one, is honoured.
PIP_CONSTRAINTS := $(wildcard /etc/xdg/pip/constraints.txt)
lock: setup
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 $(addprefix -c ,$(PIP_CONSTRAINTS)) -o requirements.lock

repro: setup
	dvc repro

test: setup
	python -m pytest

# reruns every stage on its own (forced), so it needs no `repro` first
bench: setup
	python scripts/bench.py

# retrains every arch with train.seed 0, 1, 2 (about one `make repro` each) -> metrics/stability.json
stability: setup
	python scripts/stability.py 0 1 2

clean:
	rm -rf data .dvc/tmp .dvc/cache

# the paper's settings, as one DVC experiment (needs a CUDA GPU and the ImageNet weights file)
PAPER := -S prepare.image_size=256 -S prepare.crop=none -S model.width=1.0 -S model.pretrained=imagenet \
	-S train.epochs=50 -S train.batch_size=32 -S train.lr=0.0001 -S train.lr_schedule=constant -S train.device=cuda \
	-S 'survival.rf_trees=[100,200,300,400,500]'

repro-paper: setup
	dvc exp run $(PAPER)
