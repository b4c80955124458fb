"""The report's test set: what it is (an internal hold-out, or split.external's source or phantom site) and the
recognition AUC out of fold (cross-validation, internal) beside the test set's, each with its CI and seed SD."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crlm.archs import ARCHS, title
from crlm.data.split_making import NO_EXTERNAL
from crlm.report_seeds import SeedSpread
from crlm.report_text import ci_text

if TYPE_CHECKING:
    from crlm.params import Params


def test_set_text(params: Params) -> str:
    """One sentence: the test set's kind."""
    split = params.split
    if split.external == NO_EXTERNAL:
        return (
            f"Test set: an internal hold-out, {split.test_fraction:g} of the patients drawn at random from the same "
            f"sources ({', '.join(params.data.sources)}) as the development patients (`split.external: none`)."
        )
    what = f"phantom site {split.site}" if split.site is not None else f"the source {split.external}"
    return (
        f"Test set: external, every patient of {what} (`split.external: {split.external}`); the folds, and so "
        "every model, hold the other patients only."
    )


def internal_external_section(params: Params, classification: dict, seeds: SeedSpread) -> list[str]:
    """Table 1b: each arch's out-of-fold AUC (metrics/classification.json's cv.out_of_fold) beside its test
    AUC, with their patient-bootstrap CIs and the seed SDs of `make stability` (the fold-mean CV AUC's and
    the test AUC's)."""
    external = params.split.external != NO_EXTERNAL
    kind = f"external ({params.split.external})" if external else "internal hold-out"
    lines = [
        f"## Table 1b. Recognition AUC: cross-validation (out of fold) vs the test set, {kind}",
        "",
        "| model | out of fold: images (patients) | out-of-fold AUC [CI] | CV AUC seed SD | test: images (patients) "
        "| test AUC [CI] | test AUC seed SD |",
        "|---|---|---|---|---|---|---|",
    ]
    for arch in ARCHS:
        oof, test = classification[arch]["cv"]["out_of_fold"], classification[arch]["test"]
        lines.append(
            f"| {title(arch)} | {oof['images']} ({oof['patients']}) | {ci_text(oof['auc'])} | "
            f"{seeds.sd(f'{arch}.cv_auc')} | {test['images']} ({test['patients']}) | {ci_text(test['auc'])} | "
            f"{seeds.sd(f'{arch}.test_auc')} |"
        )
    lines += [
        "",
        "Out of fold: every development image predicted once, by the fold model that did not train on it, pooled "
        "over the folds (the fold models differ, so the pooled AUC also mixes their scales); the test AUC is "
        "the fold ensemble's. Each CI is a patient bootstrap of its own set; the CV seed SD is that of the "
        "fold-mean CV AUC (`make stability`'s `cv_auc`), the nearest number it follows.",
        (
            "The test set is external: a gap between the two columns larger than their CIs and seed SDs is the "
            "models' loss under the shift from the development to the test patients."
            if external
            else "The test set is an internal hold-out: both columns are internal estimates, and neither "
            "measures a shift of source, site or scanner (`split.external` makes the test set external)."
        ),
        "",
    ]
    return lines
