"""The paper's profile, smoke-tested on the CPU (issue 16, item 5).

Every arch at the Makefile's PAPER settings (256 px whole slices, width 1, ImageNet VGG16-BN weights,
the 1024-d embedding, Adam at a constant 1e-4) with bf16 autocast and augmentation: one epoch on a
handful of images, then the model is saved and reloaded as the train stage writes it, evaluated as the
evaluate stage does (CRF included for the arch that refines its mask) and embedded as the embed stage
does. The ImageNet weights come from a file this test writes into torch.hub's cache, so nothing is
downloaded. Anything that breaks only at the paper's size (shapes at 256 px, full-width channel
counts, bf16 dtypes, the ImageNet loading) breaks here; the tiny profile of the other tests never sees it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models import vgg16_bn

from crlm.archs import ARCH_NAMES, get_arch
from crlm.data.dataset import ImageSet, check_image_set
from crlm.embedding.extract import patient_embeddings
from crlm.embedding.table import embedding_columns
from crlm.models.crf import crf_refine
from crlm.models.inference import predict
from crlm.models.model_file import load_model, read_model_file, save_model
from crlm.models.pretrained import cache_file
from crlm.models.registry import build_model, model_kwargs
from crlm.params import params_from_dict
from crlm.training import loop
from crlm.training.loop import train_model
from tests.conftest import tiny_params_dict
from tests.factories import disc_set

pytestmark = pytest.mark.slow  # about a minute on 2 CPUs: full-width networks at 256 px

SIZE = 256
N_IMAGES = 4
BATCH = 2


def paper_params():
    """The tests' params with the Makefile's PAPER overrides (cpu, bf16 and one epoch instead of cuda and 50)."""
    params = params_from_dict(
        tiny_params_dict(
            prepare={"image_size": SIZE, "crop": "none"},
            model={"width": 1.0, "pretrained": "imagenet", "batch_norm": True, "embedding_dim": 1024},
            train={
                "epochs": 1,
                "batch_size": BATCH,
                "lr": 1e-4,
                "lr_schedule": "constant",
                "device": "cpu",
                "precision": "bf16",
                "augment": True,
                "val_every": 1,
                "max_slices_per_patient": N_IMAGES,
            },
            embed={"batch_size": BATCH},
        )
    )
    assert params.prepare.image_size == SIZE and params.model.width == 1.0
    assert params.model.pretrained == "imagenet" and params.model.embedding_dim == 1024
    assert params.train.precision == "bf16" and params.augment.elastic_alpha > 0
    return params


def paper_size_set(n=N_IMAGES, size=SIZE, seed=0) -> ImageSet:
    """Textured 256 px slices; every other one has a bright disc and its tumour mask; two patients."""
    data = disc_set(
        n, size, seed, mean=0.45, sd=0.05, contrast=0.35, radius_sq=20**2, margin=48, patient=lambda i: f"p-{i % 2}"
    )
    return check_image_set(data, "paper-size set")


@pytest.fixture
def imagenet_file(tmp_path, monkeypatch):
    """A randomly initialised torchvision VGG16-BN state dict where torch.hub looks for the ImageNet file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(123)
    reference = vgg16_bn(weights=None).state_dict()
    path = cache_file(batch_norm=True)
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    return {k.removeprefix("features."): v for k, v in reference.items() if k.startswith("features.")}


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_the_paper_profile_trains_evaluates_and_embeds(arch, imagenet_file, tmp_path, monkeypatch):
    params, data = paper_params(), paper_size_set()
    spec = get_arch(arch)
    everything = np.arange(len(data.manifest))

    # the built model starts from the file's weights: checked on the untrained network that training builds
    fresh = build_model(arch, model_kwargs(params.model, arch)).trunk.features.state_dict()
    assert fresh, f"{arch}: the trunk has no weights"
    for name, value in fresh.items():
        assert torch.equal(value, imagenet_file[name]), f"{arch}: trunk tensor {name} is not the file's"

    # the dtypes the first conv computes in, to see bf16 autocast really on in the training steps
    dtypes = set()

    def build_and_watch(name, kwargs):
        model = build_model(name, kwargs)
        model.trunk.features[0].register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
        return model

    monkeypatch.setattr(loop, "build_model", build_and_watch)
    result = train_model(arch, params, data, everything, everything)
    assert torch.bfloat16 in dtypes, f"{arch}: no bf16 conv under train.precision bf16 (saw {dtypes})"
    [row] = result.history
    assert np.isfinite(row["train_loss"]) and row["train_loss"] > 0, row
    assert np.isfinite(row["val_bce"]), row
    if spec.segments:
        assert 0.0 <= row["val_dice"] <= 1.0, row
    # every weight stayed finite, and the trained trunk is the file's moved by a couple of Adam steps at 1e-4
    # (a randomly initialised trunk would differ by far more): training started from the ImageNet file
    trained = result.model.state_dict()
    assert all(torch.isfinite(v).all() for v in trained.values() if v.is_floating_point())
    trunk = dict(result.model.trunk.features.named_parameters())
    assert not torch.equal(trunk["0.weight"], imagenet_file["0.weight"]), "training did not move the trunk"
    for name, value in trunk.items():
        assert (value.detach() - imagenet_file[name]).abs().max() < 1e-2, f"{arch}: trunk {name} is not the file's"

    # saved and read back as the train stage writes the model file and evaluate/embed read it
    path = tmp_path / "models" / arch / "0" / "model.pt"
    save_model(path, arch, model_kwargs(params.model, arch), result.model)
    saved_arch, saved_cfg, _ = read_model_file(path)
    assert saved_arch == arch and saved_cfg == model_kwargs(params.model, arch)
    model = load_model(path)
    before = predict(result.model, data, everything, BATCH, embeddings=True)
    after = predict(model, data, everything, BATCH, embeddings=True)
    np.testing.assert_allclose(after.prob, before.prob, rtol=1e-5, atol=1e-6)

    # evaluated: image probabilities and (segmenting archs) full-size tumour maps
    assert after.prob.shape == (len(everything),)
    assert np.isfinite(after.prob).all() and ((after.prob >= 0) & (after.prob <= 1)).all()
    if spec.segments:
        assert after.seg_prob.shape == (len(everything), SIZE, SIZE)
        assert np.isfinite(after.seg_prob).all()
        assert ((after.seg_prob >= 0) & (after.seg_prob <= 1)).all()
        np.testing.assert_allclose(after.seg_prob, before.seg_prob, rtol=1e-5, atol=1e-6)
        if spec.crf:
            refined = crf_refine(data.images[0], after.seg_prob[0], params.crf)
            assert refined.shape == (SIZE, SIZE) and np.isfinite(refined).all()
    else:
        assert after.seg_prob is None

    # embedded as the embed stage does: 1024-d, finite, one row per patient
    assert after.embedding.shape == (len(everything), 1024) and np.isfinite(after.embedding).all()
    np.testing.assert_allclose(after.embedding, before.embedding, rtol=1e-5, atol=1e-5)
    frame = patient_embeddings(model, data, params.embed.batch_size, params.embed.aggregation)
    columns = embedding_columns(1024)
    assert list(frame.columns) == ["patient_id", "n_images", *columns]
    assert frame["patient_id"].tolist() == ["p-0", "p-1"] and frame["n_images"].tolist() == [2, 2]
    vectors = frame[columns].to_numpy()
    assert np.isfinite(vectors).all() and vectors.std() > 0
    np.testing.assert_allclose(vectors[0], after.embedding[[0, 2]].mean(0), rtol=1e-4, atol=1e-5)
