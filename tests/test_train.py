"""The training engine in-process: config, schedules, device decisions, files, determinism,
the NaN stop, resume, early stopping, callbacks and plots. No real data, tiny models."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from course_utils.data import synthetic_bundle
from course_utils.train import (
    PRESETS,
    ConfigError,
    LRSchedule,
    NonFiniteLossError,
    TrainConfig,
    amp_settings,
    backend_flags,
    dist_from_env,
    fit,
    load_checkpoint,
    lr_factor,
    preset,
    read_metrics,
    use_channels_last,
)

TIMING = ("seconds", "train_seconds", "images_per_s")


# one CPU thread (conftest): fast and stable on a shared 2-core machine, same numerics
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyNet(nn.Module):
    """conv-norm-relu x2, global pool, linear: learns the synthetic squares in a few epochs."""

    def __init__(self, num_classes=4, norm="bn"):
        super().__init__()

        def norm_layer(c):
            return nn.BatchNorm2d(c) if norm == "bn" else nn.GroupNorm(2, c)

        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), norm_layer(8), nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), norm_layer(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


def small_config(tmp_path=None, **kw):
    base = dict(epochs=3, lr=0.05, schedule="constant", progress=False, verbose=False,
                device="cpu", threads=1)
    if tmp_path is not None:
        base["out"] = str(tmp_path)
    base.update(kw)
    return TrainConfig(**base)


def data(**kw):
    kw.setdefault("batch_size", 32)
    return synthetic_bundle(n_train=128, n_val=64, n_test=64, **kw)


def without_timing(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


# ------------------------------------------------------------------------------ config
def test_defaults_are_the_reports_recipe():
    c = TrainConfig()
    assert (c.lr, c.momentum, c.weight_decay, c.batch_size, c.epochs) == (0.1, 0.9, 1e-4, 128, 100)
    assert c.schedule == "step" and c.resolved_milestones() == (30, 60) and c.gamma == 0.1
    assert c.plateau_patience == 10 and c.model == "dense2net121" and c.dataset == "cifar100"
    assert c.augment is True and c.cutout == 0 and not c.nesterov


def test_densenet_paper_preset_scales_its_milestones():
    c = preset("densenet_paper")
    assert (c.epochs, c.batch_size, c.nesterov, c.lr, c.weight_decay) == (300, 64, True, 0.1, 1e-4)
    assert c.resolved_milestones() == (150, 225)
    assert preset("densenet_paper", epochs=40).resolved_milestones() == (20, 30)
    assert preset("report") == TrainConfig()
    assert set(PRESETS) >= {"report", "report_plateau", "densenet_paper", "cpu_fast"}
    with pytest.raises(ConfigError, match="preset='nope'.*report"):
        preset("nope")


@pytest.mark.parametrize("field,value", [
    ("lr", -1.0), ("lr", 0), ("lr", math.nan), ("epochs", 0), ("batch_size", 0),
    ("momentum", 1.0), ("weight_decay", -1e-4), ("schedule", "linear"), ("cutout", -2),
    ("dataset", "imagenet"), ("mode", "medium"), ("amp", "fp8"), ("device", "tpu"),
    ("milestones", (60, 30)), ("gamma", 0.0), ("early_stop_patience", 0),
    ("label_smoothing", 1.0), ("channels_last", "maybe"), ("threads", 0),
])
def test_bad_values_name_parameter_value_and_allowed(field, value):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{field: value})
    assert e.value.param == field
    msg = str(e.value)
    assert msg.startswith(f"{field}=") and "allowed" in msg and repr(value) in msg


def test_nesterov_needs_momentum():
    with pytest.raises(ConfigError, match="nesterov"):
        TrainConfig(nesterov=True, momentum=0.0)


def test_cutout_true_means_the_reports_8px():
    assert TrainConfig(cutout=True).cutout == 8 and TrainConfig(cutout=False).cutout == 0


# --------------------------------------------------------------------------- schedules
def test_step_schedule_report_epochs_30_and_60():
    f = [lr_factor("step", e, 0, 10, 100, milestones=(30, 60)) for e in (0, 29, 30, 59, 60, 99)]
    assert f == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_and_onecycle_shapes():
    assert lr_factor("cosine", 0, 0, 10, 10) == pytest.approx(1.0)
    assert lr_factor("cosine", 5, 0, 10, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 9, 9, 10, 10) < 0.01
    # one-cycle: warm-up from ~0 to 1 over 1 epoch, then linear down to ~0
    assert lr_factor("onecycle", 0, 0, 10, 5, warmup_epochs=1) == pytest.approx(0.1)
    assert lr_factor("onecycle", 1, 0, 10, 5, warmup_epochs=1) == pytest.approx(1.0)
    assert lr_factor("onecycle", 3, 0, 10, 5, warmup_epochs=1) == pytest.approx(0.5)
    assert lr_factor("constant", 7, 3, 10, 10) == 1.0


def test_plateau_decays_after_patience_epochs_without_a_new_minimum():
    s = LRSchedule(TrainConfig(schedule="plateau", plateau_patience=3, lr=0.1), steps_per_epoch=5)
    for loss in (1.0, 0.9, 0.95, 0.91, 0.92):  # minimum 0.9, then 3 epochs without a new one
        assert s.lr(0, 0) == pytest.approx(0.1)
        s.epoch_end(loss)
    assert s.lr(5, 0) == pytest.approx(0.01)
    state = s.state_dict()
    s2 = LRSchedule(TrainConfig(schedule="plateau", plateau_patience=3, lr=0.1), 5)
    s2.load_state_dict(state)
    assert s2.lr(5, 0) == pytest.approx(0.01) and s2.state_dict() == state


# ------------------------------------------------------------- device decisions (pure)
def test_cpu_bf16_is_detected_from_the_cpu_flags():
    from course_utils.devices import cpu_has_fast_bf16
    epyc = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
    older = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
    sapphire = "flags\t\t: avx512f amx_tile amx_bf16 amx_int8\n"
    graviton3 = "Features\t: fp asimd sve bf16 i8mm\n"
    assert cpu_has_fast_bf16(epyc) and cpu_has_fast_bf16(sapphire) and cpu_has_fast_bf16(graviton3)
    assert not cpu_has_fast_bf16(older) and not cpu_has_fast_bf16("")
    assert not cpu_has_fast_bf16("model name\t: bf16 in a name, not a flag\n")


def test_amp_settings_per_device():
    a = amp_settings("cuda", "auto", bf16_supported=True)
    assert (a.enabled, a.dtype, a.scaler) == (True, torch.bfloat16, False)
    a = amp_settings("cuda", "auto", bf16_supported=False)
    assert (a.enabled, a.dtype, a.scaler) == (True, torch.float16, True)
    assert amp_settings("cuda", "fp16").scaler is True
    assert amp_settings("cuda", "off").enabled is False
    assert amp_settings("cpu", "auto").enabled is False                  # no bf16 instructions
    assert amp_settings("cpu", "auto", cpu_bf16_fast=True).dtype == torch.bfloat16
    assert amp_settings("cpu", "off", cpu_bf16_fast=True).enabled is False
    assert amp_settings("cpu", "bf16").dtype == torch.bfloat16
    assert amp_settings("mps", "auto").enabled is False
    assert amp_settings("mps", "fp16").scaler is True
    with pytest.raises(ConfigError, match="amp='fp16'.*bf16, off"):
        amp_settings("cpu", "fp16")
    with pytest.raises(ConfigError, match="amp='bf16'"):
        amp_settings("cuda", "bf16", bf16_supported=False)
    assert amp_settings("cuda", "auto", bf16_supported=False).describe() == "fp16 + GradScaler"


def test_channels_last_and_backend_flags():
    assert use_channels_last("cuda") and use_channels_last("cpu") and not use_channels_last("mps")
    assert not use_channels_last("cuda", "off") and use_channels_last("mps", "on")
    assert backend_flags("cuda", deterministic=False)["cudnn_benchmark"] is True
    assert backend_flags("cuda", deterministic=True) == {
        "cudnn_benchmark": False, "cudnn_deterministic": True, "allow_tf32": False}
    assert not any(backend_flags("cpu", deterministic=False).values())


def test_dist_from_env():
    assert dist_from_env({}).world_size == 1
    d = dist_from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (d.rank, d.world_size, d.local_rank, d.is_main, d.active) == (2, 4, 0, False, True)
    with pytest.raises(ConfigError, match="RANK=5"):
        dist_from_env({"WORLD_SIZE": "2", "RANK": "5"})


# ------------------------------------------------------------------------------- fit
def test_fit_learns_and_writes_its_files(tmp_path):
    torch.manual_seed(0)
    d = synthetic_bundle(n_train=256, n_val=64, n_test=64, batch_size=32, augment=False)
    res = fit(TinyNet(), d, small_config(tmp_path, epochs=4, lr=0.1))
    hist = read_metrics(tmp_path)
    assert len(hist) == 4 and hist == res.history
    required = {"epoch", "train_loss", "train_acc", "train_top5", "val_loss", "val_acc",
                "val_top5", "lr", "seconds", "images_per_s"}
    assert required <= set(hist[0])
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert max(r["val_acc"] for r in hist) > 0.5  # 4 classes: chance is 0.25
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "completed" and s["epochs_run"] == 4
    assert s["best_epoch"] == max(hist, key=lambda r: r["val_acc"])["epoch"]
    assert s["test_acc"] == res.test_acc and 0 <= s["test_acc"] <= 1
    assert s["params"] == sum(p.numel() for p in TinyNet().parameters())
    assert s["data"]["label"].startswith("synthetic") and s["data"]["jpeg_copy"] is False
    assert s["device"]["type"] == "cpu" and s["config"]["lr"] == 0.1
    ck = load_checkpoint(tmp_path / "checkpoint.pt")  # weights_only=True inside
    assert ck["epoch"] == 4 and {"model", "optimizer", "scheduler", "scaler", "rng", "best",
                                 "history", "config"} <= set(ck)
    assert (tmp_path / "best.pt").exists()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_the_commit_recorded_is_the_one_training_started_from(tmp_path, monkeypatch):
    """A commit made while a run trains changes nothing it has imported: summary.json
    records the commit when training started, not the one when it finished."""
    from course_utils import train as train_mod

    head = ["aaaa111"]
    monkeypatch.setattr(train_mod, "source_commit", lambda *a: head[0])

    class CommitDuringTraining:
        def on_epoch_end(self, record, history):
            head[0] = "bbbb222"

    fit(TinyNet(), data(augment=False), small_config(tmp_path, epochs=2),
        callbacks=[CommitDuringTraining()])
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["git_commit"] == "aaaa111" and s["finished"]


def test_source_commit_marks_a_changed_package_dirty(tmp_path):
    import subprocess

    from course_utils.devices import source_commit

    assert source_commit(tmp_path) is None                       # no checkout
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a],
                                    cwd=tmp_path, check=True, capture_output=True, text=True)
    git("init", "-q")
    (tmp_path / "course_utils").mkdir()
    (tmp_path / "course_utils" / "m.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("a\n")
    git("add", "."); git("commit", "-qm", "one")
    head = git("rev-parse", "--short", "HEAD").stdout.strip()
    assert source_commit(tmp_path) == head
    (tmp_path / "notes.txt").write_text("b\n")                    # outside the package
    (tmp_path / "course_utils" / "new.py").write_text("")         # untracked
    assert source_commit(tmp_path) == head
    (tmp_path / "course_utils" / "m.py").write_text("x = 2\n")
    assert source_commit(tmp_path) == head + "-dirty"


def test_fit_records_what_the_loaders_really_do(tmp_path):
    d = data(batch_size=16, augment=True, cutout=8)
    res = fit(TinyNet(), d, small_config(None, epochs=1, batch_size=128, augment=False))
    c = res.summary["config"]
    assert (c["batch_size"], c["augment"], c["cutout"]) == (16, True, 8)


def test_same_seed_same_metrics():
    def once():
        torch.manual_seed(0)
        r = fit(TinyNet(), data(), small_config(None, epochs=2, schedule="cosine"))
        return without_timing(r.history), r.model.state_dict()

    h1, w1 = once()
    h2, w2 = once()
    assert h1 == h2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_resume_continues_exactly(tmp_path):
    """2 epochs, then resume to 4: bit-identical to 4 epochs straight (CPU)."""
    torch.manual_seed(0)
    straight = fit(TinyNet(), data(), small_config(tmp_path / "a", epochs=4, schedule="step",
                                                   milestones=(3,)))
    torch.manual_seed(0)
    fit(TinyNet(), data(), small_config(tmp_path / "b", epochs=2, schedule="step", milestones=(3,)))
    torch.manual_seed(123)  # a different init: the checkpoint must overwrite it
    resumed = fit(TinyNet(), data(), small_config(tmp_path / "b", epochs=4, schedule="step",
                                                  milestones=(3,), resume=True))
    assert without_timing(resumed.history) == without_timing(straight.history)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(read_metrics(tmp_path / "b")) == 4


def test_refuses_to_start_over_an_existing_run(tmp_path):
    fit(TinyNet(), data(), small_config(tmp_path, epochs=1))
    with pytest.raises(ConfigError, match="resume") as e:
        fit(TinyNet(), data(), small_config(tmp_path, epochs=1))
    assert e.value.param == "resume" and "overwrite" in str(e.value)
    fit(TinyNet(), data(), small_config(tmp_path, epochs=1, overwrite=True))


def test_resume_with_another_model_is_refused(tmp_path):
    fit(TinyNet(), data(), small_config(tmp_path, epochs=1))
    with pytest.raises(ConfigError) as e:
        fit(TinyNet(), data(), small_config(tmp_path, epochs=2, resume=True, seed=1))
    assert e.value.param == "seed" and "seed=0" in str(e.value)


class NaNAt(nn.Module):
    """TinyNet whose output becomes NaN at its n-th training forward pass."""

    def __init__(self, n):
        super().__init__()
        self.net, self.n, self.calls = TinyNet(), n, 0

    def forward(self, x):
        y = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls == self.n:
                y = y * float("nan")
        return y


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_checkpoint(tmp_path):
    d = data()  # 128 images / batch 32 = 4 steps per epoch
    torch.manual_seed(0)
    with pytest.raises(NonFiniteLossError) as e:
        fit(NaNAt(4 + 3), d, small_config(tmp_path, epochs=3))  # epoch 2, step 3
    assert (e.value.epoch, e.value.step) == (2, 3)
    msg = str(e.value)
    assert "epoch 2, step 3 of 4" in msg and "nan" in msg and "intact" in msg
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert len(read_metrics(tmp_path)) == 1
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "failed" and "epoch 2, step 3" in s["error"]


class Constant(nn.Module):
    """Its output ignores the input: the validation loss never improves."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        return self.w.expand(len(x), 4) * 0.0


def test_early_stopping_and_plateau(tmp_path):
    res = fit(Constant(), data(), small_config(tmp_path, epochs=10, early_stop_patience=2,
                                               schedule="plateau", plateau_patience=1))
    assert res.summary["status"] == "early_stopped" and len(res.history) == 3
    assert [r["lr"] for r in res.history] == pytest.approx([0.05, 0.05, 0.005])  # epoch 2: no new minimum -> x0.1


def test_time_limit_stops_between_epochs(tmp_path):
    res = fit(TinyNet(), data(), small_config(None, epochs=50, time_limit_s=1e-3))
    assert res.summary["status"] == "time_limit" and len(res.history) == 1


def test_callbacks_live_plot_and_curves(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from course_utils.callbacks import Callback, LivePlot
    from course_utils.viz import ablation_bars, plot_history

    class Count(Callback):
        steps = epochs = 0

        def on_step_end(self, epoch, step, steps, loss):
            Count.steps += 1

        def on_epoch_end(self, record, history):
            Count.epochs += 1

    png = tmp_path / "live.png"
    fit(TinyNet(), data(), small_config(tmp_path / "run", epochs=2),
        callbacks=[Count(), LivePlot(save_to=png)])
    assert (Count.steps, Count.epochs) == (8, 2) and png.stat().st_size > 1000
    fig = plot_history(tmp_path / "run")  # from the run folder's metrics.jsonl
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    fig = ablation_bars([{"name": "a", "report": 70.0, "ours_mean": 50.0, "ours_std": 1.0},
                         {"name": "b", "report": 71.0, "ours_mean": None, "status": "failed"},
                         {"name": "c", "report": 72.0, "ours_mean": 40.0, "ours_std": None}])
    rep, ours = fig.axes   # the report's values and ours on separate axes, each its own scale
    assert rep.get_xticklabels()[1].get_text() == "b" and ours.get_ylim()[1] < 70
    # one error bar: row a (2+ seeds); none for the failed row or the single-seed row c
    assert [len(c.get_segments()) for c in ours.collections] == [1]


def test_overwrite_starts_clean_and_early_stopped_runs_stay_stopped(tmp_path):
    fit(Constant(), data(), small_config(tmp_path, epochs=10, early_stop_patience=1))
    assert len(read_metrics(tmp_path)) == 2
    res = fit(Constant(), data(), small_config(tmp_path, epochs=10, early_stop_patience=1,
                                               resume=True))
    assert res.summary["status"] == "early_stopped" and len(res.history) == 2
    # start over without best.pt: every file of the early-stopped run must be gone, not
    # merely overwritten (the new run writes no best.pt that could hide a stale one)
    res = fit(TinyNet(), data(), small_config(tmp_path, epochs=1, overwrite=True, save_best=False))
    assert len(read_metrics(tmp_path)) == 1 and not (tmp_path / "best.pt").exists()
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["epoch"] == 1 and ck["model"].keys() == res.model.state_dict().keys()
    assert json.loads((tmp_path / "summary.json").read_text())["model_class"] == "TinyNet"


def test_resume_refuses_a_new_length_for_length_dependent_schedules(tmp_path):
    fit(TinyNet(), data(), small_config(tmp_path, epochs=1, schedule="cosine"))
    with pytest.raises(ConfigError) as e:
        fit(TinyNet(), data(), small_config(tmp_path, epochs=3, schedule="cosine", resume=True))
    assert e.value.param == "epochs"


# ------------------------------------------------- what a run records (one way each)
def test_a_zoo_model_with_a_default_config_is_recorded_as_itself(tmp_path):
    """create_model stamps the model (course_cfg); the data bundle says what it holds;
    the summary records those, not the default config's dense2net121 on CIFAR-100."""
    from course_utils.models import create_model

    torch.manual_seed(0)
    d = data(num_classes=4, mode="quick")
    model = create_model("densenet_tiny", num_classes=4, in_chans=3)
    assert model.course_cfg == {"name": "densenet_tiny", "args": {"num_classes": 4, "in_chans": 3}}
    res = fit(model, d, TrainConfig(epochs=1, out=str(tmp_path), progress=False, verbose=False,
                                    device="cpu", threads=1))
    for c in (res.summary["config"], json.loads((tmp_path / "summary.json").read_text())["config"],
              load_checkpoint(tmp_path / "checkpoint.pt")["config"]):
        assert (c["model"], c["model_args"]) == ("densenet_tiny", {})  # classes and channels: the data's
        assert (c["dataset"], c["mode"], c["batch_size"]) == ("synthetic", "quick", 32)
        assert (c["train_size"], c["val_size"], c["test_size"]) == (128, 64, 64)  # not the mode's
    assert res.summary["model_class"] == "DenseNet"
    with pytest.raises(ConfigError) as e:  # resuming onto another model is refused by name
        fit(create_model("dense2net_tiny", num_classes=4), d,
            TrainConfig(epochs=2, out=str(tmp_path), resume=True, progress=False, verbose=False))
    assert e.value.param == "model" and "densenet_tiny" in str(e.value)


def test_model_arguments_the_data_does_not_imply_are_recorded():
    from course_utils.models import create_model

    model = create_model("dense2net_tiny", num_classes=4, scale=2, groups=2)
    res = fit(model, data(), small_config(None, epochs=1))
    c = res.summary["config"]
    assert (c["model"], c["model_args"]) == ("dense2net_tiny", {"scale": 2, "groups": 2})
    assert res.summary["data"]["label"].startswith("synthetic")


def test_resume_needs_an_out_folder():
    with pytest.raises(ConfigError) as e:
        TrainConfig(resume=True)
    assert e.value.param == "resume" and "out" in str(e.value) and "allowed" in str(e.value)
    assert TrainConfig(resume=True, out="runs/x").resume


def test_the_lambda_lr_drives_the_optimizer_as_lr_factor_says():
    """LRSchedule hands lr_factor to torch's LambdaLR: the LR of every optimizer step is
    lr x lr_factor(epoch, step), across a resume and across a plateau decay."""
    cfg = TrainConfig(schedule="onecycle", epochs=3, warmup_epochs=1.0, lr=0.4)
    w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=cfg.lr)
    s = LRSchedule(cfg, steps_per_epoch=4)
    assert isinstance(s.attach(opt), torch.optim.lr_scheduler.LambdaLR)
    seen = []
    for epoch in range(3):
        for step in range(4):
            seen.append(s.current_lr())
            opt.step()
            s.step()
    want = [0.4 * lr_factor("onecycle", e, k, 4, 3, warmup_epochs=1.0) for e in range(3) for k in range(4)]
    assert seen == want  # the same floats, not merely close
    resumed = LRSchedule(cfg, 4)
    resumed.attach(torch.optim.SGD([w], lr=99.0), start_epoch=2)  # a resumed group's LR is ignored
    assert resumed.current_lr() == want[8]
    p = LRSchedule(TrainConfig(schedule="plateau", plateau_patience=1, lr=0.1), 2)
    p.attach(torch.optim.SGD([w], lr=0.1))
    p.epoch_end(1.0, 0)
    p.epoch_end(2.0, 1)  # no new minimum for 1 epoch: x0.1 from the next step on
    assert p.current_lr() == pytest.approx(0.01)


def test_the_command_line_is_generated_from_the_fields(tmp_path):
    """One option per TrainConfig field (model_args has shortcuts), whose help is the
    field's; left-out options keep the preset's (and the --config file's) values."""
    from dataclasses import fields

    from course_utils.train import _parser, config_from_args

    ap = _parser()
    helps = {a.dest: a.help for a in ap._actions}
    assert {f.name for f in fields(TrainConfig)} - set(helps) == {"model_args"}
    for f in fields(TrainConfig):
        if f.name != "model_args":
            assert helps[f.name] == f.metadata["help"].replace("%", "%%"), f.name
    c = config_from_args(ap.parse_args(["--time-limit", "5", "--early-stop", "3", "--quiet",
                                        "--no-sync-bn", "--milestone-fractions", "0.5", "0.75"]))
    assert (c.time_limit_s, c.early_stop_patience, c.verbose, c.sync_bn) == (5.0, 3, False, False)
    assert c.resolved_milestones() == (50, 75) and c == preset(
        "report", time_limit_s=5.0, early_stop_patience=3, verbose=False, sync_bn=False,
        milestone_fractions=(0.5, 0.75))
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"config": {"lr": 0.02, "verbose": False, "resume": True}}))
    c = config_from_args(ap.parse_args(["--config", str(saved), "--epochs", "7"]))
    assert (c.lr, c.epochs, c.verbose, c.resume) == (0.02, 7, False, False)  # --resume decides
    saved.write_text(json.dumps({"lr": 0.02, "lrr": 1}))
    with pytest.raises(ConfigError) as e:
        config_from_args(ap.parse_args(["--config", str(saved)]))
    assert e.value.param == "config" and "'lrr'" in str(e.value)
