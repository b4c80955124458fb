"""The DICOM Structured Report `crlm predict` writes beside its DICOM-SEG: a Comprehensive 3D SR holding a TID
1500 Measurement Report, written with highdicom.

- one Volumetric ROI measurement group (TID 1411) per predicted lesion (crlm.predict.lesions), tracked by the
  lesion's SEG segment's tracking identifier and UID, referencing that segment of the SEG and the CT
  instances of the slices the lesion spans: its volume (SCT 118565006 Volume, ml), longest axial diameter
  (SCT 103339001 Long axis, mm) and mean attenuation (DCM 112031 Attenuation Coefficient, derivation SCT
  373098007 Mean, HU);
- one patient-level group (TID 1501): SCT 128462008 Metastasis, SCT 52101004 Present when the tumour mask
  has a lesion, SCT 272519000 Absent when it has none;
- given a survival risk, one group for it: the probability of death before the horizon, its percentile
  ranking (DCM 121415), the horizon (months) and the risk group; concepts DICOM does not code are in the
  local scheme 99CRLM, which the SR's Coding Scheme Identification declares.

The lesion and patient-level groups carry the model that produced them (TID 4019 Algorithm Identification:
the arch's fold ensemble, the crlm version, and as its parameters the model's build arguments, a digest of
the fold model files and the prepare, threshold and CRF settings).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from crlm.archs import Arch
from crlm.models.registry import model_kwargs
from crlm.params import Params
from crlm.predict.lesions import Lesion, measure_lesions
from crlm.predict.outputs import SR_SERIES_OFFSET, new_instance, source_header
from crlm.predict.risk import SurvivalRisk
from crlm.predict.volume import Scan

LOCAL_SCHEME = "99CRLM"
DEATH_BY_HORIZON = Code("DEATHBYHORIZON", LOCAL_SCHEME, "Probability of death before the horizon")
RISK_HORIZON = Code("RISKHORIZON", LOCAL_SCHEME, "Survival risk horizon")
RISK_GROUP = Code("RISKGROUP", LOCAL_SCHEME, "Survival risk group")
RISK_GROUPS = {"low": codes.SCT.LowRisk, "moderate": codes.SCT.ModerateRisk, "high": codes.SCT.HighRisk}
MILLILITER = Code("ml", "UCUM", "milliliter")


@dataclass(frozen=True)
class ModelRecord:
    """What produced the predictions: the SR's Algorithm Identification."""

    name: str
    version: str
    parameters: tuple[str, ...]


def model_record(
    spec: Arch, paths: list[Path], params: Params, crf: bool, liver_mask: bool, version: str
) -> ModelRecord:
    """The fold ensemble of `spec` in `paths` as `crlm predict` applied it under `params`."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    crop = params.prepare.crop if liver_mask else "none (no liver mask)"
    prepare = {**asdict(params.prepare), "crop": crop}
    return ModelRecord(
        name=f"crlm {spec.title} fold ensemble",
        version=version,
        parameters=(
            f"arch {spec.name}, {len(paths)} fold models, sha256 of the model files {digest.hexdigest()[:16]}",
            f"model {json.dumps(model_kwargs(params.model, spec.name), sort_keys=True)}",
            f"prepare {json.dumps(prepare, sort_keys=True)}",
            f"evaluate.threshold {params.evaluate.threshold:g}",
            f"crf {json.dumps(asdict(params.crf), sort_keys=True)}" if crf else "crf off",
        ),
    )


def write_dicom_sr(path: Path, scan: Scan, mask: np.ndarray, seg, model: ModelRecord, risk: SurvivalRisk | None):
    """The SR of the (z, y, x) tumour `mask` on the DICOM `scan`, referencing `seg` (write_dicom_seg's SEG of
    the same mask: segment k is lesion k); a `risk` None or not available leaves the risk group out. Returns
    the SR."""
    import highdicom as hd

    lesions = measure_lesions(mask, scan.volume)
    if len(lesions) != len(seg.SegmentSequence) and lesions:
        raise ValueError(f"the SEG has {len(seg.SegmentSequence)} segments for the mask's {len(lesions)} lesions")
    algorithm = hd.sr.AlgorithmIdentification(name=model.name, version=model.version, parameters=list(model.parameters))
    sources = [source_header(header) for header in scan.headers]
    groups: list = [lesion_group(lesion, seg, sources, algorithm) for lesion in lesions]
    groups.append(
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Patient-level assessment"),
            finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)],
            algorithm_id=algorithm,
            qualitative_evaluations=[
                hd.sr.QualitativeEvaluation(codes.SCT.Metastasis, codes.SCT.Present if lesions else codes.SCT.Absent)
            ],
        )
    )
    risk = risk if risk is not None and risk.available else None
    if risk is not None:
        groups.append(risk_group(risk))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="crlm predict", manufacturer_name="crlm", model_name=model.name[:64]
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    local = hd.coding_schemes.CodingSchemeIdentificationItem(
        designator=LOCAL_SCHEME, name="crlm survival risk concepts", responsible_organization="crlm"
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*sources, seg],
        content=report,
        **new_instance(sources[0], SR_SERIES_OFFSET),
        manufacturer_model_name=model.name[:64],
        software_versions=model.version,
        is_complete=True,
        series_description=f"CRLM measurements ({model.name})"[:64],
        coding_schemes=[local] if risk is not None else None,
    )
    sr.save_as(str(path))
    return sr


def lesion_group(lesion: Lesion, seg, sources: list, algorithm):
    """Lesion k's TID 1411 group: its measurements, its SEG segment k and its slices' CT instances."""
    import highdicom as hd

    segment = seg.get_segment_description(lesion.number)
    referenced = hd.sr.ReferencedSegment(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        segment_number=lesion.number,
        source_images=[
            hd.sr.SourceImageForSegmentation(sources[z].SOPClassUID, sources[z].SOPInstanceUID) for z in lesion.slices
        ],
    )
    measurements = [
        hd.sr.Measurement(name=codes.SCT.Volume, value=lesion.volume_ml, unit=MILLILITER),
        hd.sr.Measurement(name=codes.SCT.LongAxis, value=lesion.longest_axial_mm, unit=codes.UCUM.Millimeter),
        hd.sr.Measurement(
            name=codes.DCM.AttenuationCoefficient,
            value=lesion.mean_hu,
            unit=codes.UCUM.HounsfieldUnit,
            derivation=codes.SCT.Mean,
        ),
    ]
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=segment.tracking_uid, identifier=segment.tracking_id),
        referenced_segment=referenced,
        finding_type=codes.SCT.NeoplasmMetastatic,
        finding_category=codes.SCT.MorphologicallyAbnormalStructure,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)],
        algorithm_id=algorithm,
        measurements=measurements,
    )


def risk_group(risk: SurvivalRisk):
    """The survival risk's TID 1501 group."""
    import highdicom as hd

    if risk.probability is None or risk.percentile is None or risk.risk_group is None or risk.horizon_months is None:
        raise ValueError(f"risk_group: the survival risk is not available ({risk.reason})")
    name = risk.risk_group
    group = RISK_GROUPS.get(name.lower(), Code(name.upper()[:16], LOCAL_SCHEME, name))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Survival risk"),
        measurements=[
            hd.sr.Measurement(name=DEATH_BY_HORIZON, value=risk.probability, unit=codes.UCUM.NoUnits),
            hd.sr.Measurement(
                name=codes.DCM.PercentileRankingOfMeasurement, value=risk.percentile, unit=codes.UCUM.Percent
            ),
            hd.sr.Measurement(name=RISK_HORIZON, value=risk.horizon_months, unit=codes.UCUM.Month),
        ],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(RISK_GROUP, group)],
    )
