"""LiTS from Kaggle: volumes and segmentations wherever its archives put them; no clinical data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from crlm.data.config import DataConfig

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.data import lits
from crlm.data.nifti import Volume
from crlm.data.sources.base import VOLUME_FILE, Case, Fetched, natural_key, read_nifti_case
from crlm.data.sources.store import Listing, all_files

_LABEL = re.compile(r"^segmentation-(.+?)\.nii(\.gz)?$")


class LitsSource:
    name = "lits"
    regenerate = False  # downloads resume

    def folder(self, params: Params) -> str:
        return self.name

    def fetch(self, source_dir: Path, params: Params, dry_run: bool = False, workers: int = 1) -> Fetched:
        if dry_run:
            return Fetched(f"lits: Kaggle datasets {list(params.data.lits.datasets)} (no plan without the Kaggle API)")
        fetched = lits.fetch(params.data.lits, source_dir)
        # what the slices stage reads: the extracted files (not the archives they came from)
        files = [f"extracted/{rel}" for rel in all_files(source_dir / "extracted")]
        return Fetched(f"lits: {len(fetched)} dataset(s) downloaded, the rest already there", tuple(files))

    def cases(self, source_dir: Path, data_cfg: DataConfig, listed: Listing | None = None) -> list[Case]:
        return lits_kaggle_cases(source_dir / "extracted", data_cfg.lits.max_volumes, listed)

    def clinical_csv(self, source_dir: Path) -> Path | None:
        return None  # image-only: recognition and segmentation, no survival

    def read(self, case: Case) -> tuple[Volume, np.ndarray, str]:
        return read_nifti_case(case)


def lits_kaggle_cases(root: Path, max_volumes: int = 0, listed: Listing | None = None) -> list[Case]:
    """LiTS as Kaggle ships it: volume-N.nii in volume_pt*/ folders, segmentation-N.nii in segmentations/
    (any depth under root); with `listed`, only the volumes it names; the first max_volumes by number (0: all)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no extracted LiTS data; run the fetch stage first")
    labels = {}
    for path in root.rglob("segmentation-*.nii*"):
        # cast, not assert: a name the glob finds but _LABEL refuses still fails as it did (None.group)
        labels[cast(re.Match[str], _LABEL.match(path.name)).group(1)] = path
    cases = []
    for path in root.rglob("volume-*.nii*"):
        match = VOLUME_FILE.match(path.name)
        if match and (listed is None or path in listed):
            case_id = match.group(1)
            label = labels.get(case_id, path.parent / f"segmentation-{case_id}.nii{match.group(2) or ''}")
            cases.append(Case("lits", case_id, path, label))
    cases.sort(key=lambda c: natural_key(c.case_id))
    return cases[:max_volumes] if max_volumes else cases
