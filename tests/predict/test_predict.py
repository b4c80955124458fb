"""`crlm predict` (crlm.cli, crlm.predict): a fold ensemble of tiny random-init models, saved by the real
save_model, applied to a real CT series written by a GE scanner (with dcmqi's liver SEG) and to a phantom
NIfTI, against the pipeline's own slices -> prepare -> fold-ensemble path; and every bad input's message."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml
from PIL import Image
from scipy import ndimage

from crlm.cli import main
from crlm.data import phantom
from crlm.data.dataset import ImageSet
from crlm.data.dicom import read_ct_series
from crlm.data.nifti import read_nifti, write_nifti
from crlm.data.prepare import liver_box, prepare_images
from crlm.data.slices import as_manifest, case_slices
from crlm.data.sources.base import Case
from crlm.models.folds import ensemble_predictions
from crlm.models.inference import predict
from crlm.models.model_file import load_model
from crlm.params import params_from_dict
from tests.conftest import REPO, tiny_params_dict, with_arch_params
from tests.dicom_fixtures import write_ct_series
from tests.factories import FOLDS, save_fold_models

REALDATA = REPO.parent / "shared" / "realdata" / "dcmqi-liver"
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} not present")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("predict")
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params_dict()))
    other = tiny_params_dict(model={"width": 0.25})
    return {
        "params": params_path,
        "unet": save_fold_models(root / "models", "unet", tiny_params_dict()),
        "vgg16": save_fold_models(root / "models", "vgg16", tiny_params_dict()),
        "other_config": save_fold_models(root / "other_models", "unet", other),
    }


def run(args: list, setup: dict, models: str = "unet") -> int:
    return main(
        [
            "predict",
            *map(str, args),
            "--params",
            str(setup["params"]),
            "--models",
            str(setup[models]),
            "--device",
            "cpu",
        ]
    )


def text_values(group, meaning: str) -> list[str]:
    """The values of an SR measurement group's TEXT items named `meaning`."""
    return [str(i.TextValue) for i in group[0].ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def ras(lps) -> np.ndarray:
    return np.array([-float(lps[0]), -float(lps[1]), float(lps[2])])


@needs_realdata
def test_dicom_series_gives_a_seg_on_the_ct_and_a_nifti_in_its_geometry(tmp_path, setup):
    out = tmp_path / "out"
    assert run([REALDATA / "ct", "--out", out], setup) == 0
    import highdicom as hd
    from pydicom.sr.codedict import codes

    cts = sorted(
        (pydicom.dcmread(p) for p in (REALDATA / "ct").iterdir()), key=lambda ds: float(ds.ImagePositionPatient[2])
    )
    seg = hd.seg.segread(out / "tumour_seg.dcm")
    assert seg.SegmentationType == "BINARY"
    assert [str(s.SeriesInstanceUID) for s in seg.ReferencedSeriesSequence] == [str(cts[0].SeriesInstanceUID)]
    assert {str(sop) for _, _, sop in seg.get_source_image_uids()} == {str(ct.SOPInstanceUID) for ct in cts}
    assert (seg.Rows, seg.Columns) == (cts[0].Rows, cts[0].Columns)
    assert seg.FrameOfReferenceUID == cts[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == cts[0].StudyInstanceUID and seg.PatientID == cts[0].PatientID
    shared = seg.SharedFunctionalGroupsSequence[0]
    assert np.allclose(shared.PixelMeasuresSequence[0].PixelSpacing, cts[0].PixelSpacing)
    assert np.allclose(shared.PlaneOrientationSequence[0].ImageOrientationPatient, cts[0].ImageOrientationPatient)
    # each frame lies on the CT slice it references
    ct_positions = {str(ct.SOPInstanceUID): np.array(ct.ImagePositionPatient, float) for ct in cts}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        (source,) = frame.DerivationImageSequence[0].SourceImageSequence
        position = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, float)
        assert np.allclose(position, ct_positions[str(source.ReferencedSOPInstanceUID)], atol=1e-3)

    # the NIfTI mask: (columns, rows, slices) with the series' affine, voxel (0, 0, k) at slice k's position
    mask = nib.load(out / "tumour_mask.nii.gz")
    assert mask.shape == (cts[0].Columns, cts[0].Rows, len(cts))
    iop, (row_mm, col_mm) = np.array(cts[0].ImageOrientationPatient, float), cts[0].PixelSpacing
    assert np.allclose(mask.affine[:3, 0], ras(iop[:3] * float(col_mm)), atol=1e-4)
    assert np.allclose(mask.affine[:3, 1], ras(iop[3:] * float(row_mm)), atol=1e-4)
    for k, ct in enumerate(cts):
        assert np.allclose(mask.affine @ [0, 0, k, 1], [*ras(ct.ImagePositionPatient), 1], atol=1e-3)
    # the SEG holds the NIfTI's mask, one segment per 3-D lesion
    frames = seg.get_pixels_by_source_instance([str(ct.SOPInstanceUID) for ct in cts], combine_segments=True)
    stored = np.asarray(mask.dataobj).transpose(2, 1, 0)
    labels, n = ndimage.label(stored, structure=np.ones((3, 3, 3)))
    assert n >= 1
    np.testing.assert_array_equal(frames, labels)
    for k in range(1, n + 1):
        segment = seg.get_segment_description(k)
        assert segment.segment_label == f"Metastasis {k}"
        assert segment.segmented_property_type == codes.SCT.NeoplasmMetastatic
        assert segment.segmented_property_category == codes.SCT.MorphologicallyAbnormalStructure

    # the SR beside it: a measurement group per segment, pointing at this SEG, and the call "present"
    sr = hd.sr.srread(out / "report_sr.dcm")
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert sorted(g.referenced_segment.referenced_segment_numbers[0] for g in groups) == list(range(1, n + 1))
    assert {g.referenced_segment.referenced_sop_instance_uid for g in groups} == {seg.SOPInstanceUID}
    (patient,) = sr.content.get_image_measurement_groups()  # no survival risk yet
    assert [q.value for q in patient.get_qualitative_evaluations()] == [codes.SCT.Present]
    assert text_values(patient, "Algorithm Name") == ["crlm U-Net fold ensemble"]

    slices = pd.read_csv(out / "slices.csv")
    assert slices["slice_index"].tolist() == [0, 1, 2]  # no mask: every slice, whole
    assert slices["sop_instance_uid"].tolist() == [str(ct.SOPInstanceUID) for ct in cts]
    assert np.allclose(slices["z_mm"], [float(ct.ImagePositionPatient[2]) for ct in cts], atol=1e-3)
    assert slices["probability"].between(0, 1).all() and (out / "overlay.png").stat().st_size > 0


@needs_realdata
def test_dicom_series_with_its_dicom_seg_liver_mask(tmp_path, setup):
    out = tmp_path / "out"
    assert run([REALDATA / "ct", "--mask", REALDATA / "seg", "--out", out], setup) == 0
    assert len(pd.read_csv(out / "slices.csv")) == 3  # the liver is on every slice
    assert (out / "tumour_seg.dcm").is_file() and (out / "report_sr.dcm").is_file()


def test_dicom_stored_right_to_left_puts_the_mask_where_the_liver_is(tmp_path, setup, tiny_params):
    """A series stored with flipped columns and a liver on the patient's right: the NIfTI mask (read back in
    the pipeline's convention) stays inside the liver's box, and the SEG's frames hold the same mask."""
    import highdicom as hd

    hu = np.random.default_rng(0).normal(60, 40, (3, 48, 48))
    liver = np.zeros(hu.shape, np.uint8)
    liver[:, 10:22, 4:16] = 1
    write_ct_series(tmp_path / "ct", hu, spacing=(5.0, 0.8, 0.8), flip_cols=True)
    write_nifti(tmp_path / "liver.nii.gz", liver, (5.0, 0.8, 0.8))
    out = tmp_path / "out"
    assert run([tmp_path / "ct", "--mask", tmp_path / "liver.nii.gz", "--out", out], setup) == 0
    mask = read_nifti(out / "tumour_mask.nii.gz").array
    rows, cols = liver_box(liver[0], tiny_params.prepare.crop_margin)
    outside = np.ones(mask.shape, bool)
    outside[:, rows, cols] = False
    assert mask.any() and not mask[outside].any()
    ct = read_ct_series(tmp_path / "ct")
    seg = hd.seg.segread(out / "tumour_seg.dcm")
    frames = seg.get_pixels_by_source_instance(list(ct.sop_uids), combine_segments=True)
    np.testing.assert_array_equal(frames[:, :, ::-1] > 0, mask)  # stored right-to-left


def write_phantom_case(folder: Path, index: int = 1) -> tuple[Path, Path, phantom.PhantomCase]:
    case = phantom.generate_case(params_from_dict(tiny_params_dict()).phantom, index)
    volume, labels = folder / f"volume-{case.case_id}.nii.gz", folder / f"segmentation-{case.case_id}.nii.gz"
    write_nifti(volume, case.volume, case.spacing_mm)
    write_nifti(labels, case.labels, case.spacing_mm)
    return volume, labels, case


def test_phantom_probabilities_equal_the_pipelines_own_path(tmp_path, setup, tiny_params):
    params = tiny_params
    volume, labels, case = write_phantom_case(tmp_path)
    out = tmp_path / "out"
    assert run([volume, "--mask", labels, "--out", out], setup) == 0
    written = pd.read_csv(out / "slices.csv")

    # the pipeline: the slices stage's .npz files, the prepare stage's images, each fold model's predictions
    # saved as the train stage saves them, the evaluate stage's ensemble
    slices_dir = tmp_path / "slices"
    slices_dir.mkdir()
    manifest = as_manifest(
        case_slices(Case("phantom", case.case_id, volume, labels), slices_dir, params.slices.min_tumor_px)
    )
    arrays = prepare_images(manifest, slices_dir, params.prepare)
    data = ImageSet(manifest, arrays["images"].astype(np.float32), arrays["tumour"])
    paths = []
    for fold in range(FOLDS):
        preds = predict(
            load_model(setup["unet"] / str(fold) / "model.pt"), data, np.arange(len(manifest)), params.train.batch_size
        )
        paths.append(tmp_path / "folds" / str(fold) / "test_predictions.npz")
        paths[-1].parent.mkdir(parents=True)
        np.savez_compressed(
            paths[-1],
            image_id=manifest["image_id"].to_numpy().astype(str),
            prob=preds.prob,
            seg_prob=preds.seg_prob.astype(np.float16),
        )
    _, prob, seg = ensemble_predictions(paths)

    assert written["slice_index"].tolist() == manifest["slice_index"].tolist()
    np.testing.assert_allclose(written["probability"], prob, rtol=0, atol=1e-6)
    assert written["metastasis"].tolist() == (prob >= params.evaluate.threshold).astype(int).tolist()

    # the mask: each scored slice's map thresholded, resized back into its liver box; zeros elsewhere
    mask_image = nib.load(out / "tumour_mask.nii.gz")
    source = nib.load(volume)
    assert mask_image.shape == source.shape and np.allclose(mask_image.affine, source.affine)
    mask = read_nifti(out / "tumour_mask.nii.gz").array
    expected = np.zeros_like(mask)
    for z, slice_map in zip(manifest["slice_index"], seg):
        rows, cols = liver_box((case.labels[z] > 0).astype(np.uint8), params.prepare.crop_margin)
        size = (cols.stop - cols.start, rows.stop - rows.start)
        called = (slice_map >= params.evaluate.threshold).astype(np.uint8)
        expected[z, rows, cols] = np.asarray(Image.fromarray(called).resize(size, Image.NEAREST))
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(mask, expected)
    assert written["tumour_px"].tolist() == expected[written["slice_index"]].sum(axis=(1, 2)).tolist()
    assert not (out / "tumour_seg.dcm").exists() and not (out / "report_sr.dcm").exists()  # NIfTI: no DICOM


def test_without_a_mask_every_slice_is_scored_and_a_classifier_writes_no_mask(tmp_path, setup, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/survival_models/vgg16 under the working folder
    volume, _, case = write_phantom_case(tmp_path)
    out = tmp_path / "out"
    with caplog.at_level("INFO"):
        assert run([volume, "--out", out], setup, models="vgg16") == 0
    assert pd.read_csv(out / "slices.csv")["slice_index"].tolist() == list(range(case.volume.shape[0]))
    assert not (out / "tumour_mask.nii.gz").exists() and (out / "overlay.png").is_file()
    assert "vgg16 does not segment" in caplog.text
    assert "survival risk: not available" in caplog.text


def not_ct(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "mr"
    write_ct_series(folder, np.zeros((3, 16, 16)))
    for file in folder.iterdir():
        ds = pydicom.dcmread(file)
        ds.Modality = "MR"
        ds.save_as(file)
    return folder, "Modality MR, expected CT"


def mixed_spacing(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "ct"
    write_ct_series(folder, np.zeros((3, 16, 16)), z_positions=[0.0, 5.0, 12.0])
    return folder, "mixed slice spacing"


def broken_nifti(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"not a NIfTI file")
    return path, "cannot read NIfTI"


def broken_dicom(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "ct"
    write_ct_series(folder, np.zeros((3, 16, 16)))
    (folder / "junk.dcm").write_text("not DICOM")
    return folder / "junk.dcm", "unreadable DICOM file"


@pytest.mark.parametrize("bad", [not_ct, mixed_spacing, broken_nifti, broken_dicom])
def test_bad_input_gives_one_message_and_exit_code_2(tmp_path, setup, capsys, bad):
    path, problem = bad(tmp_path)
    source = path.parent if path.name == "junk.dcm" else path
    assert run([source, "--out", tmp_path / "out"], setup) == 2
    assert_one_message(capsys, path, problem)


@pytest.mark.parametrize(
    "models, problem",
    [
        ("missing", "models folder not found"),
        ("empty", "no fold models"),
        ("other_config", "trained with another model config"),
        ("other_config", "model.width 0.25 (params: 0.125)"),
    ],
)
def test_bad_models_folder_gives_one_message_and_exit_code_2(tmp_path, setup, capsys, models, problem):
    volume, _, _ = write_phantom_case(tmp_path)
    folders = {"missing": tmp_path / "no_models", "empty": tmp_path / "empty"}
    (tmp_path / "empty").mkdir()
    setup = {**setup, **folders}
    assert run([volume, "--out", tmp_path / "out"], setup, models=models) == 2
    assert_one_message(capsys, setup[models], problem)


def test_mask_of_another_shape_gives_one_message_and_exit_code_2(tmp_path, setup, capsys):
    volume, _, case = write_phantom_case(tmp_path)
    mask = tmp_path / "small_mask.nii.gz"
    write_nifti(mask, case.labels[:-1], case.spacing_mm)
    assert run([volume, "--mask", mask, "--out", tmp_path / "out"], setup) == 2
    assert_one_message(capsys, mask, "mask shape")


def assert_one_message(capsys, path: Path, problem: str) -> None:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert str(path) in lines[0] and problem in lines[0] and lines[0].startswith("crlm predict: error:"), err
    assert "Traceback" not in err


def test_model_config_check_ignores_the_candidate_and_other_archs(setup):
    """A U-Net folder stays usable after `-S model.arch=...` or a CLM-Net ablation (neither retrains it)."""
    from crlm.predict.ensemble import checked_arch, fold_model_paths

    params = params_from_dict(tiny_params_dict(model={"arch": "vgg16", "clmnet": {"se": False}}))
    assert checked_arch(fold_model_paths(setup["unet"]), params.model, "params.yaml") == "unet"
    changed = with_arch_params(params.model, "unet", dropout=0.1)
    with pytest.raises(ValueError, match=r"model\.unet\.dropout"):
        checked_arch(fold_model_paths(setup["unet"]), changed, "params.yaml")
