"""LiTS, offline: the Kaggle login lookup, safe extraction, the resumable fetch and download, on archives
the tests write in the real format (NIfTI with nibabel, in a zip)."""

import dataclasses
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from crlm.data import lits, phantom
from crlm.data.sources.lits import lits_kaggle_cases
from tests.conftest import REPO
from tests.source_fixtures import lits_zip

KAGGLE_KEY_JSON = '{"username": "u", "key": "k"}'
# each way the installed kaggle package logs in: (environment, files under HOME), with what it will use
KAGGLE_LOGINS = {
    "none": ({}, {}, None),
    "token_env": ({"KAGGLE_API_TOKEN": "t0k"}, {}, "access token (KAGGLE_API_TOKEN)"),
    "token_file": ({}, {".kaggle/access_token": "t0k"}, "access token (access_token)"),
    "oauth": ({}, {".kaggle/credentials.json": '{"refresh_token": "r", "username": "u"}'}, "OAuth login"),
    "key_env": ({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, {}, "API key"),
    "key_file": ({}, {".kaggle/kaggle.json": KAGGLE_KEY_JSON}, "API key ({home}/.kaggle/kaggle.json"),
    "key_xdg": (
        {"XDG_CONFIG_HOME": "{home}/xdg"},
        {"xdg/kaggle/kaggle.json": KAGGLE_KEY_JSON},
        "API key ({home}/xdg/kaggle/kaggle.json",
    ),
    "key_config_dir": (
        {"KAGGLE_CONFIG_DIR": "{home}/cfg"},
        {"cfg/kaggle.json": KAGGLE_KEY_JSON},
        "API key ({home}/cfg/kaggle.json",
    ),
}


@pytest.mark.parametrize("case", list(KAGGLE_LOGINS))
def test_kaggle_login_is_found_by_the_kaggle_package_own_lookup(tmp_path, case):
    """In a fresh process (kaggle reads its config folder once, at import) with a temporary HOME."""
    env_extra, files, expected = KAGGLE_LOGINS[case]
    home = tmp_path / "home"
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
        (home / name).chmod(0o600)  # as Kaggle asks; else kaggle prints a warning
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "PYTHONPATH": str(REPO / "src"),
        **{k: v.format(home=home) for k, v in env_extra.items()},
    }
    code = """
from pathlib import Path
from crlm.data.config import LitsConfig
from crlm.data import lits
def download(slug, archive):
    print("download", slug)
    raise InterruptedError
print(lits.kaggle_login())
try:
    lits.fetch(LitsConfig(datasets=("a/b",), max_volumes=0), Path("lits"), download)
except lits.KaggleCredentialsError as exc:
    print("error:", exc)
except InterruptedError:
    pass
"""
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    found, outcome = result.stdout.strip().splitlines()[-2:]
    if expected is None:
        assert found == "None"
        assert outcome.startswith("error: Kaggle credentials not found. Log in once with `kaggle auth login`")
    else:
        assert found.startswith(expected.format(home=home)), found
        assert outcome == "download a/b"


def _lits_cfg(raw):
    from crlm.data.config import LitsConfig

    return LitsConfig(datasets=tuple(raw["datasets"]), max_volumes=raw["max_volumes"])


def test_archive_with_a_path_traversal_entry_is_refused_and_nothing_is_written(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("volume_pt1/volume-0.nii", b"fine")
        z.writestr("../../outside.txt", b"escape")
    with pytest.raises(lits.UnsafeArchiveError, match=r"'\.\./\.\./outside\.txt' would be written outside"):
        lits.safe_extract(archive, tmp_path / "extracted")
    assert not (tmp_path / "extracted" / "volume_pt1").exists() and not (tmp_path.parent / "outside.txt").exists()


def test_lits_fetch_resumes_and_lists_kaggle_cases(tmp_path, tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_slices=6)
    cases = [phantom.generate_case(cfg, k) for k in range(2)]
    calls = []

    def download(slug, archive):
        calls.append(slug)
        lits_zip(archive, cases, cases[0].spacing_mm)

    one = _lits_cfg({"datasets": ["a/lits"], "max_volumes": 0})
    archive = tmp_path / "archives" / "a__lits.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK\x03\x04 cut short")  # an interrupted download

    def login():
        return "API key (test)"

    assert lits.fetch(one, tmp_path, download, login) == ["a/lits"]
    assert lits.fetch(one, tmp_path, download, login) == [] and calls == ["a/lits"]
    found = lits_kaggle_cases(tmp_path / "extracted")
    assert [c.case_id for c in found] == ["0", "1"] and all(c.label_path.is_file() for c in found)
    assert len(lits_kaggle_cases(tmp_path / "extracted", max_volumes=1)) == 1


def test_an_interrupted_kaggle_download_resumes_from_its_partial_file(tmp_path):
    """The real kaggle package downloads from a local HTTP server. An earlier run was cut off after 40%,
    leaving the partial file and resume marker that the package writes (written here with its own
    _write_resume_marker). kaggle_download must ask only for the missing bytes (force=True would not)."""
    import threading
    from email.utils import formatdate
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from types import SimpleNamespace

    import requests

    payload = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))
    etag, ranges = '"lits-v1"', []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked = self.headers.get("Range")
            ranges.append(asked)
            start = int(asked.split("=")[1].rstrip("-")) if asked else 0
            self.send_response(206 if asked else 200)
            self.send_header("Content-Length", str(len(payload) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(0, usegmt=True))
            self.end_headers()
            try:
                self.wfile.write(payload[start:])
            except (BrokenPipeError, ConnectionResetError):  # the first response is abandoned for the range
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/lits.zip"

    class LocalClient:  # stands in for Kaggle's servers only: the download logic is the package's own
        datasets = SimpleNamespace(
            dataset_api_client=SimpleNamespace(
                download_dataset=lambda request: requests.get(url, stream=True, timeout=30)
            )
        )

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def http_client(self):
            return None

    api = lits._kaggle_api_class()()
    api.build_kaggle_client = LocalClient
    partial = tmp_path / "lits.zip"  # the package's own name: <dataset>.zip
    cut = 120_000
    partial.write_bytes(payload[:cut])
    api._write_resume_marker(str(partial), etag, len(payload))
    try:
        lits.kaggle_download("someone/lits", tmp_path / "someone__lits.zip", api=api)
    finally:
        server.shutdown()
    assert (tmp_path / "someone__lits.zip").read_bytes() == payload
    assert ranges[-1] == f"bytes={cut}-"  # only the missing bytes were asked for
    assert not (tmp_path / "lits.zip.kaggle-partial").exists()
