import dataclasses
import hashlib
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy import ndimage

from crlm.data import phantom
from crlm.data.config import PhantomConfig, SiteConfig
from crlm.data.nifti import read_nifti
from tests.factories import spy_workers

# Two phantoms and the md5 of every file: produced by the generator of commit 9ccaa2a (full coordinate grids,
# every patient kept in memory until all were written), so an independent reference that today's generator
# writes the same bytes. Each plants all four defects; the .nii.gz bytes are nibabel's gzip through zlib 1.2.13.
PINNED_CONFIG = dict(
    seed=0,
    n_slices=10,
    matrix=64,
    pixel_spacing_mm=5.5,
    slice_thickness_mm=5.0,
    lesion_free_fraction=0.3,
    max_lesions=5,
    lesion_diameter_mm=(15.0, 60.0),
    cyst_rate=0.4,
    difficulty=0.1,
    survival_effect=0.8,
    median_survival_months=40.0,
    follow_up_months=(12.0, 96.0),
    missing_rate=0.05,
    site_b=SiteConfig(share=0.0, noise_hu=25.0, liver_hu_shift=-30.0, slice_thickness_mm=2.5, pixel_spacing_mm=3.2),
)
PINNED = {
    "6 patients at 64 px": (
        dict(n_patients=6, defect_rate=0.7),
        {
            "clinical.csv": "642f79ca66b810a7b7829267b9246710",
            "phantom_truth.csv": "488ff49c3e063cdb999fad32f43bcbdd",
            "segmentations/segmentation-0.nii.gz": "45bf5fab674f9594720b67703edb8059",
            "segmentations/segmentation-1.nii.gz": "47f4daaa865b7bdbfc6d5bc03ea6b766",
            "segmentations/segmentation-2.nii.gz": "fc437ebdc47c97c1edb92289e0befb0a",
            "segmentations/segmentation-3.nii.gz": "50f732ced12b5db5f61a21e09716f99f",
            "segmentations/segmentation-4.nii.gz": "db8d941c2de8b83b4f9f1ab189c0b16d",
            "segmentations/segmentation-5.nii.gz": "07faadaf08e53ea6ce33cef358a1faf3",
            "volumes/volume-0.nii.gz": "305a6f384c24b6fc19c55393fd5fdab3",
            "volumes/volume-1.nii.gz": "926124af93f866f03fe6f5a3a2b53b76",
            "volumes/volume-2.nii.gz": "63ab0546be4f86a801e73fa897c8f722",
            "volumes/volume-3.nii.gz": "6767c5ceb36fd76c7aab9f1f6cda37a4",
            "volumes/volume-4.nii.gz": "b91254a0b65ca84244de044a8d7335c9",
            "volumes/volume-5.nii.gz": "ecde91dd086a59a064974b06f67e528f",
        },
    ),
    "4 patients at 512 px, 0.8 mm": (
        dict(n_patients=4, matrix=512, n_slices=8, pixel_spacing_mm=0.8, defect_rate=1.0),
        {
            "clinical.csv": "0da4b00a8c19caef78b61af33ab42a7d",
            "phantom_truth.csv": "f3d85138ec299a1e6e53812094bbf066",
            "segmentations/segmentation-0.nii.gz": "3561327e8524e7a4db162bf910d04b50",
            "segmentations/segmentation-1.nii.gz": "572cf6d75ce96d585753306accb6efc7",
            "segmentations/segmentation-2.nii.gz": "4e23fd01300200f91d2be1c336fe0d6f",
            "segmentations/segmentation-3.nii.gz": "c8eb156ab2aeeb46a7e16ea83ef5e9bb",
            "volumes/volume-0.nii.gz": "58e3ba60912df62a0e71f22d8471da1f",
            "volumes/volume-1.nii.gz": "c674ece8fcea5da1e66651a9b313bb56",
            "volumes/volume-2.nii.gz": "95b07e7b58f949f7e3f1440cbb5f0548",
            "volumes/volume-3.nii.gz": "92da0a276fe3b4ec17bfde01d5492f32",
        },
    ),
}


def _md5s(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_case_and_other_seed_differs(tiny_params):
    cfg = tiny_params.phantom
    a, b = phantom.generate_case(cfg, 3), phantom.generate_case(cfg, 3)
    np.testing.assert_array_equal(a.volume, b.volume)
    np.testing.assert_array_equal(a.labels, b.labels)
    other = phantom.generate_case(dataclasses.replace(cfg, seed=cfg.seed + 1), 3)
    assert not np.array_equal(a.volume, other.volume)


def test_patient_does_not_depend_on_cohort_size(tiny_params):
    cfg = tiny_params.phantom
    bigger = dataclasses.replace(cfg, n_patients=cfg.n_patients * 3)
    np.testing.assert_array_equal(phantom.generate_case(cfg, 2).volume, phantom.generate_case(bigger, 2).volume)


def test_masks_agree_with_lesion_truth(tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_patients=16)
    for index in range(cfg.n_patients):
        case = phantom.generate_case(cfg, index)
        tumour = case.labels == 2
        voxel_ml = np.prod(case.spacing_mm) / 1000.0
        assert case.tumour_volume_ml == pytest.approx(tumour.sum() * voxel_ml)
        assert set(np.unique(case.labels)) <= {0, 1, 2}
        if case.n_lesions == 0:
            assert not tumour.any(), f"patient {index}: tumour voxels without a planted metastasis"
        else:
            assert tumour.any()
            # at most one connected component per planted lesion (lesions may touch and merge)
            assert 1 <= ndimage.label(tumour)[1] <= case.n_lesions
        # tumour lies inside the liver's footprint: every tumour voxel touches liver or tumour only
        grown = ndimage.binary_dilation(case.labels > 0)
        assert np.all(grown[tumour])


def test_lesions_are_darker_than_liver_on_average(tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, lesion_free_fraction=0.0, difficulty=0.0)
    cases = [phantom.generate_case(cfg, i) for i in range(6)]
    tumour_hu = np.concatenate([c.volume[c.labels == 2] for c in cases])
    liver_hu = np.concatenate([c.volume[c.labels == 1] for c in cases])
    assert tumour_hu.mean() < liver_hu.mean() - 10


def test_cohort_has_lesion_free_patients_and_small_lesions(tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_patients=20, lesion_diameter_mm=(4.0, 60.0))
    cases = [phantom.generate_case(cfg, i) for i in range(cfg.n_patients)]
    assert any(c.n_lesions == 0 for c in cases)
    assert sum(c.n_lesions > 0 for c in cases) >= cfg.n_patients // 2
    diameters = [d for c in cases for d in c.lesion_diameters_mm]
    assert any(d < 10.0 for d in diameters) and any(d > 30.0 for d in diameters)
    assert all(len(c.lesion_diameters_mm) == c.n_lesions for c in cases)


def test_write_phantom_files_match_truth(tmp_path, tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_patients=8, defect_rate=0.5)
    truth = phantom.write_phantom(cfg, tmp_path)
    assert sorted(truth["defect"][truth["defect"] != ""]) == sorted(phantom.DEFECT_TYPES)
    clinical = pd.read_csv(tmp_path / "clinical.csv", dtype=str)
    assert clinical["Patient-ID"].tolist() == [str(i) for i in range(8)]
    for row in truth.itertuples():
        labels_path = tmp_path / "segmentations" / f"segmentation-{row._1}.nii.gz"
        labels = read_nifti(labels_path).array
        assert (labels == 2).any() == (row.n_lesions > 0)
        if row.defect == "low_resolution":
            assert labels.shape[1] == cfg.matrix // 2
    truncated = truth.loc[truth["defect"] == "truncated", "Patient-ID"].item()
    with pytest.raises(Exception, match=f"volume-{truncated}"):
        read_nifti(tmp_path / "volumes" / f"volume-{truncated}.nii.gz")


@pytest.mark.skipif(
    zlib.ZLIB_RUNTIME_VERSION != "1.2.13", reason="the pinned .nii.gz bytes are zlib 1.2.13's compression"
)
@pytest.mark.parametrize("name", sorted(PINNED))
def test_write_phantom_writes_the_bytes_of_the_in_memory_generator(tmp_path, name):
    changes, md5s = PINNED[name]
    cfg = PhantomConfig(**{**PINNED_CONFIG, **changes})
    assert sorted(phantom.defect_plan(cfg).values()) == sorted(phantom.DEFECT_TYPES)
    phantom.write_phantom(cfg, tmp_path)
    assert _md5s(tmp_path) == md5s


def test_write_phantom_same_bytes_with_a_pool_of_workers(tmp_path, tiny_params, monkeypatch):
    monkeypatch.setattr(phantom, "MIN_VOXELS_PER_WORKER", 1)  # a pool even for a phantom this small
    workers = spy_workers(monkeypatch, phantom)
    cfg = dataclasses.replace(tiny_params.phantom, n_patients=8, defect_rate=0.5)
    one = phantom.write_phantom(cfg, tmp_path / "one", workers=1)
    two = phantom.write_phantom(cfg, tmp_path / "two", workers=2)
    assert workers == [1, 2]
    assert sorted(one.loc[one["defect"] != "", "defect"]) == sorted(phantom.DEFECT_TYPES)
    pd.testing.assert_frame_equal(one, two)
    files = _md5s(tmp_path / "one")
    assert len(files) == 2 + 2 * cfg.n_patients and files == _md5s(tmp_path / "two")


def test_a_small_phantom_is_written_without_a_pool(tmp_path, tiny_params, monkeypatch):
    """Starting workers would cost more than the tiny profile's whole phantom takes."""
    workers = spy_workers(monkeypatch, phantom)
    phantom.write_phantom(tiny_params.phantom, tmp_path, workers=8)
    assert workers == [1]


def _cohort(cfg, n, rng):
    volumes = np.exp(rng.uniform(np.log(0.5), np.log(400.0), size=n))
    return [phantom.CaseSummary(str(i), 1, float(v), (20.0,), "") for i, v in enumerate(volumes)]


def _fitted_effect(survival_effect):
    from crlm.params import load_params
    from tests.conftest import BASE_PARAMS

    cfg = dataclasses.replace(load_params(BASE_PARAMS).phantom, survival_effect=survival_effect, missing_rate=0.0)
    cases = _cohort(cfg, 1500, np.random.default_rng(1))
    table = phantom.clinical_table(cfg, cases)
    frame = pd.DataFrame(
        {
            "burden": [phantom.burden_z(c.tumour_volume_ml) for c in cases],
            "time": table["overall_survival_months"].astype(float),
            "event": table["vital_status"].astype(int),
        }
    )
    assert 0.2 < frame["event"].mean() < 0.95  # censoring happens, events too
    return CoxPHFitter().fit(frame, "time", "event").summary.loc["burden"]


def test_survival_effect_recovered_by_an_independent_cox_fit():
    """lifelines' Cox model is the reference: the fitted log-hazard matches the planted one."""
    row = _fitted_effect(0.8)
    assert row["coef lower 95%"] < 0.8 < row["coef upper 95%"]
    assert abs(row["coef"] - 0.8) < 0.12


def test_zero_survival_effect_gives_no_signal():
    row = _fitted_effect(0.0)
    assert row["coef lower 95%"] < 0.0 < row["coef upper 95%"]
    assert abs(row["coef"]) < 0.1


def _two_sites(cfg, share=0.5, **site):
    return dataclasses.replace(cfg, site_b=dataclasses.replace(cfg.site_b, share=share, **site))


def test_one_site_by_default_and_a_share_of_the_patients_at_site_b(tiny_params):
    assert phantom.site_plan(tiny_params.phantom) == {}
    cfg = _two_sites(dataclasses.replace(tiny_params.phantom, n_patients=10), share=0.3)
    plan = phantom.site_plan(cfg)
    assert sorted(plan) == list(range(10)) and sorted(plan.values()) == ["A"] * 7 + ["B"] * 3
    assert phantom.site_plan(cfg) == plan  # from phantom.seed
    assert phantom.site_plan(dataclasses.replace(cfg, seed=1)) != plan


def _pixel_noise(case) -> float:
    """The median absolute difference of neighbouring liver pixels: the image noise, not the anatomy."""
    inside = (case.labels[:, :, 1:] == 1) & (case.labels[:, :, :-1] == 1)
    return float(np.median(np.abs(np.diff(case.volume.astype(float), axis=2))[inside]))


def test_site_b_scans_the_same_extent_on_its_own_grid_with_its_noise_and_contrast_phase(tiny_params):
    cfg = _two_sites(
        tiny_params.phantom, noise_hu=40.0, liver_hu_shift=-30.0, slice_thickness_mm=2.5, pixel_spacing_mm=4.4
    )
    shifts, noise = [], []
    for index in range(4):
        a, b = phantom.generate_case(cfg, index, site="A"), phantom.generate_case(cfg, index, site="B")
        assert a.volume.shape == (10, 64, 64) and a.spacing_mm == (5.0, 5.5, 5.5)
        assert b.volume.shape == (20, 80, 80) and b.spacing_mm == (2.5, 4.4, 4.4)  # 50 mm x 352 mm, as site A
        liver_a, liver_b = a.volume[a.labels == 1].astype(float), b.volume[b.labels == 1].astype(float)
        shifts.append(np.median(liver_b) - np.median(liver_a))
        noise.append((_pixel_noise(a), _pixel_noise(b)))
    assert np.mean(shifts) == pytest.approx(-30.0, abs=8.0)
    assert all(b > 2 * a for a, b in noise)  # noise SD 40 HU at site B; site A's 8 + 22 x 0.1 = 10.2 HU
    own = phantom.generate_case(tiny_params.phantom, 2)
    np.testing.assert_array_equal(phantom.generate_case(cfg, 2, site="A").volume, own.volume)


def test_the_site_is_a_column_of_the_clinical_table_and_the_truth_only_with_two_sites(tmp_path, tiny_params):
    cfg = _two_sites(dataclasses.replace(tiny_params.phantom, n_patients=6), pixel_spacing_mm=4.4)
    truth = phantom.write_phantom(cfg, tmp_path / "two")
    plan = phantom.site_plan(cfg)
    clinical = pd.read_csv(tmp_path / "two" / "clinical.csv", dtype=str)
    assert clinical.columns[-1] == "site" and clinical["site"].tolist() == [plan[i] for i in range(6)]
    assert truth["site"].tolist() == clinical["site"].tolist()
    for i, site in plan.items():
        spacing = read_nifti(tmp_path / "two" / "volumes" / f"volume-{i}.nii.gz").spacing_mm
        assert spacing[1] == pytest.approx(4.4 if site == "B" else 5.5)
    one = phantom.write_phantom(dataclasses.replace(cfg, site_b=tiny_params.phantom.site_b), tmp_path / "one")
    assert "site" not in one and "site" not in pd.read_csv(tmp_path / "one" / "clinical.csv").columns


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ({"share": 1.0}, r"phantom.site_b.share must be in \[0, 1\)"),
        ({"share": 0.01}, r"gives 0 site B patients; give each site at least one"),
        ({"share": 0.5, "pixel_spacing_mm": 20.0}, r"site_b.pixel_spacing_mm 20.0 gives site B fewer than 32 pixels"),
        ({"share": 0.5, "slice_thickness_mm": 20.0}, r"site_b.slice_thickness_mm 20.0 gives site B fewer than 4"),
        ({"noise_hu": -1.0}, r"phantom.site_b.noise_hu must be >= 0"),
    ],
)
def test_a_bad_site_b_is_refused_naming_the_key(site, message):
    from crlm.core.config import ConfigError
    from crlm.params import params_from_dict
    from tests.conftest import tiny_params_dict

    with pytest.raises(ConfigError, match=message):
        params_from_dict(tiny_params_dict(phantom={"site_b": site}))
