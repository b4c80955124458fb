"""What each torchrun process of tests/training/test_distributed.py runs (gloo, CPU), for one process too: the
gradient of one global batch, and a whole training of tests' synthetic set; rank 0 saves both, with the
trained model's predictions of every image, to the file named on the command line."""

import sys

import numpy as np
import torch

from crlm.models.inference import predict
from crlm.training.distributed import process_group
from crlm.training.loop import train_model
from tests.factories import synthetic_set
from tests.training.test_distributed import ARCH, TRAIN_IDX, VAL_IDX, ddp_params, one_batch_gradient

if __name__ == "__main__":
    torch.set_num_threads(1)
    data, params = synthetic_set(), ddp_params()
    with process_group("cpu") as world:
        gradient = one_batch_gradient(params, data, world)
        result = train_model(ARCH, params, data, np.asarray(TRAIN_IDX), np.asarray(VAL_IDX), world=world)
        if world.main:
            predictions = predict(result.model, data, np.arange(len(data.labels)), 8)
            torch.save(
                {
                    "world": world.size,
                    "gradient": gradient,
                    "history": result.history,
                    "prob": torch.from_numpy(predictions.prob),
                    "seg_prob": torch.from_numpy(predictions.seg_prob),
                },
                sys.argv[1],
            )
