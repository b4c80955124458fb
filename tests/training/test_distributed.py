"""DDP across processes (torchrun, gloo on the CPU) against one process with the same global batch,
and the pieces that make them agree."""

import dataclasses
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest
import torch
from segmentation_models_pytorch.losses import DiceLoss

from crlm.data.transforms import augment_batch
from crlm.models.inference import predict
from crlm.models.registry import build_model, model_kwargs
from crlm.training.device import make_deterministic
from crlm.training.distributed import (
    SINGLE,
    GlobalBatchNorm2d,
    World,
    own_dropout_draws,
    smallest,
    with_global_batch_norm,
    world_from_env,
    wrap,
)
from crlm.training.folds import take_one_gpu, worker_plan
from crlm.training.loop import EpochSetup, Loss, _train_epoch, batches, global_dice_loss, train_model
from tests.conftest import REPO, with_arch_params
from tests.factories import synthetic_set, tiny_train_params

ARCH = "unet"  # batch norm and the Dice term: the two losses that do not split by image
TRAIN_IDX, VAL_IDX = list(range(18)), list(range(18, 24))
CPU = torch.device("cpu")


def ddp_params():
    """Two epochs, global batch 8 (4 per process; the last batch of 2 splits 1 + 1), fp32, no dropout.

    Dropout draws its masks per process, so only without it can two processes repeat one process's run;
    bf16 rounds each matrix product's partial sums, which differ with the split of the batch (measured:
    a 3e-5 relative loss difference after one step in bf16, 1e-7 in fp32)."""
    params = tiny_train_params(epochs=2, batch_size=8, precision="fp32")
    return dataclasses.replace(params, model=with_arch_params(params.model, "unet", dropout=0.0))


def test_each_image_of_a_batch_belongs_to_exactly_one_process():
    for n in (2, 7, 8, 33):
        for size in (1, 2, 3, 4):
            rows = [list(range(n))[World(rank, size).shard(n)] for rank in range(size)]
            assert sum(rows, []) == list(range(n))
            assert max(map(len, rows)) - min(map(len, rows)) <= 1
    assert world_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == World(3, 4, 1)
    assert world_from_env({}) == SINGLE


def test_a_shard_gets_the_augmentation_draws_of_its_rows_in_the_whole_batch(tiny_params):
    images, masks = torch.rand(8, 1, 32, 32), (torch.rand(8, 1, 32, 32) > 0.7).float()
    augment = dataclasses.replace(tiny_params.augment, elastic_p=0.5)  # some rows elastic, some not
    torch.manual_seed(3)
    whole = augment_batch(images, masks, augment)
    for rank in range(3):
        rows = World(rank, 3).shard(8)
        torch.manual_seed(3)
        shard = augment_batch(images[rows], masks[rows], augment, 8, rows)
        torch.testing.assert_close(shard[0], whole[0][rows], atol=1e-6, rtol=0)
        assert torch.equal(shard[1], whole[1][rows])


def test_the_global_dice_loss_of_one_process_is_segmentation_models_pytorchs():
    torch.manual_seed(0)
    logits, masks = torch.randn(4, 1, 16, 16), (torch.rand(4, 1, 16, 16) > 0.8).float()
    reference = DiceLoss("binary", from_logits=True)
    torch.testing.assert_close(global_dice_loss(logits, masks, SINGLE), reference(logits, masks))
    empty = torch.zeros_like(masks)
    assert global_dice_loss(logits, empty, SINGLE).item() == reference(logits, empty).item() == 0.0


def test_worker_plan_spreads_folds_over_gpus_and_keeps_to_the_cpu_budget():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert worker_plan(5, cpu, cpus=2) == (2, 1)
    assert worker_plan(5, cpu, cpus=16) == (5, 3)
    assert worker_plan(5, cuda, cpus=16, gpus=4) == (4, 4)  # one training per GPU
    assert worker_plan(5, cuda, cpus=16, gpus=1) == (1, 16)
    assert worker_plan(5, cuda, cpus=16, gpus=8) == (5, 3)


def _visible_gpus(_):
    import time

    time.sleep(0.5)  # every worker gets a task
    return os.getpid(), os.environ["CUDA_VISIBLE_DEVICES"]


def test_each_fold_worker_sees_its_own_gpu():
    context = get_context("spawn")
    free = context.Queue()
    for gpu in ("2", "5", "7"):
        free.put(gpu)
    with ProcessPoolExecutor(3, mp_context=context, initializer=take_one_gpu, initargs=(free,)) as pool:
        seen = dict(pool.map(_visible_gpus, range(6)))
    assert sorted(seen.values()) == ["2", "5", "7"]  # three processes, three different GPUs


def one_batch_gradient(params, data, world: World = SINGLE) -> dict[str, torch.Tensor]:
    """The gradient of the loss of the first training batch (8 images, augmented), as the training loop
    computes it: through DDP in a world of several processes (averaged over them)."""
    make_deterministic(params.train.seed)
    model = with_global_batch_norm(build_model(ARCH, model_kwargs(params.model, ARCH)), world, CPU)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # a step that leaves the weights alone
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    cfg = params.train
    loss_fn = Loss(cfg.cls_loss_weight, cfg.seg_loss_weight, cfg.seg_pos_weight, world)
    setup = EpochSetup(
        model=wrap(model, world, CPU, unused_parameters=False),
        optimizer=optimizer,
        scheduler=scheduler,
        loss_fn=loss_fn,
        data=data,
        train_idx=np.asarray(TRAIN_IDX[: cfg.batch_size]),
        augment=params.augment,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=CPU,
        precision="fp32",
        world=world,
    )
    _train_epoch(setup, epoch=1)
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.fixture(scope="module")
def torchrun_result(tmp_path_factory):
    """tests/ddp_training.py in 2 processes started by torchrun (gloo)."""
    out = tmp_path_factory.mktemp("ddp") / "ddp.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(REPO / "tests" / "ddp_training.py"),
            str(out),
        ],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ddp = torch.load(out, weights_only=True)
    assert ddp["world"] == 2
    return ddp


@pytest.mark.slow
def test_two_processes_compute_the_gradient_of_one_process(torchrun_result):
    """Shards of 4 + 4 images, batch norm over both, the Dice sums over both, DDP's average: the gradient
    of the 8-image batch, to float rounding (relative to the largest gradient: a convolution bias followed
    by batch norm has a zero gradient in exact arithmetic, rounding noise in float)."""
    torch.set_num_threads(1)
    single = one_batch_gradient(ddp_params(), synthetic_set())
    assert set(torchrun_result["gradient"]) == set(single)
    scale = max(grad.abs().max().item() for grad in single.values())
    gaps = {
        name: (torchrun_result["gradient"][name] - grad).abs().max().item() / scale for name, grad in single.items()
    }
    print(f"max |DDP - single| / max |gradient| = {max(gaps.values()):.1e} ({max(gaps, key=gaps.get)})")
    assert max(gaps.values()) < 1e-5  # measured 1.6e-6


@pytest.mark.slow
def test_two_processes_train_the_model_of_one_process_up_to_adams_amplified_rounding(torchrun_result):
    """The whole loop, 2 epochs (6 Adam steps). The weights are not equal, and cannot be: Adam divides each
    update by the root of the gradient's running square, so a parameter whose true gradient is zero (the
    bias of a convolution followed by batch norm, which the normalisation cancels) moves by learning-rate
    sized steps driven by float rounding, which differs with the summation order; those differences then
    reach the batch-norm statistics. Measured: predictions differ by <= 1.8e-3 (probability) and 1.2e-3
    (tumour map) between 2 processes and 1, against 7.5e-2 and 1.7e-2 between seeds 0 and 1."""
    torch.set_num_threads(1)
    data = synthetic_set()
    everything = np.arange(len(data.labels))

    def trained(seed):
        params = ddp_params()
        params = dataclasses.replace(params, train=dataclasses.replace(params.train, seed=seed))
        result = train_model(ARCH, params, data, np.asarray(TRAIN_IDX), np.asarray(VAL_IDX))
        return result.history, predict(result.model, data, everything, 8)

    (history, single), (_, reseeded) = trained(0), trained(1)
    ddp = torchrun_result
    gap = max(np.abs(ddp["prob"].numpy() - single.prob).max(), np.abs(ddp["seg_prob"].numpy() - single.seg_prob).max())
    seed_gap = min(np.abs(reseeded.prob - single.prob).max(), np.abs(reseeded.seg_prob - single.seg_prob).max())
    print(f"max |DDP - single| = {gap:.2e}; seed 1 vs 0: {seed_gap:.2e}")
    assert gap < 1e-2 and gap < seed_gap / 5
    for a, b in zip(ddp["history"], history, strict=True):
        assert a.keys() == b.keys()
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=5e-3)  # measured 1.0e-3 at epoch 2


def test_no_process_gets_an_empty_shard_and_a_too_small_global_batch_is_refused():
    world = World(0, 3)
    assert [len(b) for b in batches(np.arange(18), 8, smallest(world))] == [8, 10]  # a trailing 2 < 3 joins
    assert [len(b) for b in batches(np.arange(19), 8, smallest(world))] == [8, 8, 3]
    assert smallest(SINGLE) == 2
    with pytest.raises(ValueError, match="train.batch_size 2 is the global batch, split over 3 processes"):
        train_model(ARCH, tiny_train_params(batch_size=2), synthetic_set(), np.arange(8), world=world)


def test_each_process_draws_its_own_dropout_and_leaves_the_augmentation_generator_alone():
    dropout = torch.nn.Dropout(0.5)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    masks = []
    for rank in (0, 1):
        world = World(rank, 2)
        with own_dropout_draws(world, 100 + world.rank, CPU):
            masks.append(dropout(torch.ones(64)))
        assert torch.equal(torch.get_rng_state(), before)  # the next augmentation draw is every process's
    assert not torch.equal(masks[0], masks[1])
    with own_dropout_draws(World(0, 2), 100, CPU):
        assert torch.equal(dropout(torch.ones(64)), masks[0])  # seeded: a resumed epoch repeats it


def test_global_batch_norm_refuses_the_kinds_it_does_not_implement():
    assert type(GlobalBatchNorm2d.convert(torch.nn.Sequential(torch.nn.BatchNorm2d(4)))[0]) is GlobalBatchNorm2d
    for kind in (dict(momentum=None), dict(affine=False), dict(track_running_stats=False)):
        with pytest.raises(ValueError, match="not supported"):
            GlobalBatchNorm2d.convert(torch.nn.Sequential(torch.nn.BatchNorm2d(4, **kind)))
