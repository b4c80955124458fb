import dataclasses
import functools

import pytest
import yaml

from crlm.core.config import ConfigError, cli_params, sections_from_dict
from crlm.data.split_making import SplitConfig
from crlm.data.splits import FoldsConfig
from crlm.data.transforms import AugmentConfig, TransformConfig
from crlm.models.config import NetworkConfig
from crlm.models.registry import arch_config, model_kwargs
from crlm.params import load_params, params_from_dict
from crlm.training.config import TrainConfig
from tests.conftest import BASE_PARAMS, REPO, repo_params_dict, tiny_params_dict


def _leaves(tree: dict, prefix: str = ""):
    """(dotted key, value) of every leaf of a nested mapping."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _keys(tree: dict, prefix: str = "") -> set[str]:
    """Every dotted key of a nested mapping, sections included (values left out)."""
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict):
            out |= _keys(value, f"{prefix}{key}.")
    return out


def test_params_base_has_the_keys_of_the_repository_params():
    """tests/params_base.yaml, the tests' own params, keeps params.yaml's key tree. Only the keys are read
    from params.yaml: `dvc exp run -S key=value` changes values there, which the tests must not follow.
    When a key is added, renamed or removed in params.yaml, make the same change in params_base.yaml."""
    assert _keys(repo_params_dict()) == _keys(yaml.safe_load((REPO / "params.yaml").read_text()))


def test_loader_keeps_every_value_with_lists_as_tuples():
    raw = repo_params_dict()
    params = params_from_dict(raw)
    for key, value in _leaves(raw):
        section, *rest = key.split(".")
        if section == "model" and rest[0] in params.model.sections:  # an arch's own section, built by its module
            loaded = getattr(arch_config(params.model, rest[0]), rest[1])
        else:
            loaded = functools.reduce(getattr, key.split("."), params)
        if isinstance(value, list):
            assert isinstance(loaded, tuple) and loaded == tuple(value), key
        else:
            assert loaded == value, key
            # bool, str and float keep their type; an int stays int unless the key is a number (float)
            assert type(loaded) is type(value) or type(value) is int and type(loaded) is float, key


def test_integers_given_for_numbers_become_floats_and_integers_stay_integers():
    params = params_from_dict(
        tiny_params_dict(prepare={"window_center_hu": 60}, survival={"km_times_months": [0, 12], "rf_trees": [100]})
    )
    assert type(params.prepare.window_center_hu) is float and params.prepare.window_center_hu == 60.0
    assert params.survival.km_times_months == (0.0, 12.0)
    assert all(type(v) is float for v in params.survival.km_times_months)
    assert params.survival.rf_trees == (100,) and type(params.survival.rf_trees[0]) is int
    assert type(params.phantom.n_patients) is int


def test_params_are_frozen():
    params = params_from_dict(repo_params_dict())
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.split.folds = 3


def test_a_params_file_loads_like_its_dict_and_errors_name_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(repo_params_dict()))
    assert load_params(path) == params_from_dict(repo_params_dict())
    whole = load_params(path)
    loaded = cli_params("probe", TrainConfig, FoldsConfig, argv=["--params", str(path)])
    assert loaded.train == whole.train and loaded.split.folds == whole.split.folds
    raw = repo_params_dict()
    raw["split"]["fold"] = 5
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key\(s\) \['split\.fold'\]"):
        load_params(path)
    with pytest.raises(ConfigError, match=r"params file not found"):
        load_params(tmp_path / "missing.yaml")


def test_the_shipped_params_base_loads():
    assert load_params(BASE_PARAMS) == params_from_dict(repo_params_dict())


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
    with pytest.raises(ConfigError, match=r"data\.sources: unknown choice 'dicomweb'.*phantom.*tcia.*lits"):
        params_from_dict(tiny_params_dict(data={"sources": ["dicomweb"]}))


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"phantom\.n_patients must be an integer"):
        params_from_dict(tiny_params_dict(phantom={"n_patients": "many"}))
    with pytest.raises(ConfigError, match=r"phantom\.n_patients must be an integer"):
        params_from_dict(tiny_params_dict(phantom={"n_patients": True}))  # YAML's true is no integer
    with pytest.raises(ConfigError, match=r"crf\.enabled must be true or false"):
        params_from_dict(tiny_params_dict(crf={"enabled": "yes"}))
    with pytest.raises(ConfigError, match=r"survival\.horizon_months must be a number"):
        params_from_dict(tiny_params_dict(survival={"horizon_months": "24"}))
    with pytest.raises(ConfigError, match=r"survival\.lr_c must be a list"):
        params_from_dict(tiny_params_dict(survival={"lr_c": 1.0}))
    with pytest.raises(ConfigError, match=r"augment\.scale must have two values"):
        params_from_dict(tiny_params_dict(augment={"scale": [0.9, 1.0, 1.1]}))
    with pytest.raises(ConfigError, match=r"'split' must be a mapping"):
        params_from_dict({**repo_params_dict(), "split": 5})


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


def test_a_tumour_threshold_below_one_pixel_is_refused():
    with pytest.raises(ConfigError, match="slices.min_tumor_px must be > 0"):
        params_from_dict(tiny_params_dict(slices={"min_tumor_px": 0}))


def test_an_image_smaller_than_an_arch_takes_is_refused_at_load():
    # VGG16's five poolings take 32 px at least (crlm.archs: min_image_size, checked in tests/models/test_models.py)
    with pytest.raises(
        ConfigError,
        match=r"prepare\.image_size must be at least 32 \(the smallest image VGG16's "
        r"network takes\), got 7",
    ):
        params_from_dict(tiny_params_dict(prepare={"image_size": 7}))
    params_from_dict(tiny_params_dict(prepare={"image_size": 32}))


def test_a_stage_reads_only_the_sections_it_loads_and_a_partial_class_only_its_keys():
    raw = repo_params_dict()
    loaded = sections_from_dict(raw, TrainConfig, TransformConfig, FoldsConfig)
    whole = params_from_dict(raw)
    assert loaded.train == whole.train and loaded.split == FoldsConfig(folds=whole.split.folds)
    assert {f for f in vars(loaded.augment)} == {f for f in vars(whole.augment)} - {"seed", "preview_images"}
    with pytest.raises(ConfigError, match=r"section 'survival' was not loaded"):
        loaded.survival
    # a partial class ignores the section's other keys (the validate stage checks them), a whole one does not
    raw["augment"]["preview_imagez"] = 4
    assert sections_from_dict(raw, TransformConfig).augment == loaded.augment
    with pytest.raises(ConfigError, match=r"augment\.preview_imagez"):
        sections_from_dict(raw, AugmentConfig)
    with pytest.raises(ConfigError, match=r"missing section 'split'"):
        sections_from_dict({"train": raw["train"]}, TrainConfig, SplitConfig)


def test_an_arch_section_is_checked_by_its_own_module_and_every_arch_needs_one():
    raw = repo_params_dict()
    network = sections_from_dict(raw, NetworkConfig).model
    assert model_kwargs(network, "unet") == {
        "width": raw["model"]["width"],
        "embedding_dim": raw["model"]["embedding_dim"],
        "pretrained": raw["model"]["pretrained"],
        "batch_norm": raw["model"]["batch_norm"],
        "dropout": raw["model"]["unet"]["dropout"],
        "decoder_channels": tuple(raw["model"]["unet"]["decoder_channels"]),
    }
    raw["model"]["unet"]["decoder_channels"] = [64, 32]
    with pytest.raises(ConfigError, match=r"model\.unet\.decoder_channels needs 4 values"):
        model_kwargs(sections_from_dict(raw, NetworkConfig).model, "unet")
    with pytest.raises(ConfigError, match=r"model\.unet\.decoder_channels needs 4 values"):
        params_from_dict(raw)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['model\.resnet'\]"):
        params_from_dict(tiny_params_dict(model={"resnet": {"dropout": 0.5}}))
    del raw["model"]["unet"]
    with pytest.raises(ConfigError, match=r"missing section 'model\.unet'"):
        params_from_dict(raw)


def test_the_candidate_arch_is_read_alone_and_checked_against_the_registry():
    from crlm.archs import CandidateConfig

    raw = repo_params_dict()
    assert sections_from_dict(raw, CandidateConfig).model == CandidateConfig(arch=raw["model"]["arch"])
    raw["model"]["arch"] = "resnet"
    with pytest.raises(ConfigError, match=r"model\.arch: unknown architecture 'resnet'; valid: \['vgg16'"):
        sections_from_dict(raw, CandidateConfig)
