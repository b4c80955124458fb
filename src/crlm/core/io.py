"""Writers whose bytes depend only on the data, so reruns are byte-identical, and the checked readers of
the project's files."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crlm.core.errors import UserError


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


class DataFileError(UserError, ValueError):
    """A project data file that cannot be read as it is (the message names the file and the fix)."""


def load_npz(
    path: str | Path, stage: str, keys: tuple[str, ...] | None = None, optional: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """The arrays `keys` (default: all) of the .npz archive at `path`, which `stage` writes, and those of
    `optional` that it holds. Nothing is unpickled: the project never writes object arrays. A damaged,
    truncated or foreign file, or one missing an array, is a DataFileError naming the file and the fix."""
    path = Path(path)
    fix = f"rerun the stage that writes it (dvc repro -f {stage})"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro {stage})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataFileError(f"{path}: a single .npy array, not an .npz archive of named arrays; {fix}")
            missing = [key for key in keys or () if key not in archive.files]
            if missing:
                raise DataFileError(f"{path}: no array {missing} (it holds {archive.files}); {fix}")
            wanted = archive.files if keys is None else [*keys, *(key for key in optional if key in archive.files)]
            return {key: archive[key] for key in wanted}  # reads (and CRC-checks) each array
    except (FileNotFoundError, PermissionError, IsADirectoryError, DataFileError):
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise DataFileError(
            f"{path}: unreadable .npz file (truncated or damaged: {_npz_detail(path, exc)}); {fix}"
        ) from None


def _npz_detail(path: Path, exc: Exception) -> str:
    # numpy takes any file that is neither a zip nor a .npy for a pickle, and its message proposes
    # allow_pickle=True: unpickling a damaged or foreign file could run code, so that is never the fix
    if path.stat().st_size == 0:
        return "empty file"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "pickle" in text:
        return "not a numpy archive" if "pickled (object) data" in text else "holds an object array"
    return text
