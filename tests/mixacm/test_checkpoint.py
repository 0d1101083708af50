"""Atomic checkpoints: safe load, corrupt/truncated files, architecture mismatch, disk full keeps the old file."""
from __future__ import annotations

import errno

import pytest
import torch

from mixacm import checkpoint as C
from mixacm.models import build_model


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _payload(model_name="smallcnn"):
    m = build_model(model_name, num_classes=10, in_channels=1)
    return {"format": C.FORMAT, "model": model_name, "num_classes": 10, "in_channels": 1, "config": {},
            "model_state": m.state_dict(), "epoch": 1, "rng": {"python": {"state": [1, 2, 3]}}}


def test_roundtrip_is_exact_and_leaves_no_temp_files(tmp_path):
    p = _payload()
    C.save_checkpoint(p, tmp_path / "last.pt")
    q = C.load_checkpoint(tmp_path / "last.pt")
    assert all(torch.equal(p["model_state"][k], q["model_state"][k]) for k in p["model_state"])
    assert [f.name for f in tmp_path.iterdir()] == ["last.pt"]


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "last.pt"
    C.save_checkpoint(_payload(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(C.CheckpointError, match="corrupt or truncated") as e:
        C.load_checkpoint(path)
    assert "\n" not in str(e.value)


def test_garbage_and_flipped_bytes_are_reported(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(C.CheckpointError, match="corrupt or truncated"):
        C.load_checkpoint(path)
    C.save_checkpoint(_payload(), path)
    data = bytearray(path.read_bytes())
    for i in range(200, len(data) - 200, 97):  # corrupt the middle (tensor records and pickle)
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(C.CheckpointError):
        C.load_checkpoint(path)


def test_code_executing_pickles_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(C.CheckpointError, match="needs code to unpickle"):
        C.load_checkpoint(tmp_path / "evil.pt")


def test_architecture_mismatch_is_named(tmp_path):
    other = build_model("wrn-10-1", num_classes=10, in_channels=1)
    with pytest.raises(C.CheckpointError, match=r"does not fit architecture 'wrn-10-1'.*missing keys") as e:
        C.load_state_strict(other, _payload()["model_state"], source="a.pt", expected="wrn-10-1")
    assert "\n" not in str(e.value)


def test_disk_full_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    old = _payload()
    C.save_checkpoint(old, path)
    before = path.read_bytes()

    def full_disk(fileobj, payload):
        fileobj.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C, "_write", full_disk)
    with pytest.raises(C.CheckpointError, match="disk full.*previous checkpoint kept"):
        C.save_checkpoint({**old, "epoch": 2}, path)
    assert path.read_bytes() == before  # untouched
    assert [f.name for f in tmp_path.iterdir()] == ["last.pt"]  # temp file cleaned up
    assert C.load_checkpoint(path)["epoch"] == 1


def test_missing_file():
    with pytest.raises(C.CheckpointError, match="not found"):
        C.load_checkpoint("/nonexistent/dir/last.pt")


def test_flipped_bytes_inside_tensor_data_are_caught_by_the_content_hash(tmp_path):
    """Random bytes in the middle of a weight tensor leave a valid zip and a loadable pickle; only the content hash
    stored at save time tells (the corrupt file is named in a one-line error)."""
    import zipfile

    path = tmp_path / "last.pt"
    C.save_checkpoint(_payload("wrn-10-1"), path)
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    # local file header: 30 bytes + name + extra field, then the stored (uncompressed) bytes
    name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    raw[start:start + 16] = bytes(16)
    path.write_bytes(bytes(raw))
    with pytest.raises(C.CheckpointError, match="content hash") as e:
        C.load_checkpoint(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
