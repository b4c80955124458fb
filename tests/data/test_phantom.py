import dataclasses

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy import ndimage

from crlm.data import phantom
from crlm.data.nifti import read_nifti


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


def _cohort(cfg, n, rng):
    volumes = np.exp(rng.uniform(np.log(0.5), np.log(400.0), size=n))
    return [phantom.PhantomCase(str(i), None, None, (1, 1, 1), 1, float(v), (20.0,), "") for i, v in enumerate(volumes)]


def _fitted_effect(survival_effect):
    from crlm.params import load_params
    from tests.conftest import BASE_PARAMS

    cfg = dataclasses.replace(load_params(BASE_PARAMS).phantom, survival_effect=survival_effect,
                              missing_rate=0.0)
    cases = _cohort(cfg, 1500, np.random.default_rng(1))
    table = phantom.clinical_table(cfg, cases)
    frame = pd.DataFrame({
        "burden": [phantom.burden_z(c.tumour_volume_ml) for c in cases],
        "time": table["overall_survival_months"].astype(float),
        "event": table["vital_status"].astype(int),
    })
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
