"""train: one arch on one fold (0..k-1: the fold's training patients; final: every non-test patient).

Writes data/models/<arch>/<fold>/model.pt and the predictions of the patients it
did not see (the fold's validation patients, or the test set for final), and
per-epoch curves with dvclive under plots/train/<arch>/<fold>/.
"""

import argparse
import dataclasses
import shutil

import numpy as np
import torch
from dvclive import Live

from crlm.config import load_params
from crlm.data.dataset import load_image_set
from crlm.data.splits import FINAL, fold_patients
from crlm.io import read_json
from crlm.paths import CHECKPOINTS, MODELS, PLOTS, PROCESSED_ARRAYS, PROCESSED_MANIFEST, SPLITS
from crlm.training.loop import predict, train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--fold", required=True, help="0..k-1 or final")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    data = load_image_set(PROCESSED_ARRAYS, PROCESSED_MANIFEST)
    train_patients, eval_patients = fold_patients(read_json(SPLITS), args.fold)
    train_idx, eval_idx = data.subset(train_patients), data.subset(eval_patients)

    # dvcyaml=False: dvclive must not rewrite dvc.yaml; the curves are declared there by hand
    live = Live(str(PLOTS / "train" / args.arch / args.fold), dvcyaml=False, save_dvc_exp=False)

    def log(row: dict) -> None:
        for name, value in row.items():
            if name != "epoch" and value is not None:
                live.log_metric(name, value)
        live.next_step()

    checkpoint = CHECKPOINTS / args.arch / args.fold / "last.pt"
    # the final model is not validated on the test set while it trains: the test set stays unseen
    result = train_model(args.arch, params, data, train_idx, None if args.fold == FINAL else eval_idx,
                         checkpoint=checkpoint, on_epoch_end=log)
    live.end()

    out = MODELS / args.arch / args.fold
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": args.arch, "model": dataclasses.asdict(params.model),
                "state_dict": result.model.state_dict()}, out / "model.pt")
    preds = predict(result.model, data, eval_idx, params.train.batch_size)
    arrays = {"image_id": data.manifest["image_id"].to_numpy()[eval_idx].astype(str), "prob": preds.prob}
    if preds.seg_prob is not None:
        arrays["seg_prob"] = preds.seg_prob.astype(np.float16)
    np.savez_compressed(out / "predictions.npz", **arrays)
    shutil.rmtree(checkpoint.parent, ignore_errors=True)
    last = result.history[-1]
    print(f"train {args.arch}/{args.fold}: {len(train_idx)} images, {params.train.epochs} epochs, "
          f"final train loss {last['train_loss']:.3f}" +
          (f", resumed after epoch {result.resumed_from_epoch}" if result.resumed_from_epoch else ""))


if __name__ == "__main__":
    main()
