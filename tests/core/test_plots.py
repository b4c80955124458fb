"""crlm.plots: every writer makes a PNG that decodes, of the figure's size at 100 dpi, byte-identical when
written twice from the same input (no version or date stamp), with one or several groups."""

import numpy as np
import pytest
from PIL import Image

from crlm import plots
from crlm.stats.survival import at_risk, kaplan_meier


def _png(path):
    """(width, height) of a PNG that decodes fully, and its text chunks."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size, dict(image.text)


def _images(n, size=16):
    rng = np.random.default_rng(0)
    images = rng.random((n, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    masks[0, 4:9, 4:9] = 1  # one image with a mask, the others without
    return images, masks


def _augmentation(path):
    images, masks = _images(2)
    plots.augmentation_grid(
        path, list(zip(images, masks)), [[(images[0], masks[0])] * 2, [(images[1], masks[1])] * 2], ["a", "b"]
    )


def _roc(path):
    x = np.array([0.0, 0.2, 1.0])
    plots.curves_plot(
        path,
        {"vgg16": (x, np.array([0.0, 0.7, 1.0]), "AUC 0.75"), "clmnet": (x, np.array([0.0, 0.9, 1.0]), "AUC 0.85")},
        "roc",
    )


def _pr(path):
    plots.curves_plot(path, {"clmnet": (np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.8, 0.4]), "AP 0.8")}, "pr")


def _heatmap(path):
    row = {"precision": 0.5, "recall": 1.0, "f1-score": 0.6667}
    plots.report_heatmap(path, {"clmnet": {"no metastasis": row, "metastasis": row}})


def _overlays(path):
    images, masks = _images(2)
    plots.overlays(path, images, masks, {"unet": masks[::-1], "clmnet": masks}, ["t1", "t2"])


def _km_two_groups(path):
    curves = {
        "high": kaplan_meier([2.0, 5.0, 8.0, 12.0], [1, 1, 0, 1]),
        "low": kaplan_meier([10.0, 20.0, 30.0, 40.0], [0, 1, 0, 1]),
    }
    durations = {"high": np.array([2.0, 5.0, 8.0, 12.0]), "low": np.array([10.0, 20.0, 30.0, 40.0])}
    plots.km_plot(
        path,
        curves,
        {g: at_risk(d, [0, 12, 24]) for g, d in durations.items()},
        [0, 12, 24],
        "clmnet: risk groups",
        0.0123,
    )


def _km_one_group(path):
    """All patients in one risk group: no log-rank test (p None)."""
    plots.km_plot(
        path,
        {"low": kaplan_meier([10.0, 20.0, 30.0], [1, 0, 1])},
        {"low": at_risk([10.0, 20.0, 30.0], [0, 12, 24])},
        [0, 12, 24],
        "unet: risk groups",
        None,
    )


# writer -> pixel size: figsize (inches) x 100 dpi
WRITERS = {
    "augmentation_grid": (_augmentation, (600, 400)),  # 3 columns x 2 rows of 2 in
    "curves_plot roc": (_roc, (500, 500)),
    "curves_plot pr": (_pr, (500, 500)),
    "report_heatmap": (_heatmap, (500, 210)),  # 0.45 in per row (2 rows) + 1.2 in
    "overlays": (_overlays, (540, 400)),  # 3 columns x 2 rows of 1.8 in, + 0.4 in
    "km_plot": (_km_two_groups, (600, 460)),
    "km_plot one group": (_km_one_group, (600, 460)),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_each_writer_makes_a_decodable_png_of_its_size_and_the_same_bytes_twice(tmp_path, name):
    write, size = WRITERS[name]
    first, second = tmp_path / "a" / "plot.png", tmp_path / "b" / "plot.png"  # folders are created
    write(first)
    write(second)
    got, text = _png(first)
    assert got == size
    assert "Software" not in text  # no matplotlib version stamp
    assert first.read_bytes() == second.read_bytes()


def test_different_inputs_give_different_pictures(tmp_path):
    _km_one_group(tmp_path / "one.png")
    _km_two_groups(tmp_path / "two.png")
    with Image.open(tmp_path / "one.png") as one, Image.open(tmp_path / "two.png") as two:
        assert np.any(np.asarray(one.convert("RGB")) != np.asarray(two.convert("RGB")))


def test_points_csv_has_one_column_per_name_rounded_to_six_decimals(tmp_path):
    path = tmp_path / "evaluate" / "roc_unet.csv"
    plots.write_points_csv(path, {"fpr": np.array([0.0, 1 / 3, 1.0]), "tpr": np.array([0.0, 0.123456789, 1.0])})
    assert path.read_text() == "fpr,tpr\n0.0,0.0\n0.333333,0.123457\n1.0,1.0\n"


def test_km_csv_puts_both_groups_on_one_time_grid_and_leaves_a_missing_group_empty(tmp_path):
    both = {"high": kaplan_meier([2.0, 5.0], [1, 1]), "low": kaplan_meier([1.0 / 3, 5.0], [0, 1])}
    plots.km_csv(tmp_path / "both.csv", both)
    assert (tmp_path / "both.csv").read_text() == (
        "months,survival_high,survival_low\n0.0,1.0,1.0\n0.3333,1.0,1.0\n2.0,0.5,1.0\n5.0,0.0,0.0\n"
    )
    plots.km_csv(tmp_path / "one.csv", {"low": kaplan_meier([4.0], [1])})
    assert (tmp_path / "one.csv").read_text() == "months,survival_high,survival_low\n0.0,,1.0\n4.0,,0.0\n"
    plots.km_csv(tmp_path / "none.csv", {})
    assert (tmp_path / "none.csv").read_text() == "months,survival_high,survival_low\n"
