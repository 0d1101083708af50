"""One commit reader for every provenance string: untracked files (a virtual environment inside a clone) never
make a checkout dirty; a modified tracked file does. The theory report uses the same function."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from mixacm.gitinfo import commit_label, git_commit


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_untracked_files_do_not_make_a_clone_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x").write_text("x")
    g = git_commit(tmp_path)
    assert len(g["commit"]) == 40 and g["dirty"] is False and commit_label(tmp_path) == g["commit"]
    (tmp_path / "a.txt").write_text("b")
    assert commit_label(tmp_path).endswith("+dirty")


def test_the_theory_report_reads_the_commit_with_the_same_function():
    import theory.report

    assert theory.report.commit_label is commit_label
