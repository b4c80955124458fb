"""Checks of the inputs of the paired comparisons of two scores on the same units."""

from __future__ import annotations

import numpy as np


def paired_scores(
    name: str, y_true, scores_a, scores_b, clusters=None, ci_level: float | None = None
) -> tuple[np.ndarray, ...]:
    """(y_true, scores_a, scores_b[, clusters]) as arrays, after checking: one length, finite scores,
    labels 0/1, finite clusters, ci_level in (0, 1). ValueError naming `name` and the problem otherwise."""
    arrays = [np.asarray(v) for v in (y_true, scores_a, scores_b) + (() if clusters is None else (clusters,))]
    y_true, scores_a, scores_b = arrays[:3]
    if len({len(v) for v in arrays}) > 1:
        lengths = ", ".join(f"{label} {len(v)}" for label, v in zip(("labels", "a", "b", "clusters"), arrays))
        raise ValueError(f"{name}: lengths differ ({lengths})")
    for label, values in (("scores_a", scores_a), ("scores_b", scores_b)):
        if not np.all(np.isfinite(values.astype(np.float64))):
            raise ValueError(f"{name}: {label} contains NaN or infinite values")
    labels = set(np.unique(y_true).tolist())
    if not labels <= {0, 1, True, False}:
        raise ValueError(f"{name}: labels must be 0/1, got {sorted(labels)}")
    if clusters is not None and arrays[3].dtype.kind == "f" and not np.all(np.isfinite(arrays[3])):
        raise ValueError(f"{name}: clusters contains NaN or infinite values")
    if ci_level is not None and not 0.0 < ci_level < 1.0:
        raise ValueError(f"{name}: ci_level must be in (0, 1), got {ci_level}")
    return tuple(arrays)
