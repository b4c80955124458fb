# Set-up and the two commands of the README: `make repro` and `make test` (and `make test-fast`, the quick suite).
# Everything installs into .venv; nothing outside the repository is touched.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_PROGRESS_BAR := off
# mkdocs-material's notice about its successor (not a build warning)
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup lock repro repro-paper test test-fast lint docs docs-serve bench bench-scale predict-example stability clean pull review verify exp-show

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

# the full suite, as CI runs it (.ci/run)
test: setup lint
	python -m pytest

# the quick suite: leaves out the tests marked slow (dvc end to end, torchrun, the paper's size, null simulations)
test-fast: setup lint
	python -m pytest -m "not slow"

# the lint, the formatter's check and the type check (ruff and mypy, configured in pyproject.toml); part of
# `make test` and `make test-fast`; `ruff format src stages scripts tests` applies the format
lint: setup
	ruff check src stages scripts tests
	ruff format --check src stages scripts tests
	mypy

# the docs site (mkdocs.yml, docs/; scripts/docs_hooks.py adds reports/*.md and their figures): built into
# site/ with --strict, so a broken link, anchor or missing page fails; docs-serve serves it with live reload
docs: setup
	mkdocs build --strict --site-dir site

docs-serve: setup
	mkdocs serve

# reruns every stage on its own (forced), so it needs no `repro` first
bench: setup
	python scripts/bench.py

# the stages at the real cohorts' size (a TCIA-size phantom, 256 px, a short training per arch) in a scratch
# workspace, each as its own process: wall, CPU, peak private memory, disk -> bench/scale.json and the docs page
# reports/scale.md; options through SCALE_ARGS, e.g. `make bench-scale SCALE_ARGS="--double"` (docs/scaling.md)
SCALE_ARGS ?=
bench-scale: setup
	python scripts/bench_scale.py $(SCALE_ARGS)

# `crlm predict` on the real CT of ../shared/realdata with this workspace's models (after `make repro`) ->
# the docs page reports/predict.md and its overlay reports/predict/overlay.png
predict-example: setup
	python scripts/predict_example.py

# retrains every arch with train.seed 0-4 (about one `make repro` each) -> metrics/stability.json; five seeds
# give each seed SD 4 degrees of freedom (the noise verdicts of `make review` use them)
stability: setup
	python scripts/stability.py 0 1 2 3 4

# DVC's run cache and outputs from the project's DVC remote, where one is configured; CI without one (or
# without its credentials) goes on and reruns the pipeline instead
pull: setup
	@if [ -z "$$(dvc remote list)" ]; then echo "pull: no DVC remote configured: skipping (dvc repro computes everything)"; \
	elif dvc pull --run-cache --allow-missing; then echo "pull: done"; \
	else echo "pull: the DVC remote could not be read (credentials?): skipping (dvc repro computes everything)"; fi

# the code-review page of the workspace against BASE (a branch, tag or commit): reports/review.md
BASE ?= main
review: setup
	crlm review $(BASE) --out reports/review.md

# reruns the pipeline, then checks that the committed metrics/ and report are what the code produces
verify: setup
	dvc repro
	crlm verify

# the experiments table a person can read: the params and headline numbers that differ between the rows
# (the code and data hashes left out; plain `dvc exp show` lists every param and dependency)
exp-show: setup
	dvc exp show --only-changed --drop '^(src|stages|data|metrics|plots)/' 

clean:
	rm -rf data .dvc/tmp .dvc/cache

# the paper's settings, as one DVC experiment (needs a CUDA GPU and the ImageNet weights file)
PAPER := -S prepare.image_size=256 -S prepare.crop=none -S model.width=1.0 -S model.pretrained=imagenet \
	-S train.epochs=50 -S train.batch_size=32 -S train.lr=0.0001 -S train.lr_schedule=constant -S train.device=cuda \
	-S 'survival.rf_trees=[100,200,300,400,500]'

repro-paper: setup
	dvc exp run $(PAPER)
