"""crlm.survival.skops_file: every classifier the survival stage can choose round-trips exactly and byte-stably,
and a file that was modified, or that names a type outside the trusted list, is refused before anything runs."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io

from crlm.params import load_params
from crlm.survival.classifiers import fit_tuned
from crlm.survival.skops_file import SkopsFileError, dump_pipeline, load_pipeline, sha256
from tests.conftest import BASE_PARAMS


def fitted(classifier: str, class_weight: str, seed: int = 0):
    cfg = load_params(BASE_PARAMS).survival
    cfg = dataclasses.replace(cfg, classifiers=(classifier,), class_weight=class_weight, rf_trees=(5,))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 24))
    y = (x[:, 0] + rng.normal(scale=0.5, size=40) > 0).astype(int)
    model, _ = fit_tuned(x, y, cfg)
    return model, rng.normal(size=(200, 24))


@pytest.mark.parametrize("classifier", ["logistic", "random_forest"])
@pytest.mark.parametrize("class_weight", ["balanced", "none"])
def test_each_chosen_classifier_reloads_with_the_same_probabilities_and_bytes(tmp_path, classifier, class_weight):
    model, x = fitted(classifier, class_weight)
    digest = dump_pipeline(tmp_path / "a.skops", model)
    assert digest == sha256(tmp_path / "a.skops")
    loaded = load_pipeline(tmp_path / "a.skops", digest)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    # the same fit again, in other Python objects: the same bytes
    again, _ = fitted(classifier, class_weight)
    assert dump_pipeline(tmp_path / "b.skops", again) == digest


def test_a_modified_file_is_refused_naming_it(tmp_path):
    model, _ = fitted("logistic", "balanced")
    path = tmp_path / "fold0.skops"
    digest = dump_pipeline(path, model)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SkopsFileError, match="sha256 differs") as info:
        load_pipeline(path, digest)
    assert str(path) in str(info.value)


def payload(marker: Path, module: str, name: str, args: list[str]) -> dict:
    """A skops node that calls module.name(*args) when it is constructed: each call below creates `marker`."""
    content = [
        {
            "__class__": "str",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": json.dumps(a),
            "is_json": True,
            "__id__": 100 + i,
        }
        for i, a in enumerate(args)
    ]
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": content,
            "__id__": 99,
        },
        "__id__": 98,
    }


def calls(marker: Path) -> list[tuple[str, str, list[str]]]:
    return [
        ("builtins", "open", [str(marker), "w"]),
        ("builtins", "eval", [f"open({str(marker)!r}, 'w').close()"]),
        ("os", "system", [f"touch '{marker}'"]),
    ]


@pytest.mark.parametrize("which", [0, 1, 2], ids=["builtins.open", "builtins.eval", "os.system"])
def test_a_file_naming_an_untrusted_type_is_refused_and_runs_nothing(tmp_path, which):
    """The pipeline's schema.json with its first step replaced by a call: skops told to trust that type runs it
    (the payload is live), our loader refuses the file, naming it, even with its sha256 recorded."""
    model, _ = fitted("logistic", "balanced")
    path, marker = tmp_path / "fold0.skops", tmp_path / "payload_ran"
    dump_pipeline(path, model)
    module, name, args = calls(marker)[which]
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"]["content"]["steps"]["content"][0]["content"][1] = payload(marker, module, name, args)
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    path.write_bytes(buffer.getvalue())

    skops.io.load(path, trusted=[*skops.io.get_untrusted_types(file=path)])  # what blind trust does
    assert marker.exists()
    marker.unlink()

    with pytest.raises(SkopsFileError, match="untrusted type") as info:
        load_pipeline(path, sha256(path))
    assert str(path) in str(info.value) and f"{module}.{name}" in str(info.value)
    assert not marker.exists()
