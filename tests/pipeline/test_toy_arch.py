"""Adding an arch takes one registry entry, one model module and one params.yaml section.

The test does exactly that to a copy of the package (crlm/archs.py gets an entry, crlm/models/toy.py
is written, the params get `model.toy`) and then, in a fresh interpreter on that copy: the params
load and validate the new section (and refuse params without it, naming it), the model builds,
trains an epoch through the real training loop, saves and loads back with the same predictions,
and the dvc.yaml lines it needs are the ones tests/pipeline/test_dvc_yaml_archs.py asks for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import yaml

from tests.conftest import REPO, tiny_params_dict

REGISTRY_ENTRY = '''
@dataclass(frozen=True)
class ToyConfig:
    dropout: float


ARCHS["toy"] = Arch("toy", "Toy", segments=True, crf=False, config=ToyConfig, min_image_size=8)
ARCH_NAMES = tuple(ARCHS)
'''

MODEL_MODULE = '''
"""A toy segmenting arch: two convolutions, a mask head and the shared embedding head."""

import torch
from torch import nn

from crlm.models.base import EmbeddingClassifierHead, GreyToImageNet, ModelOutput


class Toy(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.normalise = GreyToImageNet()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.mask = nn.Conv2d(8, 1, 1)
        self.head = EmbeddingClassifierHead(8, cfg.embedding_dim, cfg.toy.dropout)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.features(self.normalise(x))
        logit, embedding = self.head(features)
        return ModelOutput(logit=logit, seg_logits=self.mask(features), embedding=embedding)


MODEL = Toy
'''

SCRIPT = '''
import json, sys
import numpy as np, torch, yaml
from crlm.archs import ARCHS, get_arch, title
from crlm.config import ConfigError, params_from_dict
from crlm.models import build_model
from crlm.models.inference import predict
from crlm.models.model_file import load_model, save_model
from crlm.training.loop import train_model
from tests.factories import synthetic_set
from tests.pipeline.test_dvc_yaml_archs import expected_arch_entries

raw = yaml.safe_load(open(sys.argv[1]))
params = params_from_dict(raw)
out = {"archs": list(ARCHS), "toy_dropout": params.model.toy.dropout, "title": title("toy")}
bad = yaml.safe_load(open(sys.argv[1])); del bad["model"]["toy"]
try:
    params_from_dict(bad)
except ConfigError as exc:
    out["missing_section"] = str(exc)
data = synthetic_set()
result = train_model("toy", params, data, np.arange(18), np.arange(18, 24))
out["epochs"] = len(result.history)
save_model(sys.argv[2], "toy", params.model, result.model)
a = predict(result.model, data, np.arange(24), batch_size=8)
b = predict(load_model(sys.argv[2]), data, np.arange(24), batch_size=8)
out["same_predictions"] = bool(np.array_equal(a.prob, b.prob))
out["segments"] = get_arch("toy").segments
entries = expected_arch_entries(ARCHS)
out["plot_files"] = [f for f in entries["evaluate plot files"] + entries["survival plot files"] if "toy" in f]
print(json.dumps(out))
'''


def test_a_new_arch_needs_one_entry_one_module_and_one_params_section(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "crlm", src / "crlm", ignore=shutil.ignore_patterns("__pycache__"))
    archs = src / "crlm" / "archs.py"
    archs.write_text(archs.read_text() + REGISTRY_ENTRY)                     # 1. the registry entry
    (src / "crlm" / "models" / "toy.py").write_text(textwrap.dedent(MODEL_MODULE))   # 2. the model module
    raw = tiny_params_dict(train={"epochs": 1, "batch_size": 8})
    raw["model"]["toy"] = {"dropout": 0.25}                                   # 3. the params section
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "run.py").write_text(SCRIPT)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(REPO)])}
    done = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "params.yaml"),
                           str(tmp_path / "model.pt")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["archs"] == ["vgg16", "deeplabv3", "unet", "clmnet", "toy"]
    assert out["toy_dropout"] == 0.25 and out["title"] == "Toy" and out["segments"]
    assert "model.toy" in out["missing_section"]
    assert out["epochs"] == 1 and out["same_predictions"]
    assert sorted(out["plot_files"]) == ["plots/evaluate/pr_toy.csv", "plots/evaluate/roc_toy.csv",
                                         "plots/survival/km_toy.csv", "plots/survival/km_toy.png"]
