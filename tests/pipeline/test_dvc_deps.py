"""dvc.yaml lists, for every stage, the code and params the stage reads (tests/dvc_deps.py reads them from the
code), so that a change reruns what it touches: a missing entry would leave stale outputs.

Code deps are at folder grain where a folder is the stage's own (src/crlm/core, which every stage reads;
src/crlm/training for train, ...) and at file grain inside the packages stages share (data, models, stats):
every file a stage imports lies under one of its deps, and every dep holds a file it imports. Params are
exactly the sections (or, for a partial config class, the keys) the stage loads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from crlm.core import paths
from tests.dvc_deps import REPO, code_problems, expected_params, imported_files, listed_params, script_and_arch, stages

STAGES = stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_cover_what_the_stage_imports(name):
    problems = code_problems(name, STAGES[name])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_params_are_the_sections_the_stage_loads(name):
    stage = STAGES[name]
    assert listed_params(stage) == expected_params(stage)


def test_no_stage_but_validate_reads_the_whole_params_file():
    """crlm.params gathers every section: a stage that imported it could read any of them unlisted."""
    for name, stage in STAGES.items():
        script, arch = script_and_arch(stage)
        whole = REPO / "src/crlm/params.py" in imported_files(script, arch)
        assert whole == (name == "validate"), name


def test_a_change_reruns_what_it_touches():
    """The examples a reviewer checks by eye: the survival section's file reaches no data stage, no training
    and no embed; CLM-Net's module reaches train@clmnet and no other training; a stage's own package."""

    def reached(path: str) -> set[str]:
        direct = {
            name
            for name, stage in STAGES.items()
            if name != "validate"
            and any(path == d or path.startswith(d.rstrip("/") + "/") for d in stage.get("deps", []))
        }
        outs = {
            name: {
                o if isinstance(o, str) else next(iter(o))
                for kind in ("outs", "metrics", "plots")
                for o in STAGES[name].get(kind, [])
            }
            for name in STAGES
        }
        changed, todo = set(direct), list(direct)
        while todo:  # and every stage downstream of a changed one
            produced = outs[todo.pop()]
            for name, stage in STAGES.items():
                if name not in changed and any(
                    d == o or d.startswith(o + "/") or o.startswith(d + "/")
                    for o in produced
                    for d in stage.get("deps", [])
                ):
                    changed.add(name)
                    todo.append(name)
        return changed  # (validate rereads every section too; its output stays the same, so nothing follows it)

    survival = reached("src/crlm/survival/config.py")
    assert survival == {"survival", "compare", "calibration", "headline", "report"}
    clmnet = reached("src/crlm/models/clmnet.py")
    assert {name for name in clmnet if name.startswith("train@")} == {"train@clmnet"}
    assert {"embed", "explain", "evaluate", "survival", "report"} <= clmnet
    assert reached("src/crlm/lesions/matching.py") == {"lesions", "headline", "report"}


def stage_entries(stage: dict) -> list[str]:
    """Every path the stage names in deps, outs, metrics and plots."""
    entries = []
    for kind in ("deps", "outs", "metrics", "plots"):
        for entry in stage.get(kind, []):
            entries += [entry] if isinstance(entry, str) else list(entry)
    return [e.rstrip("/") for e in entries]


def data_path_problems(name: str, stage: dict) -> list[str]:
    """A crlm.core.paths constant the stage script imports (a data path it reads or writes) that none of its
    deps or outs names, contains, or lies under: DVC would neither rerun the stage on it nor restore it."""
    script, _ = script_and_arch(stage)
    imported = {
        alias.name
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "crlm.core.paths"
        for alias in node.names
    }
    entries = stage_entries(stage)
    problems = []
    for constant in sorted(imported):
        value = getattr(paths, constant)
        if not isinstance(value, Path):
            continue  # raw_dir(): the raw store, reached through data/raw.json (paths.RAW_MANIFEST)
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
        "slices: uses RAW_MANIFEST (data/raw.json), which no dep or out of the stage names"
    ]


def test_every_stage_script_is_a_stage():
    scripts = {str(script_and_arch(s)[0].relative_to(REPO)) for s in STAGES.values()}
    assert scripts == {str(p.relative_to(REPO)) for p in (REPO / "stages").glob("*.py")}


def test_the_analysis_catches_a_missing_and_a_superfluous_dep():
    train = dict(STAGES["train@vgg16"])
    deps = [d for d in train["deps"] if d != "src/crlm/models/vgg16.py"] + ["src/crlm/models/unet.py"]
    assert code_problems("train@vgg16", dict(train, deps=deps)) == [
        "train@vgg16: imports src/crlm/models/vgg16.py, which no dep covers",
        "train@vgg16: lists src/crlm/models/unet.py, which it never imports",
    ]
