"""Training: determinism, resume after an interruption, bad input."""

import dataclasses

import numpy as np
import pytest
import torch

from crlm.data.dataset import DatasetError, check_image_set
from crlm.data.splits import fold_names
from crlm.models.inference import predict
from crlm.training.checkpoint import load_checkpoint, save_checkpoint
from crlm.training.folds import worker_plan
from crlm.training.loop import batches, train_model
from tests.factories import synthetic_set, tiny_train_params, write_image_set


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_gives_identical_weights_and_predictions():
    data, params = synthetic_set(), tiny_train_params()
    idx = np.arange(18)
    a = train_model("unet", params, data, idx, np.arange(18, 24))
    b = train_model("unet", params, data, idx, np.arange(18, 24))
    assert a.history == b.history
    for key, value in weights(a.model).items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    pa, pb = predict(a.model, data, np.arange(24), 8), predict(b.model, data, np.arange(24), 8)
    np.testing.assert_array_equal(pa.prob, pb.prob)
    c = train_model("unet", tiny_train_params(seed=1), data, idx)
    assert not torch.equal(weights(c.model)["segment.weight"], weights(a.model)["segment.weight"])


def test_a_mapped_float16_set_trains_the_same_weights_as_its_float32_copy(tmp_path):
    """The prepared set is memory-mapped as float16 and converted a batch at a time; the set it replaces
    was the whole float16 file converted to float32 once. Training on either gives the same weights, the
    same history (validation Dice summed a batch at a time included) and the same predictions."""
    from crlm.data.dataset import ImageSet, load_image_set

    data = synthetic_set()
    data = ImageSet(data.manifest, data.images.astype(np.float16).astype(np.float32), data.tumour)
    mapped = load_image_set(write_image_set(tmp_path, data))
    assert isinstance(mapped.images, np.memmap) and mapped.images.dtype == np.float16
    params = tiny_train_params(batch_size=4)  # several validation batches
    idx, val = np.arange(18), np.arange(18, 24)
    a, b = train_model("unet", params, data, idx, val), train_model("unet", params, mapped, idx, val)
    assert a.history == b.history and "val_dice" in a.history[-1]
    for key, value in weights(a.model).items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    pa, pb = predict(a.model, data, np.arange(24), 8), predict(b.model, mapped, np.arange(24), 8)
    assert pa.seg_prob.tobytes() == pb.seg_prob.tobytes()
    whole = predict(a.model, data, val, 4).seg_prob >= 0.5  # every validation map at once, as before
    truth = data.tumour[val].astype(bool)
    dice = 2 * np.logical_and(whole, truth).sum() / max(whole.sum() + truth.sum(), 1)
    assert a.history[-1]["val_dice"] == pytest.approx(float(dice), abs=1e-12)


class Interrupt(Exception):
    pass


def test_training_resumes_at_the_right_epoch_after_an_interruption(tmp_path):
    data, params = synthetic_set(), tiny_train_params()
    idx = np.arange(18)
    checkpoint = tmp_path / "last.pt"

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_model("clmnet", params, data, idx, checkpoint=checkpoint, on_epoch_end=stop_after_two)
    seen = []
    resumed = train_model("clmnet", params, data, idx, checkpoint=checkpoint, on_epoch_end=seen.append)
    assert resumed.resumed_from_epoch == 2
    assert [row["epoch"] for row in seen] == [1, 2, 3]  # replayed history, then the new epoch
    straight = train_model("clmnet", params, data, idx)
    assert resumed.history == straight.history
    for key, value in weights(straight.model).items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_a_checkpoint_of_another_setting_is_not_resumed(tmp_path):
    data = synthetic_set()
    checkpoint = tmp_path / "last.pt"
    train_model("vgg16", tiny_train_params(epochs=1), data, np.arange(18), checkpoint=checkpoint)
    other = train_model("vgg16", tiny_train_params(epochs=2, lr=0.01), data, np.arange(18), checkpoint=checkpoint)
    assert other.resumed_from_epoch == 0


def test_a_checkpoint_is_plain_data_and_loads_with_weights_only(tmp_path):
    data, checkpoint = synthetic_set(), tmp_path / "last.pt"
    train_model(
        "unet",
        tiny_train_params(epochs=1, lr_schedule="onecycle"),
        data,
        np.arange(18),
        np.arange(18, 24),
        checkpoint=checkpoint,
    )
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert set(state) == {"model", "optimizer", "scheduler", "epoch", "history", "fingerprint"}
    assert state["epoch"] == 1 and isinstance(state["fingerprint"], str)
    assert all(type(v) in (int, float, type(None)) for row in state["history"] for v in row.values())

    # numpy scalars in the history (a metric computed with numpy) are stored as Python floats
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    save_checkpoint(
        checkpoint,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        epoch=3,
        history=[{"epoch": 3, "val_auc": np.float64(0.75), "val_dice": np.float32(0.5)}],
        key="k",
    )
    loaded = load_checkpoint(checkpoint, "k")
    assert loaded["history"] == [{"epoch": 3, "val_auc": 0.75, "val_dice": 0.5}]
    assert type(loaded["history"][0]["val_auc"]) is float


def test_training_learns_the_synthetic_task():
    data = synthetic_set(n=48)
    params = tiny_train_params(epochs=12, lr=0.003)
    result = train_model("unet", params, data, np.arange(36), np.arange(36, 48))
    assert result.history[-1]["train_loss"] < 0.6 * result.history[0]["train_loss"]
    assert result.history[-1]["val_auc"] > 0.8


def test_an_image_with_nan_is_refused_with_its_id():
    data = synthetic_set()
    data.images[5, 3, 3] = np.nan
    with pytest.raises(DatasetError, match="img-5"):
        check_image_set(data, "dataset.npz")


def test_a_trailing_batch_of_one_joins_the_previous_batch():
    assert [len(b) for b in batches(np.arange(17), 8)] == [8, 9]
    assert [len(b) for b in batches(np.arange(16), 8)] == [8, 8]


def test_a_batch_with_one_class_trains_and_reports_undefined_auc():
    data = synthetic_set()
    positives = np.flatnonzero(data.labels == 1)
    result = train_model("vgg16", tiny_train_params(epochs=1), data, positives[:6], positives[6:])
    assert result.history[0]["val_auc"] is None


def test_worker_plan_runs_folds_side_by_side_on_cpu_and_one_after_another_on_cuda():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert worker_plan(6, cpu, cpus=2) == (2, 1)
    assert worker_plan(6, cpu, cpus=16) == (6, 2)
    assert worker_plan(6, cpu, cpus=1) == (1, 1)
    assert worker_plan(6, cuda, cpus=16) == (1, 16)
    assert fold_names(5) == ["0", "1", "2", "3", "4"]


def test_onecycle_schedule_warms_up_and_anneals(monkeypatch):
    params = tiny_train_params(epochs=3, lr=0.01, lr_schedule="onecycle")
    lrs = []
    original = torch.optim.Adam.step

    def record(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", record)
    train_model("vgg16", params, synthetic_set(), np.arange(18))
    assert len(lrs) == 3 * 3  # 18 images, batch 8 -> 3 steps per epoch
    assert lrs[0] < 0.002 and max(lrs) == pytest.approx(0.01, rel=0.05) and lrs[-1] < 1e-4


def test_validation_every_n_epochs_and_at_the_last():
    data = synthetic_set()
    result = train_model("vgg16", tiny_train_params(epochs=5, val_every=2), data, np.arange(18), np.arange(18, 24))
    assert [row["epoch"] for row in result.history if "val_bce" in row] == [2, 4, 5]
    assert all(set(row) == {"epoch", "train_loss"} for row in result.history if row["epoch"] in (1, 3))


def test_a_fold_trains_on_its_sample_and_predicts_every_validation_and_test_image(tmp_path, monkeypatch):
    """Labels choose training images only: the fold's predictions cover all images of its validation
    patients and of the test patients, ambiguous ones included."""
    from crlm.core.io import write_json
    from crlm.data.labels import is_ambiguous
    from crlm.data.sampling import training_sample
    from crlm.training.folds import train_fold

    data = synthetic_set(n=48)  # patients p-0 .. p-15, 3 images each
    manifest = data.manifest.assign(tumour_area_px=data.tumour.reshape(48, -1).sum(1))
    manifest.loc[[1, 7, 43], "tumour_area_px"] = 3  # label 0 on a small lesion: ambiguous
    assert is_ambiguous(manifest).sum() == 3
    monkeypatch.chdir(tmp_path)
    write_image_set(tmp_path / "data" / "processed", dataclasses.replace(data, manifest=manifest))
    patients = [f"p-{k}" for k in range(16)]
    test, val, train = patients[14:], patients[:2], patients[2:14]
    write_json(tmp_path / "data/splits/splits.json", {"test": test, "folds": [{"train": train, "val": val}]})
    params = tiny_train_params(epochs=1, max_slices_per_patient=2, device="cpu")

    summary, history = train_fold("vgg16", "0", params, threads=1)

    expected = training_sample(manifest, train, params.train, "0")
    assert f"vgg16/0: {len(expected)} of 36 training images" in summary and len(expected) < 36
    for name, patients_of in (("predictions.npz", val), ("test_predictions.npz", test)):
        with np.load(tmp_path / "data/models/vgg16/0" / name) as saved:
            ids = saved["image_id"].tolist()
        assert ids == manifest.loc[manifest["patient_id"].isin(patients_of), "image_id"].tolist()
    assert len(history) == 1 and "val_bce" in history[0]


def test_a_diverging_training_stops_at_its_first_epoch_naming_it_and_the_lr():
    from crlm.training.loop import TrainingDiverged

    with pytest.raises(
        TrainingDiverged,
        match=r"train unet: the training loss is nan at epoch 1 \(train\.lr 1e\+30, "
        r"train\.lr_schedule constant\).*lower train\.lr",
    ):
        train_model(
            "unet",
            tiny_train_params(lr=1e30, lr_schedule="constant"),
            synthetic_set(),
            np.arange(18),
            np.arange(18, 24),
        )
