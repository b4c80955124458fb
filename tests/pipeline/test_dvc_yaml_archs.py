"""dvc.yaml names each arch where DVC needs a literal (the train matrix, the per-arch plot files, the
plot definitions and the model artifacts); this test ties those lines to the registry (crlm.archs), so an
arch added there and missing here fails with the lines to paste."""

from __future__ import annotations

import yaml

from crlm.archs import ARCHS, Arch
from tests.conftest import REPO


def expected_arch_entries(archs: dict[str, Arch]) -> dict:
    names = list(archs)
    segmenting = [a for a, arch in archs.items() if arch.segments]
    return {
        "train matrix": names,
        "evaluate plot files": sorted(f"plots/evaluate/{kind}_{a}.csv" for kind in ("roc", "pr") for a in names),
        "survival plot files": sorted(f"plots/survival/km_{a}.{ext}" for ext in ("png", "csv") for a in names),
        "lesions plot files": sorted(f"plots/lesions/froc_{a}.csv" for a in segmenting),
        "calibration plot files": sorted(f"plots/calibration/dca_{a}.csv" for a in names),
        "plot definitions": {
            "ROC (test set)": {
                "template": "simple",
                "x": "fpr",
                "y": {f"plots/evaluate/roc_{a}.csv": "tpr" for a in names},
            },
            "Precision-recall (test set)": {
                "template": "simple",
                "x": "recall",
                "y": {f"plots/evaluate/pr_{a}.csv": "precision" for a in names},
            },
            "FROC (test set, per-slice lesions)": {
                "x": "fp_per_patient",
                "y": {f"plots/lesions/froc_{a}.csv": "sensitivity" for a in segmenting},
            },
            "FROC (test set, 3-D lesions)": {
                "x": "fp_per_patient_3d",
                "y": {f"plots/lesions/froc_{a}.csv": "sensitivity_3d" for a in segmenting},
            },
            "Training loss (fold 0)": {
                "x": "step",
                "y": {f"plots/train/{a}/0/plots/metrics/train_loss.tsv": "train_loss" for a in names},
            },
            "Decision curve (death before the survival horizon)": {
                "x": "threshold",
                "y": {
                    **{f"plots/calibration/dca_{a}.csv": "net_benefit" for a in names},
                    "plots/calibration/decision_strategies.csv": ["treat_all", "treat_none"],
                },
            },
            **{
                f"Kaplan-Meier by risk group ({arch.title})": {
                    "x": "months",
                    "y": {f"plots/survival/km_{a}.csv": ["survival_high", "survival_low"]},
                }
                for a, arch in archs.items()
            },
        },
        "artifacts": {a: artifact(arch) for a, arch in archs.items()},
    }


def artifact(arch: Arch) -> dict:
    """The DVC artifact of an arch's trained models (train@<arch>'s output folder)."""
    head = " with a tumour-mask head" if arch.segments else ""
    return {
        "path": f"data/models/{arch.name}",
        "type": "model",
        "desc": f"{arch.title} metastasis classifier of liver CT slices{head}, one model.pt per CV fold.",
        "labels": ["classification", "segmentation"] if arch.segments else ["classification"],
    }


def actual_arch_entries(dvc_yaml: dict) -> dict:
    stages = dvc_yaml["stages"]

    def plot_files(stage: str, folder: str) -> list[str]:
        return sorted(
            path
            for entry in stages[stage]["plots"]
            for path in entry
            if path.startswith(folder) and path.rsplit(".", 1)[-1] in ("csv", "png") and "_" in path.rsplit("/", 1)[-1]
        )

    return {
        "train matrix": stages["train"]["matrix"]["arch"],
        "evaluate plot files": sorted(
            p
            for p in plot_files("evaluate", "plots/evaluate/")
            if p.split("/")[-1].startswith(("roc_", "pr_")) and p.endswith(".csv")
        ),
        "survival plot files": plot_files("survival", "plots/survival/km_"),
        "lesions plot files": plot_files("lesions", "plots/lesions/froc_"),
        "calibration plot files": plot_files("calibration", "plots/calibration/dca_"),
        "plot definitions": {name: definition for entry in dvc_yaml["plots"] for name, definition in entry.items()},
        "artifacts": dvc_yaml.get("artifacts", {}),
    }


def test_dvc_yaml_lists_every_registered_arch_and_nothing_else():
    expected = expected_arch_entries(ARCHS)
    actual = actual_arch_entries(yaml.safe_load((REPO / "dvc.yaml").read_text()))
    assert actual == expected, (
        "dvc.yaml's per-arch lines differ from crlm.archs.ARCHS; they should read:\n"
        + yaml.safe_dump(expected, sort_keys=False)
    )


def test_an_added_arch_is_expected_everywhere_and_a_missing_line_is_caught():
    toy = Arch("toy", "Toy", segments=True, crf=False, min_image_size=8)
    expected = expected_arch_entries({**ARCHS, "toy": toy})
    assert expected["train matrix"][-1] == "toy"
    assert "plots/evaluate/roc_toy.csv" in expected["evaluate plot files"]
    assert "plots/survival/km_toy.png" in expected["survival plot files"]
    assert "plots/lesions/froc_toy.csv" in expected["lesions plot files"]
    assert "plots/calibration/dca_toy.csv" in expected["calibration plot files"]
    assert "Kaplan-Meier by risk group (Toy)" in expected["plot definitions"]
    assert expected["artifacts"]["toy"]["path"] == "data/models/toy"
    actual = actual_arch_entries(yaml.safe_load((REPO / "dvc.yaml").read_text()))
    assert actual != expected


def test_every_artifact_is_an_output_of_its_train_stage_and_a_valid_dvc_name():
    from dvc.repo.artifacts import check_name_format

    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())
    outs = dvc_yaml["stages"]["train"]["outs"]
    for name, entry in dvc_yaml["artifacts"].items():
        check_name_format(name)
        assert entry["path"].replace(name, "${item.arch}") in outs
