"""Kaggle LiTS (Liver Tumor Segmentation): both Kaggle parts through the kaggle package.

Credentials come from the standard Kaggle places (KAGGLE_USERNAME + KAGGLE_KEY,
or kaggle.json in $KAGGLE_CONFIG_DIR, ~/.kaggle or ~/.config/kaggle); without
them one message says where to put them. Archives are kept under
data/raw/lits/archives/ and extracted into data/raw/lits/extracted/, refusing any
entry whose path would leave that folder. Resume: an archive that is a complete
zip is not downloaded again, an extracted archive (marker file) is not extracted
again, and files already extracted with the right size are skipped. LiTS has no
survival data: it feeds recognition and segmentation only.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from crlm.config import LitsConfig

CREDENTIALS_HELP = (
    "Kaggle credentials not found. Create an API token at https://www.kaggle.com/settings (API -> Create New "
    "Token) and save it as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY, or point "
    "KAGGLE_CONFIG_DIR at the folder that holds kaggle.json.")


class KaggleCredentialsError(RuntimeError):
    pass


class UnsafeArchiveError(ValueError):
    """An archive entry would be written outside the extraction folder."""


def credentials_found(env: Mapping[str, str] | None = None, home: Path | None = None) -> bool:
    env = os.environ if env is None else env
    home = home if home is not None else Path(env["HOME"]) if env.get("HOME") else Path.home()
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return True
    folders = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    folders += [home / ".kaggle", home / ".config" / "kaggle"]
    return any((folder / "kaggle.json").is_file() for folder in folders)


def safe_extract(archive: Path, target: Path) -> int:
    """Extract a zip into target, refusing absolute paths, '..' escapes and links; returns files written."""
    target = target.resolve()
    written = 0
    with zipfile.ZipFile(archive) as zipped:
        members = zipped.infolist()
        for info in members:   # check everything before writing anything
            destination = (target / info.filename).resolve()
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if Path(info.filename).is_absolute() or not destination.is_relative_to(target) or is_link:
                raise UnsafeArchiveError(f"{archive}: entry {info.filename!r} would be written outside {target}; "
                                         "refusing to extract this archive")
        for info in members:
            destination = target / info.filename
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            if destination.is_file() and destination.stat().st_size == info.file_size:
                continue   # extracted before an interruption
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(info) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out)
            written += 1
    return written


def kaggle_download(slug: str, archive: Path) -> None:
    """One Kaggle dataset as a zip at `archive`. The kaggle package authenticates when it is
    imported, so it is imported here, after the credentials check."""
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.authenticate()
    api.dataset_download_files(slug, path=str(archive.parent), unzip=False, quiet=True, force=True)
    (archive.parent / f"{slug.split('/')[-1]}.zip").replace(archive)


def fetch(cfg: LitsConfig, root: Path, download: Callable[[str, Path], None] = kaggle_download,
          env: Mapping[str, str] | None = None) -> list[str]:
    """Download and extract every dataset in cfg.datasets that is not there yet; returns the slugs fetched."""
    if not credentials_found(env):
        raise KaggleCredentialsError(CREDENTIALS_HELP)
    fetched = []
    archives = root / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    for slug in cfg.datasets:
        name = slug.replace("/", "__")
        archive, marker = archives / f"{name}.zip", archives / f"{name}.extracted"
        if marker.is_file():
            continue
        if not zipfile.is_zipfile(archive):   # absent, or cut short by an interruption
            download(slug, archive)
            fetched.append(slug)
        safe_extract(archive, root / "extracted")
        marker.write_text("extracted\n")
    return fetched
