"""Damaged or mismatched project files fail with one line that names the file and the fix: a model of
another arch in a models folder, a truncated/emptied/overwritten model file or checkpoint (a checkpoint is
set aside and training starts afresh), and a damaged .npz (never with numpy's allow_pickle advice).

Every file here is real: written by save_model, train_model or numpy, then cut or overwritten."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from crlm.archs import ARCHS
from crlm.core.io import DataFileError, load_npz
from crlm.data.dataset import load_image_set
from crlm.data.slices import load_slice
from crlm.explain.cam import ensemble_cam
from crlm.models.folds import load_predictions
from crlm.models.model_file import ModelFileError, load_model
from crlm.models.registry import build_model, model_kwargs
from crlm.params import params_from_dict
from crlm.predict import PredictError
from crlm.predict.ensemble import checked_arch, fold_model_paths
from crlm.training.checkpoint import load_checkpoint
from crlm.training.loop import train_model
from tests.conftest import REPO, tiny_params_dict
from tests.factories import save_random_model, synthetic_set, tiny_train_params, write_image_set

FIX_UNET = "rerun the stage that writes it (dvc repro -f train@unet)"


def tiny_model_file(path: Path, arch: str = "unet") -> Path:
    return save_random_model(path, arch, params_from_dict(tiny_params_dict()).model, seed=0)


# ---------------------------------------------------------------- a model of another arch


def test_a_model_of_another_arch_in_a_models_folder_is_refused_by_every_reader(tmp_path, tiny_params):
    path = tiny_model_file(tmp_path / "models" / "vgg16" / "0" / "model.pt", arch="unet")
    params = tiny_params
    expected = (
        f"{path}: a model of arch 'unet' where arch 'vgg16' is expected (the models folder's); "
        "rerun the stage that writes it (dvc repro -f train@vgg16)"
    )

    with pytest.raises(ModelFileError) as load:
        load_model(path, expected_arch="vgg16")
    assert str(load.value) == expected
    with pytest.raises(ModelFileError) as cam:  # explain
        ensemble_cam([path], synthetic_set(n=2).images, "vgg16")
    assert str(cam.value) == expected
    with pytest.raises(PredictError) as ensemble:  # crlm predict --models .../vgg16
        checked_arch(fold_model_paths(tmp_path / "models" / "vgg16"), params.model, "params.yaml")
    assert str(ensemble.value) == expected

    (tmp_path / "models" / "vgg16").rename(tmp_path / "models" / "unet")  # in its own arch's folder it loads
    moved = tmp_path / "models" / "unet" / "0" / "model.pt"
    assert type(load_model(moved, expected_arch="unet")) is type(
        build_model("unet", model_kwargs(params.model, "unet"))
    )
    assert checked_arch([moved], params.model, "params.yaml") == "unet"


def test_the_embed_stage_refuses_a_fold_model_of_another_arch(tmp_path):
    """The embed stage, run as dvc runs it, in a workspace whose vgg16 fold 0 holds a U-Net."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()))
    data = synthetic_set(n=6)
    write_image_set(tmp_path / "data" / "processed", data)
    (tmp_path / "data/splits").mkdir(parents=True)
    (tmp_path / "data/splits/splits.json").write_text(json.dumps({"folds": [{"train": [], "val": []}], "test": []}))
    for arch in ARCHS:
        tiny_model_file(tmp_path / "data/models" / arch / "0" / "model.pt", arch="unet" if arch == "vgg16" else arch)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / "embed.py")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, "embedded the VGG16 fold 0 with a U-Net"
    assert "Traceback" not in output  # one line: what and the fix
    assert (
        "data/models/vgg16/0/model.pt: a model of arch 'unet' where arch 'vgg16' is expected "
        "(the models folder's); rerun the stage that writes it (dvc repro -f train@vgg16)"
    ) in output
    assert not (tmp_path / "data" / "embeddings").exists()


# ---------------------------------------------------------------- unreadable model files


def damaged(data: bytes) -> dict[str, tuple[bytes, str]]:
    """Damaged copies of a model file: its new bytes and the reader's words that the message quotes
    (torch 2.14 raises EOFError for an empty file, the zip reader's RuntimeError for a cut one, and a
    weights-only unpickling error or KeyError for bytes that are no zip)."""
    no_zip = "not a torch file: no zip archive"
    return {
        "empty": (b"", "empty file"),
        "half": (
            data[: len(data) // 2],
            "PytorchStreamReader failed reading zip archive: failed finding central directory",
        ),
        "end cut": (data[:-10], "PytorchStreamReader failed reading zip archive: failed finding central directory"),
        "first bytes": (data[:10], "PytorchStreamReader failed reading zip archive: not a ZIP archive"),
        "random": (np.random.default_rng(0).bytes(4000), no_zip),
        "lfs pointer": (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1822255\n", no_zip),
    }


@pytest.mark.parametrize("case", ["empty", "half", "end cut", "first bytes", "random", "lfs pointer"])
def test_a_truncated_or_overwritten_model_file_is_named_with_the_stage_to_rerun(tmp_path, case):
    path = tiny_model_file(tmp_path / "models" / "unet" / "0" / "model.pt")
    content, detail = damaged(path.read_bytes())[case]
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    assert str(caught.value) == f"{path}: unreadable model file (truncated or damaged: {detail}); {FIX_UNET}"


def test_an_unreadable_checkpoint_is_set_aside_with_a_warning_and_training_starts_afresh(tmp_path, caplog):
    data, params = synthetic_set(), tiny_train_params(epochs=1)
    checkpoint = tmp_path / "checkpoints" / "unet" / "0" / "last.pt"
    train_model("unet", params, data, np.arange(18), checkpoint=checkpoint)
    content = checkpoint.read_bytes()
    checkpoint.write_bytes(content[: len(content) // 2])  # cut off: the disk filled, say

    with caplog.at_level(logging.WARNING, logger="crlm.training.checkpoint"):
        again = train_model("unet", params, data, np.arange(18), checkpoint=checkpoint)
    assert again.resumed_from_epoch == 0
    aside = checkpoint.with_name("last.pt.unreadable")
    assert aside.read_bytes() == content[: len(content) // 2]  # kept, not deleted
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{checkpoint}: unreadable checkpoint (truncated or damaged: PytorchStreamReader failed "
        f"reading zip archive: failed finding central directory); set aside as {aside}; "
        "training starts afresh"
    ]
    resumed = train_model("unet", params, data, np.arange(18), checkpoint=checkpoint)  # the new one resumes
    assert resumed.resumed_from_epoch == 1

    checkpoint.write_bytes(b"")  # emptied: torch's bare EOFError
    assert load_checkpoint(checkpoint, "any") is None
    assert aside.read_bytes() == b"" and not checkpoint.exists()


# ---------------------------------------------------------------- damaged .npz files


def saved_npz(path: Path, compressed: bool = True, **arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_a_damaged_slice_names_the_file_and_the_slices_stage_never_allow_pickle(tmp_path):
    slices = tmp_path / "slices"
    rng = np.random.default_rng(0)
    path = saved_npz(
        slices / "p-s001.npz",
        image=rng.integers(-100, 200, (16, 16)).astype(np.int16),
        tumour=np.zeros((16, 16), np.uint8),
        liver=np.ones((16, 16), np.uint8),
    )
    row = type("Row", (), {"path": "p-s001.npz"})()
    assert set(load_slice(slices, row)) == {"image", "tumour", "liver"}
    content = path.read_bytes()
    fix = "rerun the stage that writes it (dvc repro -f slices)"
    for new, detail in [
        (b"version https://git-lfs.github.com/spec/v1\n", "not a numpy archive"),
        (content[:2], "not a numpy archive"),
        (b"", "empty file"),
        (content[: len(content) // 2], "File is not a zip file"),
        (content[:-30] + bytes(30), "File is not a zip file"),
    ]:
        path.write_bytes(new)
        with pytest.raises(DataFileError) as caught:
            load_slice(slices, row)
        assert str(caught.value) == f"{path}: unreadable .npz file (truncated or damaged: {detail}); {fix}"
        assert "allow_pickle" not in str(caught.value)

    flipped = bytearray(content)
    flipped[len(content) // 4] ^= 0xFF  # inside the compressed image: a CRC or zlib error
    path.write_bytes(bytes(flipped))
    with pytest.raises(DataFileError) as caught:
        load_slice(slices, row)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: unreadable \.npz file \(truncated or damaged: .+\); "
        r"rerun the stage that writes it \(dvc repro -f slices\)",
        str(caught.value),
    )


def test_an_object_array_is_never_unpickled(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, image=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataFileError) as caught:
        load_npz(path, "slices")
    assert str(caught.value) == (
        f"{path}: unreadable .npz file (truncated or damaged: holds an object array); "
        "rerun the stage that writes it (dvc repro -f slices)"
    )


def test_a_damaged_or_incomplete_prepared_dataset_names_the_prepare_stage(tmp_path):
    data = synthetic_set(n=6)
    processed = write_image_set(tmp_path / "processed", data)
    loaded = load_image_set(processed)
    assert isinstance(loaded.images, np.memmap) and loaded.images.dtype == np.float16 and len(loaded.images) == 6
    images = processed / "images.npy"

    content = images.read_bytes()
    images.write_bytes(content[: len(content) // 3])
    with pytest.raises(DataFileError) as caught:
        load_image_set(processed)
    assert str(caught.value) == (
        f"{images}: unreadable .npy file (truncated or damaged: mmap length is greater than file size); "
        "rerun the stage that writes it (dvc repro -f prepare)"
    )

    np.save(images, data.images.astype(np.float32))  # written by another version of prepare
    with pytest.raises(DataFileError) as caught:
        load_image_set(processed)
    assert str(caught.value) == (
        f"{images}: a 3-d float32 array where 3-d float16 is expected (written by another version of the code?); "
        "rerun the stage that writes it (dvc repro -f prepare)"
    )

    (processed / "tumour.npy").unlink()
    np.save(images, data.images.astype(np.float16))
    with pytest.raises(FileNotFoundError) as missing:
        load_image_set(processed)
    assert (
        str(missing.value) == f"{processed / 'tumour.npy'}: not found; run the stage that writes it (dvc repro prepare)"
    )


def test_a_damaged_fold_prediction_file_names_the_arch_train_stage(tmp_path):
    path = saved_npz(
        tmp_path / "models" / "unet" / "3" / "test_predictions.npz",
        image_id=np.array(["a", "b"]),
        prob=np.array([0.2, 0.9], np.float32),
        seg_prob=np.zeros((2, 4, 4), np.float16),
    )
    ids, prob, seg = load_predictions(path)
    assert ids.tolist() == ["a", "b"] and seg.shape == (2, 4, 4)
    saved_npz(path, image_id=np.array(["a"]), prob=np.array([0.5]))  # a classifier: no tumour maps
    assert load_predictions(path)[2] is None

    path.write_bytes(b"\x00" * 100)
    with pytest.raises(DataFileError) as caught:
        load_predictions(path)
    assert str(caught.value) == f"{path}: unreadable .npz file (truncated or damaged: not a numpy archive); {FIX_UNET}"
