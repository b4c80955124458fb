"""Holm's step-down adjustment against a hand transcription of Holm (1979)."""

import numpy as np
import pytest

from crlm.stats.multiplicity import holm


def holm_by_hand(p):
    """Holm (1979), Scand J Statist 6:65-70: order the k p-values ascending; the j-th (1-based) is
    rejected at level alpha while p_(l) <= alpha / (k - l + 1) for every l <= j, so its adjusted value
    is the running maximum of (k - l + 1) p_(l), capped at 1."""
    defined = [(name, value) for name, value in p.items() if value is not None]
    k = len(defined)
    ordered = sorted(defined, key=lambda item: item[1])
    out, running = {}, 0.0
    for rank, (name, value) in enumerate(ordered, start=1):
        running = max(running, min(1.0, (k - rank + 1) * value))
        out[name] = running
    return {name: out.get(name) for name in p}


FAMILIES = [
    {"auc": 0.010, "c_index": 0.040, "hr": 0.030, "logrank": 0.040, "lrt": None},  # ties and a None
    {"a": 0.001, "b": 0.5, "c": 0.02, "d": 0.02, "e": 0.02, "f": None, "g": 0.9, "h": 0.0},
    {"only": 0.03, "missing": None},
    {"x": 0.4, "y": 0.6},  # capped at 1
]


@pytest.mark.parametrize("family", FAMILIES)
def test_equals_the_step_down_by_hand(family):
    result = holm(family)
    expected = holm_by_hand(family)
    assert list(result) == list(family)
    for name, value in expected.items():
        if value is None:
            assert result[name] is None
        else:
            assert result[name] == pytest.approx(value, abs=1e-15), name


def test_worked_example():
    # k = 4 defined: 0.01 * 4 = 0.04; 0.03 * 3 = 0.09; the tied 0.04s: max(0.09, 2 * 0.04, 1 * 0.04) = 0.09
    result = holm({"a": 0.01, "b": 0.03, "c": 0.04, "d": 0.04, "e": None})
    assert result.pop("e") is None
    assert result == pytest.approx({"a": 0.04, "b": 0.09, "c": 0.09, "d": 0.09}, abs=1e-15)


@pytest.mark.parametrize("family", FAMILIES[:2])
def test_order_of_the_family_does_not_matter(family):
    reference = holm(family)
    rng = np.random.default_rng(0)
    for order in [list(reversed(family))] + [rng.permutation(list(family)).tolist() for _ in range(10)]:
        permuted = holm({name: family[name] for name in order})
        assert list(permuted) == list(order)
        for name, value in reference.items():
            assert permuted[name] is None if value is None else permuted[name] == pytest.approx(value, abs=1e-15)


def test_nan_is_undefined_like_none_and_empty_families():
    assert holm({"a": float("nan"), "b": 0.02, "c": None}) == {"a": None, "b": 0.02, "c": None}
    assert holm({}) == {} and holm({"a": None}) == {"a": None}


def test_bad_p_value_is_named():
    with pytest.raises(ValueError, match="'b' must be in"):
        holm({"a": 0.1, "b": 1.5})
    with pytest.raises(ValueError, match="'a' must be in"):
        holm({"a": -np.inf})
