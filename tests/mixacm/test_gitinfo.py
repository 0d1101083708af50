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


def test_machine_names_the_cpu_model_in_every_provenance(tmp_path, monkeypatch):
    """Bit-exact reruns hold on one CPU type, not across types: each record names the processor (Linux' /proc/cpuinfo
    "model name"; platform.processor() is often empty), in run meta, evaluation results and plan provenance alike."""
    from mixacm import machine

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n")
    monkeypatch.setattr(machine, "CPUINFO", info)
    machine.describe.cache_clear()
    d = machine.describe()
    assert d["cpu_model"] == "AMD EPYC 7B13" and d["cpus"] >= 1 and "torch" in d and "host" in d
    assert "AMD EPYC 7B13" in machine.summary_line(d) and "cpus=" in machine.summary_line(d)

    from mixacm import train
    from verification import schema
    assert train._machine()["cpu_model"] == "AMD EPYC 7B13"
    assert "AMD EPYC 7B13" in schema.provenance("cpu", "now", 0.0)["machine"]
    monkeypatch.setattr(machine, "CPUINFO", tmp_path / "absent")  # not Linux: platform.processor(), else None
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    assert machine.cpu_model() is None
    monkeypatch.setattr(machine.platform, "processor", lambda: "arm")
    assert machine.cpu_model() == "arm"
    machine.describe.cache_clear()


def test_commit_from_the_environment_where_git_is_absent(tmp_path, monkeypatch):
    """A copy of the tree without .git (a GPU machine gets the tree without .git): the commit comes from
    $MIXACM_COMMIT, named as such; a real checkout's own commit always wins."""
    from mixacm import gitinfo

    monkeypatch.delenv("MIXACM_COMMIT", raising=False)
    assert gitinfo.git_commit(tmp_path)["commit"] == "unknown"  # no repository here
    monkeypatch.setenv("MIXACM_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    got = gitinfo.git_commit(tmp_path)
    assert got["commit"] == "0123456789abcdef0123456789abcdef01234567" and got["source"] == "MIXACM_COMMIT"
    assert got["dirty"] is None and gitinfo.commit_label(tmp_path) == got["commit"]
    if (gitinfo.ROOT / ".git").exists():
        assert gitinfo.git_commit()["commit"] != got["commit"]
