"""What `crlm predict` writes: slices.csv, the tumour mask as NIfTI in the input's geometry, a DICOM-SEG on the
input CT series (DICOM input), and an overlay PNG of the most suspicious slice."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crlm.data.config import PrepareConfig
from crlm.data.prepare import window  # noqa: E402
from crlm.predict import PredictError  # noqa: E402
from crlm.predict.lesions import lesion_labels  # noqa: E402
from crlm.predict.volume import NonFinite, PreparedSlices, Scan  # noqa: E402

SEGMENT_LABEL = "Metastasis"
SEG_SERIES_OFFSET, SR_SERIES_OFFSET = 1000, 1001  # the derived series' numbers, after the CT's
OUTPUTS = (
    "slices.csv",
    "tumour_mask.nii.gz",
    "tumour_seg.dcm",
    "report_sr.dcm",
    "overlay.png",
    "risk.json",
)  # every file a run can write


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """The output folder, created, checked before any model is read: not a file, writable, and empty unless
    `overwrite` (whose run then replaces the files it writes, see `remove_earlier`)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise PredictError(f"{out_dir}: --out names a file; it takes a folder (created if missing)")
    existed = out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out_dir).close()
    except OSError as exc:
        blocker = next((p for p in out_dir.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file" if blocker is not None else exc.strerror or type(exc).__name__
        raise PredictError(f"{out_dir}: cannot create or write the output folder: {why}") from None
    entries = sorted(p.name for p in out_dir.iterdir()) if existed and not overwrite else []
    if entries:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise PredictError(
            f"{out_dir}: output folder is not empty ({shown}); pass --overwrite to replace an "
            "earlier run's outputs, or choose another --out"
        )


def remove_earlier(out_dir: Path) -> list[str]:
    """An earlier run's outputs (--overwrite), so that none this run does not write (a DICOM input's SEG, a
    segmenter's mask) is left beside this run's; other files stay."""
    found = [name for name in OUTPUTS if (out_dir / name).is_file()]
    for name in found:
        (out_dir / name).unlink()
    return found


def write_slices_csv(
    path: Path,
    scan: Scan,
    prepared: PreparedSlices,
    prob: np.ndarray,
    called: np.ndarray,
    mask: np.ndarray | None,
    nonfinite: NonFinite,
) -> pd.DataFrame:
    """One row per liver slice (every slice without a mask): its index in the axial volume (0 = most inferior),
    its position (mm), the ensemble's probability of metastasis, the call at evaluate.threshold and the
    predicted tumour pixels; its non-finite voxels (scored as nonfinite.fill_hu), and why a slice was not
    scored (then no probability)."""
    frame = pd.DataFrame({"probability": prob, "metastasis": called.astype(int)}, index=prepared.indices)
    if mask is not None:
        frame["tumour_px"] = mask[prepared.indices].reshape(len(prepared.indices), -1).sum(axis=1)
    indices = np.union1d(prepared.indices, list(nonfinite.unscored)).astype(int)
    frame = frame.reindex(indices).astype({name: "Int64" for name in ("metastasis", "tumour_px") if name in frame})
    frame.insert(0, "slice_index", indices)
    frame.insert(1, "z_mm", np.round(scan.z_mm[indices], 4))
    frame["nonfinite_voxels"] = nonfinite.per_slice[indices]
    frame["not_scored"] = [nonfinite.unscored.get(z, "") for z in indices]
    if scan.is_dicom:
        assert scan.ct is not None  # scan.is_dicom
        frame["sop_instance_uid"] = [scan.ct.sop_uids[z] for z in indices]
    frame.to_csv(path, index=False)
    return frame


def write_mask_nifti(path: Path, scan: Scan, mask: np.ndarray) -> None:
    """The (z, y, x) mask in the input's layout and affine: the NIfTI's own, or the DICOM series' (columns,
    rows, slices in ascending position; RAS)."""
    image = nib.Nifti1Image(scan.stored(mask).astype(np.uint8), scan.affine)
    qform_code = int(scan.nifti.header["qform_code"]) if scan.nifti is not None else 1
    sform_code = int(scan.nifti.header["sform_code"]) if scan.nifti is not None else 1
    image.set_qform(scan.affine, code=qform_code or 1)
    image.set_sform(scan.affine, code=sform_code or 1)
    image.header.set_xyzt_units("mm")
    nib.save(image, str(path))


def write_dicom_seg(path: Path, scan: Scan, mask: np.ndarray, arch_title: str, version: str):
    """A BINARY DICOM-SEG on the input CT series, one segment per predicted lesion ("Metastasis 1", ..., the
    lesion's number, crlm.predict.lesions) with its frames (the slices it spans), each referring to its CT
    instance, so viewers (3D Slicer, OHIF) show each lesion over the series and the SR can point at it. A
    mask with no lesion gives one empty segment "Metastasis" with a frame per CT slice. Returns the SEG."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    labels, n = lesion_labels(mask)
    numbers = range(1, n + 1) if n else [1]
    # highdicom's label-map style: each voxel holds its segment's number (lesions never overlap)
    frames = scan.stored(labels).transpose(2, 1, 0).astype(np.uint8 if n < 256 else np.uint16)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=f"crlm {arch_title} fold ensemble", version=version, family=codes.DCM.ArtificialIntelligence
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=f"{SEGMENT_LABEL} {k}" if n else SEGMENT_LABEL,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,  # 49755003
            segmented_property_type=codes.SCT.NeoplasmMetastatic,  # 14799000
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_uid=hd.UID() if n else None,
            tracking_id=f"{SEGMENT_LABEL} {k}" if n else None,
            anatomic_regions=[codes.SCT.Liver],
        )
        for k in numbers
    ]
    sources = [source_header(header) for header in scan.headers]
    first = sources[0]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        **new_instance(first, SEG_SERIES_OFFSET),
        manufacturer_model_name=f"crlm predict ({arch_title})",
        software_versions=version,
        content_label="METASTASIS",
        content_description=f"Metastases predicted by {arch_title}"[:64],
        # each lesion's own slices: a frame per segment and CT slice would grow with the lesions' count
        omit_empty_frames=True,
    )
    seg.SeriesDescription = f"CRLM metastases ({arch_title})"[:64]
    seg.save_as(str(path))
    return seg


def new_instance(first_source, series_offset: int) -> dict:
    """The identifying attributes of a derived object (the SEG, the SR) that crlm writes for a CT series: new
    UIDs, a series number `series_offset` after the CT's, and crlm as the manufacturer."""
    import highdicom as hd

    return {
        "series_instance_uid": hd.UID(),
        "series_number": int(first_source.get("SeriesNumber", 0) or 0) + series_offset,
        "sop_instance_uid": hd.UID(),
        "instance_number": 1,
        "manufacturer": "crlm",
        "device_serial_number": "none",
    }


def source_header(header):
    """A copy of a CT header that highdicom takes: an empty SpecificCharacterSet (a GE scanner writes one) means
    the default repertoire, which highdicom wants stated by leaving the attribute out."""
    header = copy.deepcopy(header)
    if "SpecificCharacterSet" in header and not header.SpecificCharacterSet:
        del header.SpecificCharacterSet
    return header


def write_overlay(
    path: Path,
    scan: Scan,
    prepared: PreparedSlices,
    prob: np.ndarray,
    mask: np.ndarray | None,
    cfg: PrepareConfig,
    cut: float,
) -> int:
    """The highest-probability slice, windowed as prepare windows it, with the predicted tumour outlined and
    the crop box dashed; returns that slice's index."""
    best = int(np.argmax(prob))
    z = int(prepared.indices[best])
    fig, ax = plt.subplots(figsize=(6, 6.4))
    ax.imshow(window(scan.volume.array[z], cfg.window_center_hu, cfg.window_width_hu), cmap="gray", vmin=0, vmax=1)
    rows, cols = prepared.boxes[best]
    if (rows.stop - rows.start, cols.stop - cols.start) != scan.volume.array.shape[1:]:
        ax.add_patch(
            plt.Rectangle(
                (cols.start - 0.5, rows.start - 0.5),
                cols.stop - cols.start,
                rows.stop - rows.start,
                fill=False,
                edgecolor="cyan",
                linestyle="--",
                linewidth=0.8,
            )
        )
    if mask is None:
        note = "this arch does not segment: no mask"
    elif mask[z].any():
        ax.contour(mask[z], levels=[0.5], colors="red", linewidths=1.0)
        note = "predicted tumour in red"
    else:
        note = "no tumour pixel predicted on this slice"
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        f"slice {z} (z {scan.z_mm[z]:.1f} mm): P(metastasis) {prob[best]:.3f} "
        f"({'metastasis' if prob[best] >= cut else 'no metastasis'} at {cut:g})\n{note}; "
        "image left = patient right",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return z
