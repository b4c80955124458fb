"""dvc.yaml's stages with ${...} substituted, and the key tree of params.yaml (from crlm.config's dataclasses)."""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from functools import cache
from pathlib import Path

from crlm import config as crlm_config
from tests.dvcdeps import REPO

# ---------------------------------------------------------------- dvc.yaml

_VAR = re.compile(r"\$\{\s*([^}]+?)\s*\}")


def _lookup(context: dict, dotted: str):
    value = context
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _interpolate(obj, context: dict):
    if isinstance(obj, str):
        return _VAR.sub(lambda m: str(_lookup(context, m.group(1))), obj)
    if isinstance(obj, list):
        return [_interpolate(v, context) for v in obj]
    if isinstance(obj, dict):
        return {_interpolate(k, context): _interpolate(v, context) for k, v in obj.items()}
    return obj


def expand_stages(dvc_yaml: dict) -> dict[str, dict]:
    """Stage name (train@vgg16 for foreach/matrix groups) -> its definition with ${...} substituted."""
    assert "vars" not in dvc_yaml, "this test does not substitute dvc.yaml vars"
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        if "foreach" in stage:
            items = stage["foreach"]
            pairs = items.items() if isinstance(items, dict) else [(str(i), i) for i in items]
            for key, item in pairs:
                out[f"{name}@{key}"] = _interpolate(stage["do"], {"key": key, "item": item})
        elif "matrix" in stage:
            dims = stage["matrix"]
            body = {k: v for k, v in stage.items() if k != "matrix"}
            for combo in itertools.product(*dims.values()):
                out[f"{name}@{'-'.join(map(str, combo))}"] = _interpolate(body, {"item": dict(zip(dims, combo))})
        else:
            out[name] = stage
    return out


def stage_script(stage: dict) -> tuple[Path, str | None]:
    """The stage's python script and the arch its command passes with --arch (None without one)."""
    words = stage["cmd"].split()
    assert words[0] == "python" and words[1].startswith("stages/"), f"unexpected command {stage['cmd']!r}"
    arch = words[words.index("--arch") + 1] if "--arch" in words else None
    return REPO / words[1], arch


def listed_params(stage: dict) -> list[str]:
    keys = []
    for entry in stage.get("params", []):
        if isinstance(entry, str):
            keys.append(entry)
        else:
            for file, file_keys in entry.items():
                assert file == "params.yaml", f"params from {file}: this test reads params.yaml only"
                keys.extend(file_keys or [""])
    return keys


# ---------------------------------------------------------------- params.yaml's structure


@cache
def config_tree() -> dict[str, dict[str, str | None]]:
    """Section path ("" = the whole file, "model.clmnet", ...) -> {field: child section path, None for a leaf}."""
    tree: dict[str, dict[str, str | None]] = {}

    def visit(cls, path: str) -> None:
        hints = typing.get_type_hints(cls)
        tree[path] = {}
        for f in dataclasses.fields(cls):
            child = f"{path}.{f.name}" if path else f.name
            if dataclasses.is_dataclass(hints[f.name]):
                tree[path][f.name] = child
                visit(hints[f.name], child)
            else:
                tree[path][f.name] = None

    visit(crlm_config.Params, "")
    return tree


def leaves_under(key: str) -> set[str]:
    tree = config_tree()
    if key in tree:
        return {leaf for field, child in tree[key].items()
                for leaf in (leaves_under(child) if child is not None else {f"{key}.{field}" if key else field})}
    section, _, field = key.rpartition(".")
    if section in tree and tree[section].get(field, "missing") is None:
        return {key}
    raise KeyError(key)
