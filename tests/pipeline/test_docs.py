"""The docs: the mkdocs site builds with --strict (a broken link, anchor or missing page fails it), the
generated reports are its Results pages with their figures, the README stays a five-minute read that names
the commands, and no page speaks of issue numbers (the docs describe the project, not its tickets)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
ISSUE_NUMBER = re.compile(r"\bissues?\s*(?:no\.?\s*)?#?\s*\d+", re.IGNORECASE)
IMAGE = re.compile(r"!\[[^\]\n]*\]\(\.\./([^)\s#]+)\)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def build_site(site_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's notice about its successor
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("docs") / "site"
    done = build_site(site)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return site


def test_the_docs_site_builds_strictly_with_the_generated_reports_and_their_figures(site):
    for page, source in {
        "results": "reports/report.md",
        "stability": "reports/stability.md",
        "scale": "reports/scale.md",
    }.items():
        html = (site / page / "index.html").read_text(encoding="utf-8")
        title = next(
            line for line in (REPO / source).read_text(encoding="utf-8").splitlines() if line.startswith("# ")
        )[2:].replace("`", "")
        assert title.split(" (")[0] in html, f"{page}: the page does not show {source}"
        for figure in IMAGE.findall((REPO / source).read_text(encoding="utf-8")):
            assert (site / figure).is_file(), f"{source}'s figure {figure} is not in the site"
            assert f'src="../{figure}"' in html, f"{page}: {figure} is not linked where the site has it"
    assert not (site / "hooks.py").exists() and not (site / "docs_hooks.py").exists()


def test_the_docs_hook_rewrites_a_generated_files_links_to_the_docs_root():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from docs_hooks import rewrite_links
    finally:
        sys.path.remove(str(REPO / "scripts"))
    text = (
        "![ROC](../plots/evaluate/roc.png) [table](#table-1) [site](https://dvc.org) "
        "[example](../docs/review-example.md#plots) [outside](../../elsewhere.png)"
    )
    rewritten, linked = rewrite_links("reports/report.md", text)
    assert rewritten == (
        "![ROC](plots/evaluate/roc.png) [table](#table-1) [site](https://dvc.org) "
        "[example](review-example.md#plots) [outside](../../elsewhere.png)"
    )
    assert linked == {"plots/evaluate/roc.png"}


def test_the_readmes_links_reach_files_and_the_docs_sites_anchors(site):
    """README.md lies outside the site, so mkdocs does not check its links: every relative one must name a
    file of the repository, and an anchor into a docs page must be a heading id of the built page."""
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        assert (REPO / path).exists(), f"README.md links to {path}, which does not exist"
        if anchor:
            assert path.startswith("docs/") and path.endswith(".md"), f"README.md: anchor outside docs/: {target}"
            page = path[len("docs/") : -len(".md")]
            html = (site / ("" if page == "index" else page) / "index.html").read_text(encoding="utf-8")
            assert f'id="{anchor}"' in html, f"README.md links to {target}, but that page has no #{anchor}"


def test_the_readme_is_short_and_names_the_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, f"README.md has {len(text.splitlines())} lines; the rest belongs in docs/"
    for command in ("make repro", "make test", "make test-fast"):
        assert re.search(rf"{re.escape(command)}(?![\w-])", text), f"README.md does not name `{command}`"


def test_no_doc_mentions_an_issue_number():
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    assert len(pages) > 2
    found = [
        f"{page.relative_to(REPO)}:{n}: {line.strip()}"
        for page in pages
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if ISSUE_NUMBER.search(line)
    ]
    assert not found, "issue numbers in the docs:\n" + "\n".join(found)
