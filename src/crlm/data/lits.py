"""Kaggle LiTS (Liver Tumor Segmentation): both Kaggle parts through the kaggle package.

The kaggle package logs in by itself (an API token in KAGGLE_API_TOKEN or
~/.kaggle/access_token, `kaggle auth login`'s ~/.kaggle/credentials.json, or a
legacy kaggle.json / KAGGLE_USERNAME + KAGGLE_KEY); `kaggle_login` asks the
installed package's own lookup which one it will use, and without any one
message says how to log in. Downloads go through the package with its resume
on: an interrupted archive continues from its partial file. Archives are kept
under <raw store>/lits/archives/ and extracted into <raw store>/lits/extracted/,
refusing any entry whose path would leave that folder. An archive that is a
complete zip is not downloaded again, an extracted archive (marker file) is not
extracted again, and files already extracted with the right size are skipped.
LiTS has no survival data: it feeds recognition and segmentation only.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from crlm.core.logs import bars_enabled, progress
from crlm.data.config import LitsConfig

CREDENTIALS_HELP = (
    "Kaggle credentials not found. Log in once with `kaggle auth login`, or create an API token at "
    "https://www.kaggle.com/settings (API) and set KAGGLE_API_TOKEN or save it as ~/.kaggle/access_token; "
    "a legacy kaggle.json (in ~/.kaggle, $KAGGLE_CONFIG_DIR or $XDG_CONFIG_HOME/kaggle) or KAGGLE_USERNAME and "
    "KAGGLE_KEY work too."
)


class KaggleCredentialsError(RuntimeError):
    pass


class UnsafeArchiveError(ValueError):
    """An archive entry would be written outside the extraction folder."""


def _kaggle_api_class():
    # importing kaggle logs in at once and prints its own help when that fails: keep one message, ours
    with contextlib.redirect_stdout(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi
    return KaggleApi


def kaggle_login() -> str | None:
    """The login the installed kaggle package will try, in its own order, found by its own lookup without
    the network; None when it has none. (Whether Kaggle accepts it is known only when it is used.)"""
    from kagglesdk.kaggle_creds import KaggleCredentials
    from kagglesdk.kaggle_env import get_access_token_from_env

    api_class = _kaggle_api_class()
    token, where = get_access_token_from_env()
    if token:
        return f"access token ({where})"
    api = api_class()
    values = api.read_config_environment(api.read_config_file(quiet=True))
    if api.CONFIG_NAME_USER in values and api.CONFIG_NAME_KEY in values:
        return f"API key ({api.config} or KAGGLE_USERNAME/KAGGLE_KEY)"
    if KaggleCredentials.load(client=None) is not None:
        return f"OAuth login ({KaggleCredentials.DEFAULT_CREDENTIALS_FILE})"
    return None


def safe_extract(archive: Path, target: Path) -> int:
    """Extract a zip into target, refusing absolute paths, '..' escapes and links; returns files written."""
    target = target.resolve()
    written = 0
    with zipfile.ZipFile(archive) as zipped:
        members = zipped.infolist()
        for info in members:  # check everything before writing anything
            destination = (target / info.filename).resolve()
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if Path(info.filename).is_absolute() or not destination.is_relative_to(target) or is_link:
                raise UnsafeArchiveError(
                    f"{archive}: entry {info.filename!r} would be written outside {target}; "
                    "refusing to extract this archive"
                )
        for info in members:
            destination = target / info.filename
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            if destination.is_file() and destination.stat().st_size == info.file_size:
                continue  # extracted before an interruption
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(info) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out)
            written += 1
    return written


def kaggle_api():
    """A logged-in KaggleApi; a login that Kaggle refuses is one clear error, not the package's exit."""
    api = _kaggle_api_class()()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
    except SystemExit:
        raise KaggleCredentialsError(
            f"the kaggle package found {kaggle_login()} but could not log in with it. " + CREDENTIALS_HELP
        ) from None
    return api


def kaggle_download(slug: str, archive: Path, api=None) -> None:
    """One Kaggle dataset as a zip at `archive`. force=False keeps the kaggle package's resume: a download
    cut short continues from the partial file it left (<dataset>.zip and its .kaggle-partial marker)."""
    api = api or kaggle_api()
    api.dataset_download_files(slug, path=str(archive.parent), unzip=False, quiet=not bars_enabled(), force=False)
    (archive.parent / f"{slug.split('/')[-1]}.zip").replace(archive)


def fetch(
    cfg: LitsConfig,
    root: Path,
    download: Callable[[str, Path], None] = kaggle_download,
    login: Callable[[], str | None] = kaggle_login,
) -> list[str]:
    """Download and extract every dataset in cfg.datasets that is not there yet; returns the slugs fetched."""
    if login() is None:
        raise KaggleCredentialsError(CREDENTIALS_HELP)
    fetched = []
    archives = root / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    for slug in progress(cfg.datasets, "lits", unit="dataset"):
        name = slug.replace("/", "__")
        archive, marker = archives / f"{name}.zip", archives / f"{name}.extracted"
        if marker.is_file():
            continue
        if not zipfile.is_zipfile(archive):  # absent, or cut short by an interruption
            download(slug, archive)
            fetched.append(slug)
        safe_extract(archive, root / "extracted")
        marker.write_text("extracted\n")
    return fetched
