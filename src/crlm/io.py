"""Writers whose bytes depend only on the data, so reruns are byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def write_json(path: str | Path, payload: dict) -> None:
    """Keys in insertion order, floats as repr; NaN or infinity is an error (an undefined value is None)."""
    path = Path(path)
    try:
        text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}; write an undefined value as None (crlm.stats.result.plain)") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def rounded(tree, digits: int):
    """`tree` with every float rounded to `digits` decimals, dicts recursed; ints, None, strings and lists
    are kept as they are."""
    if isinstance(tree, dict):
        return {k: rounded(v, digits) for k, v in tree.items()}
    return round(float(tree), digits) if isinstance(tree, float) else tree


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    pq.write_table(table, path, compression="zstd")


def read_parquet(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro)")
    # single-threaded: these manifests are small, and arrow's thread pools have aborted
    # a stage process at interpreter exit ("terminate called without an active exception")
    return pq.read_table(path, use_threads=False).to_pandas(use_threads=False)
