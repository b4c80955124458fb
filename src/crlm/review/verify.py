"""`crlm verify`: do the committed metrics and report come out of the committed code? For CI on the main branch,
after `dvc repro` has rewritten metrics/ and reports/ in the workspace.

Byte for byte where this machine computes as the one that trained the committed models did (the compute
fingerprint each train stage records in plots/train/<arch>/compute.json: device, precision, the kernels torch
picked, torch's version, numpy's BLAS kernel and threads): the pipeline is deterministic there. Elsewhere
floating-point rounding may move the trained weights, so each headline number must lie within seed noise of
the committed one (crlm.review.noise), and the numbers without a seed SD and the report's text are not
compared.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml

from crlm.archs import ARCHS
from crlm.review.changes import lock_at, open_repo, read_at
from crlm.review.noise import SeedNoise
from crlm.review.page import HEADLINE, STABILITY

CHECKED = ("metrics/", "reports/")  # the git-tracked outputs under these folders


def this_machine(params_file: Path) -> dict:
    """The compute fingerprint a training here would record, for the params file's train.device/precision."""
    from crlm.training.device import compute_fingerprint, resolve_precision, select_device

    train = yaml.safe_load(params_file.read_text())["train"]
    device = select_device(train["device"])
    return compute_fingerprint(device, resolve_precision(train["precision"], device))


def comparison(committed: dict[str, dict | None], here: dict) -> tuple[str, str]:
    """("bytes" or "noise", why)."""
    missing = [arch for arch, record in committed.items() if record is None]
    if missing:
        return "noise", f"the commit records no compute fingerprint for {', '.join(missing)}"
    differing = {arch: record for arch, record in committed.items() if computes_as(record) != computes_as(here)}
    if not differing:
        return "bytes", f"this machine computes as the committing one did ({describe(here)})"
    arch, record = next(iter(differing.items()))
    assert record is not None  # a None record returned above
    return "noise", (
        f"the committed {arch} models were trained with {describe(record)}, this machine has "
        f"{describe(here)}: rounding may differ, so each headline number must lie within seed noise"
    )


def computes_as(record: dict | None) -> dict | None:
    """The fingerprint with its BLAS libraries as a set: threadpoolctl lists every copy a process has loaded
    (numpy's and scipy's wheels each bundle OpenBLAS, and which are loaded depends on what was imported), and
    two copies of one kernel at one thread count compute as one does."""
    if record is None or not isinstance(record.get("blas"), str):
        return record
    return {**record, "blas": sorted(set(record["blas"].split("; ")))}


def describe(record: dict) -> str:
    return (
        f"{record['device']}, {record['precision']}, {record['kernels']} kernels, torch {record['torch']}, "
        f"BLAS {record.get('blas', 'unrecorded')}"
    )


def byte_differences(repo, rev: str, paths: list[str]) -> list[str]:
    lines = []
    for path in paths:
        committed, produced = read_at(repo, path, rev), read_at(repo, path, None)
        if committed != produced:
            diff = difflib.unified_diff(
                (committed or "").splitlines(),
                (produced or "").splitlines(),
                f"{path} ({rev})",
                f"{path} (produced)",
                lineterm="",
                n=1,
            )
            lines += [f"DIFFERS: {path}", *list(diff)[:60]]
    return lines


def noise_differences(repo, rev: str, root: Path) -> list[str]:
    committed = json.loads(read_at(repo, HEADLINE, rev) or "{}")
    produced = json.loads((root / HEADLINE).read_text())
    stability_file = root / STABILITY
    stability = json.loads(stability_file.read_text()) if stability_file.is_file() else None
    lock = lock_at(repo, rev)
    noise = SeedNoise(stability, lock, lock)  # the commit's own pipeline: its SD is not stale by construction
    from crlm.headline import flat

    old, new = flat(committed), flat(produced)
    lines, unchecked = [], []
    for name in sorted(set(old) | set(new)):
        reading = noise.read(name, old.get(name), new.get(name))
        if reading.verdict == "no verdict":
            unchecked.append(name)
        elif reading.verdict not in ("unchanged", "within seed noise"):
            lines.append(
                f"DIFFERS: {name}: committed {reading.old}, produced {reading.new} ({reading.verdict}"
                + (f"; {reading.note}" if reading.note else "")
                + ")"
            )
    if unchecked:
        print(f"verify: not compared (no seed SD): {', '.join(unchecked)}")
    return lines


def verify(root: Path = Path("."), rev: str = "HEAD", params_file: Path = Path("params.yaml")) -> int:
    """Print which comparison is made and why, then every difference; 0 when there is none, else 1."""
    with open_repo(root) as repo:
        committed = {
            arch: (json.loads(text) if (text := read_at(repo, f"plots/train/{arch}/compute.json", rev)) else None)
            for arch in ARCHS
        }
        mode, why = comparison(committed, this_machine(root / params_file))
        print(f"verify: comparing with {rev} {'byte for byte' if mode == 'bytes' else 'within seed noise'}: {why}")
        if mode == "bytes":
            paths = sorted(
                out["path"]
                for entry in lock_at(repo, rev).values()
                for out in entry.get("outs", [])
                if out["path"].startswith(CHECKED)
            )
            differences = byte_differences(repo, rev, paths)
        else:
            differences = noise_differences(repo, rev, root)
    for line in differences:
        print(line)
    print(
        "verify: "
        + (
            f"{sum(d.startswith('DIFFERS') for d in differences)} difference(s)"
            if differences
            else "the committed metrics and report are what the code produces"
        )
    )
    return 1 if differences else 0
