"""Arrays too large to hold in memory at the size of the real cohorts: read and written a block of rows at
a time, so a stage's private memory does not grow with the number of images.

- Memory-mapped .npy (`create_npy`, `map_npy`): the prepared images. Every reader maps the same file, so
  the pages are the operating system's page cache, shared by all processes, never a private copy.
- Streamed .npz (`NpzStreamWriter`, `npz_rows`): the tumour probability maps, compressed as
  np.savez_compressed writes them (the same bytes: a test pins it), written and read a block of rows at a
  time through the zip member's stream. The zip's CRC is checked when a member is read to its end.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crlm.core.io import DataFileError, load_npz

ROWS = 256  # rows per block when streaming


def create_npy(path: str | Path, dtype, shape: tuple[int, ...]) -> np.memmap:
    """A new .npy file of zeros (the header np.save writes), mapped for writing."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=shape)


def map_npy(path: str | Path, stage: str, dtype, ndim: int) -> np.ndarray:
    """The .npy array at `path` (written by `stage`), memory-mapped read-only; a missing, truncated or
    foreign file, or one of another dtype or rank, is an error naming the file and the fix."""
    path = Path(path)
    fix = f"rerun the stage that writes it (dvc repro -f {stage})"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro {stage})")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFileError(f"{path}: unreadable .npy file (truncated or damaged: {detail}); {fix}") from None
    if array.dtype != np.dtype(dtype) or array.ndim != ndim:
        raise DataFileError(
            f"{path}: a {array.ndim}-d {array.dtype} array where {ndim}-d {np.dtype(dtype)} is expected "
            f"(written by another version of the code?); {fix}"
        )
    return array


def blocks(n: int, rows: int | None = None) -> Iterator[slice]:
    """slice(0, rows), slice(rows, 2 * rows), ... covering range(n) (rows: ROWS by default)."""
    rows = rows or ROWS
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


@dataclass(frozen=True)
class RowBlocks:
    """The rows of a large array (n of them), a block at a time: each iteration reads them again from the
    first row (from a file, or computed), so that only one block is in memory."""

    n: int
    read: Callable[[], Iterator[np.ndarray]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.read()

    def __len__(self) -> int:
        return self.n

    def gather(self) -> np.ndarray:
        """Every row as one array (for small sets: a CT, the tests)."""
        return np.concatenate(list(self))

    @classmethod
    def of(cls, array: np.ndarray, rows: int | None = None) -> RowBlocks:
        """The blocks of an array in memory."""
        return cls(len(array), lambda: (array[block] for block in blocks(len(array), rows)))


class NpzStreamWriter:
    """An .npz archive written one member at a time, a large member a block of rows at a time; with
    `compressed` the same bytes as np.savez_compressed of the whole arrays (in the order added)."""

    def __init__(self, path: str | Path, compressed: bool = True, level: int | None = None) -> None:
        """`level`: zlib's compression level (1 fastest, 9 smallest; None: zlib's default, 6, which
        np.savez_compressed uses)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
        self._zip = zipfile.ZipFile(self.path, mode="w", compression=mode, allowZip64=True, compresslevel=level)

    def add(self, name: str, array: np.ndarray) -> None:
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)

    def add_rows(self, name: str, dtype, shape: tuple[int, ...], chunks) -> None:
        """Member `name` of this dtype and shape, from `chunks`: arrays of consecutive rows, in order."""
        dtype, written = np.dtype(dtype), 0
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as member:
            header: dict[str, Any] = {
                "descr": np.lib.format.dtype_to_descr(dtype),
                "fortran_order": False,
                "shape": tuple(shape),
            }
            np.lib.format.write_array_header_1_0(member, header)
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk, dtype=dtype)
                if chunk.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"{self.path}:{name}: rows of shape {chunk.shape[1:]}, not {shape[1:]}")
                member.write(chunk.tobytes())
                written += len(chunk)
        if written != shape[0]:
            raise ValueError(f"{self.path}:{name}: {written} rows written of {shape[0]}")

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzStreamWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def npz_shape(path: str | Path, stage: str, key: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) of member `key` of the .npz at `path`, from its header alone; None if it has none."""
    fix = f"rerun the stage that writes it (dvc repro -f {stage})"
    try:
        with zipfile.ZipFile(path) as archive:
            if f"{key}.npy" not in archive.namelist():
                return None
            with archive.open(f"{key}.npy") as member:
                shape, dtype = _header(member)
                return shape, dtype
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro {stage})") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataFileError(f"{path}: unreadable .npz file (truncated or damaged: {exc}); {fix}") from None


def npz_rows(path: str | Path, stage: str, key: str, rows: int | None = None) -> Iterator[np.ndarray]:
    """Member `key` of the .npz at `path` (written by `stage`), `rows` rows at a time, read from the zip
    member's stream (the whole array is never in memory); a damaged file is an error naming the file."""
    fix = f"rerun the stage that writes it (dvc repro -f {stage})"
    try:
        with zipfile.ZipFile(path) as archive:
            if f"{key}.npy" not in archive.namelist():
                load_npz(path, stage, keys=(key,))  # raises the project's error for a missing array
            with archive.open(f"{key}.npy") as member:
                shape, dtype = _header(member)
                row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
                for block in blocks(shape[0], rows):
                    n = block.stop - block.start
                    data = member.read(n * row_bytes)
                    if len(data) != n * row_bytes:
                        raise EOFError(f"{key}: {len(data) // max(row_bytes, 1)} rows where {n} were expected")
                    yield np.frombuffer(data, dtype=dtype).reshape((n, *shape[1:])).copy()
                if member.read(1):  # also checks the CRC of the whole member
                    raise ValueError(f"{key}: more data than its header's shape {shape}")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro {stage})") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataFileError(f"{path}: unreadable .npz file (truncated or damaged: {exc}); {fix}") from None


def _header(member) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(member)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(member)
    if fortran or dtype.hasobject:
        raise ValueError("a Fortran-ordered or object array (not written by this project)")
    return shape, dtype
