"""Calibration and clinical usefulness of the predicted probabilities: Brier score, reliability diagrams,
logistic recalibration (intercept and slope) and decision curves (net benefit)."""
