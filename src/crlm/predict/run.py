"""One `crlm predict` run: read the CT (and its liver mask), prepare its slices, score them with the fold
ensemble, write the outputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import crlm
from crlm.archs import ARCHS, get_arch
from crlm.core.paths import MODELS
from crlm.evaluation.predictions import crf_refined, threshold
from crlm.params import load_params
from crlm.predict import PredictError
from crlm.predict.ensemble import checked_arch, ensemble_predict, fold_model_paths
from crlm.predict.outputs import (
    prepare_out_dir,
    remove_earlier,
    write_dicom_seg,
    write_mask_nifti,
    write_overlay,
    write_slices_csv,
)
from crlm.predict.report_sr import model_record, write_dicom_sr
from crlm.predict.risk import SurvivalRisk, load_survival, survival_risk, write_risk
from crlm.predict.volume import check_nonfinite, paste_back, prepare_slices, read_liver_mask, read_scan
from crlm.training.device import select_device

log = logging.getLogger("crlm.predict")


@dataclass
class PredictResult:
    arch: str
    n_models: int
    scored: int  # slices scored
    risk: SurvivalRisk | None = None
    written: dict[str, Path] = field(default_factory=dict)


def run_predict(
    input_path: str | Path,
    out_dir: str | Path,
    mask_path: str | Path | None = None,
    params_path: str | Path = "params.yaml",
    models_dir: str | Path | None = None,
    device: str | None = None,
    crf: bool = False,
    nonfinite: str = "refuse",
    overwrite: bool = False,
    survival_dir: str | Path | None = None,
) -> PredictResult:
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir, overwrite)
    params = load_params(params_path)
    models_dir = Path(models_dir) if models_dir is not None else MODELS / params.model.arch
    paths = fold_model_paths(models_dir)
    arch = checked_arch(paths, params.model, params_path)
    spec = get_arch(arch)
    survival = load_survival(arch, paths, survival_dir)
    if crf and not spec.crf:
        refined = [a.name for a in ARCHS.values() if a.crf]
        raise PredictError(
            f"{models_dir}: --crf refines the masks of {refined} only (those evaluate refines), not {arch}'s"
        )
    try:
        torch_device = select_device(device or params.train.device)
    except RuntimeError as exc:
        raise PredictError(f"--device: {exc}") from None

    scan = read_scan(input_path)
    liver = read_liver_mask(mask_path, scan) if mask_path is not None else None
    scan, bad = check_nonfinite(scan, liver, params.prepare, nonfinite)
    if bad.note:
        log.warning(bad.note)
    prepared = prepare_slices(scan.volume, liver, params.prepare, skip=bad.unscored)
    crop = f"cropped by prepare.crop: {params.prepare.crop}" if liver is not None else "whole (no liver mask)"
    log.info(
        f"{scan.path}: {scan.volume.array.shape} (z, y, x) voxels of {scan.volume.spacing_mm} mm; "
        f"scoring {len(prepared.indices)} slice(s), {crop}, at {params.prepare.image_size} px"
    )
    log.info(f"{models_dir}: {spec.title} ensemble of {len(paths)} fold model(s) on {torch_device}")
    prob, seg = ensemble_predict(paths, prepared.images, params.train.batch_size, torch_device)

    cut = params.evaluate.threshold
    earlier = remove_earlier(out_dir) if overwrite else []
    if earlier:
        log.info(f"--overwrite: replacing {', '.join(earlier)} of an earlier run in {out_dir}")
    result = PredictResult(arch, len(paths), len(prepared.indices))
    result.risk = survival_risk(survival, paths, prepared.images, params.embed.batch_size)
    mask = None
    if seg is not None:
        if crf:
            seg = crf_refined(prepared.images.astype(np.float32), seg, params.crf, desc="crf")
        mask = paste_back(threshold(seg, cut), prepared, scan.volume.array.shape)
    frame = write_slices_csv(out_dir / "slices.csv", scan, prepared, prob, threshold(prob, cut), mask, bad)
    result.written["slices"] = out_dir / "slices.csv"
    if mask is None:
        log.info(f"{arch} does not segment (a classifier): no tumour mask written")
    else:
        write_mask_nifti(out_dir / "tumour_mask.nii.gz", scan, mask)
        result.written["mask"] = out_dir / "tumour_mask.nii.gz"
        if scan.is_dicom:
            seg = write_dicom_seg(out_dir / "tumour_seg.dcm", scan, mask, spec.title, crlm.__version__)
            result.written["seg"] = out_dir / "tumour_seg.dcm"
            model = model_record(spec, paths, params, crf, liver is not None, crlm.__version__)
            write_dicom_sr(out_dir / "report_sr.dcm", scan, mask, seg, model, result.risk)
            result.written["sr"] = out_dir / "report_sr.dcm"
    z = write_overlay(out_dir / "overlay.png", scan, prepared, prob, mask, params.prepare, cut)
    result.written["overlay"] = out_dir / "overlay.png"
    called = int(frame["metastasis"].sum())
    unscored = f"; {len(bad.unscored)} not scored (slices.csv's not_scored)" if bad.unscored else ""
    log.info(
        f"{called} of {len(prepared.indices)} scored slice(s) called metastasis at evaluate.threshold "
        f"{cut:g}; highest probability {prob.max():.3f} on slice {z}{unscored}"
    )
    write_risk(out_dir / "risk.json", result.risk)
    result.written["risk"] = out_dir / "risk.json"
    log.info(result.risk.message())
    for name, path in result.written.items():
        log.info(f"wrote {name}: {path}")
    return result
