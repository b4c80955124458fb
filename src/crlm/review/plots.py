"""The plots that differ between a revision and the workspace, from `dvc plots diff --json --split`: each changed
data plot (dvc.yaml's top-level plots) drawn with both revisions on one figure, each changed image plot as the
pair of images."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple, cast

WORKSPACE = "workspace"


class PlotChange(NamedTuple):
    title: str
    images: list[str]  # paths relative to the review page


def dvc_plots_diff(root: Path, base: str, out: Path) -> dict:
    """DVC's own JSON of `dvc plots diff BASE` (images exported under `out`)."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "diff", base, "--json", "--split", "-o", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dvc plots diff {base} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout).get("data", {})


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _series(points: list[dict], rev: str, x: str, y: str) -> dict[str, list[tuple[float, float]]]:
    """The lines of one revision: series name (file, and field where one plot draws several) -> (x, y)."""
    lines: dict[str, list[tuple[float, float]]] = {}
    for p in points:
        xy = (_number(p.get(x)), _number(p.get(y)))
        if p.get("rev") == rev and None not in xy:  # an empty cell (a curve undefined there) is not drawn
            name = " ".join(str(p[k]) for k in ("filename", "field") if k in p)
            lines.setdefault(name, []).append(cast(tuple[float, float], xy))  # None not in xy
    return lines


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _draw(title: str, spec: dict, base: str, path: Path) -> bool:
    """A figure of both revisions of one data plot at `path`; False where they are the same."""
    anchors = spec["anchor_definitions"]
    points = anchors["<DVC_METRIC_DATA>"]
    x = anchors["<DVC_METRIC_X_LABEL>"]
    y = "dvc_inferred_y_value" if points and "dvc_inferred_y_value" in points[0] else anchors["<DVC_METRIC_Y_LABEL>"]
    new, old = _series(points, WORKSPACE, x, y), _series(points, base, x, y)
    if new == old:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for i, name in enumerate(sorted(set(new) | set(old))):
        colour = f"C{i % 10}"
        for lines, style, label in ((old, "--", base), (new, "-", "workspace")):
            if name in lines:
                xs, ys = zip(*lines[name])
                ax.plot(xs, ys, style, color=colour, linewidth=1.2, label=f"{name} ({label})")
    ax.set(title=title, xlabel=x, ylabel=anchors.get("<DVC_METRIC_Y_LABEL>", y))
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def changed_plots(root: Path, base: str, folder: Path, link_prefix: str) -> list[PlotChange]:
    """Render every plot that differs between `base` and the workspace into `folder` (emptied first); each
    image is linked from the page as `link_prefix/<file>`."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    changes = []
    with tempfile.TemporaryDirectory() as tmp:
        plots = dvc_plots_diff(root, base, Path(tmp))
        for plot_id, entries in plots.items():
            kinds = {entry["type"] for entry in entries}
            if kinds == {"vega"} and not plot_id.startswith("plots/"):  # dvc.yaml's named plots
                name = f"{slug(plot_id)}.png"
                if _draw(plot_id, entries[0], base, folder / name):
                    changes.append(PlotChange(plot_id, [f"{link_prefix}/{name}"]))
            elif kinds == {"image"}:
                urls = {entry["revisions"][0]: Path(entry["url"]) for entry in entries}
                if urls.get(WORKSPACE) and urls.get(base) and urls[WORKSPACE].read_bytes() != urls[base].read_bytes():
                    pair = []
                    for rev, label in ((base, "base"), (WORKSPACE, "new")):
                        name = f"{slug(plot_id)}_{label}.png"
                        shutil.copy(urls[rev], folder / name)
                        pair.append(f"{link_prefix}/{name}")
                    changes.append(PlotChange(plot_id, pair))
    return changes
