"""What each DVC stage reads, from its code: the crlm files it imports and the params sections it loads.

Code: from `stages/<name>.py` every `import crlm...` / `from crlm... import ...` (module level and inside
functions), transitively, with the stdlib `ast`; importing crlm.a.b runs crlm/__init__, crlm/a/__init__ and
crlm/a/b. The archs' modules are imported by name (crlm.models.registry.arch_module): `train@<arch>` (its
command passes `--arch <arch>`) builds that arch alone, any other stage that imports the registry builds
every arch of crlm.archs.

Params: a stage loads the sections it reads by class (`cli_params(__doc__, TrainConfig, ...)`, or
`load_sections`), and reading any other raises (crlm.core.config.Sections); a PARTIAL class reads only its
fields' keys, and the model section's classes read its shared keys, not the archs' own sections. So its params
are exactly: the section of each class it loads, or the class's keys for a partial one or the model section,
and model.<arch> for the arch train@<arch> builds.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import itertools
import re
from functools import cache
from pathlib import Path

import yaml

from crlm.archs import ARCH_NAMES
from tests.conftest import REPO

SRC = REPO / "src"
REGISTRY = "crlm.models.registry"
LOADERS = {"cli_params", "load_sections", "sections_from_dict"}


def expand_stages(dvc_yaml: dict) -> dict[str, dict]:
    """Stage name (train@vgg16 for a matrix) -> its definition with ${item.<key>} substituted."""
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        if "matrix" not in stage:
            out[name] = stage
            continue
        dims = stage["matrix"]
        body = yaml.safe_dump({k: v for k, v in stage.items() if k != "matrix"})
        for combo in itertools.product(*dims.values()):
            text = re.sub(r"\$\{item\.(\w+)\}", lambda m: str(dict(zip(dims, combo))[m.group(1)]), body)
            out[f"{name}@{'-'.join(map(str, combo))}"] = yaml.safe_load(text)
    return out


@cache
def stages() -> dict[str, dict]:
    return expand_stages(yaml.safe_load((REPO / "dvc.yaml").read_text()))


def script_and_arch(stage: dict) -> tuple[Path, str | None]:
    words = stage["cmd"].split()
    assert words[0] == "python" and words[1].startswith("stages/"), f"unexpected command {stage['cmd']!r}"
    return REPO / words[1], (words[words.index("--arch") + 1] if "--arch" in words else None)


def module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path) -> set[str]:
    """The crlm modules `path` imports (`from crlm.a import b` counts crlm.a.b where b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "crlm"}
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "crlm" and node.level == 0
        ):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return found


def _type_checking_only(path: Path) -> set[str]:
    """Modules imported under `if TYPE_CHECKING:` (annotations only: nothing runs them)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    found.add(inner.module)
    return found


def imported_files(script: Path, arch: str | None) -> set[Path]:
    """The files of every crlm module the stage runs: its script and the transitive imports."""
    todo, seen, files = [script], set(), {script}
    while todo:
        path = todo.pop()
        names = _imports(path) - _type_checking_only(path)
        if REGISTRY in names:  # archs imported by name: this stage's own, or every arch
            names |= {f"crlm.models.{a}" for a in ([arch] if arch else ARCH_NAMES)}
        for name in names:
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # the package __init__s run first
                module = ".".join(parts[:depth])
                file = module_file(module)
                if file is not None and module not in seen:
                    seen.add(module)
                    files.add(file)
                    todo.append(file)
    return files


def code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if d.startswith(("src/", "stages/"))]


def covered(file: Path, deps: list[str]) -> bool:
    rel = file.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def code_problems(name: str, stage: dict) -> list[str]:
    script, arch = script_and_arch(stage)
    files = imported_files(script, arch)
    deps = code_deps(stage)
    files = {f for f in files if not runs_nothing(f)}
    missing = sorted(f.relative_to(REPO).as_posix() for f in files if not covered(f, deps))
    unused = [d for d in deps if not any(covered(f, [d]) for f in files)]
    return [f"{name}: imports {path}, which no dep covers" for path in missing] + [
        f"{name}: lists {dep}, which it never imports" for dep in unused
    ]


def loaded_classes(script: Path) -> list[type]:
    """The config classes the stage script passes to cli_params/load_sections/sections_from_dict."""
    tree = ast.parse(script.read_text())
    homes = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    classes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in LOADERS:
            for arg in node.args:
                if isinstance(arg, ast.Name) and arg.id in homes:
                    classes.append(getattr(importlib.import_module(homes[arg.id]), arg.id))
    return classes


def expected_params(stage: dict) -> set[str]:
    script, arch = script_and_arch(stage)
    keys = set()
    for cls in loaded_classes(script):
        if getattr(cls, "PARTIAL", False) or getattr(cls, "OPEN_SUBSECTIONS", False):  # model.<arch>: below
            keys |= {f"{cls.SECTION}.{f.name}" for f in dataclasses.fields(cls) if f.name != "sections"}
        else:
            keys.add(cls.SECTION)
    if arch:
        keys.add(f"model.{arch}")
    return keys


def listed_params(stage: dict) -> set[str]:
    keys = set()
    for entry in stage.get("params", []):
        assert isinstance(entry, str), f"params from another file: {entry}"
        keys.add(entry)
    return keys


def runs_nothing(path: Path) -> bool:
    """A package __init__.py of a docstring and literal constants (crlm/__init__.py's __version__): importing
    it cannot change a stage's output, so it is neither required nor refused as a dep."""
    if path.name != "__init__.py":
        return False
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            continue
        return False
    return True
