"""A throwaway git + DVC repository holding this project's code, for the end-to-end (slow) tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def run(args: list[str], cwd: Path) -> str:
    """Run a command with this interpreter's scripts on PATH; its stdout, or a failure with both streams."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def dvc(*args: str, cwd: Path) -> str:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def dvc_failing(*args: str, cwd: Path) -> str:
    """Run a DVC command that must fail; its stdout and stderr together."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
    }
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode != 0, f"{args} succeeded:\n{result.stdout}"
    return result.stdout + result.stderr


def make_repo(tmp_path: Path, params_text: str, files: dict[str, str] | None = None) -> Path:
    """tmp_path/repo: dvc.yaml, .gitignore, stages/ and src/ of this checkout, params.yaml = params_text and
    `files` (relative path -> text), under git and DVC, committed (dvclive in the train stage reads the
    current git revision, so the repository needs a commit)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(REPO / name, repo / name)
    shutil.copytree(REPO / "stages", repo / "stages")
    shutil.copytree(REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (repo / "params.yaml").write_text(params_text)
    for name, text in (files or {}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    run(["git", "init", "-q"], repo)
    dvc("init", "-q", cwd=repo)
    commit(repo, "test")
    return repo


def commit(repo: Path, message: str) -> None:
    """Commit everything git does not ignore (dvc.lock, metrics/, plots/; not data/, which DVC tracks)."""
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", message], repo)


def raw_source_dir(repo: Path, source: str) -> Path:
    """The folder of `source` in the raw store that repo's fetch wrote (data/raw.json names it)."""
    folder = json.loads((repo / "data/raw.json").read_text())["sources"][source]["folder"]
    return Path(os.environ.get("CRLM_RAW_DIR") or repo / "data/raw") / folder


def write_raw_manifest(workspace: Path, store: Path, folders: dict[str, str]) -> None:
    """workspace/data/raw.json for source folders a test laid out by hand in the raw store `store` (as fetch
    writes it, listing every file in each folder), so that the slices stage reads them."""
    from crlm.data.sources.store import all_files, describe, write_manifest

    write_manifest(
        workspace / "data/raw.json",
        {
            name: {"folder": folder, "files": describe(store / folder, all_files(store / folder))}
            for name, folder in folders.items()
        },
    )
