"""dvc.yaml lists, for every stage, exactly the code and params the stage reads.

DVC reruns a stage when a listed dep or param changes, so a missing entry leaves
stale outputs and a superfluous one reruns work for nothing. This test reads the
code instead of trusting the lists; nothing is executed (no stage, no training).

Code (`test_code_deps_cover_what_the_stage_imports`): from `stages/<name>.py` the
test follows every `import`/`from ... import` inside `crlm` (at module level and
inside functions: the lazy imports), transitively, with the stdlib `ast`
module. `from crlm.x import y` counts module `crlm.x.y` when y is a submodule,
and importing `crlm.x.y` runs the package `__init__`s above it. A module is
covered when its file, or a folder above it, is in the stage's deps. The test
fails for a module that is not covered, and for a `.py` file under a listed
src/ path that the stage never imports (a change there would rerun it for
nothing). A package `__init__.py` holding only a docstring and literal
constants (crlm/__init__.py's `__version__`) is neither required nor refused:
running it cannot change anything.

Per-arch model modules: `crlm.models.registry.model_class(arch)` imports the
arch module `crlm/models/<arch>.py` (arch in `crlm.archs.ARCHS`) by name, and a
stage only ever runs the code of the archs it builds. So an arch module (and what
only it imports) counts for a stage only when the stage builds that arch:
`train@<arch>` (its command passes `--arch <arch>`) builds that one arch;
another stage that can reach `build_model` (embed: it rebuilds each saved
model) builds every arch; a stage that never reaches `build_model` (evaluate,
survival, compare: they only use the archs' names) builds none. A change to
clmnet.py thus reruns train@clmnet and embed only. This is sound because
importing an arch module only defines names: `test_arch_modules_only_define_names`
checks that their top-level code (and that of everything only they import)
is imports, defs and call-free assignments.

Params (`test_params_are_exactly_what_the_stage_reads`): `crlm.config` turns
params.yaml into frozen dataclasses; a stage gets them from `cli_params()` or
`load_params()`. The test follows that object statically: through assignments
(`cfg = params.train`), attribute chains (`params.model.clmnet.se`, recorded as
the leaf key `model.clmnet.se`), and calls of crlm functions, binding each
argument to the callee's parameter (also for `model_class(arch)(cfg)`, a call of
the `MODEL` class of every arch the stage builds, for `TABLE[key](...)` and
`look_up(key, value, TABLE)(...)` (crlm/options.py), a call of every value of a
dict literal, for `TABLE[key].method(...)`, that method of each value (an
instance's class method, or the function it passes as that field), also through a
name assigned such an entry (`source = look_up(...)`; `source.fetch(...)`), and
joblib's `delayed(f)(...)`), over
the functions reachable from the stage script. Only objects that came from
params.yaml count: `model_config_from_dict` (a model config saved in model.pt)
gives a config the stage did not read from params.yaml. The set of leaf keys
read is compared with the leaf keys under the listed params: a listed key the
stage never reads fails (e.g. all of `augment` listed where train reads no
`augment.preview_images`), and so does a read key that is not listed.

What the params analysis does not catch: a read it cannot see. Whenever a
config object escapes what it follows (into a container, an f-string, a return
value, a non-crlm function such as `dataclasses.asdict`) the test fails unless
the place is in `ESCAPES_OK` with the reason that escape reads nothing that
shapes an output. It treats code as flow-insensitive (an `if` that makes a read
conditional still counts it: `train.augment: false` skips the transforms, yet
`augment.*` stays listed, as it must for when it is true) and does not look
into `crlm.config` itself, whose validation touches every key of every section
but cannot change a stage's output. A read through `getattr` with a computed
name, or a class reached other than by name, `model_class`, a dict literal or `delayed`,
would go unseen.

Data (`test_the_data_paths_a_stage_script_uses_are_in_its_deps_or_outs`): every crlm.paths constant a
stage script imports must be named by one of the stage's deps or outs (or lie under one, or hold one):
fetch's output and slices' input is the raw store's manifest data/raw.json (RAW_MANIFEST), never the store
itself (crlm.paths.raw_dir(), which may lie outside the workspace). Only the scripts' own imports are
read, so this catches a forgotten data dep, not a superfluous one.

The analyser lives in tests/dvcdeps/: stages.py (dvc.yaml's stages, params.yaml's
key tree), imports.py (import closure, required files) and params_flow.py
(ParamsFlow); this file holds the per-stage checks and the tests.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from crlm import paths
from crlm.archs import ARCH_NAMES
from tests.dvcdeps import REPO, SRC
from tests.dvcdeps.imports import _definitions_only, _trivial_init, crlm_modules, import_closure, parse, required_files
from tests.dvcdeps.params_flow import ParamsFlow
from tests.dvcdeps.stages import expand_stages, leaves_under, listed_params, stage_script

BUILD_MODEL = "crlm.models.registry.build_model"
# (function, params section of the escaping object) -> why that escape reads nothing that shapes an output
ESCAPES_OK = {
    ("crlm.training.folds.train_all_folds", ""):
        "the params handed to worker processes that run train_fold(arch, fold, params, threads), the same "
        "function the branch above calls directly (so its reads are counted)",
    ("crlm.models.model_file.save_model", "model"):
        "model.pt keeps the model section so that embed can rebuild the arch; the rebuilt network reads the "
        "keys the arch's constructor reads here, which train lists; the rest are inert copies",
    ("crlm.training.loop.train_model", "model"):
        "fingerprint of the resume checkpoint in data/checkpoints (not an output; deleted when the stage "
        "ends): another value only makes an interrupted run start over, with the same weights",
    ("crlm.training.loop.train_model", "train"): "as for model: the resume checkpoint's fingerprint",
    ("crlm.training.loop.train_model", "augment"): "as for model: the resume checkpoint's fingerprint",
    ("stages.validate.main", ""):
        "validate loads every section only to check it, and writes the same bytes whatever the values: it "
        "depends on the whole params.yaml file instead (a file dep), so that any change reruns the check",
    ("crlm.data.sources.phantom.phantom_folder", "phantom"):
        "the whole section is hashed into the phantom's folder name in the raw store (data/raw.json records "
        "it); the only stage that calls it, fetch, lists all of `phantom`, which write_phantom reads anyway",
}


# ---------------------------------------------------------------- per stage


@dataclasses.dataclass
class StageCode:
    script: Path
    enabled_archs: set[str]
    flow: ParamsFlow


def analyse_stage(stage: dict) -> StageCode:
    script, arch = stage_script(stage)
    if arch is not None:
        assert arch in ARCH_NAMES, f"--arch {arch}: not one of {ARCH_NAMES}"
        enabled = {arch}
    else:
        enabled = set()
        if BUILD_MODEL in ParamsFlow(script, enabled).reachable:
            enabled = set(ARCH_NAMES)
    return StageCode(script, enabled, ParamsFlow(script, enabled))


def code_problems(name: str, stage: dict) -> list[str]:
    code = analyse_stage(stage)
    needed = required_files(code.script, code.enabled_archs)
    deps = [d.rstrip("/") for d in stage.get("deps", []) if isinstance(d, str)]
    problems = []
    for file in sorted(needed):
        if not any(file == d or file.startswith(d + "/") for d in deps):
            problems.append(f"{name}: imports {file}, which its deps do not cover")
    for dep in deps:
        if dep.split("/")[0] not in ("src", "stages"):
            continue
        path = REPO / dep
        assert path.exists(), f"{name}: dep {dep} does not exist"
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            rel = str(file.relative_to(REPO))
            module = ".".join(file.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__") \
                if file.is_relative_to(SRC) else None
            if rel not in needed and not (module in crlm_modules() and _trivial_init(module)):
                problems.append(f"{name}: lists {rel} (via {dep}), which the stage does not import")
    return problems


def params_problems(name: str, stage: dict) -> list[str]:
    flow = analyse_stage(stage).flow
    problems = []
    listed: set[str] = set()
    for key in listed_params(stage):
        try:
            under = leaves_under(key)
        except KeyError:
            problems.append(f"{name}: lists param {key}, which is not a key of params.yaml")
            continue
        listed |= under
        unread = sorted(under - flow.reads)
        if unread:
            problems.append(f"{name}: lists param {key}, but the stage never reads {', '.join(unread)}")
    for key in sorted(flow.reads - listed):
        problems.append(f"{name}: reads param {key}, which its params do not list")
    for (scope, path), where in sorted(flow.escapes.items()):
        if (scope, path) not in ESCAPES_OK:
            problems.append(f"{name}: the params section {path or '(all)'} escapes the analysis in {scope} at "
                            f"{where}; follow it, list the section, or add it to ESCAPES_OK with the reason")
    return problems


def load_dvc_yaml(path: Path = REPO / "dvc.yaml") -> dict[str, dict]:
    return expand_stages(yaml.safe_load(path.read_text()))


STAGES = load_dvc_yaml()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_cover_what_the_stage_imports(name):
    problems = code_problems(name, STAGES[name])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_params_are_exactly_what_the_stage_reads(name):
    problems = params_problems(name, STAGES[name])
    assert not problems, "\n".join(problems)


def test_arch_modules_only_define_names():
    """The per-arch rule leaves an arch module out of the stages that import but never build it: sound only
    while importing it runs no code that could change anything (and the same for what only it imports)."""
    everything = set(ARCH_NAMES)
    scripts = sorted((REPO / "stages").glob("*.py"))
    problems = []
    for name in sorted({m for s in scripts for m in import_closure(s, everything) - import_closure(s, set())}):
        problems += [f"{name}: {line}" for line in _definitions_only(parse(crlm_modules()[name]))]
    assert not problems, "\n".join(problems)


def stage_entries(stage: dict) -> list[str]:
    """Every path the stage names in deps, outs, metrics and plots."""
    entries = []
    for kind in ("deps", "outs", "metrics", "plots"):
        for entry in stage.get(kind, []):
            entries += [entry] if isinstance(entry, str) else list(entry)
    return [e.rstrip("/") for e in entries]


def data_path_problems(name: str, stage: dict) -> list[str]:
    """A crlm.paths constant the stage script imports (a data path it reads or writes) that none of its deps or
    outs names, contains, or lies under: DVC would neither rerun the stage on it nor restore it."""
    script, _ = stage_script(stage)
    imported = {alias.name for node in ast.walk(parse(script)) if isinstance(node, ast.ImportFrom)
                and node.module == "crlm.paths" for alias in node.names}
    entries = stage_entries(stage)
    problems = []
    for constant in sorted(imported):
        value = getattr(paths, constant)
        if not isinstance(value, Path):
            continue   # raw_dir(): the raw store, reached through data/raw.json (paths.RAW_MANIFEST)
        path = value.as_posix()
        if not any(e == path or e.startswith(path + "/") or path.startswith(e + "/") for e in entries):
            problems.append(f"{name}: uses {constant} ({path}), which no dep or out of the stage names")
    return problems


@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_data_paths_a_stage_script_uses_are_in_its_deps_or_outs(name):
    problems = data_path_problems(name, STAGES[name])
    assert not problems, "\n".join(problems)


def test_the_raw_data_reach_dvc_through_their_manifest():
    """fetch writes data/raw.json (not the raw store, which may lie outside the workspace); slices reads it."""
    raw = paths.RAW_MANIFEST.as_posix()
    assert STAGES["fetch"]["outs"] == [raw]
    assert raw in STAGES["slices"]["deps"]
    named = {e for stage in STAGES.values() for e in stage_entries(stage)}
    assert not any(e == paths.RAW.as_posix() or e.startswith(paths.RAW.as_posix() + "/") for e in named)
    broken = dict(STAGES["slices"], deps=[d for d in STAGES["slices"]["deps"] if d != raw])
    assert data_path_problems("slices", broken) == [
        "slices: uses RAW_MANIFEST (data/raw.json), which no dep or out of the stage names"]


def test_every_stage_script_is_a_stage():
    scripts = {str(stage_script(s)[0].relative_to(REPO)) for s in STAGES.values()}
    assert scripts == {str(p.relative_to(REPO)) for p in (REPO / "stages").glob("*.py")}


def test_the_analysis_sees_the_issues_examples():
    """What the analysis finds on the code itself, independent of dvc.yaml: the reads that issue 12 names."""
    train = {arch: analyse_stage(STAGES[f"train@{arch}"]) for arch in ARCH_NAMES}
    clmnet = train["clmnet"].flow.reads
    assert {"model.clmnet.se", "model.clmnet.atrous_rates", "augment.rotation_deg", "split.folds"} <= clmnet
    assert not any(key.startswith("crf") for key in clmnet) and "augment.preview_images" not in clmnet
    assert "model.unet.dropout" not in train["vgg16"].flow.reads   # another arch's section
    assert "split.seed" not in clmnet   # splits.py is imported, but make_splits is not reached
    assert {"augment.preview_images", "augment.seed"} <= analyse_stage(STAGES["augment"]).flow.reads
    evaluate = analyse_stage(STAGES["evaluate"])
    assert {"crf.enabled", "crf.iterations", "evaluate.threshold"} <= evaluate.flow.reads
    assert evaluate.enabled_archs == set()
    embed = analyse_stage(STAGES["embed"])
    assert embed.enabled_archs == set(ARCH_NAMES)
    assert embed.flow.reads == {"embed.batch_size", "embed.aggregation"}   # models rebuilt from model.pt
    files = required_files(train["vgg16"].script, {"vgg16"})
    assert {"src/crlm/config/schema.py", "src/crlm/data/splits.py", "src/crlm/models/registry.py",
            "src/crlm/models/vgg16.py"} <= files
    assert "src/crlm/models/clmnet.py" not in files
    assert "src/crlm/models/inference.py" in required_files(embed.script, embed.enabled_archs)


def test_the_analysis_follows_helpers_and_reports_an_escape(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "from crlm.config import cli_params\n"
        "from crlm.data.transforms import augment_batch\n\n\n"
        "def helper(cfg):\n"
        "    return cfg.lr\n\n\n"
        "def main():\n"
        "    params = cli_params('probe')\n"
        "    augment_batch(None, None, params.augment)\n"
        "    helper(params.train)\n"
        "    print(f'{params.stats}')\n")
    flow = ParamsFlow(script, set())
    assert flow.reads == {"train.lr", "augment.rotation_deg", "augment.hflip_p", "augment.crop_scale",
                          "augment.scale", "augment.elastic_alpha", "augment.elastic_sigma", "augment.elastic_p"}
    assert set(flow.escapes) == {("stages.probe.main", "stats")}
