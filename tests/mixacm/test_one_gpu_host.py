"""A one-GPU host: distributed ranks that train on the CPU use gloo even where CUDA exists, more ranks
than GPUs stop with the fix named before any rank touches a GPU it does not have, and a training batch that cannot
fit the GPU's memory (Table 2: ResNet-50 at global batch 2048 on one GPU) stops at once with the fix named. These
run on CPU machines: CUDA's presence, its device count and the GPU's memory are stood in for."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

import mixacm.train as TR
from mixacm.config import ConfigError, TrainConfig, load_config


@pytest.fixture
def fake_host(monkeypatch):
    """CUDA available with ``gpus`` devices; process-group calls recorded instead of made."""
    calls: dict = {"set_device": []}

    def host(gpus: int, *, world: int = 2, local_rank: int = 1):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
        monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls["set_device"].append(i))
        monkeypatch.setattr(dist, "is_initialized", lambda: False)
        monkeypatch.setattr(dist, "init_process_group", lambda backend=None, **k: calls.update(backend=backend))
        monkeypatch.setattr(dist, "get_rank", lambda: local_rank)
        monkeypatch.setattr(dist, "get_world_size", lambda: world)
        for key, value in (("WORLD_SIZE", world), ("LOCAL_WORLD_SIZE", world), ("LOCAL_RANK", local_rank),
                           ("RANK", local_rank)):
            monkeypatch.setenv(key, str(value))
        return calls

    return host


def test_ranks_that_train_on_the_cpu_use_gloo_where_cuda_exists(fake_host):
    calls = fake_host(gpus=1)
    assert TR._init_distributed(TrainConfig(device="cpu")) == (1, 2, 1)
    assert calls["backend"] == "gloo" and calls["set_device"] == []
    assert TR._device(TrainConfig(device="cpu"), 1) == torch.device("cpu")


def test_one_rank_per_gpu_uses_nccl(fake_host):
    calls = fake_host(gpus=2)
    TR._init_distributed(TrainConfig(device="auto"))
    assert calls["backend"] == "nccl"


def test_more_ranks_than_gpus_stop_with_the_fix_before_any_gpu_is_touched(fake_host):
    calls = fake_host(gpus=1)
    with pytest.raises(ConfigError, match=r"2 ranks on this node but 1 GPU.*nproc_per_node=1.*device=cpu"):
        TR._init_distributed(TrainConfig(device="auto"))
    assert "backend" not in calls and calls["set_device"] == []
    with pytest.raises(ConfigError, match=r"LOCAL_RANK=1 but this host has 1 GPU.*device=cpu"):
        TR._device(TrainConfig(device="auto"), 1)
    assert calls["set_device"] == []


# ------------------------------------------------------------------------------------- Table 2 on one GPU
def test_resnet50_at_global_batch_2048_on_one_80gb_gpu_stops_at_once_naming_the_fix(tmp_path, monkeypatch):
    import mixacm.data as D

    def never(*a, **k):
        raise AssertionError("the memory check must come before any data is read")

    monkeypatch.setattr(D, "scan_split", never)
    monkeypatch.setattr(D, "load_split", never)
    monkeypatch.setattr(TR, "_gpu_memory_bytes", lambda device: 80 * 2**30)  # an A100 / H100 with 80 GB
    cfg = load_config("configs/table2/imagenet_mixacm.toml", {"data_root": str(tmp_path), "progress": False})
    assert cfg.batch_size == 2048 and cfg.model == "resnet50"
    with pytest.raises(ConfigError, match=r"batch_size=2048.*GiB.*80 GiB.*torchrun --nproc_per_node=\d+: \d+ per GPU"):
        TR.train(cfg, tmp_path / "run")


def test_the_memory_estimate_is_of_the_right_size_and_silent_where_it_fits():
    need = TR.training_memory_bytes(load_config(None, {"preset": "imagenet", "method": "natural"}), 2048)
    assert 40 * 2**30 < need < 200 * 2**30, need / 2**30  # about 84 GiB of activations
    cfg = load_config(None, {"preset": "imagenet", "method": "mixacm"})
    TR.check_fits_gpu(cfg, 256, 80 * 2**30)  # 8 GPUs x 256: fits, no error
    TR.check_fits_gpu(cfg, 2048, None)  # CPU: never checked
    with pytest.raises(ConfigError):
        TR.check_fits_gpu(cfg, 2048, 80 * 2**30)
    cifar = load_config(None, {"method": "pgd_at", "model": "gowal-wrn-34-10", "batch_size": 128})
    TR.check_fits_gpu(cifar, 128, 80 * 2**30)
