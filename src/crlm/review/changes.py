"""What changed between a git revision and the workspace, as DVC reports it: params, headline metrics, the
stages whose lock entries differ (they reran) and those `dvc status` finds out of date (they would)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import yaml

LOCK = "dvc.lock"


@contextmanager
def open_repo(root: str | Path = "."):
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        yield repo
    finally:
        repo.close()


def params_changed(repo, base: str) -> dict[str, dict]:
    """ "<file>:<key>" (the file left out for params.yaml) -> {"old": ..., "new": ...} for every param that differs."""
    out = {}
    for file, keys in repo.params.diff(a_rev=base).get("diff", {}).items():
        for key, change in keys.items():
            out[key if file == "params.yaml" else f"{file}:{key}"] = {"old": change["old"], "new": change["new"]}
    return out


def metrics_changed(repo, base: str, file: str) -> dict[str, dict]:
    """Every number of the metrics file `file`: name -> {"old", "new"} (None where a side lacks it)."""
    diff = repo.metrics.diff(a_rev=base, all=True).get("diff", {}).get(file, {})
    return {name: {"old": change.get("old"), "new": change.get("new")} for name, change in diff.items()}


def read_at(repo, path: str, rev: str | None) -> str | None:
    """The text of a git-tracked file at `rev` (None: the workspace); None where it does not exist there."""
    if rev is None:
        file = Path(repo.root_dir) / path
        return file.read_text() if file.is_file() else None
    import dvc.api

    try:
        return dvc.api.read(path, repo=repo.root_dir, rev=rev)
    except FileNotFoundError:
        return None


def lock_at(repo, rev: str | None) -> dict[str, dict]:
    """dvc.lock's stages at `rev` (None: the workspace); {} where there is none."""
    text = read_at(repo, LOCK, rev)
    return (yaml.safe_load(text) or {}).get("stages", {}) if text else {}


def stages_reran(old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    """The stages whose lock entry (command, deps, params or outputs) differs between two locks, or that only
    one has: what `dvc repro` reran between them."""
    return [name for name in new if old.get(name) != new[name]] + [name for name in old if name not in new]


def stages_pending(repo) -> list[str]:
    """The stages `dvc status` finds out of date in the workspace: what `dvc repro` would rerun."""
    return sorted(name.split(":")[-1] for name in repo.status())
