"""crlm.headline: the candidate_* keys of the metrics files and the per-arch numbers of `make stability`, named
in one place, in the JSON key order the files have."""

import json
from pathlib import Path

from crlm.archs import ARCHS
from crlm.headline import BEYOND, CANDIDATE, PER_ARCH, candidate_keys, per_arch, value_at
from crlm.stability import headline


def _metrics():
    """Distinct made-up values, one per (file, arch, path), shaped as evaluate and survival write them."""
    counter = iter(range(1000))

    def ci():
        return {"value": next(counter) / 1000, "ci_low": 0.0, "ci_high": 1.0, "ci_level": 0.95, "n_boot_valid": 9}

    classification = {"candidate": "clmnet"}
    segmentation = {"candidate": "clmnet"}
    survival = {"candidate": "clmnet"}
    for arch, spec in ARCHS.items():
        classification[arch] = {
            "cv": {"auc": {"mean": next(counter) / 1000, "sd": 0.1, "folds": 5}},
            "test": {"auc": ci(), "auc_any_tumour": ci(), "accuracy": ci()},
        }
        if spec.segments:
            segmentation[arch] = {"test": {"iou": ci(), "dice": ci()}}
            if spec.crf:
                segmentation[spec.crf_name] = {"test": {"iou": ci(), "dice": ci()}}
        survival[arch] = {
            "auc": ci(),
            "auc_ipcw": {"value": next(counter) / 1000},
            "c_index": {"harrell": next(counter) / 1000, "uno": 0.5},
            "logrank": {"chisq": 3.0, "p_value": next(counter) / 1000, "n": {}, "reason": ""},
        }
    return classification, segmentation, survival


def test_value_at_follows_a_dotted_path():
    assert value_at({"test": {"auc": {"value": 0.9}}}, "test.auc.value") == 0.9


def test_the_candidate_keys_come_from_the_candidate_entry_in_the_files_order():
    classification, segmentation, survival = _metrics()
    assert candidate_keys("classification", classification, "unet") == {
        "candidate_test_auc": classification["unet"]["test"]["auc"]["value"]
    }
    assert list(candidate_keys("survival", survival, "unet").items()) == [
        ("candidate_auc", survival["unet"]["auc"]["value"]),
        ("candidate_logrank_p", survival["unet"]["logrank"]["p_value"]),
    ]
    assert candidate_keys("segmentation", segmentation, "clmnet") == {
        "candidate_test_iou": segmentation["clmnet"]["test"]["iou"]["value"]
    }
    assert candidate_keys("segmentation", segmentation, "vgg16") == {}  # vgg16 does not segment
    assert set(CANDIDATE) == {"classification", "segmentation", "survival"}


def test_the_stability_headline_is_every_arch_then_each_crf_mask_in_order():
    classification, segmentation, survival = _metrics()
    files = {"classification": classification, "segmentation": segmentation, "survival": survival}
    out = headline(files)
    expected = []
    for arch, spec in ARCHS.items():
        for name, (kind, path) in PER_ARCH.items():
            if kind != "segmentation" or spec.segments:
                expected.append((f"{arch}.{name}", value_at(files[kind][arch], path)))
    expected += [
        (f"{spec.crf_name}.test_{metric}", segmentation[spec.crf_name]["test"][metric]["value"])
        for spec in ARCHS.values()
        if spec.crf
        for metric in ("iou", "dice")
    ]
    assert list(out.items()) == expected
    assert out == per_arch(files)
    assert "vgg16.test_iou" not in out and out["vgg16.cv_auc"] == classification["vgg16"]["cv"]["auc"]["mean"]
    assert list(out)[:10] == [
        f"vgg16.{n}"
        for n in (
            "test_auc",
            "test_auc_any_tumour",
            "cv_auc",
            "test_accuracy",
            "survival_auc",
            "survival_auc_ipcw",
            "survival_c_harrell",
            "survival_logrank_p",
        )
    ] + ["deeplabv3.test_auc", "deeplabv3.test_auc_any_tumour"]


def _beyond(counter):
    """lesions, cam and calibration entries shaped as their stages write them, distinct values per path."""

    def ci():
        return {"value": next(counter) / 1000, "ci_low": 0.0, "ci_high": 1.0}

    lesions = {"settings": {"threshold": 0.5}}
    cam = {"method": "Grad-CAM", "chance": {"mass_share": 0.04}}
    calibration = {"candidate": "clmnet", "horizon_months": 24.0}
    for arch, spec in ARCHS.items():
        if spec.segments:
            lesions[arch] = {
                level: {"sensitivity": ci(), "fp_per_patient": ci()} for level in ("per_slice", "per_patient_3d")
            }
        cam[arch] = {"mass_share": ci(), "pointing_hit_rate": ci()}
        calibration[arch] = {part: {"brier": ci(), "slope": ci()} for part in ("images", "survival")}
    return {"lesions": lesions, "cam": cam, "calibration": calibration}


def test_the_numbers_beyond_the_paper_follow_for_every_arch_in_their_file():
    classification, segmentation, survival = _metrics()
    files = {"classification": classification, "segmentation": segmentation, "survival": survival}
    beyond = _beyond(iter(range(2000, 3000)))
    out = headline({**files, **beyond})
    assert list(out)[: len(per_arch(files))] == list(per_arch(files))  # the paper's numbers first, unchanged
    assert out["clmnet.lesion_sensitivity_3d"] == beyond["lesions"]["clmnet"]["per_patient_3d"]["sensitivity"]["value"]
    assert out["unet.lesion_fp_per_patient_slice"] == beyond["lesions"]["unet"]["per_slice"]["fp_per_patient"]["value"]
    assert out["vgg16.cam_pointing_hit_rate"] == beyond["cam"]["vgg16"]["pointing_hit_rate"]["value"]
    assert (
        out["deeplabv3.survival_calibration_slope"] == beyond["calibration"]["deeplabv3"]["survival"]["slope"]["value"]
    )
    assert "vgg16.lesion_sensitivity_3d" not in out  # no lesions of an arch that does not segment
    lesion_names = [n for n, (kind, _) in BEYOND.items() if kind == "lesions"]
    segmenting = [a for a, spec in ARCHS.items() if spec.segments]
    assert len(out) - len(per_arch(files)) == len(ARCHS) * (len(BEYOND) - len(lesion_names)) + len(segmenting) * len(
        lesion_names
    )


def test_a_number_the_stage_did_not_write_is_none_not_an_error():
    classification, segmentation, survival = _metrics()
    beyond = _beyond(iter(range(2000, 3000)))
    beyond["calibration"]["unet"]["survival"] = {"n": 0, "reason": "no patients with a label and a probability"}
    out = headline({"classification": classification, "segmentation": segmentation, "survival": survival, **beyond})
    assert out["unet.survival_brier"] is None and out["unet.image_brier"] is not None


def test_every_number_beyond_the_paper_is_found_in_the_committed_metrics():
    """The BEYOND paths against the files the stages wrote (metrics/*.json, tracked in git): a wrong key would
    give None for every seed, silently."""
    metrics = Path(__file__).resolve().parents[2] / "metrics"
    files = {
        name: json.loads((metrics / f"{name}.json").read_text())
        for name in ("classification", "segmentation", "survival", "lesions", "cam", "calibration")
    }
    out = headline(files)
    beyond = {name: value for name, value in out.items() if name.split(".")[1] in BEYOND}
    segmenting = [a for a, spec in ARCHS.items() if spec.segments]
    lesion_names = [n for n, (kind, _) in BEYOND.items() if kind == "lesions"]
    assert len(beyond) == len(ARCHS) * len(BEYOND) - (len(ARCHS) - len(segmenting)) * len(lesion_names)
    assert all(isinstance(value, float) for value in beyond.values()), beyond
