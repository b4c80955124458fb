"""calibration: how far each arch's probabilities can be taken at face value, and whether acting on the
survival risk would help.

Image level (the test images' fold-ensemble probability of a metastasis) and survival (each patient's
cross-fitted probability of death before survival.horizon_months): Brier score with a patient-bootstrap
CI, logistic recalibration intercept and slope (logit of the probability clipped a priori: float32's
resolution for the images, half a vote of the smallest random forest of survival.rf_trees for the
survival risk) with patient-bootstrap CIs and likelihood-ratio tests of slope 1 and intercept 0, a
reliability diagram with quantile bins and a loess calibration curve; for the survival risk also the
IPCW Brier score and a decision curve (net benefit against treat-all and treat-none, censoring by
Kaplan-Meier: dcurves) with patient-bootstrap CIs of the net benefit and of its difference with
treat-all at calibration.net_benefit_at. Writes metrics/calibration.json and
plots/calibration/{reliability.png, reliability_survival.png, decision_curve.png, dca_<arch>.csv,
decision_strategies.csv}.
"""

from crlm.archs import ARCHS, CandidateConfig
from crlm.calibration.config import CalibrationConfig
from crlm.calibration.figures import decision_curve_csv, decision_curve_figure, reliability_figure
from crlm.calibration.measures import IMAGE_CLIP, forest_clip
from crlm.calibration.report import panel_note
from crlm.calibration.run import calibration_metrics, calibration_of_archs, rounded_metrics
from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS, PLOTS, PREDICTIONS, SURVIVAL
from crlm.stats.config import StatsConfig
from crlm.survival.config import SurvivalConfig

OUT = PLOTS / "calibration"
log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, CandidateConfig, StatsConfig, SurvivalConfig, CalibrationConfig)
    candidate, horizon = params.model.arch, params.survival.horizon_months
    images = {a: read_parquet(PREDICTIONS / f"{a}.parquet").query("subset == 'test'") for a in ARCHS}
    patients = {a: read_parquet(SURVIVAL / f"{a}.parquet") for a in ARCHS}
    results = calibration_of_archs(
        images,
        patients,
        params.calibration,
        params.stats,
        horizon,
        image_clip=IMAGE_CLIP,
        survival_clip=forest_clip(params.survival.rf_trees),
    )
    metrics = rounded_metrics(calibration_metrics(results, candidate, params.calibration, horizon), 4)
    write_json(METRICS / "calibration.json", metrics)

    reliability_figure(
        OUT / "reliability.png",
        {a: r.images for a, r in results.items()},
        {a: panel_note(metrics[a]["images"], with_lr_test=False) for a in results},
        candidate,
        f"Reliability, test images ({params.calibration.image_bins} quantile bins)",
        "predicted probability of a metastasis",
        "images",
    )
    reliability_figure(
        OUT / "reliability_survival.png",
        {a: r.survival for a, r in results.items()},
        {a: panel_note(metrics[a]["survival"]) for a in results},
        candidate,
        f"Reliability, death before {horizon:g} months, complete cases "
        f"({params.calibration.patient_bins} quantile bins)",
        f"predicted risk of death by {horizon:g} months",
        "patients",
    )
    decision_curve_figure(OUT / "decision_curve.png", {a: r.curve for a, r in results.items()}, candidate, horizon)
    for arch, result in results.items():
        decision_curve_csv(OUT / f"dca_{arch}.csv", result.curve, ("net_benefit",))
    decision_curve_csv(OUT / "decision_strategies.csv", results[candidate].curve, ("treat_all", "treat_none"))
    for arch in results:
        m = metrics[arch]
        nb = ", ".join(
            f"{t}: {v['model']} (all {v['treat_all']})"
            for t, v in m["survival"]["decision_curve"]["net_benefit"].items()
        )
        image, survival = m["images"], m["survival"]
        log.info(
            f"{arch}: image Brier {image.get('brier', {}).get('value')}, slope "
            f"{image.get('slope', {}).get('value')}; survival Brier {survival.get('brier', {}).get('value')}, "
            f"slope {survival.get('slope', {}).get('value')} (LR p "
            f"{survival.get('slope_lr_test', {}).get('p_value')}, logit clip {survival.get('logit_clip')}); "
            f"net benefit {nb} {survival.get('reason', '')}"
        )


if __name__ == "__main__":
    main()
