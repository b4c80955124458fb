"""The CI workflows (.github/workflows/pipeline.yml, .gitlab-ci.yml), linted offline in a few seconds.

check-jsonschema validates each against the CI vendor's schema that ships inside the package
(--builtin-schema: nothing is downloaded), zizmor audits the GitHub workflow with its offline audits
(unpinned actions, template injection, credentials left in the checkout, permissions), and the steps
are checked to run the Makefile's documented targets and nothing else but the posting plumbing.
The linters run from this interpreter's scripts folder (the venv's), under a proxy that refuses every
connection, so a check that would need the network fails here instead of passing on a network."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / ".github" / "workflows" / "pipeline.yml"
GITLAB = REPO / ".gitlab-ci.yml"
MAKEFILE = REPO / "Makefile"

# the README's commands, in the order each flow runs them
FLOWS = {
    (GITHUB, "review"): ["setup", "pull", "repro", "review"],
    (GITHUB, "verify"): ["setup", "pull", "verify"],
    (GITLAB, "review"): ["setup", "pull", "repro", "review"],
    (GITLAB, "verify"): ["setup", "pull", "verify"],
}
# besides make: the step summary (cat), the PR comment (gh), the MR note (curl) and its skip message
PLUMBING = {"cat", "gh", "curl", "echo", "["}
SHELL_KEYWORDS = {"if", "then", "else", "elif", "fi", "!", "{", "}"}
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}


def _tool(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed beside {sys.executable}: pip install -e '.[test]'")
    return path


def _run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN", "NO_PROXY"}
    }
    # port 9 (discard) refuses: any download attempt fails at once rather than reaching the network
    env.update(
        HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", ALL_PROXY="http://127.0.0.1:9", NO_COLOR="1"
    )
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[key.lower()] = env[key]
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _report(proc: subprocess.CompletedProcess) -> str:
    return f"{shlex.join(proc.args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def check_github(path: Path) -> subprocess.CompletedProcess:
    return _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", path)


def check_gitlab(path: Path) -> subprocess.CompletedProcess:
    # the transform reads GitLab's !reference tags, which plain YAML loading rejects
    return _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", path
    )


def audit(workflows_dir: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    # --strict-collection: a workflow zizmor cannot parse fails the run instead of being skipped with a warning
    return _run(_tool("zizmor"), "--offline", "--strict-collection", "--color", "never", workflows_dir, cwd=cwd)


def test_github_workflow_matches_the_schema():
    proc = check_github(GITHUB)
    assert proc.returncode == 0, _report(proc)


def test_gitlab_ci_matches_the_schema():
    proc = check_gitlab(GITLAB)
    assert proc.returncode == 0, _report(proc)


def test_zizmor_finds_nothing():
    # exit codes: 0 nothing found, 1-3 zizmor's own errors, 10-14 findings (10 + the worst severity)
    proc = audit(REPO / ".github" / "workflows")
    assert proc.returncode == 0, _report(proc)
    assert "No findings to report" in proc.stdout, _report(proc)


def test_actions_are_pinned_to_a_commit_with_its_release():
    uses = [line.strip() for line in GITHUB.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert uses
    for line in uses:
        assert re.fullmatch(r"(- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


# --- the linters provably fail: each mutation of the real workflow must be rejected -------------------------


def _mutated(tmp_path: Path, source: Path, pattern: str, new: str) -> Path:
    """A copy of source under tmp_path (same relative path) with every match of pattern replaced by new."""
    text, n = re.subn(pattern, lambda _: new, source.read_text())
    assert n, f"{pattern!r} is no longer in {source.name}: update the mutation"
    out = tmp_path / source.relative_to(REPO)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


@pytest.mark.parametrize(
    "pattern, new",
    [
        pytest.param(r"actions/checkout@[0-9a-f]{40} # v[\d.]+", "actions/checkout@v4", id="unpinned-action"),
        pytest.param(
            "run: make repro",
            'run: make repro && echo "${{ github.event.pull_request.title }}"',
            id="template-injection",
        ),
        pytest.param("persist-credentials: false", "clean: true", id="credentials-left-in-checkout"),
    ],
)
def test_zizmor_rejects(tmp_path, pattern, new):
    workflow = _mutated(tmp_path, GITHUB, pattern, new)
    proc = audit(workflow.parent, cwd=tmp_path)
    assert proc.returncode >= 10, _report(proc)


def test_schema_rejects_an_unknown_github_key(tmp_path):
    proc = check_github(_mutated(tmp_path, GITHUB, "timeout-minutes:", "timeout-minute:"))
    assert proc.returncode == 1, _report(proc)
    assert "'timeout-minute' was unexpected" in proc.stdout, _report(proc)


def test_schema_rejects_an_unknown_gitlab_key(tmp_path):
    proc = check_gitlab(_mutated(tmp_path, GITLAB, r"(?m)^  script:", "  scripts:"))
    assert proc.returncode == 1, _report(proc)
    assert "'scripts' was unexpected" in proc.stdout, _report(proc)


# --- the steps: the README's make targets, and the plumbing that posts their review -------------------------


def makefile_targets(text: str) -> set[str]:
    """Names of the rules `name:` at a line's start (not `VAR :=`, not `$(VENV)/...`, not `.PHONY`)."""
    names = set()
    for m in re.finditer(r"^([A-Za-z0-9_][\w.-]*(?:[ \t]+[A-Za-z0-9_][\w.-]*)*)[ \t]*::?(?!=)", text, re.M):
        names.update(m.group(1).split())
    return names


def _scripts(path: Path) -> dict[str, list[str]]:
    """Each job's shell scripts: GitHub's `run:` steps, GitLab's before_script/script/after_script."""
    doc = yaml.safe_load(path.read_text())
    out = {}
    if path == GITHUB:
        for name, job in doc["jobs"].items():
            out[name] = [step["run"] for step in job.get("steps", []) if "run" in step]
    else:
        default = doc.get("default", {})
        for name, job in doc.items():
            if isinstance(job, dict) and "script" in job:
                out[name] = [
                    line
                    for key in ("before_script", "script", "after_script")
                    for line in job.get(key, default.get(key, []))
                ]
    return out


def commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script, each as its words, shell keywords and assignments dropped."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in SEPARATORS:
                while words and (words[0] in SHELL_KEYWORDS or re.match(r"\w+=", words[0])):
                    words.pop(0)
                if words:
                    out.append(words)
                words = []
            else:
                words.append(token)
    return out


def test_commands_parse_like_the_shell():
    assert commands('if [ -n "${T:-}" ]; then\n  curl -X POST \\\n  "$U" || x=1 gh a\nelse\n  echo "a; b"\nfi') == [
        ["[", "-n", "${T:-}", "]"],
        ["curl", "-X", "POST", "$U"],
        ["gh", "a"],
        ["echo", "a; b"],
    ]


def test_makefile_targets_parse():
    text = (
        "PY ?= python3\nBIN := x\nexport PATH := $(BIN):$(PATH)\n.PHONY: a\n"
        "$(V)/.ok: f\n\ta: b\nsetup: $(V)/.ok\nc d:\n"
    )
    assert makefile_targets(text) == {"setup", "c", "d"}


def run_by_job(path: Path) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Each job's make targets in order, and its other commands."""
    out = {}
    for job, scripts in _scripts(path).items():
        made, others = [], []
        for script in scripts:
            assert "${{" not in script, f"{path.name} {job}: an expression in a script, not through env: {script!r}"
            for words in commands(script):
                if words[0] == "make":
                    made.append(next((w for w in words[1:] if not w.startswith("-") and "=" not in w), ""))
                else:
                    others.append(words)
        out[job] = made, others
    return out


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_steps_run_the_documented_make_targets_and_the_plumbing(path):
    jobs = run_by_job(path)
    flows = {job: targets for (p, job), targets in FLOWS.items() if p == path}
    assert set(jobs) == set(flows), f"{path.name}: jobs {sorted(jobs)}, expected {sorted(flows)}"
    for job, (made, others) in jobs.items():
        assert made == flows[job], f"{path.name} {job}: make {made}, expected {flows[job]}"
        for words in others:
            assert words[0] in PLUMBING, f"{path.name} {job}: runs {shlex.join(words)!r}"


def test_make_targets_of_the_workflows_are_in_the_makefile():
    defined = makefile_targets(MAKEFILE.read_text())
    used = {target for path in (GITHUB, GITLAB) for made, _ in run_by_job(path).values() for target in made}
    assert used, "no make target found in the workflows"
    assert used <= defined, f"the workflows run make {sorted(used - defined)}, which the Makefile does not define"
