"""The raw store and its manifest, data/raw.json.

fetch writes each source into its folder of the raw store (crlm.core.paths.raw_dir(): $CRLM_RAW_DIR, else
data/raw) and lists, in data/raw.json, that folder's name and every file the source provides there
(path inside the folder, size, md5). No absolute path: the manifest is the same wherever the store
lies, so DVC caches it and every clone, queued experiment and machine agrees on it. The slices stage
reads the store through the manifest: `checked_folder` fails at once, naming the first listed file
that is missing or whose size or md5 differs (a file damaged after fetch), the store and the fix. The
md5 costs about 1.4 s per GB on one core of the 2-core CI machine (`file_md5` of a 1 GB file): some 15 s
for TCIA's 10.7 GB, against the minutes the slices stage spends reading them.

Several workspaces (queued experiments) may share one store: fetch holds a lock file per source
folder (`locked`), so two fetches of one source never interleave.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from crlm.core.errors import UserError
from crlm.core.paths import RAW, RAW_DIR_ENV, RAW_MANIFEST

MANIFEST_VERSION = 1
FIX = (
    f"rerun `dvc repro -f fetch`, or set {RAW_DIR_ENV} to the folder fetch wrote (an absolute path; "
    f"unset: {RAW} in the workspace)"
)


class RawStoreError(UserError, RuntimeError):
    """The raw store lacks what data/raw.json lists (another store, or files removed since fetch)."""


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def all_files(folder: Path) -> list[str]:
    """Every regular file under folder, as sorted POSIX paths relative to it; names starting with '.'
    (the store's own bookkeeping, partial downloads) are left out."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                found.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(found)


def describe(folder: Path, files: Iterable[str]) -> list[dict]:
    """The manifest's entries of these files (relative to folder): path, size, md5, sorted by path."""
    return [
        {"path": rel, "size": (Path(folder) / rel).stat().st_size, "md5": file_md5(Path(folder) / rel)}
        for rel in sorted(set(files))
    ]


def differences(folder: Path, entries: list[dict], md5: bool = False) -> str | None:
    """The first listed file that is missing or differs (size; md5 too when asked), or None."""
    for entry in entries:
        path = Path(folder) / entry["path"]
        if not path.is_file():
            return f"{path}: missing"
        size = path.stat().st_size
        if size != entry["size"]:
            return f"{path}: {size} bytes, {RAW_MANIFEST} lists {entry['size']}"
        if md5 and file_md5(path) != entry["md5"]:
            return f"{path}: md5 differs from the one {RAW_MANIFEST} lists"
    return None


def write_manifest(path: Path, sources: dict[str, dict]) -> None:
    """sources: name -> {"folder": its folder in the store, "files": describe(...)}."""
    lines = ["{", f' "version": {MANIFEST_VERSION},', ' "sources": {']
    for i, (name, source) in enumerate(sources.items()):  # one line per file: TCIA lists ~18,000
        lines += [f"  {json.dumps(name)}: {{", f'   "folder": {json.dumps(source["folder"])},', '   "files": [']
        lines += [
            f"    {json.dumps(entry)}" + ("," if j < len(source["files"]) - 1 else "")
            for j, entry in enumerate(source["files"])
        ]
        lines += ["   ]", "  }" + ("," if i < len(sources) - 1 else "")]
    lines += [" }", "}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def read_manifest(path: Path = RAW_MANIFEST) -> dict[str, dict]:
    if not path.is_file():
        raise RawStoreError(f"{path} not found: run the fetch stage first (`dvc repro fetch`)")
    manifest = json.loads(path.read_text())
    if manifest.get("version") != MANIFEST_VERSION:
        raise RawStoreError(
            f"{path}: manifest version {manifest.get('version')}, expected {MANIFEST_VERSION}; "
            "rerun `dvc repro -f fetch`"
        )
    return manifest["sources"]


class Listing:
    """The files data/raw.json lists for one source, and every folder that holds one of them: what a
    source's `cases` may use when the folder (shared by several experiments) holds more."""

    def __init__(self, folder: Path, files: Iterable[str]) -> None:
        self.folder = Path(folder)
        self._paths: set[str] = set()
        for rel in files:
            parts = rel.split("/")
            self._paths.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))

    def __contains__(self, path: Path) -> bool:
        try:
            return Path(path).relative_to(self.folder).as_posix() in self._paths
        except ValueError:
            return False


def checked_folder(sources: dict[str, dict], name: str, store: Path) -> tuple[Path, Listing]:
    """The source's folder in the store and its listing, once every file data/raw.json lists for it is
    there with its size and md5; otherwise one RawStoreError naming the first file that is not, the store and
    the fix."""
    if name not in sources:
        raise RawStoreError(f"{RAW_MANIFEST} lists no source {name!r} (it lists {sorted(sources)}); {FIX}")
    folder = Path(store) / sources[name]["folder"]
    problem = differences(folder, sources[name]["files"], md5=True)
    if problem:
        raise RawStoreError(f"{problem} (raw store {Path(store).absolute()}, source {name}); {FIX}")
    return folder, Listing(folder, (entry["path"] for entry in sources[name]["files"]))


def as_in_default_store(frame: pd.DataFrame, folders: dict[str, Path], columns: Iterable[str]) -> pd.DataFrame:
    """The frame with each source's store folder, in the text of these columns (QC details naming a raw file),
    written as data/raw/<source>: outputs stay the same wherever the store lies and whatever its folder is called."""
    frame = frame.copy()
    for column in columns:
        for name, folder in folders.items():
            frame[column] = frame[column].str.replace(str(folder), str(RAW / name), regex=False)
    return frame


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the file `path` (created if absent), held for the block; waits for another holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
