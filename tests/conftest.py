"""Shared fixtures: the tests' own copy of params.yaml (tests/params_base.yaml) with a tiny phantom on top.

The tests never read the workspace's params.yaml: `dvc exp run -S ...` changes it, and a correct tree must
still pass. tests/config/test_config.py checks that params_base.yaml keeps the committed params.yaml's keys."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from crlm.params import Params, params_from_dict

REPO = Path(__file__).resolve().parents[1]
BASE_PARAMS = Path(__file__).with_name("params_base.yaml")  # a copy of the committed params.yaml

TINY = {
    "prepare": {"image_size": 32},
    "phantom": {
        "n_patients": 16,
        "n_slices": 10,
        "matrix": 64,
        "pixel_spacing_mm": 5.5,
        "lesion_free_fraction": 0.3,
        "defect_rate": 0.0,
    },
    "qc": {"min_matrix_px": 48, "max_pixel_spacing_mm": 8.0, "min_liver_px": 10},
    "slices": {"min_tumor_px": 3},
    "split": {"folds": 5, "test_fraction": 0.25},  # dvc.yaml's train matrix has folds 0-4
    "augment": {"preview_images": 2},
    "train": {"epochs": 1, "batch_size": 8, "max_slices_per_patient": 8},
    "stats": {"n_boot": 50},
    "evaluate": {"overlay_images": 2},
    "survival": {"inner_folds": 2, "rf_depth": [5]},
}


def merged(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict):
            out[key] = merged(out.get(key, {}), value)
        else:
            out[key] = value
    return out


def repo_params_dict() -> dict:
    return yaml.safe_load(BASE_PARAMS.read_text())


def tiny_params_dict(**sections) -> dict:
    return merged(merged(repo_params_dict(), TINY), sections)


@pytest.fixture(autouse=True)
def raw_store(tmp_path, monkeypatch) -> Path:
    """Every test's own raw store (CRLM_RAW_DIR, which the stages a test runs inherit): no test writes
    into the workspace's data/raw."""
    store = tmp_path / "crlm_raw_store"
    monkeypatch.setenv("CRLM_RAW_DIR", str(store))
    return store


@pytest.fixture
def tiny_params() -> Params:
    return params_from_dict(tiny_params_dict())


def with_arch_params(model, arch: str, **changes):
    """The model section `model` with keys of its model.<arch> section changed."""
    import dataclasses

    return dataclasses.replace(model, sections={**model.sections, arch: {**model.sections[arch], **changes}})
