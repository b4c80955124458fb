"""The phantom: generated CT volumes with planted metastases, in LiTS's file layout, and its clinical table."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from crlm.data.config import DataConfig, PhantomConfig

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.data import nifti, phantom
from crlm.data.nifti import Volume
from crlm.data.sources.base import VOLUME_FILE, Case, Fetched, natural_key, read_nifti_case
from crlm.data.sources.store import Listing, all_files, describe, differences

COMPLETE = ".complete.json"  # a phantom folder's own file list (size, md5), written before it gets its name


class PhantomSource:
    name = "phantom"
    regenerate = True  # generated: a folder per (params, generator code), written whole, then kept

    def folder(self, params: Params) -> str:
        return phantom_folder(params.phantom)

    def fetch(self, source_dir: Path, params: Params, dry_run: bool = False, workers: int = 1) -> Fetched:
        summary = f"phantom: {params.phantom.n_patients} generated patients"
        if dry_run:
            return Fetched(summary)
        damage = damaged(source_dir)
        if damage is not None:
            write_atomically(params.phantom, source_dir, workers)
        note = {None: " (already in the store)", "absent": ""}.get(damage, f" (replaced a damaged folder: {damage})")
        return Fetched(summary + note, tuple(all_files(source_dir)))

    def cases(self, source_dir: Path, data_cfg: DataConfig, listed: Listing | None = None) -> list[Case]:
        return volume_folder_cases(self.name, source_dir, listed)

    def clinical_csv(self, source_dir: Path) -> Path | None:
        return source_dir / "clinical.csv"

    def read(self, case: Case) -> tuple[Volume, np.ndarray, str]:
        return read_nifti_case(case)


def phantom_folder(cfg: PhantomConfig) -> str:
    """phantom-<8 hex>: a hash of the phantom params and of the code that writes them (crlm.data.phantom,
    crlm.data.nifti), so one folder in a shared store always holds one phantom, whoever wrote it."""
    # modules loaded from files: a __file__ each
    code = [
        hashlib.md5(Path(cast(str, module.__file__)).read_bytes(), usedforsecurity=False).hexdigest()
        for module in (phantom, nifti)
    ]
    text = json.dumps({"phantom": dataclasses.asdict(cfg), "code": code}, sort_keys=True)
    return f"phantom-{hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:8]}"


def damaged(source_dir: Path) -> str | None:
    """None when source_dir holds every file of its own list with its size and md5; else "absent" or the problem."""
    listing = source_dir / COMPLETE
    if not source_dir.exists():
        return "absent"
    if not listing.is_file():
        return f"{listing}: missing"
    return differences(source_dir, json.loads(listing.read_text()), md5=True)


def write_atomically(cfg: PhantomConfig, source_dir: Path, workers: int = 1) -> None:
    """Generate into a temporary sibling folder, then rename it to source_dir: a reader (another queued
    experiment) sees the whole folder or none. A damaged folder of that name is replaced. The caller holds
    the folder's lock (fetch), so scratch folders an interrupted fetch left behind can go. `workers`: the
    processes that write the patients (phantom.write_phantom)."""
    for left in source_dir.parent.glob(f".{source_dir.name}.tmp-*"):
        shutil.rmtree(left, ignore_errors=True)
    scratch = source_dir.with_name(f".{source_dir.name}.tmp-{os.getpid()}")
    phantom.write_phantom(cfg, scratch, workers)
    (scratch / COMPLETE).write_text(json.dumps(describe(scratch, all_files(scratch)), indent=1) + "\n")
    if source_dir.exists():
        broken = source_dir.with_name(f".{source_dir.name}.damaged-{os.getpid()}")
        os.rename(source_dir, broken)
        shutil.rmtree(broken)
    os.rename(scratch, source_dir)


def volume_folder_cases(source: str, source_dir: Path, listed: Listing | None = None) -> list[Case]:
    """Cases in a volumes/volume-N.nii[.gz] folder with segmentations/segmentation-N.nii[.gz] beside it
    (LiTS's file names, as the phantom writes them); with `listed`, only the volumes it names.

    A volume without its segmentation is still listed (label_path does not
    exist), so the slices stage can record it instead of dropping it.
    """
    volume_dir = source_dir / "volumes"
    if not volume_dir.is_dir():
        raise FileNotFoundError(f"{volume_dir}: no volumes folder; run the fetch stage first")
    cases = []
    for path in volume_dir.iterdir():
        match = VOLUME_FILE.match(path.name)
        if not match or (listed is not None and path not in listed):
            continue
        case_id, gz = match.group(1), match.group(2) or ""
        label = source_dir / "segmentations" / f"segmentation-{case_id}.nii{gz}"
        cases.append(Case(source, case_id, path, label))
    return sorted(cases, key=lambda c: natural_key(c.case_id))
