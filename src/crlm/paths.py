"""Where each stage reads and writes, relative to the repository root (mirrors dvc.yaml)."""

from pathlib import Path

RAW = Path("data/raw")
SLICES_DIR = Path("data/interim/slices")
SLICES = Path("data/interim/slices.parquet")
CLINICAL = Path("data/interim/clinical.parquet")
QC = Path("data/interim/qc.parquet")
PROCESSED_ARRAYS = Path("data/processed/dataset.npz")
PROCESSED_MANIFEST = Path("data/processed/manifest.parquet")
SPLITS = Path("data/splits/splits.json")
METRICS = Path("metrics")
PLOTS = Path("plots")
MODELS = Path("data/models")
CHECKPOINTS = Path("data/checkpoints")   # not a DVC output: survives an interrupted stage
PREDICTIONS = Path("data/predictions")
EMBEDDINGS = Path("data/embeddings")
SURVIVAL = Path("data/survival")
REPORTS = Path("reports")
