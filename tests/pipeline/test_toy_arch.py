"""Adding an arch takes one registry entry, one model module and one params.yaml section, and leaves the
existing archs alone: their saved models still load, and DVC finds their train stages up to date.

The test records the train stages of a copy of the project in dvc.lock (`dvc commit` over a real saved model
per arch and stand-in data, so no training runs), then adds an arch `toy` as a user would (crlm/archs.py gets
an entry, crlm/models/toy.py is written, params.yaml gets `model.toy`, dvc.yaml's train matrix gets `toy`) and
checks, in a fresh interpreter on that copy: the params load and validate the new section (and refuse params
without it, naming it), the toy model trains an epoch through the real training loop, saves and loads back
with the same predictions, every existing arch's saved model loads with its predictions unchanged, and the
dvc.yaml lines it needs are the ones tests/pipeline/test_dvc_yaml_archs.py asks for; then `dvc status` reports every
existing train stage up to date and train@toy new.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import torch
import yaml

from crlm.archs import ARCHS
from crlm.models.inference import predict
from crlm.models.model_file import load_model, save_model
from crlm.models.registry import build_model, model_kwargs
from crlm.params import params_from_dict
from tests.conftest import REPO, tiny_params_dict
from tests.dvc_repo import dvc, make_repo

REGISTRY_ENTRY = """
ARCHS["toy"] = Arch("toy", "Toy", segments=True, crf=False, min_image_size=8)
ARCH_NAMES = tuple(ARCHS)
"""

MODEL_MODULE = '''
"""A toy segmenting arch: two convolutions, a mask head and the shared embedding head."""

from dataclasses import dataclass

import torch
from torch import nn

from crlm.models.base import EmbeddingClassifierHead, ModelOutput, Network


@dataclass(frozen=True)
class ToyConfig:
    dropout: float


class Toy(Network):
    def __init__(self, *, width: float, embedding_dim: int, pretrained: str, batch_norm: bool,
                 dropout: float) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.mask = nn.Conv2d(8, 1, 1)
        self.head = EmbeddingClassifierHead(8, embedding_dim, dropout)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.features(self.normalise(x))
        logit, embedding = self.head(features)
        return ModelOutput(logit=logit, seg_logits=self.mask(features), embedding=embedding)

    def cam_layer(self) -> nn.Module:
        return self.features


MODEL = Toy
CONFIG = ToyConfig
'''

SCRIPT = """
import json, sys
import numpy as np, torch, yaml
from crlm.archs import ARCHS, get_arch, title
from crlm.core.config import ConfigError
from crlm.params import params_from_dict
from crlm.models.inference import predict
from crlm.models.model_file import load_model, save_model
from crlm.training.loop import train_model
from tests.factories import synthetic_set
from tests.pipeline.test_dvc_yaml_archs import expected_arch_entries

repo, model_pt = sys.argv[1], sys.argv[2]
raw = yaml.safe_load(open(f"{repo}/params.yaml"))
params = params_from_dict(raw)
out = {"archs": list(ARCHS), "toy_dropout": params.model.sections["toy"]["dropout"], "title": title("toy")}
bad = yaml.safe_load(open(f"{repo}/params.yaml")); del bad["model"]["toy"]
try:
    params_from_dict(bad)
except ConfigError as exc:
    out["missing_section"] = str(exc)
data = synthetic_set()
result = train_model("toy", params, data, np.arange(18), np.arange(18, 24))
out["epochs"] = len(result.history)
save_model(model_pt, "toy", result.kwargs, result.model)
a = predict(result.model, data, np.arange(24), batch_size=8)
b = predict(load_model(model_pt), data, np.arange(24), batch_size=8)
out["same_predictions"] = bool(np.array_equal(a.prob, b.prob))
out["segments"] = get_arch("toy").segments
out["existing"] = {arch: predict(load_model(f"{repo}/data/models/{arch}/0/model.pt", expected_arch=arch), data,
                                 np.arange(24), batch_size=8).prob.tolist() for arch in sys.argv[3:]}
entries = expected_arch_entries(ARCHS)
out["plot_files"] = [f for f in entries["evaluate plot files"] + entries["survival plot files"] if "toy" in f]
print(json.dumps(out))
"""


def test_a_new_arch_needs_one_entry_one_module_and_one_params_section_and_leaves_the_others_alone(tmp_path):
    from tests.factories import synthetic_set

    raw = tiny_params_dict(train={"epochs": 1, "batch_size": 8})
    repo = make_repo(tmp_path, yaml.safe_dump(raw, sort_keys=False))
    params = params_from_dict(raw)
    data, existing = synthetic_set(), list(ARCHS)
    before = {}
    for arch in existing:  # each arch's saved model, by the code before the toy arch, and stand-in data
        torch.manual_seed(0)
        path = repo / "data" / "models" / arch / "0" / "model.pt"
        save_model(path, arch, model_kwargs(params.model, arch), build_model(arch, model_kwargs(params.model, arch)))
        before[arch] = predict(load_model(path, expected_arch=arch), data, np.arange(24), batch_size=8).prob.tolist()
        (repo / "plots" / "train" / arch).mkdir(parents=True)
        (repo / "plots" / "train" / arch / "compute.json").write_text("{}")
    (repo / "data" / "processed").mkdir(parents=True)
    (repo / "data" / "processed" / "stand-in").write_text("prepared images")
    (repo / "data" / "splits").mkdir(parents=True)
    (repo / "data" / "splits" / "splits.json").write_text("{}")
    dvc("commit", "-f", "-q", *[f"train@{arch}" for arch in existing], cwd=repo)

    # the toy arch, as a user adds it
    archs = repo / "src" / "crlm" / "archs.py"
    archs.write_text(archs.read_text() + REGISTRY_ENTRY)  # 1. registry entry
    (repo / "src" / "crlm" / "models" / "toy.py").write_text(textwrap.dedent(MODEL_MODULE))  # 2. model module
    raw["model"]["toy"] = {"dropout": 0.25}  # 3. params section
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    pipeline["stages"]["train"]["matrix"]["arch"].append("toy")  # 4. dvc.yaml
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))

    (tmp_path / "run.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(repo), str(tmp_path / "toy.pt"), *existing],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["archs"] == [*existing, "toy"]
    assert out["toy_dropout"] == 0.25 and out["title"] == "Toy" and out["segments"]
    assert "model.toy" in out["missing_section"]
    assert out["epochs"] == 1 and out["same_predictions"]
    assert out["existing"] == before  # the saved models load, with the same predictions
    assert sorted(out["plot_files"]) == [
        "plots/evaluate/pr_toy.csv",
        "plots/evaluate/roc_toy.csv",
        "plots/survival/km_toy.csv",
        "plots/survival/km_toy.png",
    ]

    status = json.loads(dvc("status", "--json", *[f"train@{arch}" for arch in [*existing, "toy"]], cwd=repo))
    assert [stage for stage in status if stage != "train@toy"] == [], status  # the existing: up to date
    assert "train@toy" in status
