"""Where each stage reads and writes, relative to the repository root (mirrors dvc.yaml), and the raw store."""

import os
from pathlib import Path

RAW = Path("data/raw")  # the default raw store; in outputs, raw files are named under it
RAW_DIR_ENV = "CRLM_RAW_DIR"  # machine configuration: where the raw store is (not a param)
RAW_MANIFEST = Path("data/raw.json")  # fetch's output: each source's folder in the store and its files
SLICES_DIR = Path("data/interim/slices")
SLICES = Path("data/interim/slices.parquet")
CLINICAL = Path("data/interim/clinical.parquet")
QC = Path("data/interim/qc.parquet")
PROCESSED = Path("data/processed")  # prepare's output: the arrays below (row i = the manifest's row i)
PROCESSED_IMAGES = PROCESSED / "images.npy"  # (N, S, S) float16 in [0, 1], memory-mapped by its readers
PROCESSED_TUMOUR = PROCESSED / "tumour.npy"  # (N, S, S) uint8 {0, 1}
PROCESSED_LIVER = PROCESSED / "liver.npy"  # (N, S, S) uint8 {0, 1}
PROCESSED_MANIFEST = PROCESSED / "manifest.parquet"
SPLITS = Path("data/splits/splits.json")
METRICS = Path("metrics")
PLOTS = Path("plots")
MODELS = Path("data/models")
CHECKPOINTS = Path("data/checkpoints")  # not a DVC output: survives an interrupted stage
PREDICTIONS = Path("data/predictions")
EMBEDDINGS = Path("data/embeddings")
SURVIVAL = Path("data/survival")
SURVIVAL_MODELS = Path("data/survival_models")  # the fitted classifiers: crlm predict reads them, no stage does
REPORTS = Path("reports")


def raw_dir() -> Path:
    """The raw store: $CRLM_RAW_DIR when set (an absolute path, so that every workspace and queued
    experiment finds the same folder), else data/raw in the workspace. Where the raw files lie changes
    no result (data/raw.json lists them by content), so it is machine configuration, not a param."""
    value = os.environ.get(RAW_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else RAW
