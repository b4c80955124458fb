"""The seed-noise verdicts of `crlm review` and `crlm verify`: the t reference (pinned to R and to the closed
form of Student's t with 2 df), the headline file's names, and when a seed SD is stale (from dvc.lock)."""

import json
import math
from pathlib import Path

import pytest

from crlm.headline import REVIEW_FILES, flat, review_numbers, source_file
from crlm.review.noise import SeedNoise, fingerprint, producer, upstream
from crlm.review.verify import comparison
from crlm.stability import headline, noise_verdict, sd_interval

REPO = Path(__file__).resolve().parents[2]


def t2_two_sided_p(t: float) -> float:
    """Student's t with 2 df has the closed-form CDF 1/2 + t / (2 sqrt(2 + t^2))."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


@pytest.mark.parametrize("change, sd", [(0.004, 0.0048), (0.03, 0.0048), (-0.1, 0.02)])
def test_the_verdict_with_three_seeds_follows_t_with_two_df(change, sd):
    verdict = noise_verdict(change, sd, 3)
    t = change / (sd * math.sqrt(2))
    assert verdict.p == pytest.approx(t2_two_sided_p(t), rel=1e-9)
    assert verdict.sds == pytest.approx(change / sd)
    assert verdict.beyond == (verdict.p < 0.05)


def test_the_threshold_is_t_quantile_times_sqrt_2():
    # R: qt(0.975, 4) = 2.776445, qt(0.975, 2) = 4.302653
    assert noise_verdict(1.0, 1.0, 5).threshold_sds == pytest.approx(2.776445 * math.sqrt(2), abs=1e-5)
    assert noise_verdict(1.0, 1.0, 3).threshold_sds == pytest.approx(4.302653 * math.sqrt(2), abs=1e-5)
    # just inside and just outside the 5-seed threshold (3.93 SDs)
    assert not noise_verdict(3.9, 1.0, 5).beyond and noise_verdict(3.95, 1.0, 5).beyond


def test_the_sd_interval_is_the_chi_square_one():
    # R: qchisq(c(0.975, 0.025), 2) = 7.377759, 0.05063562; qchisq(c(0.975, 0.025), 4) = 11.14329, 0.4844186
    assert sd_interval(3) == pytest.approx((math.sqrt(2 / 7.377759), math.sqrt(2 / 0.05063562)), rel=1e-6)
    assert sd_interval(5) == pytest.approx((math.sqrt(4 / 11.14329), math.sqrt(4 / 0.4844186)), rel=1e-6)
    assert [round(x, 2) for x in sd_interval(3)] == [0.52, 6.28]


def test_a_verdict_needs_two_seeds_and_a_positive_sd():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        noise_verdict(0.1, 0.0, 3)


def _committed_metrics():
    return {name: json.loads((REPO / "metrics" / f"{name}.json").read_text()) for name in REVIEW_FILES}


def test_the_headline_file_is_small_and_named_as_stability_names_its_numbers():
    numbers = flat(review_numbers(_committed_metrics()))
    assert 40 <= len(numbers) <= 80
    followed = headline(_committed_metrics())  # the names `make stability` records
    for name in numbers:
        group, metric = name.split(".")[0], name.split(".")[-1]
        if group != "cohort" and not group.endswith("_vs") and not metric.startswith("test_auc_ci"):
            assert name in followed, name  # the review finds its seed SD under the same name
    assert numbers["clmnet.test_auc"] == _committed_metrics()["classification"]["clmnet"]["test"]["auc"]["value"]
    assert numbers["cohort.patients"] == _committed_metrics()["qc"]["patients"]["kept"]
    assert source_file("clmnet_vs.unet.test_auc_p_holm") == "compare"
    assert source_file("unet.lesion_sensitivity_3d") == "lesions"


def test_the_committed_headline_file_is_what_the_stage_writes():
    committed = json.loads((REPO / "metrics/headline.json").read_text())
    assert committed == review_numbers(_committed_metrics())


def _lock(survival_dep="aaa", train_seed=0):
    return {
        "prepare": {"cmd": "p", "deps": [{"path": "data/raw.json", "md5": "r"}], "outs": [{"path": "data/processed"}]},
        "train@unet": {
            "cmd": "t",
            "deps": [{"path": "data/processed/manifest.parquet", "md5": "m"}],
            "params": {"params.yaml": {"train": {"epochs": 3, "seed": train_seed}}},
            "outs": [{"path": "data/models/unet"}],
        },
        "evaluate": {
            "cmd": "e",
            "deps": [{"path": "data/models", "md5": "x"}],
            "outs": [{"path": "metrics/classification.json", "md5": str(train_seed)}],
        },
        "survival": {
            "cmd": "s",
            "deps": [{"path": "src/crlm/survival", "md5": survival_dep}, {"path": "data/models", "md5": "x"}],
            "outs": [{"path": "metrics/survival.json"}],
        },
    }


def test_upstream_and_producer_follow_the_lock():
    lock = _lock()
    assert producer(lock, "survival") == "survival"
    assert upstream(lock, "survival") == {"survival", "train@unet", "prepare"}
    assert upstream(lock, "prepare") == {"prepare"}


def test_the_training_seed_and_the_outputs_are_not_part_of_the_fingerprint():
    assert fingerprint(_lock(train_seed=0)["train@unet"]) == fingerprint(_lock(train_seed=3)["train@unet"])
    assert fingerprint(_lock()["evaluate"]) == fingerprint(_lock(train_seed=3)["evaluate"])
    assert fingerprint(_lock(survival_dep="a")["survival"]) != fingerprint(_lock(survival_dep="b")["survival"])


STABILITY = {
    "seeds": [0, 1, 2, 3, 4],
    "commit": "abc",
    "metrics": {
        "unet.test_auc": {"values": [0.9, 0.91, 0.92, 0.93, 0.94], "sd": 0.0158},
        "unet.survival_auc": {"values": [0.7, 0.8, 0.75, 0.72, 0.78], "sd": 0.041},
    },
}


def test_a_change_in_survival_code_makes_only_the_survival_sd_stale():
    noise = SeedNoise(STABILITY, measured_lock=_lock(survival_dep="old"), base_lock=_lock(survival_dep="new"))
    survival = noise.read("unet.survival_auc", 0.75, 0.80)
    recognition = noise.read("unet.test_auc", 0.90, 0.99)
    assert survival.verdict == "within seed noise"
    assert survival.note == "stale SD: survival changed since `make stability`"
    assert recognition.verdict.startswith("beyond noise: 5.7 seed SDs") and recognition.note == ""


def test_readings_without_a_verdict_say_why():
    noise = SeedNoise(STABILITY, _lock(), _lock())
    assert noise.read("unet.test_auc", 0.9, 0.9).verdict == "unchanged"
    assert noise.read("unet.test_auc_ci_low", 0.8, 0.85).note == "no seed SD (not followed by `make stability`)"
    assert noise.read("cohort.slices", 100, 90).note.startswith("the data stages' numbers")
    assert noise.read("unet.test_auc", None, 0.9).verdict == "new number"
    assert SeedNoise(STABILITY, None, _lock()).read("unet.test_auc", 0.9, 0.91).note.startswith("stale SD?")


FINGERPRINT = {"device": "cpu", "precision": "fp32", "kernels": "AVX512", "torch": "2.14.1"}


def test_verify_compares_bytes_only_where_the_machine_computes_alike():
    assert comparison({"unet": FINGERPRINT, "vgg16": FINGERPRINT}, FINGERPRINT)[0] == "bytes"
    mode, why = comparison({"unet": FINGERPRINT}, {**FINGERPRINT, "precision": "bf16"})
    assert mode == "noise" and "fp32" in why and "bf16" in why
    mode, why = comparison({"unet": None}, FINGERPRINT)
    assert mode == "noise" and "no compute fingerprint for unet" in why


def test_verify_counts_two_copies_of_one_blas_as_one():
    """The train stage's process and verify's load different copies of OpenBLAS (numpy's, scipy's): the same
    kernel and threads compare alike however many copies are listed; another kernel or thread count does not."""
    one, two = "openblas SkylakeX, 2 threads", "openblas SkylakeX, 2 threads; openblas SkylakeX, 2 threads"
    assert comparison({"unet": {**FINGERPRINT, "blas": one}}, {**FINGERPRINT, "blas": two})[0] == "bytes"
    for other in ("openblas Haswell, 2 threads", "openblas SkylakeX, 2 threads; openblas SkylakeX, 1 threads"):
        mode, why = comparison({"unet": {**FINGERPRINT, "blas": one}}, {**FINGERPRINT, "blas": other})
        assert mode == "noise" and other in why


def test_the_seed_spread_keeps_the_size_of_small_numbers():
    from crlm.stability import spread

    row = spread([3e-6, 4e-6, 5e-6])
    assert row["mean"] == pytest.approx(4e-6) and row["sd"] == pytest.approx(1e-6)  # 4 decimals gave 0 and 0
    assert spread([0.98296, 0.9862, 0.9768])["mean"] == 0.98199
