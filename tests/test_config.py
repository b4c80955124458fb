import pytest

from crlm.config import ConfigError, load_params, params_from_dict
from tests.conftest import REPO, repo_params_dict, tiny_params_dict


def test_repository_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.data.sources == ("phantom",)
    assert params.split.folds == 5
    assert params.split.test_fraction == 0.15


def test_unknown_key_is_named():
    raw = repo_params_dict()
    raw["split"]["fold"] = 5
    with pytest.raises(ConfigError, match=r"split\.fold"):
        params_from_dict(raw)


def test_missing_key_is_named():
    raw = repo_params_dict()
    del raw["qc"]["min_std_hu"]
    with pytest.raises(ConfigError, match=r"qc\.min_std_hu"):
        params_from_dict(raw)


def test_unknown_source_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown source.*'dicomweb'.*phantom.*tcia.*lits"):
        params_from_dict(tiny_params_dict(data={"sources": ["dicomweb"]}))


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"phantom\.n_patients must be an integer"):
        params_from_dict(tiny_params_dict(phantom={"n_patients": "many"}))


def test_out_of_range_is_named():
    with pytest.raises(ConfigError, match=r"split\.test_fraction"):
        params_from_dict(tiny_params_dict(split={"test_fraction": 1.5}))


def test_sampling_params_belong_to_train_and_are_validated():
    with pytest.raises(ConfigError, match=r"prepare\.max_slices_per_patient"):
        params_from_dict(tiny_params_dict(prepare={"max_slices_per_patient": 12}))
    with pytest.raises(ConfigError, match=r"qc\.exclude_ambiguous_tumour"):
        params_from_dict(tiny_params_dict(qc={"exclude_ambiguous_tumour": True}))
    for key, value in (("max_slices_per_patient", 0), ("majority_per_minority", 0.0), ("val_every", 0)):
        with pytest.raises(ConfigError, match=rf"train\.{key} must be > 0"):
            params_from_dict(tiny_params_dict(train={key: value}))
