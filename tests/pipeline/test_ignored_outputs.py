"""What DVC and the review command write into the workspace for a person to look at stays out of git."""

import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("path", ["dvc_plots/index.html", "reports/review.md", "reports/review/roc_test_set.png"])
def test_generated_pages_are_ignored_by_git(path):
    # `dvc plots show` writes dvc_plots/; `make review` writes reports/review.md and its images
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
    assert result.returncode == 0, f"{path} is not in .gitignore"


def test_the_report_itself_is_not_ignored():
    assert subprocess.run(["git", "check-ignore", "-q", "reports/report.md"], cwd=REPO).returncode == 1
