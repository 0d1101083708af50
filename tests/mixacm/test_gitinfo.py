"""Provenance names the code that ran, whatever the caller's working directory."""
import re
import subprocess

import pytest

from mixacm.gitinfo import ROOT, git_commit


def test_commit_of_this_checkout_from_another_directory(tmp_path, monkeypatch):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (installed from an sdist/wheel)")
    monkeypatch.chdir(tmp_path)  # not a repository: a cwd-based lookup would say "unknown"
    got = git_commit()
    want = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", got["commit"]) and got["commit"] == want, got
    assert isinstance(got["dirty"], bool)
