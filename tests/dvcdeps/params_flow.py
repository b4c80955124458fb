"""Following the params object from a stage script: which params.yaml keys the code it reaches reads.

Over 300 lines on purpose: `ParamsFlow` is one fixpoint over mutually recursive parts (name resolution,
call binding, value typing); split across files they would only call back into each other.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.dvcdeps import REPO
from tests.dvcdeps.imports import ARCH_MODULES, MODEL_CLASS, Module, crlm_modules, import_closure, load_module, load_script
from tests.dvcdeps.stages import config_tree

# the functions that read params.yaml; what they return is "from params"
PARAMS_READERS = {"crlm.config.loader.cli_params", "crlm.config.loader.load_params"}
# look_up(key, value, TABLE) returns an entry of the dispatch table TABLE (crlm/options.py)
LOOK_UP = "crlm.options.look_up"


# ---------------------------------------------------------------- following the params object


class ParamsFlow:
    """Which params.yaml keys the functions reachable from a stage script read (see tests/test_dvc_deps.py's docstring).

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
        self._aliases: dict[str, list[ast.AST]] = {}        # the scope's names bound to a table entry
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

    def _model_classes(self) -> set[tuple[str, str]]:
        out = set()
        for name, arch in ARCH_MODULES.items():
            if arch in self.enabled:
                module = load_module(name)
                out |= self._resolve(module, module.variables["MODEL"], None, set())
        return {t for t in out if t[0] == "class"}

    def _callees(self, module: Module, call: ast.Call, cls: str | None, local: set[str]) -> set[tuple[str, str]]:
        func = call.func
        if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "delayed" \
                and len(func.args) == 1:   # joblib: delayed(f)(*args) calls f(*args)
            func = func.args[0]
        if isinstance(func, ast.Call) and ("func", MODEL_CLASS) in self._resolve(module, func.func, cls, local):
            return self._model_classes()   # model_class(arch)(cfg): the MODEL of each arch the stage builds
        entries = self._table_entries(module, func, cls, local)   # TABLE[key](cfg), look_up(key, v, TABLE)(cfg)
        if entries:
            return {t for owner, value in entries for t in self._entry_targets(owner, value, None)}
        if isinstance(func, ast.Attribute):                         # TABLE[key].method(cfg), entry.method(cfg)
            entries = self._table_entries(module, func.value, cls, local)
            if entries:
                return {t for owner, value in entries for t in self._entry_targets(owner, value, func.attr)}
        return {t for t in self._resolve(module, func, cls, local) if t[0] in ("func", "class")}

    def _table_entries(self, module: Module, node: ast.AST, cls: str | None, local: set[str]) -> list:
        """(module, value node) of every entry of the dispatch table (a module-level dict literal) that `node`
        may be: TABLE[key], look_up(key, value, TABLE), or a name of the scope assigned one of these."""
        if isinstance(node, ast.Name) and node.id in self._aliases:
            return [e for value in self._aliases[node.id] for e in self._table_entries(module, value, cls, local)]
        if isinstance(node, ast.Subscript):
            table = node.value
        elif isinstance(node, ast.Call) and ("func", LOOK_UP) in self._resolve(module, node.func, cls, local):
            table = node.args[2] if len(node.args) > 2 else next(
                (k.value for k in node.keywords if k.arg == "table"), None)
        else:
            return []
        entries = []
        for kind, qual in self._resolve(module, table, cls, local) if table is not None else ():
            if kind == "var":
                owner, _, name = qual.rpartition(".")
                value = load_module(owner).variables[name]
                if isinstance(value, ast.Dict):
                    entries += [(load_module(owner), v) for v in value.values]
        return entries

    def _entry_targets(self, owner: Module, value: ast.AST, attr: str | None) -> set[tuple[str, str]]:
        """What a call of a table entry (attr None) or of its attribute `attr` calls: the function or class
        itself; for an instance (a call of a class), its class's method attr or the function the call passes
        as field attr; for a class or module, its function attr."""
        if attr is None:
            targets = self._resolve(owner, value, None, set())
        elif isinstance(value, ast.Call):
            targets = {("func", f"{qual}.{attr}") for kind, qual in self._resolve(owner, value.func, None, set())
                       if kind == "class" and f"{qual}.{attr}" in self.scopes}
            targets |= {t for k in value.keywords if k.arg == attr for t in self._resolve(owner, k.value, None, set())}
        else:
            targets = self._resolve(owner, ast.Attribute(value=value, attr=attr, ctx=ast.Load()), None, set())
        return {t for t in targets if t[0] in ("func", "class")}

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
        if module.name == "crlm.config" or module.name.startswith("crlm.config."):
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
        self._aliases = {}
        if not isinstance(node, ast.Module):   # module-level params values are visible in functions
            top = self._module_env(module)
            for name, paths in top.items():
                if name not in local:
                    env[name] = set(paths)
        for n in nodes:   # source = look_up(key, name, SOURCES): calls of source.fetch(...) are followed
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                    and self._table_entries(module, n.value, cls, local):
                self._aliases.setdefault(n.targets[0].id, []).append(n.value)
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

