"""The model file (save_model / load_model) and inference: one format, a real round trip, clear refusals."""

import numpy as np
import pytest
import torch

from crlm.archs import ARCHS
from crlm.models.inference import predict
from crlm.models.model_file import ModelFileError, load_model, save_model
from crlm.models.registry import build_model, model_kwargs
from crlm.training.device import MEMORY_FORMAT
from tests.factories import synthetic_set, tiny_train_params


@pytest.mark.parametrize("arch", list(ARCHS))
def test_a_saved_model_loads_back_with_identical_weights_and_predictions(tmp_path, arch):
    params = tiny_train_params()
    torch.manual_seed(0)
    # as train_model returns it
    model = build_model(arch, model_kwargs(params.model, arch)).to(memory_format=MEMORY_FORMAT)
    path = tmp_path / "sub" / "model.pt"  # save_model creates the folder
    save_model(path, arch, model_kwargs(params.model, arch), model)

    # the format existing model files have: exactly these keys, plain values and tensors
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"arch", "kwargs", "state_dict"}
    assert raw["arch"] == arch and raw["kwargs"] == model_kwargs(params.model, arch)
    assert raw["kwargs"]["width"] == params.model.width and "arch" not in raw["kwargs"]

    loaded = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    data = synthetic_set(n=6)
    a, b = (
        predict(model, data, np.arange(6), 4, embeddings=True),
        predict(loaded, data, np.arange(6), 4, embeddings=True),
    )
    np.testing.assert_array_equal(a.prob, b.prob)
    np.testing.assert_array_equal(a.embedding, b.embedding)
    if a.seg_prob is None:
        assert arch == "vgg16" and b.seg_prob is None
    else:
        np.testing.assert_array_equal(a.seg_prob, b.seg_prob)


def test_unknown_arch_mismatched_config_or_weights_are_refused_naming_the_file(tmp_path):
    params = tiny_train_params()
    model = build_model("unet", model_kwargs(params.model, "unet"))
    config = model_kwargs(params.model, "unet")

    torch.save({"arch": "resnet", "kwargs": config, "state_dict": model.state_dict()}, tmp_path / "arch.pt")
    with pytest.raises(ModelFileError, match=r"arch.pt: unknown model arch 'resnet'"):
        load_model(tmp_path / "arch.pt")

    torch.save(
        {"arch": "unet", "kwargs": {**config, "depth": 5}, "state_dict": model.state_dict()}, tmp_path / "config.pt"
    )
    with pytest.raises(ModelFileError, match=r"config.pt: the saved network arguments do not fit arch 'unet'.*depth"):
        load_model(tmp_path / "config.pt")

    wider = build_model("unet", {**config, "width": 0.25})
    torch.save({"arch": "unet", "kwargs": config, "state_dict": wider.state_dict()}, tmp_path / "weights.pt")
    with pytest.raises(ModelFileError, match=r"weights.pt: the saved weights do not fit arch 'unet'"):
        load_model(tmp_path / "weights.pt")

    torch.save({"state_dict": model.state_dict()}, tmp_path / "partial.pt")
    with pytest.raises(ModelFileError, match=r"partial.pt: not a model file"):
        load_model(tmp_path / "partial.pt")


class RunsCode:
    """Unpickling this calls os.mkdir: what a booby-trapped model file from a remote could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.mkdir, (self.marker,)


def _load_checkpoint(path):
    from crlm.training.checkpoint import load_checkpoint

    return load_checkpoint(path, key="any")


@pytest.mark.parametrize("loader", [load_model, _load_checkpoint], ids=["load_model", "load_checkpoint"])
def test_a_file_with_a_pickled_object_is_refused_by_both_loaders_and_runs_nothing(tmp_path, loader):
    marker = tmp_path / "code-ran"
    path = tmp_path / "booby-trapped.pt"
    params = tiny_train_params()
    torch.save(
        {
            "arch": "unet",
            "kwargs": model_kwargs(params.model, "unet"),
            "state_dict": {},
            "fingerprint": "any",
            "payload": RunsCode(marker),
        },
        path,
    )
    with pytest.raises(
        ModelFileError,
        match=r"booby-trapped.pt: refused to load: it holds objects other than "
        r"tensors and plain values.*posix.mkdir",
    ):
        loader(path)
    assert not marker.exists()


def test_a_booby_trapped_imagenet_weights_file_in_the_hub_cache_is_refused(tmp_path, monkeypatch):
    from crlm.models.pretrained import PretrainedWeightsError, cache_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    marker = tmp_path / "code-ran"
    path = cache_file(batch_norm=True)
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(1), "payload": RunsCode(marker)}, path)
    args = {
        **model_kwargs(tiny_train_params().model, "vgg16"),
        "pretrained": "imagenet",
        "width": 1.0,
        "batch_norm": True,
    }
    with pytest.raises(PretrainedWeightsError, match="could not be loaded.*Weights only load failed"):
        build_model("vgg16", args)
    assert not marker.exists()
