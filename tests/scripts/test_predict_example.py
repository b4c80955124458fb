"""scripts/predict_example.py (make predict-example): the docs page of one `crlm predict` run on the real CT,
written from what the run wrote and read back."""

from __future__ import annotations

import sys

import highdicom as hd
import yaml

from tests.conftest import REPO, tiny_params_dict
from tests.factories import save_fold_models
from tests.predict.test_predict import needs_realdata

sys.path.insert(0, str(REPO / "scripts"))
try:
    import predict_example
finally:
    sys.path.remove(str(REPO / "scripts"))


@needs_realdata
def test_the_page_shows_what_predict_wrote_and_the_sr_says(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params_dict()))
    models = save_fold_models(tmp_path / "models", "unet", tiny_params_dict())
    page = tmp_path / "reports" / "predict.md"
    predict_example.main(
        [
            "--params",
            str(params),
            "--models",
            str(models),
            "--survival-models",
            str(tmp_path / "none"),
            "--page",
            str(page),
        ]
    )
    text = page.read_text()
    figure = tmp_path / "reports" / "predict" / "overlay.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![The highest-probability slice with the predicted tumour outlined](predict/overlay.png)" in text
    for name in ("slices.csv", "tumour_mask.nii.gz", "tumour_seg.dcm", "report_sr.dcm", "overlay.png", "risk.json"):
        assert f"| `{name}` |" in text
    assert "crlm predict ../shared/realdata/dcmqi-liver/ct --mask ../shared/realdata/dcmqi-liver/seg/liver.dcm" in text
    assert f"highdicom {hd.__version__}: patient-level Metastasis: " in text
    assert '"available": false' in text  # no survival classifiers in that folder: risk.json says so
