"""Helpers of tests/test_dvc_deps.py (see its docstring): dvc.yaml and params.yaml's structure (stages.py),
the crlm package's imports (imports.py), and the params object followed through the code (params_flow.py)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
PACKAGE = "crlm"
