"""Run directories that cannot be mixed up (mixacm.rundir): one writer, resume only with the recorded config,
finished runs extended only on request, stale files cleaned, provenance never rewritten by a refused call."""
from __future__ import annotations

import json

import pytest
import torch

from mixacm import checkpoint as C
from mixacm import rundir
from mixacm.config import ConfigError, load_config
from mixacm.train import train

TINY = dict(dataset="digits", model="smallcnn", augment="none", data_fraction=0.25, val_fraction=0.2, batch_size=32,
            epochs=1, max_steps_per_epoch=3, val_n=40, progress=False, method="natural", lr=0.05)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny(**kw):
    return load_config(None, {**TINY, **kw})


def _files(run):
    return {p.name: p.read_bytes() for p in run.iterdir() if p.suffix in (".json", ".jsonl")}


def test_a_second_writer_is_refused_at_once(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    fd = rundir._lock(run)  # a training holds the lock
    try:
        with pytest.raises(rundir.RunDirError, match=r"in use by pid \d+"):
            train(tiny(), run)
    finally:
        import os
        os.close(fd)
    assert not (run / "metrics.jsonl").exists()


def test_fresh_start_removes_stale_temp_files_and_metric_lines(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (run / ".best.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 1}\n{"epoch": 2}\n')  # killed before its checkpoint
    train(tiny(epochs=2), run)
    assert not list(run.glob("*.tmp"))
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_resume_with_another_config_names_the_keys_and_rewrites_nothing(tmp_path):
    run = tmp_path / "r"
    train(tiny(epochs=2, max_steps_per_epoch=2), run)
    ck = C.load_checkpoint(run / "last.pt")
    ck["epoch"] = 1  # pretend the run was stopped after epoch 1
    C.save_checkpoint(ck, run / "last.pt")
    (run / "summary.json").unlink()
    before = _files(run)
    with pytest.raises(ConfigError, match=r"differs from the recorded one in lr: 0.05 -> 0.1, seed: 0 -> 3"):
        train(tiny(epochs=2, max_steps_per_epoch=2, lr=0.1, seed=3), run, resume=True)
    assert _files(run) == before  # config.json and meta.json still tell the truth
    train(tiny(epochs=2, max_steps_per_epoch=2, progress=True), run, resume=True)  # safe keys may change
    meta = json.loads((run / "meta.json").read_text())
    assert meta["started"] == json.loads(before["meta.json"])["started"] and len(meta["resumes"]) == 1


def test_a_finished_run_is_extended_only_on_request(tmp_path):
    run = tmp_path / "r"
    train(tiny(), run)
    before = _files(run)
    with pytest.raises(ConfigError, match="has finished .*--extend"):
        train(tiny(), run, resume=True)
    with pytest.raises(ConfigError, match="--extend"):
        train(tiny(epochs=2), run, resume=True)
    assert _files(run) == before
    s = train(tiny(epochs=2), run, resume=True, extend=True)
    assert s["epochs"] == 2 and C.load_checkpoint(run / "last.pt")["epoch"] == 2


def test_resume_from_a_corrupt_checkpoint_names_the_file(tmp_path):
    run = tmp_path / "r"
    train(tiny(epochs=2, max_steps_per_epoch=2), run)
    ck = C.load_checkpoint(run / "last.pt")
    ck["epoch"] = 1
    C.save_checkpoint(ck, run / "last.pt")
    (run / "summary.json").unlink()
    raw = bytearray((run / "last.pt").read_bytes())
    import zipfile
    with zipfile.ZipFile(run / "last.pt") as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size // 2
    raw[start:start + 8] = bytes(8)
    (run / "last.pt").write_bytes(bytes(raw))
    with pytest.raises(C.CheckpointError, match="last.pt.*content hash"):
        train(tiny(epochs=2, max_steps_per_epoch=2), run, resume=True)


def test_a_key_missing_from_the_recorded_config_is_its_default():
    """config.json written before a key existed: the run behaved as that key's default, so a resume whose value is
    the default matches it, and any other value is named as a difference."""
    from mixacm.config import to_dict

    cfg = tiny()
    recorded = to_dict(cfg)
    del recorded["attack_bn"], recorded["fat_tau_milestones"]  # keys the recording code did not have
    assert rundir.config_differences(recorded, cfg) == []
    assert rundir.config_differences(recorded, tiny(attack_bn="train")) == ["attack_bn"]
    assert rundir.config_differences(recorded, tiny(fat_tau_milestones=[0.5])) == ["fat_tau_milestones"]
    recorded["no_such_key"] = 1  # a key the current code does not know still differs
    assert rundir.config_differences(recorded, cfg) == ["no_such_key"]
