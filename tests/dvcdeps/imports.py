"""The crlm package as ASTs: which modules a stage script imports, transitively, and which files that is."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from crlm.archs import ARCH_NAMES
from tests.dvcdeps import PACKAGE, REPO, SRC

ARCH_MODULES = {f"crlm.models.{arch}": arch for arch in ARCH_NAMES}
REGISTRY = "crlm.models.registry"
MODEL_CLASS = f"{REGISTRY}.model_class"   # model_class(arch) -> crlm.models.<arch>.MODEL


# ---------------------------------------------------------------- the crlm package as ASTs


@cache
def crlm_modules() -> dict[str, Path]:
    modules = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False


def _docstring_and_literals_only(tree: ast.Module) -> bool:
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
               or isinstance(s, ast.Assign) and _is_literal(s.value) for s in tree.body)


def _definitions_only(tree: ast.Module) -> list[str]:
    """Top-level statements that do more than import or define names (class bodies included)."""
    bad = []

    def check(body):
        for s in body:
            if isinstance(s, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.Pass)):
                continue
            if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
                continue
            if isinstance(s, ast.ClassDef):
                check(s.body)
                continue
            if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None and not any(
                    isinstance(n, ast.Call) for n in ast.walk(s.value)):
                continue
            if isinstance(s, ast.AnnAssign) and s.value is None:
                continue
            if isinstance(s, ast.Assert) and not any(isinstance(n, ast.Call) for n in ast.walk(s)):
                continue
            bad.append(f"line {s.lineno}: {ast.unparse(s)[:80]}")

    check(tree.body)
    return bad


class Module:
    """One module's names: imports (at any depth), top-level defs and top-level assignments."""

    def __init__(self, name: str, path: Path, is_package: bool) -> None:
        self.name, self.path, self.tree = name, path, parse(path)
        package = name if is_package else name.rpartition(".")[0]
        self.imports: set[str] = set()          # crlm modules this module's code imports
        self.bindings: dict[str, tuple] = {}    # name -> ("module", m) | ("symbol", m, attr)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        self.imports.add(alias.name)
                        if alias.asname:
                            self.bindings[alias.asname] = ("module", alias.name)
                        else:
                            self.bindings[alias.name.split(".")[0]] = ("module", PACKAGE)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([node.module] if node.module else []))
                if base.split(".")[0] != PACKAGE:
                    continue
                self.imports.add(base)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in crlm_modules():
                        self.imports.add(sub)
                        self.bindings[alias.asname or alias.name] = ("module", sub)
                    else:
                        self.bindings[alias.asname or alias.name] = ("symbol", base, alias.name)
        self.defs: dict[str, ast.AST] = {}
        self.variables: dict[str, ast.AST] = {}
        for s in self.tree.body:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs[s.name] = s
            elif isinstance(s, ast.Assign):
                for target in s.targets:
                    if isinstance(target, ast.Name):
                        self.variables[target.id] = s.value
            elif isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None:
                self.variables[s.target.id] = s.value


@cache
def load_module(name: str) -> Module:
    path = crlm_modules()[name]
    return Module(name, path, path.name == "__init__.py")


@cache
def load_script(path: Path) -> Module:
    return Module(f"stages.{path.stem}", path, False)


def executed_modules(imported: str) -> list[str]:
    """Importing crlm.a.b runs crlm/__init__, crlm/a/__init__ and crlm/a/b."""
    parts = imported.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in crlm_modules()]


def import_closure(script: Path, enabled_archs: set[str]) -> set[str]:
    """The crlm modules a stage script imports, transitively; arch modules only for the enabled archs."""
    seen: set[str] = set()
    todo = list(load_script(script).imports)
    while todo:
        for name in executed_modules(todo.pop()):
            if name in seen or (name in ARCH_MODULES and ARCH_MODULES[name] not in enabled_archs):
                continue
            seen.add(name)
            todo.extend(load_module(name).imports)
            if name == REGISTRY:   # it imports crlm.models.<arch> by name when it builds that arch
                todo.extend(module for module, arch in ARCH_MODULES.items() if arch in enabled_archs)
    return seen


def _trivial_init(name: str) -> bool:
    path = crlm_modules()[name]
    return path.name == "__init__.py" and _docstring_and_literals_only(parse(path))


def required_files(script: Path, enabled_archs: set[str]) -> set[str]:
    """Repository paths of the code a stage runs (the script and every non-trivial crlm module it imports)."""
    files = {str(script.relative_to(REPO))}
    for name in import_closure(script, enabled_archs):
        if not _trivial_init(name):
            files.add(str(crlm_modules()[name].relative_to(REPO)))
    return files
