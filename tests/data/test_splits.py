import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from crlm.core.config import ConfigError
from crlm.core.errors import UserError
from crlm.core.io import write_json
from crlm.data.split_making import ExternalError, make_splits, splits_summary
from crlm.data.splits import (
    Fold,
    LeakageError,
    SplitError,
    Splits,
    SplitsFileError,
    check_no_leakage,
    fold_names,
)
from crlm.params import params_from_dict
from tests.conftest import tiny_params_dict


def _manifest(n_patients=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        has_tumour = rng.random() < 0.7
        for z in range(int(rng.integers(4, 12))):
            label = int(has_tumour and rng.random() < 0.6)
            rows.append(
                {
                    "image_id": f"p{p:03d}-s{z:03d}",
                    "patient_id": f"p{p:03d}",
                    "label": label,
                    "tumour_area_px": 100 if label else int(has_tumour and rng.random() < 0.3) * 10,
                }
            )
    return pd.DataFrame(rows)


def test_splits_cover_everyone_without_leakage(tiny_params):
    cfg = dataclasses.replace(tiny_params.split, folds=5, test_fraction=0.15)
    manifest = _manifest()
    splits = make_splits(manifest, cfg)
    everyone = set(manifest["patient_id"])
    test = set(splits["test"])
    assert len(test) == pytest.approx(0.15 * len(everyone), abs=1)
    vals = [set(f["val"]) for f in splits["folds"]]
    assert set().union(*vals) == everyone - test
    assert sum(len(v) for v in vals) == len(everyone - test)
    for fold in splits["folds"]:
        assert set(fold["train"]) | set(fold["val"]) == everyone - test
        assert not set(fold["train"]) & set(fold["val"])


def test_class_ratios_agree_within_ten_points(tiny_params):
    cfg = dataclasses.replace(tiny_params.split, folds=5, test_fraction=0.15)
    manifest = _manifest(n_patients=80, seed=3)
    summary = splits_summary(manifest, make_splits(manifest, cfg))
    overall = summary["all"]["metastasis_fraction"]
    fractions = [summary["test"]["metastasis_fraction"]]
    fractions += [f[s]["metastasis_fraction"] for f in summary["folds"].values() for s in ("train", "val")]
    assert max(abs(f - overall) for f in fractions) <= 0.10


def test_same_seed_same_splits_other_seed_differs(tiny_params):
    manifest = _manifest()
    a = make_splits(manifest, tiny_params.split)
    assert a == make_splits(manifest, tiny_params.split)
    assert a != make_splits(manifest, dataclasses.replace(tiny_params.split, seed=1))


def test_leak_check_names_the_patient():
    splits = {"test": ["p1"], "folds": [{"train": ["p2", "p1"], "val": ["p3"]}, {"train": ["p3"], "val": ["p2"]}]}
    with pytest.raises(LeakageError, match=r"fold 0: patient\(s\) \['p1'\] in both train and test"):
        check_no_leakage(splits)
    twice = {"test": [], "folds": [{"train": ["a"], "val": ["b"]}, {"train": ["a"], "val": ["b"]}]}
    with pytest.raises(LeakageError, match="patient b is in the validation set of folds 0 and 1"):
        check_no_leakage(twice)


def test_one_class_cannot_be_stratified(tiny_params):
    manifest = _manifest().assign(label=0)
    with pytest.raises(SplitError, match="patients per class"):
        make_splits(manifest, tiny_params.split)


def test_the_summary_counts_every_image_of_each_subsets_patients():
    manifest = pd.DataFrame(
        {
            "image_id": [f"{p}-s{z}" for p, n in (("a", 4), ("b", 3), ("c", 2), ("d", 1)) for z in range(n)],
            "patient_id": ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"],
            "label": [1, 0, 0, 0, 1, 1, 0, 0, 0, 0],
            "tumour_area_px": [90, 5, 3, 0, 80, 70, 0, 0, 0, 0],  # a: two ambiguous slices
        }
    )
    splits = {"test": ["a"], "folds": [{"train": ["b", "c"], "val": ["d"]}, {"train": ["d"], "val": ["b", "c"]}]}
    summary = splits_summary(manifest, splits)
    assert summary["test"] == {
        "images": 4,
        "patients": 1,
        "metastasis_images": 1,
        "ambiguous_images": 2,
        "metastasis_fraction": 0.25,
    }
    assert summary["all"] == {
        "images": 10,
        "patients": 4,
        "metastasis_images": 3,
        "ambiguous_images": 2,
        "metastasis_fraction": 0.3,
    }
    assert summary["development"]["images"] == 6 and summary["development"]["metastasis_fraction"] == 0.3333
    assert summary["folds"]["fold0"]["train"] == {
        "images": 5,
        "patients": 2,
        "metastasis_images": 2,
        "ambiguous_images": 0,
        "metastasis_fraction": 0.4,
    }
    assert summary["folds"]["fold0"]["val"]["metastasis_fraction"] == 0.0


# ---------------------------------------------------------------- Splits: data/splits/splits.json, read once

SPLITS_TEXT = """{
  "test": ["t1", "t2"],
  "folds": [
    {"train": ["b", "c"], "val": ["a"]},
    {"train": ["a", "c"], "val": ["b"]},
    {"train": ["a", "b"], "val": ["c"]}
  ]
}
"""


def test_splits_read_from_a_hand_written_file(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(SPLITS_TEXT)
    splits = Splits.read(path)
    assert splits.n_folds == 3 and splits.fold_names == ["0", "1", "2"] == fold_names(3)
    assert splits.test == ("t1", "t2")
    assert splits.fold("1") == Fold(train=("a", "c"), val=("b",))
    assert splits.source == str(path)
    splits.check_fold_count(3)
    with pytest.raises(SplitsFileError) as caught:
        splits.check_fold_count(5)
    assert str(caught.value) == (
        f"params split.folds is 5 but {path} has 3 folds; rerun the split stage "
        "(dvc repro split) after changing split.folds"
    )
    assert isinstance(caught.value, UserError)  # a stage logs it as one line
    for unknown in ("3", "final", "-1"):
        with pytest.raises(SplitError, match=r"fold .*: .* has folds 0..2"):
            splits.fold(unknown)
    # written back as the split stage writes it: the same bytes as write_json of the JSON form
    splits.write(tmp_path / "again.json")
    write_json(tmp_path / "direct.json", json.loads(SPLITS_TEXT))
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "direct.json").read_bytes()
    assert splits.to_dict() == json.loads(SPLITS_TEXT)


def test_a_malformed_or_leaking_splits_file_is_refused(tmp_path):
    path = tmp_path / "splits.json"
    with pytest.raises(FileNotFoundError, match="dvc repro split"):
        Splits.read(path)
    for bad in ({"test": []}, {"test": [], "folds": []}, {"folds": [{"train": [], "val": []}]}, []):
        path.write_text(json.dumps(bad))
        with pytest.raises(SplitsFileError, match=r"splits.json: expected .*; rerun the stage that writes it"):
            Splits.read(path)
    path.write_text(json.dumps({"test": [], "folds": [{"train": ["a"], "val": ["b"]}, {"train": ["a"]}]}))
    with pytest.raises(SplitsFileError, match=r"fold 1 is not"):
        Splits.read(path)
    with pytest.raises(LeakageError, match=r"fold 0: patient\(s\) \['t1'\] in both train and test"):
        Splits.from_dict({"test": ["t1"], "folds": [{"train": ["t1"], "val": ["b"]}]})


def _two_sources(n_patients=60):
    """_manifest's patients, the first 20 of source lits, the others tcia."""
    manifest = _manifest(n_patients)
    manifest["source"] = np.where(manifest["patient_id"] < "p020", "lits", "tcia")
    return manifest


def test_the_default_split_is_pinned(tiny_params):
    """split.external none: the splits of the code before external validation existed (its md5)."""
    cfg = dataclasses.replace(tiny_params.split, folds=5, test_fraction=0.15)
    text = json.dumps(make_splits(_manifest(), cfg), sort_keys=True)
    assert hashlib.md5(text.encode()).hexdigest() == "121427659dc073ed6ee1ffdde461d0b0"


@pytest.mark.parametrize("external", ["lits", "tcia"])
def test_an_external_source_is_the_test_set_and_in_no_fold(tiny_params, external):
    cfg = dataclasses.replace(tiny_params.split, folds=5, external=external)
    manifest = _two_sources()
    splits = make_splits(manifest, cfg)
    theirs = set(manifest.loc[manifest["source"] == external, "patient_id"])
    assert len(theirs) in (20, 40) and set(splits["test"]) == theirs
    for fold in splits["folds"]:
        assert not (set(fold["train"]) | set(fold["val"])) & theirs
        assert set(fold["train"]) | set(fold["val"]) == set(manifest["patient_id"]) - theirs
    assert sorted(p for fold in splits["folds"] for p in fold["val"]) == sorted(set(manifest["patient_id"]) - theirs)


def test_an_external_phantom_site_is_the_test_set(tiny_params):
    cfg = dataclasses.replace(tiny_params.split, folds=5, external="site:B")
    manifest = _manifest()
    patients = sorted(set(manifest["patient_id"]))
    sites = pd.Series(["B" if i % 3 == 0 else "A" for i in range(len(patients))], index=patients)
    splits = make_splits(manifest, cfg, sites)
    assert splits["test"] == [p for p in patients if sites[p] == "B"]
    assert all(sites[p] == "A" for fold in splits["folds"] for p in fold["train"] + fold["val"])


def test_an_external_value_that_matches_no_patient_is_named_with_what_the_data_holds(tiny_params):
    manifest = _two_sources()
    cfg = dataclasses.replace(tiny_params.split, external="phantom")
    with pytest.raises(
        ExternalError, match=r"split.external 'phantom': no prepared patient .*sources: \['lits', 'tcia'\]"
    ):
        make_splits(manifest, cfg)
    site = dataclasses.replace(tiny_params.split, external="site:B")
    with pytest.raises(ExternalError, match=r"'site:B': the clinical table has no site column"):
        make_splits(manifest, site)
    everyone_a = pd.Series("A", index=sorted(set(manifest["patient_id"])))
    with pytest.raises(ExternalError, match=r"'site:B': no prepared patient .*sites: \['A'\]"):
        make_splits(manifest, site, everyone_a)
    with pytest.raises(ExternalError, match=r"'site:A': every prepared patient is of it"):
        make_splits(manifest, dataclasses.replace(site, external="site:A"), everyone_a)
    assert issubclass(ExternalError, UserError)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"split": {"external": "nih"}},
            r"split.external 'nih' is not in data.sources \['phantom'\]; valid: none, phantom, ",
        ),
        ({"split": {"external": "lits"}}, r"split.external 'lits' is not in data.sources \['phantom'\]"),
        (
            {"split": {"external": "site:C"}},
            r"split.external 'site:C': no such phantom site; valid: none, phantom, or site:A",
        ),
        ({"split": {"external": "site:B"}}, r"'site:B' is a phantom site: .* phantom.site_b.share > 0 \(now 0\)"),
        ({"split": {"external": ""}}, r"split.external: '' names nothing"),
    ],
)
def test_an_unknown_external_value_is_refused_naming_it(changes, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(tiny_params_dict(**changes))


def test_an_external_source_or_site_that_exists_is_accepted():
    params = params_from_dict(tiny_params_dict(split={"external": "site:B"}, phantom={"site_b": {"share": 0.5}}))
    assert params.split.site == "B"
    assert (
        params_from_dict(tiny_params_dict(data={"sources": ["tcia", "lits"]}, split={"external": "tcia"})).split.site
        is None
    )
