"""The `crlm` command (also `python -m crlm`):

    crlm predict INPUT --out DIR [--mask MASK] [--params params.yaml] [--models data/models/<arch>]
                 [--survival-models data/survival_models/<arch>] [--device auto|cpu|cuda] [--crf]
                 [--nonfinite refuse|mask] [--overwrite]
    crlm review BASE [--out reports/review.md]
    crlm verify [--rev HEAD]

predict applies a trained experiment's fold ensemble to a new CT (crlm.predict); input it cannot use gets one
line on stderr naming the path and the problem, and exit code 2, no traceback. review writes the code-review
page of the workspace against a git revision; verify checks that the committed metrics and report are what the
code produces (crlm.review).
"""

from __future__ import annotations

import argparse
import sys

PREDICT_HELP = (
    "Apply a trained experiment's fold ensemble to a new CT: per-slice metastasis probabilities, the tumour "
    "mask (NIfTI; for DICOM input also a DICOM-SEG and an SR of each lesion's measurements), an overlay PNG "
    "and the patient's survival risk (risk.json)."
)

REVIEW_HELP = (
    "Write a markdown page comparing the workspace with a git revision: params changed, stages rerun, "
    "each headline number's change against its seed noise, and the changed plots."
)
VERIFY_HELP = (
    "After `dvc repro`: check that the committed metrics/ and report are what the code produces, byte "
    "for byte where this machine computes as the committing one did, else within seed noise."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crlm", description="CRLM pipeline tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser("predict", help=PREDICT_HELP, description=PREDICT_HELP)
    predict.add_argument("input", help="a DICOM CT series folder, or a NIfTI volume (.nii, .nii.gz)")
    predict.add_argument(
        "-o", "--out", required=True, help="output folder (created; an existing one must be empty, see --overwrite)"
    )
    predict.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out, replacing an earlier run's outputs (other files stay)",
    )
    predict.add_argument(
        "--nonfinite",
        choices=("refuse", "mask"),
        default="refuse",
        help="NaN/inf voxels: refuse the volume (default), or score them as air (the HU "
        "window's lower bound), count them per slice in slices.csv and leave unscored a "
        "slice whose liver region (whole slice without --mask) has no finite voxel",
    )
    predict.add_argument(
        "--mask",
        help="liver mask: NIfTI (nonzero = liver) or, for DICOM input, a DICOM-SEG "
        "file or its folder; without it every slice is scored whole",
    )
    predict.add_argument("--params", default="params.yaml", help="the experiment's params file (default: params.yaml)")
    predict.add_argument("--models", help="the fold models' folder (default: data/models/<model.arch>)")
    predict.add_argument(
        "--survival-models",
        help="the survival stage's classifiers for those fold models (default: data/survival_models/<arch>)",
    )
    predict.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="inference device (default: the params file's train.device)"
    )
    predict.add_argument(
        "--crf",
        action="store_true",
        help="refine the tumour map with the dense CRF (crf.*) before thresholding, as evaluate does for CLM-Net",
    )
    review = commands.add_parser("review", help=REVIEW_HELP, description=REVIEW_HELP)
    review.add_argument("base", help="the git revision to compare with (a branch, tag or commit)")
    review.add_argument(
        "-o",
        "--out",
        default="reports/review.md",
        help="the page (default: reports/review.md; its images go to reports/review/)",
    )
    verify = commands.add_parser("verify", help=VERIFY_HELP, description=VERIFY_HELP)
    verify.add_argument("--rev", default="HEAD", help="the commit whose metrics/ and report to check (default: HEAD)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from crlm.core.logs import setup

    setup()
    return {"predict": predict_command, "review": review_command, "verify": verify_command}[args.command](args)


def review_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crlm.review.page import write_review

    try:
        text = write_review(Path("."), args.base, Path(args.out))
    except Exception as exc:  # noqa: BLE001 - one line naming the revision rather than DVC's traceback
        print(f"crlm review: error: {args.base}: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


def verify_command(args: argparse.Namespace) -> int:
    from crlm.review.verify import verify

    return verify(rev=args.rev)


def predict_command(args: argparse.Namespace) -> int:
    from crlm.core.config import ConfigError
    from crlm.data.nifti import VolumeReadError
    from crlm.models.model_file import ModelFileError
    from crlm.predict import PredictError
    from crlm.predict.run import run_predict

    try:
        run_predict(
            args.input,
            args.out,
            args.mask,
            args.params,
            args.models,
            args.device,
            args.crf,
            nonfinite=args.nonfinite,
            overwrite=args.overwrite,
            survival_dir=args.survival_models,
        )
    except (PredictError, VolumeReadError, ModelFileError, ConfigError, OSError) as exc:
        print(f"crlm predict: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
