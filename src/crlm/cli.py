"""The `crlm` command (also `python -m crlm`). One subcommand today:

    crlm predict INPUT --out DIR [--mask MASK] [--params params.yaml] [--models data/models/<arch>]
                 [--device auto|cpu|cuda] [--crf]

applies a trained experiment's fold ensemble to a new CT (crlm.predict). Input it cannot use gets one line on
stderr naming the path and the problem, and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys

PREDICT_HELP = ("Apply a trained experiment's fold ensemble to a new CT: per-slice metastasis probabilities, "
                "the tumour mask (NIfTI; DICOM-SEG for DICOM input) and an overlay PNG.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crlm", description="CRLM pipeline tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser("predict", help=PREDICT_HELP, description=PREDICT_HELP)
    predict.add_argument("input", help="a DICOM CT series folder, or a NIfTI volume (.nii, .nii.gz)")
    predict.add_argument("-o", "--out", required=True, help="output folder (created)")
    predict.add_argument("--mask", help="liver mask: NIfTI (nonzero = liver) or, for DICOM input, a DICOM-SEG "
                                        "file or its folder; without it every slice is scored whole")
    predict.add_argument("--params", default="params.yaml",
                         help="the experiment's params file (default: params.yaml)")
    predict.add_argument("--models", help="the fold models' folder (default: data/models/<model.arch>)")
    predict.add_argument("--device", choices=("auto", "cpu", "cuda"),
                         help="inference device (default: the params file's train.device)")
    predict.add_argument("--crf", action="store_true",
                         help="refine the tumour map with the dense CRF (crf.*) before thresholding, as evaluate "
                              "does for CLM-Net")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from crlm.logs import setup

    setup()
    return predict_command(args)


def predict_command(args: argparse.Namespace) -> int:
    from crlm.config import ConfigError
    from crlm.data.nifti import VolumeReadError
    from crlm.models.model_file import ModelFileError
    from crlm.predict import PredictError
    from crlm.predict.run import run_predict

    try:
        run_predict(args.input, args.out, args.mask, args.params, args.models, args.device, args.crf)
    except (PredictError, VolumeReadError, ModelFileError, ConfigError, OSError) as exc:
        print(f"crlm predict: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
