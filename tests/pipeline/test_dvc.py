"""End to end: `dvc repro` on a tiny profile in a temporary git repository (its raw store: the autouse
`raw_store` fixture's CRLM_RAW_DIR)."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from crlm.data.split_making import make_splits
from crlm.params import load_params, params_from_dict
from crlm.report import render
from crlm.stability import spread
from tests.conftest import tiny_params_dict
from tests.dvc_repo import commit, dvc, dvc_failing, make_repo, raw_source_dir, run

pytestmark = pytest.mark.slow

DETERMINISTIC_OUTPUTS = [
    "data/splits/splits.json",
    "data/interim/slices.parquet",
    "data/interim/clinical.parquet",
    "data/interim/qc.parquet",
    "data/processed/manifest.parquet",
    "metrics/qc.json",
    "metrics/splits.json",
]

# what `make stability` writes (crlm.stability), for the report: one metric over two seeds
STABILITY = {"seeds": [0, 1], "commit": "abc1234", "metrics": {"clmnet.test_auc": spread([0.9, 0.95])}}


def _params_text(**overrides):
    return yaml.safe_dump(tiny_params_dict(**overrides), sort_keys=False)


def _write_params(repo, **overrides):
    (repo / "params.yaml").write_text(_params_text(**overrides))


@pytest.fixture
def tiny_repo(tmp_path):
    return make_repo(
        tmp_path,
        _params_text(phantom={"defect_rate": 0.25}),
        {"metrics/stability.json": json.dumps(STABILITY, indent=2)},
    )


def _snapshot(repo):
    return {name: (repo / name).read_bytes() for name in DETERMINISTIC_OUTPUTS}


DATA_STAGES = ("split", "augment")  # targets: these and everything upstream


def test_dvc_repro_runs_the_data_stages_and_reruns_only_what_changed(tiny_repo):
    log = dvc("repro", *DATA_STAGES, cwd=tiny_repo)
    first = _snapshot(tiny_repo)
    # the planted truncated file: a warning naming it in the store (not as under data/raw) and the fix
    store = raw_source_dir(tiny_repo, "phantom")
    assert f"excluded (QC: unreadable): {store}/" in log and "dvc repro -f fetch" in log

    qc = json.loads((tiny_repo / "metrics/qc.json").read_text())
    # defect_rate 0.25 of 16 patients: one of each planted defect (crlm.data.phantom.defect_plan)
    assert qc["excluded_by_reason"]["unreadable"] == 1  # the planted truncated file
    truth = pd.read_csv(raw_source_dir(tiny_repo, "phantom") / "phantom_truth.csv", dtype={"Patient-ID": str})
    low_resolution = {f"phantom-{p}" for p in truth.loc[truth["defect"] == "low_resolution", "Patient-ID"]}
    slices = pd.read_parquet(tiny_repo / "data/interim/slices.parquet")
    assert len(low_resolution) == 1  # every slice of that patient, and nothing else, is low_resolution
    assert qc["excluded_by_reason"]["low_resolution"] == slices["patient_id"].isin(low_resolution).sum()
    splits = json.loads((tiny_repo / "data/splits/splits.json").read_text())
    assert len(splits["folds"]) == 5 and splits["test"]
    manifest = pd.read_parquet(tiny_repo / "data/processed/manifest.parquet")
    assert set(splits["test"]) | set(splits["folds"][0]["train"]) | set(splits["folds"][0]["val"]) == set(
        manifest["patient_id"]
    )

    assert json.loads(dvc("status", "--json", "--with-deps", *DATA_STAGES, cwd=tiny_repo)) == {}

    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, split={"seed": 11})
    # validate reruns on every change of params.yaml; its output stays the same, so it reruns nothing
    assert set(json.loads(dvc("status", "--json", "--with-deps", *DATA_STAGES, cwd=tiny_repo))) == {"validate", "split"}
    log = dvc("repro", *DATA_STAGES, cwd=tiny_repo)
    assert "Running stage 'split'" in log
    for stage in ("fetch", "slices", "qc", "prepare", "augment"):
        assert f"Running stage '{stage}'" not in log
    reseeded = params_from_dict(tiny_params_dict(split={"seed": 11})).split
    expected = make_splits(pd.read_parquet(tiny_repo / "data/processed/manifest.parquet"), reseeded)
    assert json.loads((tiny_repo / "data/splits/splits.json").read_text()) == expected

    _write_params(tiny_repo, phantom={"defect_rate": 0.25})
    dvc("repro", "--force", *DATA_STAGES, cwd=tiny_repo)
    assert _snapshot(tiny_repo) == first, "same seed must give byte-identical manifests and splits"


def _wait_for_queue(repo, timeout_s=600):
    deadline = time.monotonic() + timeout_s
    while any(word in dvc("queue", "status", cwd=repo) for word in ("Queued", "Running")):
        assert time.monotonic() < deadline, dvc("queue", "status", cwd=repo)
        time.sleep(2)


def _store_state(store):
    return sorted((str(p.relative_to(store)), p.stat().st_mtime_ns) for p in store.rglob("*"))


@pytest.mark.parametrize(
    "bad", [{"trian": {"epochs": 3}}, {"model": {"arch": "resnet"}}], ids=["misspelt section", "unknown arch"]
)
def test_a_bad_param_fails_before_any_output_is_deleted(tiny_repo, bad):
    dvc("repro", *DATA_STAGES, cwd=tiny_repo)
    before = _snapshot(tiny_repo)
    params = tiny_params_dict(phantom={"defect_rate": 0.25})
    for section, values in bad.items():
        params[section] = {**params.get(section, {}), **values}
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = dvc_failing("repro", *DATA_STAGES, cwd=tiny_repo)
    assert "Running stage 'validate'" in failed and "Running stage 'split'" not in failed
    problem = (
        "params.yaml: unknown key(s) ['trian']"
        if "trian" in bad
        else "params.yaml: model.arch: unknown architecture 'resnet'"
    )
    assert problem in failed and "git checkout params.yaml" in failed
    assert "Traceback" not in failed  # one line naming the value, no traceback
    assert _snapshot(tiny_repo) == before  # every output (metrics/ too) is still there


def test_queued_experiments_run_side_by_side_on_the_shared_raw_store(tiny_repo, raw_store):
    """`dvc exp run --queue` + `dvc queue start -j 2`: each experiment runs in its own temporary workspace
    without data/raw; fetch does not rerun there (data/raw.json comes from the DVC cache) and slices reads the
    raw store through CRLM_RAW_DIR, which the queue's workers inherit."""
    dvc("repro", "split", cwd=tiny_repo)
    commit(tiny_repo, "data stages")
    store = _store_state(raw_store)
    for px in (2, 4):
        dvc("exp", "run", "--queue", "split", "-S", f"slices.min_tumor_px={px}", "-n", f"px{px}", cwd=tiny_repo)
    try:
        dvc("queue", "start", "-j", "2", cwd=tiny_repo)
        _wait_for_queue(tiny_repo)
    finally:
        dvc("queue", "stop", cwd=tiny_repo)
    status = dvc("queue", "status", cwd=tiny_repo)
    for px in (2, 4):
        assert f"px{px}" in status
        log = dvc("queue", "logs", f"px{px}", cwd=tiny_repo)
        assert "Stage 'fetch' didn't change, skipping" in log and "Running stage 'slices'" in log, log
    assert status.count("Success") == 2, status
    shown = json.loads(dvc("exp", "show", "--json", cwd=tiny_repo))
    experiments = {
        run["name"]: run["data"]
        for baseline in shown
        for exp in baseline.get("experiments") or []
        for run in exp["revs"]
    }
    for px in (2, 4):
        assert experiments[f"px{px}"]["params"]["params.yaml"]["data"]["slices"] == {"min_tumor_px": px}
        assert "splits.json" in json.dumps(experiments[f"px{px}"]["outs"])
    assert _store_state(raw_store) == store, "a queued experiment wrote into the raw store"
    assert not (tiny_repo / "data/raw").exists()


def test_dvc_repro_trains_every_arch_on_every_fold_and_evaluates(tiny_repo, tmp_path, monkeypatch):
    dvc("repro", cwd=tiny_repo)
    classification = json.loads((tiny_repo / "metrics/classification.json").read_text())
    segmentation = json.loads((tiny_repo / "metrics/segmentation.json").read_text())
    assert classification["candidate"] == "clmnet"
    for arch in ("vgg16", "deeplabv3", "unet", "clmnet"):
        frame = pd.read_parquet(tiny_repo / f"data/predictions/{arch}.parquet")
        test = classification[arch]["test"]
        rows = frame[frame["subset"] == "test"]
        if rows["label"].nunique() == 2:  # the AUC of the ensemble's test predictions, as sklearn has it
            assert test["auc"]["value"] == pytest.approx(roc_auc_score(rows["label"], rows["prob"]), abs=5e-5)
        else:
            assert test["auc"]["value"] is None and "auc" in test["undefined"]
        assert classification[arch]["cv"]["accuracy"]["folds"] == 5
        assert set(frame["subset"]) == {"cv", "test"}
        assert sorted(frame.loc[frame["subset"] == "cv", "fold"].unique()) == ["0", "1", "2", "3", "4"]
        # every development image is predicted exactly once out of fold
        assert frame.loc[frame["subset"] == "cv", "image_id"].is_unique
        assert set(frame.loc[frame["subset"] == "test", "fold"]) == {"ensemble"}
        curve = tiny_repo / f"plots/train/{arch}/0/plots/metrics/train_loss.tsv"
        assert len(curve.read_text().splitlines()) == 1 + 1  # header + one epoch
    assert set(segmentation) >= {"deeplabv3", "unet", "clmnet", "clmnet+crf"}
    assert "vgg16" not in segmentation
    survival = json.loads((tiny_repo / "metrics/survival.json").read_text())
    compare = json.loads((tiny_repo / "metrics/compare.json").read_text())
    params = load_params(tiny_repo / "params.yaml")
    clinical = pd.read_parquet(tiny_repo / "data/interim/clinical.parquet")
    with_survival = set(clinical.dropna(subset=["overall_survival_months", "vital_status"])["patient_id"])
    for arch in ("vgg16", "deeplabv3", "unet", "clmnet"):
        embeddings = pd.read_parquet(tiny_repo / f"data/embeddings/{arch}.parquet")
        assert sum(c.startswith("emb_") for c in embeddings.columns) == params.model.embedding_dim
        assert sorted(embeddings["fold"].unique()) == ["0", "1", "2", "3", "4"]  # each fold's model, every patient
        assert embeddings.groupby("fold")["patient_id"].apply(frozenset).nunique() == 1
        # the patients with images (embedded) and survival data
        assert survival[arch]["n_analysed"] == len(set(embeddings["patient_id"]) & with_survival)
    for family in ("recognition_auc", "survival_auc", "survival_c_index"):
        assert set(compare[family]) == {"vgg16", "deeplabv3", "unet"}
    report = (tiny_repo / "reports/report.md").read_text()
    metrics = [
        json.loads((tiny_repo / f"metrics/{name}.json").read_text())
        for name in ("classification", "segmentation", "survival", "compare")
    ]
    beyond = {
        name: json.loads((tiny_repo / f"metrics/{name}.json").read_text()) for name in ("lesions", "cam", "calibration")
    }
    assert report == render(params, *metrics, STABILITY, beyond=beyond) + "\n"
    assert "## Explanations" in report and "## Calibration" in report
    assert "with train.seed 0, 1 (commit abc1234)" in report
    # Table 1's "AUC seed SD" column: the candidate's (clmnet) from STABILITY, "–" for the archs not measured
    table_1 = report.split("## Table 1")[1].split("\n\n")[1].splitlines()
    header, rows = table_1[0].split(" | "), [row.split(" | ") for row in table_1[2:]]
    sd_column, vs_column = header.index("AUC seed SD"), header.index("clustered AUC test p vs candidate (Holm)")
    assert {row[vs_column]: row[sd_column] for row in rows}["(candidate)"] == f"{np.std([0.9, 0.95], ddof=1):.3f}"
    assert [row[sd_column] for row in rows].count("–") == len(rows) - 1
    assert json.loads(dvc("status", "--json", cwd=tiny_repo)) == {}

    # shared results: pushed to a DVC remote (a local folder here), a fresh clone pulls the trained models
    # (the artifacts) and has nothing to reproduce, without the raw store
    remote = tmp_path / "remote"
    dvc("remote", "add", "-d", "shared", str(remote), cwd=tiny_repo)
    commit(tiny_repo, "results")
    dvc("push", cwd=tiny_repo)
    assert not list(remote.rglob("*.nii.gz"))  # the raw files stay in the store: only data/raw.json is cached
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(tiny_repo), str(clone)], tmp_path)
    monkeypatch.setenv("CRLM_RAW_DIR", str(tmp_path / "empty_store"))
    dvc("pull", cwd=clone)
    artifacts = yaml.safe_load((clone / "dvc.yaml").read_text())["artifacts"]
    assert set(artifacts) == {"vgg16", "deeplabv3", "unet", "clmnet"}
    for artifact in artifacts.values():
        files = sorted(p.relative_to(tiny_repo) for p in (tiny_repo / artifact["path"]).rglob("*") if p.is_file())
        assert any(f.name == "model.pt" for f in files)
        assert sorted(p.relative_to(clone) for p in (clone / artifact["path"]).rglob("*") if p.is_file()) == files
        assert all((clone / f).read_bytes() == (tiny_repo / f).read_bytes() for f in files)
    assert json.loads(dvc("status", "--json", cwd=clone)) == {}
    assert "Running stage" not in dvc("repro", cwd=clone)
    assert not (tmp_path / "empty_store").exists() and not (clone / "data/raw").exists()

    # an arch's own params rerun only that arch (evaluate follows once its models change);
    # the candidate arch: the stages that centre on it
    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, model={"clmnet": {"se": False}})
    changed = set(json.loads(dvc("status", "--json", cwd=tiny_repo)))
    assert changed == {"validate", "train@clmnet"}
    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, model={"arch": "unet"})
    assert set(json.loads(dvc("status", "--json", cwd=tiny_repo))) == {
        "validate",
        "evaluate",
        "survival",
        "compare",
        "calibration",
        "report",
    }
    # a survival param reruns survival (and report, which prints the horizon, and calibration, whose decision
    # curve is at the horizon); compare follows its outputs
    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, survival={"horizon_months": 12.0})
    assert set(json.loads(dvc("status", "--json", cwd=tiny_repo))) == {"validate", "survival", "calibration", "report"}
