"""`crlm predict`: a trained experiment's fold ensemble applied to a new CT.

    volume.py    the CT (DICOM series or NIfTI) and its optional liver mask, in the pipeline's axial
                 convention, and the slices prepared exactly as the slices and prepare stages prepare them
    ensemble.py  the models folder (every fold's model.pt), checked against the params file, and the mean
                 of the fold models' probabilities and tumour maps as the evaluate stage forms it
    outputs.py   slices.csv, the tumour mask (NIfTI, and a DICOM-SEG for DICOM input), the overlay PNG
    risk.py      the patient's survival risk (risk.json) from the survival stage's saved fold classifiers

The command itself (arguments, messages, exit codes) is crlm.cli.
"""

from __future__ import annotations


class PredictError(ValueError):
    """Input that `crlm predict` cannot use; the message names the path and the problem (exit code 2)."""
