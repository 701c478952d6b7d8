"""Tests of course_utils.profile: counts that can be checked by hand, and the API shape."""

import pytest
import torch
from torch import nn

from course_utils.models import create_model
from course_utils.profile import (
    ModelProfile,
    TensorMemoryTracker,
    compare_models,
    count_macs,
    count_params,
    profile_model,
    profiles_table,
    summary,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def test_count_params_and_macs_by_hand():
    net = _tiny_net()
    assert count_params(net) == (3 * 9 * 8 + 8) + (512 * 10 + 10)
    net[0].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == count_params(net) - 3 * 9 * 8
    # conv: 8 x 8 outputs x 8 channels x (3 x 3 x 3) MACs; linear: 512 x 10
    assert count_macs(net, (1, 3, 8, 8)) == 8 * 8 * 8 * 27 + 512 * 10
    assert count_macs(net, (4, 3, 8, 8)) == 4 * (8 * 8 * 8 * 27 + 512 * 10)


def test_profile_model_eval():
    net = _tiny_net().train()
    p = profile_model(net, (2, 3, 8, 8), runs=3, warmup=1)
    assert isinstance(p, ModelProfile)
    assert p.params == count_params(net) and p.macs == 2 * (8 * 8 * 8 * 27 + 512 * 10) and p.flops == 2 * p.macs
    assert p.latency_ms > 0 and p.latency_runs == 3
    assert p.peak_memory_bytes >= 2 * 8 * 8 * 8 * 4  # at least the conv output
    assert net.training  # state restored
    assert "params" in str(p) and p.as_dict()["macs"] == p.macs


def test_profile_model_train_and_options():
    model = create_model("densenet_tiny")
    ev = profile_model(model, (4, 3, 32, 32), latency=False)
    tr = profile_model(model, (4, 3, 32, 32), mode="train", runs=1, warmup=0)
    assert ev.latency_ms is None and tr.latency_ms > 0
    assert tr.macs == ev.macs and tr.mode == "train"
    assert tr.peak_memory_bytes > ev.peak_memory_bytes  # a training step keeps activations
    assert all(p.grad is not None for p in model.parameters())
    nomem = profile_model(model, torch.randn(1, 3, 32, 32), latency=False, memory=False)
    assert nomem.peak_memory_bytes is None and nomem.input_size == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="mode='fast'"):
        profile_model(model, mode="fast")
    with pytest.raises(ValueError, match=r"input_size=\(3, 32, 32\)"):
        profile_model(model, (3, 32, 32))


def test_memory_efficient_mode_lowers_profiled_memory():
    plain = profile_model(create_model("dense2net_tiny"), (8, 3, 32, 32), mode="train", latency=False)
    eff = profile_model(create_model("dense2net_tiny", memory_efficient=True), (8, 3, 32, 32), mode="train", latency=False)
    assert eff.peak_memory_bytes < 0.8 * plain.peak_memory_bytes


def test_tensor_memory_tracker():
    with TensorMemoryTracker() as tr:
        a = torch.zeros(1024, 256)  # 1 MiB
        b = a + 1  # another MiB
        assert tr.live == 2 * 2**20
        del b
        assert tr.live == 2**20
        c = a.view(-1)  # a view allocates nothing
        assert tr.live == 2**20
    assert tr.peak == 2 * 2**20
    del a, c


def test_summary_uses_torchinfo():
    stats = summary(create_model("cifar_cnn"), (1, 3, 32, 32), depth=2)
    assert stats.total_params == count_params(create_model("cifar_cnn"))
    # torchinfo adds one mult-add per BatchNorm parameter; FlopCounterMode counts convs/matmuls only
    macs = count_macs(create_model("cifar_cnn"), (1, 3, 32, 32))
    assert 0 <= stats.total_mult_adds - macs < 0.001 * macs
    assert "Total params" in str(stats)


def test_compare_models_and_table():
    profiles = compare_models(["cifar_cnn", "res2net_tiny"], (1, 3, 32, 32), runs=1, warmup=0)
    assert [p.model for p in profiles] == ["cifar_cnn", "res2net_tiny"]
    table = profiles_table(profiles)
    assert table.count("\n") == 3 and "| cifar_cnn |" in table
