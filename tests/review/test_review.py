"""End to end: the code-review loop on the tiny profile in a temporary git + DVC repository. Commit, change one
param, `dvc repro`, `crlm review BASE`: the page names the param and reads each changed headline number against
its seed noise; `dvc metrics show` lists the headline file alone; `crlm verify` finds a produced file that
differs from the committed one."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crlm.headline import flat
from tests.conftest import tiny_params_dict
from tests.dvc_repo import commit, dvc, make_repo, run

pytestmark = pytest.mark.slow

CRLM = str(Path(sys.executable).parent / "crlm")


def _params(**overrides) -> str:
    return yaml.safe_dump(tiny_params_dict(**overrides), sort_keys=False)


def test_review_names_the_param_and_gives_each_changed_number_a_noise_verdict(tmp_path):
    placeholder = {"seeds": [0, 1], "commit": "none", "metrics": {}}
    repo = make_repo(tmp_path, _params(), {"metrics/stability.json": json.dumps(placeholder)})
    dvc("repro", cwd=repo)
    shown = json.loads(dvc("metrics", "show", "--json", cwd=repo))
    assert [list(rev["data"]) for rev in shown.values()] == [["metrics/headline.json"]]  # the workspace alone
    old = flat(json.loads((repo / "metrics/headline.json").read_text()))
    commit(repo, "base")
    base = run(["git", "rev-parse", "HEAD"], repo).strip()

    horizon = tiny_params_dict()["survival"]["horizon_months"]
    (repo / "params.yaml").write_text(_params(survival={"horizon_months": horizon + 12}))
    dvc("repro", cwd=repo)
    new = flat(json.loads((repo / "metrics/headline.json").read_text()))
    changed = sorted(
        name
        for name in new
        if isinstance(new[name], float) and isinstance(old.get(name), float) and new[name] != old[name]
    )
    assert len(changed) >= 2, f"the horizon moved too few numbers to test both verdicts: {old} -> {new}"
    assert len(dvc("metrics", "diff", base, cwd=repo).splitlines()) <= 100

    # seed SDs the test chooses (by name, as `make stability` records them): the first changed number's SD 100
    # times its change (within noise), the second's a hundredth of it (beyond); measured at the base commit,
    # so not stale
    def seeds_around(value, sd):  # as `make stability` writes a row, unrounded (sample SD of the z's: 1)
        values = [value + sd * z for z in (-1.2649, -0.6325, 0.0, 0.6325, 1.2649)]
        return {"values": values, "mean": value, "sd": sd, "range": max(values) - min(values)}

    within, beyond = changed[0], changed[1]
    rows = {
        within: seeds_around(old[within], 100 * abs(new[within] - old[within])),
        beyond: seeds_around(old[beyond], abs(new[beyond] - old[beyond]) / 100),
    }
    stability = {"seeds": [0, 1, 2, 3, 4], "commit": base, "metrics": rows}
    (repo / "metrics/stability.json").write_text(json.dumps(stability, indent=2))

    run([CRLM, "review", base], repo)
    page = (repo / "reports/review.md").read_text()
    assert f"| `survival.horizon_months` | {float(horizon):.4g} | {float(horizon + 12):.4g} |" in page
    assert "`survival`" in page.split("## Stages")[1].split("##")[0]  # the stage that reran
    table = {line.split(" | ")[0].strip("| `"): line for line in page.splitlines() if line.startswith("| `")}
    for name in (n for n in new if new[n] != old.get(n)):
        assert name in table, f"{name} changed but is not on the page"
    assert "| within seed noise |" in table[within]
    assert "| beyond noise: " in table[beyond] and "seed SDs" in table[beyond]
    assert "stale" not in table[within] + table[beyond]
    assert "with 4 degrees of freedom (5 seeds)" in page

    # verify: this machine trained the committed models, so byte for byte; a produced file that differs fails
    commit(repo, "horizon")
    assert "byte for byte" in run([CRLM, "verify"], repo)
    compare = repo / "metrics/compare.json"
    compare.write_text(compare.read_text().replace('"candidate": "clmnet"', '"candidate": "unet"'))
    result = subprocess.run([CRLM, "verify"], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 1
    assert "DIFFERS: metrics/compare.json" in result.stdout and "1 difference(s)" in result.stdout
