"""Choices at their point of use: each option's names in its section's dataclass (a Literal) are exactly the keys of the
table its consumer dispatches through (crlm.core.options.look_up), and unknown names are refused by key."""

import dataclasses
import typing

import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from crlm.core.config import ConfigError, choices
from crlm.core.options import look_up
from crlm.data.config import DataConfig, PrepareConfig
from crlm.data.prepare import CROPS
from crlm.data.sources import SOURCES
from crlm.embedding.config import EmbedConfig
from crlm.embedding.extract import AGGREGATIONS
from crlm.models.config import ModelConfig
from crlm.models.pretrained import PRETRAINED
from crlm.params import Params, params_from_dict
from crlm.survival.classifiers import CLASS_WEIGHTS, CLASSIFIERS, describe, grid
from crlm.survival.config import SurvivalConfig
from crlm.training.config import TrainConfig
from crlm.training.device import DEVICES, PRECISIONS
from crlm.training.loop import LR_SCHEDULES
from tests.conftest import tiny_params_dict

# params key -> (its config dataclass, field, the consumer's table)
TIES = {
    "data.sources": (DataConfig, "sources", SOURCES),
    "prepare.crop": (PrepareConfig, "crop", CROPS),
    "train.device": (TrainConfig, "device", DEVICES),
    "train.precision": (TrainConfig, "precision", PRECISIONS),
    "train.lr_schedule": (TrainConfig, "lr_schedule", LR_SCHEDULES),
    "embed.aggregation": (EmbedConfig, "aggregation", AGGREGATIONS),
    "survival.classifiers": (SurvivalConfig, "classifiers", CLASSIFIERS),
    "survival.class_weight": (SurvivalConfig, "class_weight", CLASS_WEIGHTS),
    "model.pretrained": (ModelConfig, "pretrained", PRETRAINED),
}


def _choice_fields(cls=Params, prefix=""):
    """Dotted key of every field of the params whose type is a choice (a Literal, or a list of one)."""
    for field in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[field.name]
        if dataclasses.is_dataclass(hint):
            yield from _choice_fields(hint, f"{prefix}{field.name}.")
            continue
        try:
            choices(cls, field.name)
        except TypeError:
            continue
        yield prefix + field.name


@pytest.mark.parametrize("key", sorted(TIES))
def test_config_choices_are_the_keys_of_the_consumer_table(key):
    cls, field, table = TIES[key]
    assert set(choices(cls, field)) == set(table)


def test_every_choice_of_the_config_is_tied_to_a_table():
    assert set(_choice_fields()) == set(TIES)


def test_an_unknown_choice_is_named_with_the_valid_ones_at_load_and_at_use():
    with pytest.raises(ConfigError, match=r"^prepare\.crop: unknown choice 'tight'; valid: \['none', 'liver'\]$"):
        look_up("prepare.crop", "tight", CROPS)
    with pytest.raises(ConfigError, match=r"^params: prepare\.crop: unknown choice 'tight'; valid: \['none', "):
        params_from_dict(tiny_params_dict(prepare={"crop": "tight"}))
    for section, field, value in (
        ("train", "device", "mps"),
        ("train", "precision", "fp16"),
        ("train", "lr_schedule", "cosine"),
        ("embed", "aggregation", "median"),
        ("survival", "classifiers", ["logistic", "svm"]),
        ("survival", "class_weight", "auto"),
        ("data", "sources", ["phantom", "nih"]),
    ):
        bad = value[-1] if isinstance(value, list) else value
        with pytest.raises(ConfigError, match=rf"{section}\.{field}: unknown choice '{bad}'"):
            params_from_dict(tiny_params_dict(**{section: {field: value}}))
    for section, field in (("data", "sources"), ("survival", "classifiers")):
        with pytest.raises(ConfigError, match=rf"{section}\.{field} is empty"):
            params_from_dict(tiny_params_dict(**{section: {field: []}}))


def test_each_source_is_named_by_its_key():
    assert all(source.name == name for name, source in SOURCES.items())
    assert [name for name, source in SOURCES.items() if source.regenerate] == ["phantom"]


def test_the_classifier_grid_follows_the_table_order_not_the_params_order(tiny_params):
    """GridSearchCV keeps the first of tied candidates, so the grid's order must not follow the params."""
    cfg = dataclasses.replace(tiny_params.survival, classifiers=("random_forest", "logistic"), class_weight="none")
    entries = grid(cfg)
    assert [type(e["clf"][0]) for e in entries] == [LogisticRegression, RandomForestClassifier]
    assert all(e["clf"][0].class_weight is None for e in entries)
    assert [type(e["clf"][0]) for e in grid(dataclasses.replace(cfg, classifiers=("random_forest",)))] == [
        RandomForestClassifier
    ]
    assert describe({"clf": LogisticRegression(), "clf__C": 0.1}) == "logistic C=0.1"
    assert (
        describe({"clf": RandomForestClassifier(), "clf__n_estimators": 5, "clf__max_depth": 3})
        == "random_forest trees=5 depth=3"
    )
