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

Per-arch model modules: `crlm.models.registry` imports every arch module
(`crlm/models/<arch>.py`, arch in `ARCH_NAMES`) to fill `ARCHS`, but a stage
only ever runs the code of the archs it builds. So an arch module (and what only
it imports) counts for a stage only when the stage builds that arch:
`train@<arch>` (its command passes `--arch <arch>`) builds that one arch;
another stage that can reach `build_model` (embed: it rebuilds each saved
model) builds every arch; a stage that never reaches `build_model` (evaluate,
survival, compare: they only use `ARCHS`' names) builds none. A change to
clmnet.py thus reruns train@clmnet and embed only. This is sound because
importing an arch module only defines names: `test_arch_modules_only_define_names`
checks that their top-level code (and that of everything only they import)
is imports, defs and call-free assignments.

Params (`test_params_are_exactly_what_the_stage_reads`): `crlm.config` turns
params.yaml into frozen dataclasses; a stage gets them from `cli_params()` or
`load_params()`. The test follows that object statically: through assignments
(`cfg = params.train`), attribute chains (`params.model.clmnet.se`, recorded as
the leaf key `model.clmnet.se`), and calls of crlm functions, binding each
argument to the callee's parameter (also for `ARCHS[arch](cfg)`, a call of every
class in the `ARCHS` dict the stage builds, and joblib's `delayed(f)(...)`), over
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
name, or a class reached other than by name, the `ARCHS` dict or `delayed`,
would go unseen.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
import typing
from functools import cache
from pathlib import Path

import pytest
import yaml

from crlm import config as crlm_config

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "crlm"
ARCH_MODULES = {f"crlm.models.{arch}": arch for arch in crlm_config.ARCH_NAMES}
BUILD_MODEL = "crlm.models.registry.build_model"
# the functions that read params.yaml; what they return is "from params"
PARAMS_READERS = {"crlm.config.cli_params", "crlm.config.load_params"}
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
}


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


# ---------------------------------------------------------------- following the params object


class ParamsFlow:
    """Which params.yaml keys the functions reachable from a stage script read (see the module docstring).

    A config value is typed by (section path, from_params); only values from params.yaml are followed.
    """

    def __init__(self, script: Path, enabled_archs: set[str]) -> None:
        self.script = load_script(script)
        self.enabled = enabled_archs
        self.modules = {name: load_module(name) for name in import_closure(script, enabled_archs)}
        self.modules[self.script.name] = self.script
        # scopes: qualified name -> (module, node, class name or None)
        self.scopes: dict[str, tuple[Module, ast.AST, str | None]] = {}
        for module in self.modules.values():
            self.scopes[f"{module.name}.<module>"] = (module, module.tree, None)
            for name, node in module.defs.items():
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            self.scopes[f"{module.name}.{name}.{item.name}"] = (module, item, name)
                else:
                    self.scopes[f"{module.name}.{name}"] = (module, node, None)
        self.reachable: set[str] = {q for q in self.scopes if q.endswith(".<module>")}
        self.reachable |= {q for q in self.scopes if q.startswith(self.script.name + ".")}
        self.bound: dict[str, dict[str, set[str]]] = {}     # scope -> parameter -> section paths bound to it
        self.reads: set[str] = set()
        self.escapes: dict[tuple[str, str], str] = {}       # (scope, section) -> where
        self._fixpoint()

    # -- name resolution: a name or attribute -> crlm targets ("func"|"class"|"module"|"var", qualified name)

    def _resolve_symbol(self, module_name: str, name: str, depth: int = 0) -> set[tuple[str, str]]:
        if depth > 10 or module_name not in crlm_modules() and module_name != self.script.name:
            return set()
        if module_name in ARCH_MODULES and ARCH_MODULES[module_name] not in self.enabled:
            return set()
        module = self.script if module_name == self.script.name else load_module(module_name)
        if f"{module_name}.{name}" in crlm_modules():
            return {("module", f"{module_name}.{name}")}
        if name in module.defs:
            kind = "class" if isinstance(module.defs[name], ast.ClassDef) else "func"
            return {(kind, f"{module_name}.{name}")}
        if name in module.variables:
            return {("var", f"{module_name}.{name}")}
        binding = module.bindings.get(name)
        if binding is None:
            return set()
        if binding[0] == "module":
            return {("module", binding[1])}
        return self._resolve_symbol(binding[1], binding[2], depth + 1)

    def _resolve(self, module: Module, node: ast.AST, cls: str | None, local: set[str]) -> set[tuple[str, str]]:
        if isinstance(node, ast.Name):
            return set() if node.id in local else self._resolve_symbol(module.name, node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self" and cls is not None:
                qual = f"{module.name}.{cls}.{node.attr}"
                return {("func", qual)} if qual in self.scopes else set()
            out = set()
            for kind, qual in self._resolve(module, node.value, cls, local):
                if kind == "module":
                    out |= self._resolve_symbol(qual, node.attr)
                elif kind == "class" and f"{qual}.{node.attr}" in self.scopes:
                    out.add(("func", f"{qual}.{node.attr}"))
            return out
        return set()

    def _callees(self, module: Module, call: ast.Call, cls: str | None, local: set[str]) -> set[tuple[str, str]]:
        func = call.func
        if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "delayed" \
                and len(func.args) == 1:   # joblib: delayed(f)(*args) calls f(*args)
            func = func.args[0]
        if isinstance(func, ast.Subscript):  # a dispatch dict of classes/functions: ARCHS[arch](cfg)
            out = set()
            for kind, qual in self._resolve(module, func.value, cls, local):
                if kind == "var":
                    owner, _, name = qual.rpartition(".")
                    table = load_module(owner).variables[name]
                    if isinstance(table, ast.Dict):
                        for value in table.values:
                            out |= self._resolve(load_module(owner), value, None, set())
            return {t for t in out if t[0] in ("func", "class")}
        return {t for t in self._resolve(module, func, cls, local) if t[0] in ("func", "class")}

    # -- types

    @staticmethod
    def _arguments(node: ast.AST, cls: str | None) -> list[ast.arg]:
        args = [*node.args.posonlyargs, *node.args.args]
        if cls is not None and args and not any(
                isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list):
            args = args[1:]
        return args + node.args.kwonlyargs

    def _type(self, node: ast.AST, env: dict[str, set[str]], module: Module, cls, local) -> set[str]:
        """Section paths of the params-from-params.yaml values `node` may evaluate to."""
        if isinstance(node, ast.Name):
            return env.get(node.id, set())
        if isinstance(node, ast.Attribute):
            return {child for path in self._type(node.value, env, module, cls, local)
                    if (child := config_tree()[path].get(node.attr)) is not None}
        if isinstance(node, ast.Call):
            if self._constant_getattr(node):
                return {child for path in self._type(node.args[0], env, module, cls, local)
                        if (child := config_tree()[path].get(node.args[1].value)) is not None}
            callees = self._callees(module, node, cls, local)
            return {""} if callees and all(q in PARAMS_READERS for _, q in callees) else set()
        if isinstance(node, ast.IfExp):
            return self._type(node.body, env, module, cls, local) | self._type(node.orelse, env, module, cls, local)
        if isinstance(node, ast.NamedExpr):
            return self._type(node.value, env, module, cls, local)
        return set()

    @staticmethod
    def _constant_getattr(node: ast.AST) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant))

    # -- one scope

    def _walk(self, node: ast.AST):
        """The nodes of a scope: a module's top level without its defs, or a function with what it nests."""
        if isinstance(node, ast.Module):
            for s in node.body:
                if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    yield from ast.walk(s)
        else:
            yield from ast.walk(node)

    def _analyse(self, qual: str) -> bool:
        """Record the scope's reads, escapes, calls and references; True when something new was learnt."""
        module, node, cls = self.scopes[qual]
        if module.name == "crlm.config":
            return False
        before = (len(self.reads), len(self.escapes), len(self.reachable),
                  sum(len(v) for b in self.bound.values() for v in b.values()))
        nodes = list(self._walk(node))
        local: set[str] = set()
        env: dict[str, set[str]] = {}
        if not isinstance(node, ast.Module):
            for n in nodes:
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    a = n.args
                    local |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x}
            for name, paths in self.bound.get(qual, {}).items():
                env[name] = set(paths)
        for n in nodes:
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and not isinstance(node, ast.Module):
                local.add(n.id)
        if not isinstance(node, ast.Module):   # module-level params values are visible in functions
            top = self._module_env(module)
            for name, paths in top.items():
                if name not in local:
                    env[name] = set(paths)
        for _ in range(4):   # assignments, flow-insensitive: a few passes settle chains like cfg = params.train
            for n in nodes:
                if isinstance(n, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and n.value is not None:
                    targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                    for target in targets:
                        if isinstance(target, ast.Name):
                            env.setdefault(target.id, set()).update(self._type(n.value, env, module, cls, local))
        parents = {child: parent for parent in nodes for child in ast.iter_child_nodes(parent)}

        for n in nodes:
            if isinstance(n, (ast.Name, ast.Attribute)) and isinstance(n.ctx, ast.Load):
                for kind, target in self._resolve(module, n, cls, local):
                    if kind in ("func", "class"):
                        self._reach(kind, target)
            if isinstance(n, ast.Call):
                callees = self._callees(module, n, cls, local)
                for kind, target in callees:
                    self._reach(kind, target)
                    self._bind(kind, target, n, env, module, cls, local)
            attribute = None
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
                attribute = n.value, n.attr
            elif self._constant_getattr(n):
                attribute = n.args[0], n.args[1].value
            if attribute is not None:
                for path in self._type(attribute[0], env, module, cls, local):
                    fields = config_tree()[path]
                    assert attribute[1] in fields, \
                        f"{module.path}:{n.lineno}: {path or 'params'} has no key {attribute[1]!r}"
                    if fields[attribute[1]] is None:
                        self.reads.add(f"{path}.{attribute[1]}" if path else attribute[1])
            loaded = isinstance(getattr(n, "ctx", ast.Load()), ast.Load)
            paths = self._type(n, env, module, cls, local) if loaded and isinstance(
                n, (ast.Name, ast.Attribute, ast.Call, ast.IfExp, ast.NamedExpr)) else set()
            if paths and not self._followed(n, parents, module, cls, local):
                for path in paths:
                    where = module.path.relative_to(REPO) if module.path.is_relative_to(REPO) else module.path
                    self.escapes.setdefault((qual, path), f"{where}:{n.lineno}: {ast.unparse(parents.get(n, n))[:100]}")
        after = (len(self.reads), len(self.escapes), len(self.reachable),
                 sum(len(v) for b in self.bound.values() for v in b.values()))
        return after != before

    @cache
    def _module_env(self, module: Module) -> dict[str, set[str]]:
        env: dict[str, set[str]] = {}
        for name, value in module.variables.items():
            paths = self._type(value, env, module, None, set())
            if paths:
                env[name] = paths
        return env

    def _followed(self, n: ast.AST, parents: dict, module: Module, cls, local) -> bool:
        """Whether the test follows a config value where it is used (else the value escapes)."""
        parent = parents.get(n)
        if isinstance(parent, ast.Attribute) and parent.value is n:
            return True
        if isinstance(parent, (ast.IfExp, ast.NamedExpr)) and n is not getattr(parent, "test", None):
            return True   # the enclosing expression is checked itself
        if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is n:
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return all(isinstance(t, ast.Name) for t in targets)
        if isinstance(parent, ast.keyword):
            parent = parents.get(parent)
        if isinstance(parent, ast.Call) and n is not parent.func:
            if isinstance(parent.func, ast.Name) and parent.func.id == "getattr" and parent.args[:1] == [n]:
                return self._constant_getattr(parent)
            callees = self._callees(module, parent, cls, local)
            return bool(callees) and all(
                self._parameter_for(kind, target, parent, n) is not None for kind, target in callees)
        return False

    def _callee_scope(self, kind: str, target: str) -> tuple[str, ast.AST, str | None] | None:
        qual = f"{target}.__init__" if kind == "class" else target
        if qual not in self.scopes:
            return None
        module, node, cls = self.scopes[qual]
        return qual, node, cls

    def _parameter_for(self, kind: str, target: str, call: ast.Call, arg: ast.AST) -> str | None:
        scope = self._callee_scope(kind, target)
        if scope is None:
            return None
        _, node, cls = scope
        names = [a.arg for a in self._arguments(node, cls)]
        positional = names[: len(names) - len(node.args.kwonlyargs)]
        for i, a in enumerate(call.args):
            if a is arg:
                return positional[i] if i < len(positional) and not isinstance(a, ast.Starred) else None
        for kw in call.keywords:
            if kw.value is arg:
                return kw.arg if kw.arg in names else None
        return None

    def _bind(self, kind, target, call: ast.Call, env, module, cls, local) -> None:
        scope = self._callee_scope(kind, target)
        if scope is None:
            return
        for arg in [*call.args, *(kw.value for kw in call.keywords)]:
            paths = self._type(arg, env, module, cls, local)
            name = self._parameter_for(kind, target, call, arg)
            if paths and name is not None:
                self.bound.setdefault(scope[0], {}).setdefault(name, set()).update(paths)

    def _reach(self, kind: str, target: str) -> None:
        if kind == "func" and target in self.scopes:
            self.reachable.add(target)
        elif kind == "class":
            self.reachable |= {q for q in self.scopes if q.startswith(target + ".")}

    def _fixpoint(self) -> None:
        changed = True
        while changed:
            changed = False
            for qual in sorted(self.reachable):
                changed |= self._analyse(qual)


# ---------------------------------------------------------------- per stage


@dataclasses.dataclass
class StageCode:
    script: Path
    enabled_archs: set[str]
    flow: ParamsFlow


def analyse_stage(stage: dict) -> StageCode:
    script, arch = stage_script(stage)
    if arch is not None:
        assert arch in crlm_config.ARCH_NAMES, f"--arch {arch}: not one of {crlm_config.ARCH_NAMES}"
        enabled = {arch}
    else:
        enabled = set()
        if BUILD_MODEL in ParamsFlow(script, enabled).reachable:
            enabled = set(crlm_config.ARCH_NAMES)
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
    everything = set(crlm_config.ARCH_NAMES)
    scripts = sorted((REPO / "stages").glob("*.py"))
    problems = []
    for name in sorted({m for s in scripts for m in import_closure(s, everything) - import_closure(s, set())}):
        problems += [f"{name}: {line}" for line in _definitions_only(parse(crlm_modules()[name]))]
    assert not problems, "\n".join(problems)


def test_every_stage_script_is_a_stage():
    scripts = {str(stage_script(s)[0].relative_to(REPO)) for s in STAGES.values()}
    assert scripts == {str(p.relative_to(REPO)) for p in (REPO / "stages").glob("*.py")}


def test_the_analysis_sees_the_issues_examples():
    """What the analysis finds on the code itself, independent of dvc.yaml: the reads that issue 12 names."""
    train = {arch: analyse_stage(STAGES[f"train@{arch}"]) for arch in crlm_config.ARCH_NAMES}
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
    assert embed.enabled_archs == set(crlm_config.ARCH_NAMES)
    assert embed.flow.reads == {"embed.batch_size", "embed.aggregation"}   # models rebuilt from model.pt
    files = required_files(train["vgg16"].script, {"vgg16"})
    assert {"src/crlm/config.py", "src/crlm/data/splits.py", "src/crlm/models/registry.py",
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
