"""Offline phantom: CT-like liver volumes with metastases and a survival table.

Written in the real sources' formats (LiTS NIfTI pairs, TCIA clinical
column names, -999 for missing), so the same ingestion code runs on it.
Everything follows from `phantom.seed`; patient i draws from its own child
seed, so one patient's volume does not depend on how many others there are.

Ground truth that the real sources do not have (lesion count, tumour burden,
planted defects) goes to `phantom_truth.csv` for validation and tests.

With phantom.site_b.share > 0 the patients come from two scanner sites: a share drawn at random
(phantom.seed's own stream) is site B, scanned with its noise, liver contrast phase, slice thickness and
pixel spacing (the same body in millimetres, on another grid); the others are site A, the phantom's own
settings. The site is a `site` column of clinical.csv and phantom_truth.csv; with one site there is none,
and the files are those of a phantom without sites.

Patients are written one at a time, each by a worker of a process pool when
the cohort is large enough to gain from one; only each patient's summary
(CaseSummary) stays in memory, and the files are the same bytes however many
workers wrote them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage, special

from crlm.data.config import PhantomConfig
from crlm.data.nifti import write_nifti
from crlm.data.pool import ordered_map, pool_size

AIR_HU, FAT_HU, SOFT_HU, BONE_HU, BLOOD_HU = -1000.0, -100.0, 40.0, 500.0, 160.0
MIN_HU, MAX_HU = -1024, 3071
DEFECT_TYPES = ("truncated", "low_resolution", "blank_slices", "saturated_slices")
WEIBULL_SHAPE = 1.3
# tumour burden z-score: (log1p(volume in ml) - BURDEN_CENTRE) / BURDEN_SCALE; fixed
# constants keep each patient's hazard independent of the rest of the cohort
BURDEN_CENTRE, BURDEN_SCALE = np.log1p(20.0), 1.5
# a pool worker takes about a second to start and a patient about 0.4 us per voxel to generate: a worker
# is started for every 10 M voxels (some 4 s of work), so a phantom of a few seconds is written in-process
MIN_VOXELS_PER_WORKER = 10_000_000
SITE_A, SITE_B = "A", "B"


@dataclass(frozen=True)
class CaseSummary:
    """What the clinical table and phantom_truth.csv need of a patient: no arrays."""

    case_id: str
    n_lesions: int
    tumour_volume_ml: float
    lesion_diameters_mm: tuple[float, ...]
    defect: str  # "" or one of DEFECT_TYPES

    @property
    def max_diameter_mm(self) -> float:
        return max(self.lesion_diameters_mm, default=0.0)


@dataclass(frozen=True)
class PhantomCase(CaseSummary):
    volume: np.ndarray  # int16 HU, (z, y, x)
    labels: np.ndarray  # uint8: 0 background, 1 liver, 2 tumour
    spacing_mm: tuple[float, float, float]

    @property
    def summary(self) -> CaseSummary:
        return CaseSummary(*(getattr(self, f.name) for f in fields(CaseSummary)))


@dataclass(frozen=True)
class Acquisition:
    """How a site scans: its grid and spacing, its image noise and the liver's contrast-phase shift."""

    n_slices: int
    matrix: int
    slice_thickness_mm: float
    pixel_spacing_mm: float
    noise_hu: float
    liver_hu_shift: float


def acquisition(cfg: PhantomConfig, site: str = "") -> Acquisition:
    """Site B's acquisition (phantom.site_b) for site "B", else the phantom's own (site A, or no site). Site B
    covers site A's extent in millimetres: n_slices x slice_thickness_mm and matrix x pixel_spacing_mm."""
    if site != SITE_B:
        own_noise = 8.0 + 22.0 * cfg.difficulty
        return Acquisition(cfg.n_slices, cfg.matrix, cfg.slice_thickness_mm, cfg.pixel_spacing_mm, own_noise, 0.0)
    b = cfg.site_b
    return Acquisition(
        n_slices=round(cfg.n_slices * cfg.slice_thickness_mm / b.slice_thickness_mm),
        matrix=round(cfg.matrix * cfg.pixel_spacing_mm / b.pixel_spacing_mm),
        slice_thickness_mm=b.slice_thickness_mm,
        pixel_spacing_mm=b.pixel_spacing_mm,
        noise_hu=b.noise_hu,
        liver_hu_shift=b.liver_hu_shift,
    )


def site_plan(cfg: PhantomConfig) -> dict[int, str]:
    """Patient index -> site, "A" or "B": round(site_b.share x n_patients) patients drawn at random are site B;
    empty with one site (share 0)."""
    if cfg.site_b.share == 0:
        return {}
    rng = np.random.default_rng([cfg.seed, 3])
    chosen = set(rng.choice(cfg.n_patients, size=round(cfg.site_b.share * cfg.n_patients), replace=False).tolist())
    return {i: SITE_B if i in chosen else SITE_A for i in range(cfg.n_patients)}


def defect_plan(cfg: PhantomConfig) -> dict[int, str]:
    """Patient index -> planted defect; round(defect_rate * n) patients, types in turn."""
    n_defects = int(round(cfg.defect_rate * cfg.n_patients))
    rng = np.random.default_rng([cfg.seed, 1])
    chosen = sorted(rng.choice(cfg.n_patients, size=n_defects, replace=False).tolist())
    return {int(i): DEFECT_TYPES[k % len(DEFECT_TYPES)] for k, i in enumerate(chosen)}


def generate_case(cfg: PhantomConfig, index: int, defect: str = "", site: str = "") -> PhantomCase:
    """Patient `index`, scanned at `site` ("B": phantom.site_b's acquisition; else the phantom's own)."""
    rng = np.random.default_rng([cfg.seed, 0, index])
    scan = acquisition(cfg, site)
    nz, n = scan.n_slices, scan.matrix
    dz, dxy = scan.slice_thickness_mm, scan.pixel_spacing_mm
    # sparse axes (nz, 1, 1), (1, n, 1), (1, 1, n): expressions broadcast to the volume, value for value as
    # with full grids, without three float64 volumes of coordinates and their temporaries
    z, y, x = np.meshgrid(
        (np.arange(nz) - (nz - 1) / 2) * dz,
        (np.arange(n) - (n - 1) / 2) * dxy,
        (np.arange(n) - (n - 1) / 2) * dxy,
        indexing="ij",
        sparse=True,
    )
    shape = (nz, n, n)
    fov = cfg.matrix * cfg.pixel_spacing_mm  # site A's field of view: the body's size in mm at every site
    image, body = _body(rng, z, y, x, fov, shape)
    liver = _liver(rng, z, y, x, fov, body, nz, dz)
    image[liver] = rng.normal(110.0, 8.0) + scan.liver_hu_shift
    image[liver] += _liver_texture(rng, liver)

    tumour = np.zeros_like(liver)
    has_lesions = rng.random() >= cfg.lesion_free_fraction
    n_lesions = (1 + min(cfg.max_lesions - 1, rng.poisson(1.2))) if has_lesions and cfg.max_lesions > 0 else 0
    diameters = []
    for _ in range(n_lesions):
        diameter = float(np.exp(rng.uniform(*np.log(cfg.lesion_diameter_mm))))
        if _add_lesion(rng, image, tumour, liver, z, y, x, diameter, cfg.difficulty, metastasis=True):
            diameters.append(diameter)
    for _ in range(rng.poisson(cfg.cyst_rate)):
        _add_lesion(rng, image, tumour, liver, z, y, x, rng.uniform(4.0, 20.0), cfg.difficulty, metastasis=False)

    image += rng.normal(0.0, scan.noise_hu, image.shape)
    ndimage.gaussian_filter(image, sigma=(0, 0.6, 0.6), output=image)

    labels = liver.astype(np.uint8)
    labels[tumour] = 2
    del liver
    spacing = (dz, dxy, dxy)
    volume, labels, spacing = _apply_defect(rng, defect, image, labels, spacing, body)
    del image, body
    voxel_ml = dz * dxy * dxy / 1000.0
    volume = np.clip(np.rint(volume, out=volume), MIN_HU, MAX_HU, out=volume)
    return PhantomCase(
        case_id=str(index),
        volume=volume.astype(np.int16),
        labels=labels,
        spacing_mm=spacing,
        n_lesions=len(diameters),
        tumour_volume_ml=float(tumour.sum() * voxel_ml),
        lesion_diameters_mm=tuple(round(d, 3) for d in diameters),
        defect=defect,
    )


def _body(rng, z, y, x, fov, shape):
    ax, ay = fov * rng.uniform(0.36, 0.44), fov * rng.uniform(0.27, 0.33)
    taper = 1.0 + 0.0008 * z  # slightly wider towards the chest
    r = (x / (ax * taper)) ** 2 + (y / (ay * taper)) ** 2
    np.sqrt(r, out=r)
    body = r < 1.0
    fat_mm = rng.uniform(8.0, 25.0)
    image = np.full(shape, AIR_HU)
    image[body] = FAT_HU
    inner = r < 1.0 - fat_mm / ay
    image[inner] = SOFT_HU
    del r, inner
    spine_y = ay * 0.62
    # the spine and aorta are the same on every slice: (1, n, n) masks, broadcast over z
    image[np.broadcast_to((x**2 + (y - spine_y) ** 2) < (0.09 * fov) ** 2, shape)] = BONE_HU
    aorta = ((x - 0.06 * fov) ** 2 + (y - spine_y + 0.13 * fov) ** 2) < (0.035 * fov) ** 2
    image[np.broadcast_to(aorta, shape)] = BLOOD_HU
    return image, body


def _liver(rng, z, y, x, fov, body, nz, dz):
    # radiological display: the liver (patient's right) sits on the image's left
    cx, cy = -fov * rng.uniform(0.12, 0.17), -fov * rng.uniform(0.0, 0.06)
    cz = (rng.uniform(0.0, 0.12)) * nz * dz
    rx, ry, rz = fov * rng.uniform(0.17, 0.22), fov * rng.uniform(0.17, 0.23), nz * dz * rng.uniform(0.36, 0.42)
    wobble = _smooth_noise(rng, body.shape, (1.5, 8, 8))
    wobble *= 0.12 / (wobble.std() + 1e-9)
    r = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2
    wobble += np.sqrt(r, out=r)
    del r
    return (wobble < 1.0) & body


def _liver_texture(rng, liver):
    """Parenchyma texture and vessels, at the liver's voxels (liver[liver]'s order)."""
    texture = _smooth_noise(rng, liver.shape, (0.8, 1.5, 1.5))
    texture *= 6.0 / (texture.std() + 1e-9)
    texture = texture[liver]
    field = _smooth_noise(rng, liver.shape, (1.0, 4.0, 4.0))
    threshold = 0.06 * field.std()
    vessels = np.abs(field, out=field)[liver] < threshold  # iso-contours of a smooth field look tubular
    del field
    texture[vessels] += 45.0
    return texture


def _smooth_noise(rng, shape, sigma):
    """Gaussian-filtered standard normal noise, filtered in place: one volume in memory, not two."""
    noise = rng.normal(size=shape)
    return ndimage.gaussian_filter(noise, sigma=sigma, output=noise)


def _add_lesion(rng, image, tumour, liver, z, y, x, diameter, difficulty, metastasis) -> bool:
    """Plant one lesion inside the liver; a metastasis is labelled, a cyst is not."""
    candidates = np.flatnonzero(liver)
    if candidates.size == 0:
        return False
    centre = np.unravel_index(candidates[rng.integers(candidates.size)], liver.shape)
    del candidates
    cz, cy, cx = (axis.ravel()[i] for axis, i in zip((z, y, x), centre))  # z, y, x: sparse axes
    radii = diameter / 2 * rng.uniform(0.8, 1.2, size=3) if metastasis else np.full(3, diameter / 2)
    margin = _margin_noise(rng, liver.shape) if metastasis else None  # before r: two volumes at a time, not three
    r = ((z - cz) / max(radii[0], 2.5)) ** 2 + ((y - cy) / radii[1]) ** 2 + ((x - cx) / radii[2]) ** 2
    np.sqrt(r, out=r)
    near = r < 1.6
    if margin is not None:
        r += margin  # irregular margin
        del margin
        core_delta = -rng.uniform(30.0, 80.0) * (1.0 - 0.6 * difficulty)
        rim_delta = rng.uniform(10.0, 30.0) * (1.0 - 0.5 * difficulty)
        inside = (r < 1.0) & liver
        rim = (r >= 0.8) & inside
        visible = near & liver  # no darkening outside the liver, where the label cannot follow it
        del near
        image[visible] += core_delta * _soft_edge(r[visible])
        image[rim] += rim_delta - core_delta * _soft_edge(r[rim])  # enhancing rim: brighter than the liver
        tumour |= inside
        return bool(inside.any())
    inside = (r < 1.0) & liver & ~tumour
    image[inside] = rng.uniform(0.0, 15.0)  # water density, sharp edge, no rim
    return False


def _margin_noise(rng, shape):
    """0.18 * bumps / (bumps.std() + 1e-9) for smooth noise `bumps`, computed in place."""
    bumps = _smooth_noise(rng, shape, (0.7, 1.5, 1.5))
    spread = bumps.std() + 1e-9
    bumps *= 0.18
    bumps /= spread
    return bumps


def _soft_edge(r: np.ndarray) -> np.ndarray:
    """The lesion's partial-volume edge at normalised radius r."""
    return special.expit((1.0 - r) / 0.08)


def _apply_defect(rng, defect, image, labels, spacing, body):
    if defect in ("", "truncated"):  # truncation happens to the file, after writing
        return image, labels, spacing
    if defect == "low_resolution":
        dz, dy, dx = spacing
        small = ndimage.zoom(image, (1, 0.5, 0.5), order=1)
        small_labels = labels[:, ::2, ::2]
        return small, small_labels, (dz, dy * 2, dx * 2)
    liver_slices = np.flatnonzero((labels > 0).any(axis=(1, 2)))
    hit = rng.choice(liver_slices, size=min(2, liver_slices.size), replace=False)
    if defect == "blank_slices":
        image[hit] = MIN_HU
    elif defect == "saturated_slices":
        for k in hit:
            image[k][body[k]] = MAX_HU
    else:
        raise ValueError(f"unknown phantom defect {defect!r}; valid: {DEFECT_TYPES}")
    return image, labels, spacing


def clinical_table(cfg: PhantomConfig, cases: Sequence[CaseSummary], sites: Sequence[str] = ()) -> pd.DataFrame:
    """TCIA-style clinical rows, survival from a Weibull proportional-hazards model; with `sites` (each case's,
    site_plan), a last column `site`."""
    rng = np.random.default_rng([cfg.seed, 2])
    rows = []
    scale = cfg.median_survival_months / np.log(2.0) ** (1.0 / WEIBULL_SHAPE)
    for case in cases:
        burden = burden_z(case.tumour_volume_ml)
        event_time = scale * (rng.exponential() / np.exp(cfg.survival_effect * burden)) ** (1.0 / WEIBULL_SHAPE)
        censor_time = rng.uniform(*cfg.follow_up_months)
        dfs_time = event_time * rng.uniform(0.2, 0.7)
        rows.append(
            {
                "Patient-ID": case.case_id,
                "age": int(np.clip(round(rng.normal(61, 10)), 28, 90)),
                "sex": int(rng.choice([1, 2], p=[0.6, 0.4])),  # TCIA coding: 1 male, 2 female
                "major_comorbidity": int(rng.random() < 0.3),
                "node_pos": int(rng.random() < 0.55),
                "clinrisk_score": int(np.clip(round(1.5 + 0.7 * burden + rng.normal(0, 1)), 0, 5)),
                "carcinoembryonic_antigen": round(float(np.exp(1.2 + 0.5 * burden + rng.normal(0, 0.8))), 1),
                "max_tumor_size": round(case.max_diameter_mm / 10.0, 1),  # cm
                "total_response_percent": f"{int(rng.integers(0, 10)) * 10}%",
                "vital_status": int(event_time <= censor_time),  # 1 dead, 0 alive at last follow-up
                "overall_survival_months": round(float(min(event_time, censor_time)), 2),
                "progression_or_recurrence": int(dfs_time <= censor_time),
                "months_to_DFS_progression": round(float(min(dfs_time, censor_time)), 2),
            }
        )
    table = pd.DataFrame(rows)
    maskable = [
        "carcinoembryonic_antigen",
        "clinrisk_score",
        "max_tumor_size",
        "total_response_percent",
        "overall_survival_months",
        "months_to_DFS_progression",
    ]
    for column in maskable:
        missing = rng.random(len(table)) < cfg.missing_rate
        table[column] = table[column].astype(object)
        table.loc[missing, column] = -999
    if sites:
        table["site"] = list(sites)
    return table


def burden_z(tumour_volume_ml: float) -> float:
    return float((np.log1p(tumour_volume_ml) - BURDEN_CENTRE) / BURDEN_SCALE)


def write_phantom(cfg: PhantomConfig, out_dir: str | Path, workers: int = 1) -> pd.DataFrame:
    """Write volumes/, segmentations/ (LiTS names), clinical.csv and phantom_truth.csv, the patients by up
    to `workers` processes (crlm.data.pool.cpu_budget)."""
    out_dir = Path(out_dir)
    plan, sites = defect_plan(cfg), site_plan(cfg)
    jobs = [(cfg, out_dir, index, plan.get(index, ""), sites.get(index, "")) for index in range(cfg.n_patients)]
    voxels = cfg.n_slices * cfg.matrix**2
    n_workers = pool_size(workers, len(jobs), math.ceil(MIN_VOXELS_PER_WORKER / voxels))
    cases = list(ordered_map(_write_job, jobs, n_workers))
    # in the parent, in patient order: the clinical table draws every patient's values from one stream
    site_column = [sites[index] for index in range(cfg.n_patients)] if sites else []
    clinical_table(cfg, cases, site_column).to_csv(out_dir / "clinical.csv", index=False)
    truth = pd.DataFrame(
        {
            "Patient-ID": [c.case_id for c in cases],
            "n_lesions": [c.n_lesions for c in cases],
            "lesion_diameters_mm": [" ".join(f"{d:.1f}" for d in c.lesion_diameters_mm) for c in cases],
            "tumour_volume_ml": [round(c.tumour_volume_ml, 4) for c in cases],
            "burden_z": [round(burden_z(c.tumour_volume_ml), 6) for c in cases],
            "defect": [c.defect for c in cases],
        }
    )
    if sites:
        truth["site"] = site_column
    truth.to_csv(out_dir / "phantom_truth.csv", index=False)
    return truth


def _write_job(job: tuple[PhantomConfig, Path, int, str, str]) -> CaseSummary:
    return _write_case(*job)


def _write_case(cfg: PhantomConfig, out_dir: Path, index: int, defect: str, site: str = "") -> CaseSummary:
    """Generate patient `index` at `site`, write its volume and label map (a truncated volume file for that
    defect), and keep only its summary."""
    case = generate_case(cfg, index, defect, site)
    volume_path = out_dir / "volumes" / f"volume-{case.case_id}.nii.gz"
    write_nifti(volume_path, case.volume, case.spacing_mm)
    write_nifti(out_dir / "segmentations" / f"segmentation-{case.case_id}.nii.gz", case.labels, case.spacing_mm)
    if case.defect == "truncated":
        data = volume_path.read_bytes()
        volume_path.write_bytes(data[: len(data) * 2 // 5])
    return case.summary
