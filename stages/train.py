"""train: one arch on every CV fold (0..k-1), each on a sample of its training patients' images
(crlm.data.sampling: the train section's cap, balance and ambiguous-slice exclusion).

Writes data/models/<arch>/<fold>/model.pt and its predictions of every image of the patients it
did not see (the fold's validation patients, and the test set), and per-epoch curves with dvclive
under plots/train/<arch>/<fold>/.

Started by torchrun (`torchrun --nproc-per-node=N stages/train.py --arch <arch>`), each fold trains across
the N processes with DDP (docs/scaling.md); `dvc commit train@<arch>` then records the outputs.
"""

import argparse

from crlm.core.config import load_sections
from crlm.core.logs import stage_logger, stage_main
from crlm.data.splits import FoldsConfig
from crlm.data.transforms import TransformConfig
from crlm.models.config import NetworkConfig
from crlm.training.config import TrainConfig
from crlm.training.device import select_device
from crlm.training.distributed import process_group
from crlm.training.folds import train_all_folds

log = stage_logger(__file__)


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_sections(args.params, TrainConfig, TransformConfig, FoldsConfig, NetworkConfig)
    with process_group(select_device(params.train.device).type) as world:
        for line in train_all_folds(args.arch, params, world=world):
            log.info(line)


if __name__ == "__main__":
    main()
