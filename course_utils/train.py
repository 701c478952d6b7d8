"""The training engine: the Dense2Net report's recipe, resumable, on one device or many.

In a notebook, with a model and data you already have::

    from course_utils.train import TrainConfig, fit
    result = fit(model, data, TrainConfig(epochs=5, schedule="cosine", out="runs/demo"))
    result.history[-1]["val_acc"], result.summary["test_acc"]

From the command line (the report's appendix, section 7, with its options spelled out)::

    python -m course_utils.train --model dense2net121 --dataset cifar100 --epochs 100 \\
        --lr 0.1 --scale 4 --groups 1 --no-se --no-cutout --augment --out runs/d2n
    python -m course_utils.train ... --resume          # the report's --r
    torchrun --nproc_per_node 4 -m course_utils.train ...   # DDP, same code path

What a run leaves in ``OUT`` (every file written atomically: temp file + rename, so a
killed process never leaves a half-written one):

- ``metrics.jsonl``: one JSON object per epoch (epoch, train_loss, train_acc, train_top5,
  val_loss, val_acc, val_top5, lr, seconds, train_seconds, images_per_s);
- ``checkpoint.pt``: model, optimizer, LR schedule, grad scaler, RNG states, epoch, best,
  history, config; rewritten after every epoch; ``--resume`` continues from it;
- ``best.pt``: the model weights of the epoch with the best validation accuracy;
- ``summary.json``: config, best epoch, test accuracy, parameters, MACs, data source
  (including whether it is the JPEG copy of CIFAR-10), device, status.

Accuracies are fractions in [0, 1] in the files; the printed lines show percent.
Everything the report fixes is a default of :class:`TrainConfig` (each default says where
it comes from); ``preset("densenet_paper")`` is the DenseNet paper's own recipe.

Devices: ``device="auto"`` takes CUDA, else Apple MPS, else the CPU. On CUDA: bf16
autocast (fp16 + GradScaler on GPUs without bf16), channels_last, cuDNN autotuning
(unless ``deterministic``), optional ``compile``. Under ``torchrun`` every process trains
its shard of each global batch with DistributedDataParallel (NCCL on GPUs, gloo on the
CPU; BatchNorm becomes SyncBatchNorm on CUDA), rank 0 writes the files. On the CPU:
channels_last, fp32; the command line makes idle OpenMP threads sleep
(OMP_WAIT_POLICY=PASSIVE) because on a CPU shared with other jobs spinning threads made
training up to 6x slower; on a machine of your own OMP_WAIT_POLICY=ACTIVE can be faster
(benchmarks/train.py measures both).
"""

from __future__ import annotations

if __name__ == "__main__":
    # The command line only, and before torch loads OpenMP: idle OpenMP threads sleep
    # instead of spinning. On a CPU shared with other processes spinning threads made
    # training up to 6x slower (benchmarks/train.py measures it); an explicit
    # OMP_WAIT_POLICY in the environment wins.
    import os as _os

    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import difflib
import io
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .env import DEVICES, resolve_device

__all__ = [
    "AMP_CHOICES",
    "PRESETS",
    "SCHEDULES",
    "AmpSettings",
    "ConfigError",
    "DistInfo",
    "FitResult",
    "LRSchedule",
    "NonFiniteLossError",
    "TrainConfig",
    "amp_settings",
    "atomic_write_bytes",
    "atomic_write_text",
    "backend_flags",
    "dist_from_env",
    "fit",
    "load_checkpoint",
    "lr_factor",
    "main",
    "make_data",
    "make_model",
    "preset",
    "read_metrics",
    "run",
    "use_channels_last",
]

SCHEDULES = ("step", "plateau", "cosine", "onecycle", "constant")
AMP_CHOICES = ("auto", "off", "bf16", "fp16")
CHANNELS_LAST_CHOICES = ("auto", "on", "off")
EARLY_STOP_METRICS = ("val_loss", "val_acc")
# not a real dataset: data.synthetic_bundle (10 classes of bright squares, no files), for
# tests and demos of the engine; sizes from train/val/test_size or SYNTHETIC_SIZES
SYNTHETIC = "synthetic"
SYNTHETIC_SIZES = {"smoke": (320, 80, 80), "quick": (2000, 400, 400), "full": (5000, 1000, 1000)}
SYNTHETIC_CLASSES = 10
CHECKPOINT_FORMAT = 1
# a resumed run must agree with its checkpoint on these (anything else may change,
# e.g. more epochs, a different device or more workers)
RESUME_MUST_MATCH = ("model", "model_args", "dataset", "mode", "train_size", "val_size",
                     "test_size", "batch_size", "seed", "augment", "cutout", "schedule",
                     "lr", "momentum", "weight_decay", "nesterov")


class ConfigError(ValueError):
    """A training setting has a value that is not allowed; ``param`` names the setting."""

    def __init__(self, param: str, value: Any, allowed: str):
        self.param, self.value, self.allowed = param, value, allowed
        super().__init__(f"{param}={value!r} is not allowed; {allowed}")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the run stopped before using it."""

    def __init__(self, epoch: int, step: int, steps: int, value: float, checkpoint: str):
        self.epoch, self.step, self.value, self.checkpoint = epoch, step, value, checkpoint
        super().__init__(
            f"the training loss is {value} at epoch {epoch}, step {step} of {steps}; "
            f"the run stopped before this step changed the weights. {checkpoint} "
            "Try a lower --lr, --amp off, or --grad-clip, then --resume.")


# --------------------------------------------------------------------------------------
# The configuration
# --------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Everything a training run needs besides the model and the data.

    ``model``, ``model_args``, ``dataset``, ``mode`` and the sizes say which model and
    data :func:`run` (and the command line) builds; :func:`fit` takes a model and data
    you built and records these fields as given.
    """

    # --- what to train -----------------------------------------------------------------
    model: str = "dense2net121"  # report sec. 3.1-3.2 and Fig. 6: Dense2Net-121
    model_args: dict = field(default_factory=dict)  # builder kwargs; Table 1 rows set scale, groups, attn_layer
    dataset: str = "cifar100"  # report sec. 4.1: every experiment is on CIFAR-100
    data_root: Optional[str] = None  # None: the data layer's search order (COURSE_DATA, data/, ...)
    mode: str = "full"  # the report trains on the whole training split; quick/smoke: subsets for lessons/CI
    train_size: Optional[int] = None  # None: the mode's size (data.MODE_SIZES)
    val_size: Optional[int] = None  # None: the mode's size; full mode holds out val_fraction (report sec. 4.1)
    test_size: Optional[int] = None  # None: the mode's size (all 10,000 in full mode)
    augment: bool = True  # report sec. 4.2.1: mirroring/shifting; False = Table 1 "No Augmentation" rows
    cutout: int = 0  # report sec. 4.2.2: 8 px, only in the "with Cutout" row of Table 1; 0 = off
    # --- optimisation --------------------------------------------------------------------
    epochs: int = 100  # report sec. 3.2 and 4.1
    batch_size: int = 128  # report sec. 3.2; the global batch (split over DDP processes)
    eval_batch_size: int = 512  # not a training setting: only speed, results are unchanged
    lr: float = 0.1  # report appendix: --lr default 0.1
    momentum: float = 0.9  # report sec. 3.2
    weight_decay: float = 1e-4  # report sec. 3.2
    nesterov: bool = False  # the report says SGD with momentum; the DenseNet paper uses Nesterov
    schedule: str = "step"  # report sec. 4.1: its first schedule (step); "plateau" is its later one
    milestones: tuple = (30, 60)  # report sec. 4.1: x0.1 at epochs 30 and 60
    milestone_fractions: Optional[tuple] = None  # when set, milestones = these fractions of epochs (DenseNet paper: 0.5, 0.75)
    gamma: float = 0.1  # report sec. 4.1: "decreased by a factor of 10" (step and plateau)
    plateau_patience: int = 10  # report sec. 4.1: decay when the val loss sets no new minimum for 10 epochs
    warmup_epochs: float = 0.0  # the report has none; linear warm-up, useful for onecycle and large DDP batches
    early_stop_patience: Optional[int] = None  # report sec. 4.1 added early stopping later, no patience given: off
    early_stop_metric: str = "val_loss"  # report sec. 4.1: over-fitting shows in the validation loss
    label_smoothing: float = 0.0  # not in the report
    grad_clip: Optional[float] = None  # not in the report: max global gradient norm, None = off
    time_limit_s: Optional[float] = None  # not in the report: stop after the epoch that would overrun it
    # --- devices -------------------------------------------------------------------------
    device: str = "auto"  # cuda, else mps, else cpu (env.resolve_device)
    amp: str = "auto"  # CUDA: bf16 (fp16 + GradScaler without bf16); CPU and MPS: off (see amp_settings)
    channels_last: str = "auto"  # CUDA and CPU: on (measured in benchmarks/train.py); MPS: off
    compile: bool = False  # torch.compile: slow start, pays off only on long GPU runs
    deterministic: bool = False  # CUDA: deterministic cuDNN, no autotuning (CPU runs are deterministic anyway)
    sync_bn: bool = True  # DDP on CUDA: BN statistics over the global batch, as one GPU with the same batch
    threads: Optional[int] = None  # torch CPU threads; None = torch's default (all cores)
    workers: int = 0  # DataLoader processes; augmentation is batched, 0 is fastest on 2 cores
    # --- bookkeeping ---------------------------------------------------------------------
    seed: int = 0  # one seed for the split, the shuffle, the augmentation and the weights
    out: Optional[str] = None  # folder for metrics/checkpoint/summary; None = keep nothing on disk
    resume: bool = False  # report appendix --r: continue from OUT/checkpoint.pt
    overwrite: bool = False  # False: refuse to start over a checkpoint already in OUT (lose nothing)
    save_best: bool = True  # keep OUT/best.pt, and report test accuracy of the best-validation weights too
    progress: bool = True  # tqdm bars (epochs, batches); COURSE_PROGRESS=0 also turns them off
    verbose: bool = True  # one printed line per epoch

    def __post_init__(self) -> None:
        if isinstance(self.cutout, bool):
            self.cutout = 8 if self.cutout else 0  # report sec. 4.2.2: one 8-px hole
        if isinstance(self.channels_last, bool):
            self.channels_last = "on" if self.channels_last else "off"
        self.milestones = tuple(int(m) for m in self.milestones) if _is_seq(self.milestones) else self.milestones
        if _is_seq(self.milestone_fractions):
            self.milestone_fractions = tuple(float(m) for m in self.milestone_fractions)
        self.model_args = dict(self.model_args or {})
        self.validate()

    # ------------------------------------------------------------------------------
    def validate(self) -> None:
        from .data import DATASETS, MODES

        _choice("dataset", self.dataset, [*DATASETS, SYNTHETIC])
        _choice("mode", self.mode, MODES)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("amp", self.amp, AMP_CHOICES)
        _choice("channels_last", self.channels_last, CHANNELS_LAST_CHOICES)
        _choice("early_stop_metric", self.early_stop_metric, EARLY_STOP_METRICS)
        if not (self.device in DEVICES or str(self.device).startswith("cuda:")):
            raise ConfigError("device", self.device, f"allowed: {', '.join(DEVICES)} or cuda:N")
        for name in ("epochs", "batch_size", "eval_batch_size", "plateau_patience"):
            _int_at_least(name, getattr(self, name), 1)
        for name in ("cutout", "workers", "seed"):
            _int_at_least(name, getattr(self, name), 0)
        for name in ("train_size", "val_size", "test_size", "early_stop_patience", "threads"):
            if getattr(self, name) is not None:
                _int_at_least(name, getattr(self, name), 1)
        _number_in("lr", self.lr, 0, math.inf, "a finite number > 0", low_open=True)
        _number_in("momentum", self.momentum, 0, 1, "a number in [0, 1)", high_open=True)
        _number_in("weight_decay", self.weight_decay, 0, math.inf, "a finite number >= 0")
        _number_in("gamma", self.gamma, 0, 1, "a number in (0, 1]", low_open=True)
        _number_in("warmup_epochs", self.warmup_epochs, 0, self.epochs,
                   f"a number in [0, epochs={self.epochs}]")
        _number_in("label_smoothing", self.label_smoothing, 0, 1, "a number in [0, 1)",
                   high_open=True)
        if self.grad_clip is not None:
            _number_in("grad_clip", self.grad_clip, 0, math.inf, "None or a number > 0",
                       low_open=True)
        if self.time_limit_s is not None:
            _number_in("time_limit_s", self.time_limit_s, 0, math.inf, "None or seconds > 0",
                       low_open=True)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov", self.nesterov, "Nesterov needs momentum > 0")
        if not _is_seq(self.milestones) or any(m < 0 for m in self.milestones) or \
                list(self.milestones) != sorted(set(self.milestones)):
            raise ConfigError("milestones", self.milestones,
                              "allowed: increasing epoch numbers >= 0, e.g. (30, 60)")
        if self.milestone_fractions is not None:
            mf = self.milestone_fractions
            if not _is_seq(mf) or not all(0 < f < 1 for f in mf) or list(mf) != sorted(set(mf)):
                raise ConfigError("milestone_fractions", mf,
                                  "allowed: None or increasing fractions in (0, 1), e.g. (0.5, 0.75)")
        for name in ("augment", "nesterov", "compile", "deterministic", "sync_bn", "resume",
                     "overwrite", "save_best", "progress", "verbose"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "allowed: True or False")
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("model", self.model, "allowed: a registered model name")

    def resolved_milestones(self) -> tuple:
        """Milestones in epochs (from milestone_fractions when those are set)."""
        if self.milestone_fractions is not None:
            return tuple(int(round(f * self.epochs)) for f in self.milestone_fractions)
        return tuple(self.milestones)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.resolved_milestones())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(unknown[0], d[unknown[0]],
                              f"not a TrainConfig field; fields: {', '.join(sorted(names))}")
        return cls(**d)


def _is_seq(x) -> bool:
    return isinstance(x, (tuple, list))


def _choice(name, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(name, value, f"allowed: {', '.join(map(str, allowed))}")


def _int_at_least(name, value, low) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(name, value, f"allowed: an integer >= {low}")


def _number_in(name, value, low, high, allowed, low_open=False, high_open=False) -> None:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and \
            (v < high if high_open else v <= high)
    if not ok:
        raise ConfigError(name, value, f"allowed: {allowed}")


# Named recipes. Each is a dict of the TrainConfig fields that differ from the defaults.
PRESETS: dict[str, dict] = {
    # The Dense2Net report's recipe as it describes it (sec. 3.2, 4.1): the defaults.
    "report": {},
    # The report's later recipe (sec. 4.1): LR x0.1 on a validation-loss plateau of 10
    # epochs plus early stopping (its patience is not given; 20 = two plateau periods).
    "report_plateau": dict(schedule="plateau", early_stop_patience=20),
    # The DenseNet paper's CIFAR recipe (Huang et al., sec. 4.2): 300 epochs, batch 64,
    # LR 0.1 divided by 10 at 50% and 75% of training, Nesterov momentum 0.9, wd 1e-4.
    # The report's DenseNet baseline reached 71.9% (Table 1), about 5 points under
    # published reproductions (~77%): train the same backbone this way to test why.
    "densenet_paper": dict(model="densenet121_cifar", epochs=300, batch_size=64,
                           nesterov=True, schedule="step", milestone_fractions=(0.5, 0.75)),
    # A widely used public CIFAR-100 recipe, as its train.py and conf/global_settings.py
    # set it (weiaicunzai/pytorch-cifar100): 200 epochs, batch 128, LR 0.1 with a linear
    # warm-up over the first epoch (its WarmUpLR, `-warm 1`), then divided by 5 at epochs
    # 60, 120 and 160 (MultiStepLR, gamma 0.2), plain SGD momentum 0.9 (not Nesterov),
    # wd 5e-4. Its README lists DenseNet-121 (7.0M) at 22.99% top-1 error on CIFAR-100,
    # i.e. 77.01%, against the report's 71.91%.
    "cifar100_repro": dict(model="densenet121_cifar", epochs=200, batch_size=128, nesterov=False,
                           warmup_epochs=1.0, weight_decay=5e-4, schedule="step",
                           milestone_fractions=(0.3, 0.6, 0.8), gamma=0.2),
    # The CPU classroom recipe of benchmarks/cifar10_cpu.py: the compact ResNet-9-style
    # CNN on CIFAR-10, one-cycle LR (short warm-up, linear decay), label smoothing;
    # reaches >= 70% test accuracy in under 15 minutes on 2 CPU cores.
    "cpu_fast": dict(model="cifar_cnn", dataset="cifar10", mode="full", epochs=5,
                     batch_size=256, lr=0.4, nesterov=True, weight_decay=5e-4,
                     schedule="onecycle", warmup_epochs=1.0, label_smoothing=0.1),
}


def preset(name: str = "report", **overrides) -> TrainConfig:
    """A TrainConfig from a named recipe (PRESETS), with keyword overrides."""
    if name not in PRESETS:
        raise ConfigError("preset", name, f"allowed: {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


# --------------------------------------------------------------------------------------
# Pure decisions about devices (unit-tested on any machine)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AmpSettings:
    enabled: bool
    dtype: Optional[torch.dtype]
    scaler: bool  # a GradScaler is needed (fp16 gradients can underflow)

    def describe(self) -> str:
        if not self.enabled:
            return "fp32"
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype] + \
            (" + GradScaler" if self.scaler else "")


def amp_settings(device_type: str, amp: str = "auto", *, bf16_supported: bool = True) -> AmpSettings:
    """Which autocast dtype and whether a GradScaler, for a device type and an `amp` setting.

    auto: CUDA -> bf16 where the GPU supports it (Ampere and later), else fp16 + scaler;
    CPU and MPS -> off (on CPU bf16 autocast is rarely faster and changes the numbers).
    Explicit: "bf16" anywhere it is supported; "fp16" on CUDA/MPS (with a scaler);
    "off" everywhere.
    """
    _choice("amp", amp, AMP_CHOICES)
    if device_type not in ("cpu", "cuda", "mps"):
        raise ConfigError("device", device_type, "allowed: cpu, cuda, mps")
    if amp == "off" or (amp == "auto" and device_type != "cuda"):
        return AmpSettings(False, None, False)
    if amp == "auto":
        amp = "bf16" if bf16_supported else "fp16"
    if amp == "bf16":
        if not bf16_supported:
            raise ConfigError("amp", amp, f"this {device_type} device has no bf16; allowed: fp16, off")
        return AmpSettings(True, torch.bfloat16, False)
    if device_type == "cpu":
        raise ConfigError("amp", amp, "fp16 autocast is for GPUs; on the CPU allowed: bf16, off")
    return AmpSettings(True, torch.float16, True)


def use_channels_last(device_type: str, setting: str = "auto") -> bool:
    """channels_last memory format? auto: on for CUDA (tensor cores want NHWC) and for the
    CPU (oneDNN convolutions; measured in benchmarks/train.py), off for MPS."""
    _choice("channels_last", setting, CHANNELS_LAST_CHOICES)
    if setting != "auto":
        return setting == "on"
    return device_type in ("cuda", "cpu")


def backend_flags(device_type: str, deterministic: bool) -> dict:
    """Backend switches for a run: cuDNN autotuning only on CUDA and only when the run
    need not be bit-reproducible; TF32 matmuls on CUDA unless deterministic."""
    cuda = device_type == "cuda"
    return {"cudnn_benchmark": cuda and not deterministic,
            "cudnn_deterministic": cuda and deterministic,
            "allow_tf32": cuda and not deterministic}


def _apply_backend_flags(flags: dict) -> None:
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
    torch.backends.cuda.matmul.allow_tf32 = flags["allow_tf32"]
    torch.backends.cudnn.allow_tf32 = flags["allow_tf32"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def dist_from_env(env: Optional[dict] = None) -> DistInfo:
    """Rank and world size as torchrun sets them (RANK, WORLD_SIZE, LOCAL_RANK)."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ConfigError("WORLD_SIZE/RANK", dict(WORLD_SIZE=env.get("WORLD_SIZE"),
                          RANK=env.get("RANK")), "integers as torchrun sets them") from e
    if world < 1 or not 0 <= rank < world:
        raise ConfigError("RANK", rank, f"allowed: 0 <= RANK < WORLD_SIZE={world}")
    return DistInfo(rank, world, local)


def _current_dist() -> DistInfo:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        env = dist_from_env()
        return DistInfo(dist.get_rank(), dist.get_world_size(), env.local_rank)
    return DistInfo()


def init_distributed(device: str = "auto") -> DistInfo:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1): NCCL for CUDA,
    gloo otherwise. Returns the rank information; a no-op for a single process."""
    import torch.distributed as dist

    info = dist_from_env()
    if info.active and not dist.is_initialized():
        cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        if cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return info


# --------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------
def lr_factor(schedule: str, epoch: int, step: int, steps_per_epoch: int, epochs: int, *,
              milestones: Sequence[int] = (30, 60), gamma: float = 0.1,
              warmup_epochs: float = 0.0, plateau_factor: float = 1.0) -> float:
    """The LR multiplier for step `step` (0-based) of epoch `epoch` (0-based).

    step: gamma ** (number of milestones <= epoch) - with milestones (30, 60) epochs
    0-29 train at lr, 30-59 at lr/10, 60+ at lr/100 (report sec. 4.1).
    cosine: 0.5 (1 + cos(pi t)), t the fraction of training done, per step.
    onecycle: linear from 1 down to 0 at the end of training (after the warm-up).
    plateau: `plateau_factor`, kept by LRSchedule from the validation losses.
    A linear warm-up over `warmup_epochs` multiplies any of them.
    """
    spe = max(1, steps_per_epoch)
    t_epochs = epoch + step / spe  # epochs done before this step
    if schedule == "step":
        f = gamma ** sum(epoch >= m for m in milestones)
    elif schedule == "plateau":
        f = plateau_factor
    elif schedule == "constant":
        f = 1.0
    elif schedule in ("cosine", "onecycle"):
        span = max(epochs - warmup_epochs, 1e-12)
        t = min(max((t_epochs - warmup_epochs) / span, 0.0), 1.0)
        f = 0.5 * (1 + math.cos(math.pi * t)) if schedule == "cosine" else 1.0 - t
    else:
        raise ConfigError("schedule", schedule, f"allowed: {', '.join(SCHEDULES)}")
    if warmup_epochs > 0:
        f *= min(1.0, (t_epochs + 1 / spe) / warmup_epochs)
    return f


class LRSchedule:
    """Sets the optimizer's LR before every step; keeps the plateau state.

    The LR of any step is a pure function of (epoch, step) and, for "plateau", of the
    validation losses seen so far (``state_dict`` holds them for a resume).
    """

    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.milestones = config.resolved_milestones()
        self.plateau_factor = 1.0
        self.best_loss = math.inf
        self.bad_epochs = 0

    def factor(self, epoch: int, step: int) -> float:
        c = self.config
        return lr_factor(c.schedule, epoch, step, self.steps_per_epoch, c.epochs,
                         milestones=self.milestones, gamma=c.gamma,
                         warmup_epochs=c.warmup_epochs, plateau_factor=self.plateau_factor)

    def lr(self, epoch: int, step: int) -> float:
        return self.config.lr * self.factor(epoch, step)

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> float:
        lr = self.lr(epoch, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def epoch_end(self, val_loss: float) -> None:
        """Plateau bookkeeping (report sec. 4.1): a validation loss that is not a new
        minimum for `plateau_patience` epochs in a row multiplies the LR by gamma."""
        if self.config.schedule != "plateau":
            return
        if val_loss < self.best_loss:
            self.best_loss, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.config.plateau_patience:
                self.plateau_factor *= self.config.gamma
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"plateau_factor": self.plateau_factor, "best_loss": self.best_loss,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_factor = float(state["plateau_factor"])
        self.best_loss = float(state["best_loss"])
        self.bad_epochs = int(state["bad_epochs"])


# --------------------------------------------------------------------------------------
# Files: atomic writes, checkpoints
# --------------------------------------------------------------------------------------
def _write_chunks(f, data: bytes, chunk: int = 1 << 20) -> None:
    for i in range(0, len(data), chunk):
        f.write(data[i:i + chunk])


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a
    part: a temp file in the same folder (unique per process), fsync, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            _write_chunks(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (Path, torch.device, torch.dtype)):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    return repr(o)


def _save_torch(obj, path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read (truncated, corrupt, or not written by fit)."""


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by fit (``torch.load(..., weights_only=True)``). A file that
    cannot be read raises CheckpointError naming it and saying what to do; nothing changes."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - PyTorch's zip/pickle errors, as one clear message
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"{path}: cannot read this checkpoint ({type(e).__name__}: {first[:160]}); it is "
            "truncated or corrupt. Delete it to start the run again from its last good "
            "state, or run with --overwrite to start the run folder afresh.") from None


def read_metrics(out) -> list[dict]:
    """The per-epoch records of a run folder (OUT/metrics.jsonl, or the file itself)."""
    p = Path(out)
    p = p / "metrics.jsonl" if p.is_dir() else p
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def _rng_state() -> dict:
    st = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"name": st[0], "keys": torch.from_numpy(st[1].astype(np.int64)),
                       "pos": int(st[2]), "has_gauss": int(st[3]), "gauss": float(st[4])}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(Exception):  # a different number of GPUs: keep fresh states
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _clean_stale_temp_files(out: Path) -> None:
    for p in out.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass
class FitResult:
    model: nn.Module  # the trained model (final weights), unwrapped from DDP/compile
    history: list  # one dict per epoch, as in metrics.jsonl
    summary: dict  # as in summary.json
    out: Optional[Path] = None

    @property
    def best_epoch(self) -> Optional[int]:
        return self.summary.get("best_epoch")

    @property
    def test_acc(self) -> Optional[float]:
        return self.summary.get("test_acc")


def _progress_enabled(config: TrainConfig, dist: DistInfo) -> bool:
    env = os.environ.get("COURSE_PROGRESS", "").strip().lower()
    return config.progress and dist.is_main and env not in ("0", "false", "no", "off")


def _callbacks_call(callbacks, name, *args) -> None:
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(*args)


def _accuracy_counts(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Correct top-1 and top-5 counts (top-k with k = min(5, classes))."""
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices  # (B, k)
    hit = top == y[:, None]  # (B, k)
    return hit[:, 0].sum(), hit.any(dim=1).sum()


def _all_reduce_(t: torch.Tensor, dist: DistInfo, op: str = "sum") -> torch.Tensor:
    if dist.active:
        import torch.distributed as tdist

        tdist.all_reduce(t, op=tdist.ReduceOp.SUM if op == "sum" else tdist.ReduceOp.MIN)
    return t


@torch.no_grad()
def evaluate(model: nn.Module, loader, *, device=None, amp: Optional[AmpSettings] = None,
             channels_last: bool = False, dist: Optional[DistInfo] = None) -> dict:
    """Mean cross-entropy, top-1 and top-5 accuracy of `model` over `loader`.

    Under DDP every process takes every world_size-th batch and the sums are reduced, so
    each image counts once. The model's train/eval mode is restored afterwards.
    """
    dist = dist or DistInfo()
    device = device or next(model.parameters()).device
    amp = amp or AmpSettings(False, None, False)
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, n
    try:
        for i, (x, y) in enumerate(loader):
            if i % dist.world_size != dist.rank:
                continue
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.enabled):
                logits = model(x)
            logits = logits.float()
            c1, c5 = _accuracy_counts(logits, y)
            sums += torch.stack([F.cross_entropy(logits, y, reduction="sum").double(),
                                 c1.double(), c5.double(),
                                 torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
    finally:
        model.train(was_training)
    loss, c1, c5, n = _all_reduce_(sums, dist).tolist()
    n = max(n, 1.0)
    return {"loss": loss / n, "acc": c1 / n, "top5": c5 / n, "images": int(n)}


def _data_source(data) -> dict:
    info = getattr(data, "info", None)
    if info is None:
        return {"label": "unknown (data has no .info)"}
    d = info.as_dict() if hasattr(info, "as_dict") else {"label": str(info)}
    src = getattr(info, "source", None)
    if src is not None:
        d["official"] = bool(getattr(src, "official", False))
        d["jpeg_copy"] = str(getattr(src, "kind", "")).startswith("jpeg")
    return d


def _describe_device(device: torch.device, dist: DistInfo) -> dict:
    d = {"device": str(device), "type": device.type, "world_size": dist.world_size,
         "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
         "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        d["name"] = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        import platform

        d["name"] = platform.processor() or platform.machine()
    return d


def _sync_config_with_data(config: TrainConfig, data, dist: DistInfo) -> TrainConfig:
    """Make the recorded config tell the truth about the loaders it was given."""
    changes = {}
    sampler = getattr(data.train, "batch_sampler", None)
    if sampler is not None and getattr(sampler, "batch_size", None):
        ws = getattr(sampler, "world_size", 1)
        if ws != dist.world_size:
            raise ConfigError("data", f"loaders for world_size={ws}",
                              f"this run has world_size={dist.world_size}: build the data with "
                              f"rank={dist.rank}, world_size={dist.world_size} (make_data does)")
        global_batch = sampler.batch_size * ws
        if global_batch != config.batch_size:
            changes["batch_size"] = global_batch
    ds = getattr(data.train, "dataset", None)
    if ds is not None and hasattr(ds, "augment"):
        if bool(ds.augment) != config.augment:
            changes["augment"] = bool(ds.augment)
        cut = int(ds.cutout or 0) if ds.augment else 0
        if cut != config.cutout:
            changes["cutout"] = cut
    info = getattr(data, "info", None)
    if info is not None and getattr(info, "name", None) in _dataset_names() and \
            info.name != config.dataset:
        changes["dataset"] = info.name
    if info is not None and getattr(info, "mode", None) and info.mode != config.mode and \
            info.name != "synthetic":
        changes["mode"] = info.mode
    return replace(config, **changes) if changes else config


def _dataset_names():
    from .data import DATASETS

    return (*DATASETS, SYNTHETIC)


def _count_macs(model: nn.Module, example: torch.Tensor) -> tuple[Optional[int], str]:
    try:
        from .profile import count_macs
    except Exception as e:  # noqa: BLE001 - profile.py is optional for the engine
        return None, f"course_utils.profile unavailable ({type(e).__name__})"
    try:
        return int(count_macs(model, example[:1])), "FlopCounterMode, one image, FLOPs/2"
    except Exception as e:  # noqa: BLE001 - a model the counter cannot trace still trains
        return None, f"MAC count failed: {type(e).__name__}: {e}"[:200]


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------
def fit(model: nn.Module, data, config: Optional[TrainConfig] = None, *,
        callbacks: Iterable = ()) -> FitResult:
    """Train `model` on `data` (a data.DataBundle: .train/.val/.test loaders, .set_epoch,
    .info) with `config`, writing the files of the module docstring when config.out is
    set. Under torchrun (an initialised process group) it trains with DDP.

    callbacks: objects with any of on_fit_start(info), on_step_end(epoch, step, steps,
    loss), on_epoch_end(record, history), on_fit_end(summary) (see callbacks.LivePlot).
    Returns a FitResult. Raises NonFiniteLossError on a NaN/inf loss (the last
    checkpoint stays as it was) and ConfigError for a bad setting.
    """
    from tqdm.auto import tqdm

    from .env import seed_everything

    config = config or TrainConfig()
    callbacks = list(callbacks)
    dist = _current_dist()
    config = _sync_config_with_data(config, data, dist)
    if config.threads:
        torch.set_num_threads(config.threads)

    # ---- device and backend -----------------------------------------------------------
    if dist.active and torch.cuda.is_available() and config.device in ("auto", "cuda"):
        device = torch.device("cuda", dist.local_rank)
    else:
        try:
            device = resolve_device(config.device)
        except ValueError as e:
            raise ConfigError("device", config.device, str(e)) from None
    bf16_ok = device.type != "cuda" or torch.cuda.is_bf16_supported()
    amp = amp_settings(device.type, config.amp, bf16_supported=bf16_ok)
    channels_last = use_channels_last(device.type, config.channels_last)
    _apply_backend_flags(backend_flags(device.type, config.deterministic))
    seed_everything(config.seed)

    raw_model = model.to(device)
    if channels_last:
        raw_model = raw_model.to(memory_format=torch.channels_last)
    train_model: nn.Module = raw_model
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if config.sync_bn and device.type == "cuda":
            raw_model = nn.SyncBatchNorm.convert_sync_batchnorm(raw_model)
        train_model = DDP(raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    eval_model: nn.Module = raw_model
    if config.compile:
        train_model = torch.compile(train_model)
        eval_model = torch.compile(raw_model) if train_model is not raw_model else train_model

    optimizer = torch.optim.SGD(raw_model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    steps_per_epoch = len(data.train)
    schedule = LRSchedule(config, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=amp.scaler)

    # ---- output folder and resume -----------------------------------------------------
    out = Path(config.out) if config.out else None
    ckpt_path = out / "checkpoint.pt" if out else None
    history: list[dict] = []
    start_epoch = 0
    resumed_stop = None  # an early-stopped run stays stopped when resumed
    best = {"epoch": None, "val_acc": -1.0, "val_loss": math.inf}
    early = {"best": None, "bad_epochs": 0}
    if out is not None:
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            _clean_stale_temp_files(out)
        if ckpt_path.exists() and not (config.resume or config.overwrite):
            raise ConfigError("resume", config.resume,
                              f"{ckpt_path} already holds a run: pass resume=True (--resume) "
                              "to continue it, overwrite=True (--overwrite) to start over, "
                              "or choose another out folder")
        if config.resume and ckpt_path.exists():
            ck = load_checkpoint(ckpt_path, map_location=device)
            _check_resume_compatible(ck.get("config", {}), config, ckpt_path)
            raw_model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            schedule.load_state_dict(ck["scheduler"])
            scaler.load_state_dict(ck["scaler"])
            _set_rng_state(ck["rng"])
            history = list(ck["history"])
            start_epoch = int(ck["epoch"])
            best = dict(ck["best"])
            early = dict(ck["early_stop"])
            resumed_stop = ck.get("stop_reason")
            if dist.is_main:  # the checkpoint is the truth: metrics.jsonl agrees with it
                atomic_write_text(out / "metrics.jsonl",
                                  "".join(json.dumps(r) + "\n" for r in history))
            if config.verbose and dist.is_main:
                print(f"[train] resuming {ckpt_path} after epoch {start_epoch}", flush=True)
        elif config.resume and config.verbose and dist.is_main:
            print(f"[train] --resume: no checkpoint in {out} yet, starting from epoch 1",
                  flush=True)
        if not (config.resume and ckpt_path.exists()) and dist.is_main:
            # a fresh start (overwrite=True, or nothing there yet): no file of an older
            # run may be left to mix with this one
            for name in ("checkpoint.pt", "best.pt", "metrics.jsonl", "summary.json"):
                with contextlib.suppress(FileNotFoundError):
                    (out / name).unlink()

    # ---- what the summary says about this run -------------------------------------------
    example = next(iter(data.val))[0][:1].to(device)
    params = sum(p.numel() for p in raw_model.parameters())
    macs, macs_note = _count_macs(raw_model, example) if dist.is_main else (None, "")
    base_summary = {
        "config": config.as_dict(),
        "model_class": type(raw_model).__name__,
        "params": params,
        "macs": macs,
        "macs_note": macs_note,
        "data": _data_source(data),
        "device": _describe_device(device, dist),
        "precision": amp.describe(),
        "channels_last": channels_last,
        "compiled": config.compile,
        "steps_per_epoch": steps_per_epoch,
    }
    _callbacks_call(callbacks, "on_fit_start", dict(base_summary, start_epoch=start_epoch))

    show = _progress_enabled(config, dist)
    log = (lambda s: tqdm.write(s)) if show else (lambda s: print(s, flush=True))
    speak = config.verbose and dist.is_main
    if speak:
        log(f"[train] {type(raw_model).__name__} ({params:,} params) on {device}, "
            f"{amp.describe()}{', channels_last' if channels_last else ''}"
            f"{', DDP x%d' % dist.world_size if dist.active else ''}; "
            f"data: {base_summary['data'].get('label', '')}")

    t_start = time.perf_counter()
    status = "completed"
    if resumed_stop == "early_stopped":
        status, start_epoch = resumed_stop, config.epochs  # nothing left to train
    epoch_bar = tqdm(total=config.epochs, initial=start_epoch, desc="epochs", unit="ep",
                     disable=not show, dynamic_ncols=True)
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            if hasattr(data, "set_epoch"):
                data.set_epoch(epoch)  # new shuffle and augmentation draws (data.py)
            train_model.train()
            sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, n
            lr = schedule.lr(epoch, 0)
            batch_bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}", unit="batch",
                             leave=False, disable=not show, dynamic_ncols=True)
            for step, (x, y) in enumerate(data.train):
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                lr = schedule.apply(optimizer, epoch, step)
                with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.enabled):
                    logits = train_model(x)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
                finite = torch.isfinite(loss.detach()).to(torch.int32)
                if int(_all_reduce_(finite, dist, op="min").item()) == 0:
                    raise NonFiniteLossError(
                        epoch + 1, step + 1, steps_per_epoch, float(loss.detach()),
                        _checkpoint_note(ckpt_path, history))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(raw_model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                with torch.no_grad():
                    c1, c5 = _accuracy_counts(logits.detach().float(), y)
                    n = float(len(y))
                    sums += torch.stack([loss.detach().double() * n, c1.double(), c5.double(),
                                         torch.tensor(n, dtype=torch.float64, device=device)])
                if show:
                    batch_bar.update(1)
                    if step % 20 == 0:
                        batch_bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{lr:.3g}")
                _callbacks_call(callbacks, "on_step_end", epoch + 1, step + 1, steps_per_epoch,
                                loss.detach())
            batch_bar.close()
            tr_loss, tr_c1, tr_c5, tr_n = _all_reduce_(sums, dist).tolist()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_seconds = time.perf_counter() - t0
            if dist.active:  # BN running statistics: rank 0's, so every rank evaluates one model
                import torch.distributed as tdist

                for b in raw_model.buffers():
                    tdist.broadcast(b, 0)
            val = evaluate(eval_model, data.val, device=device, amp=amp,
                           channels_last=channels_last, dist=dist)
            seconds = time.perf_counter() - t0
            n = max(tr_n, 1.0)
            record = {
                "epoch": epoch + 1,
                "train_loss": tr_loss / n, "train_acc": tr_c1 / n, "train_top5": tr_c5 / n,
                "val_loss": val["loss"], "val_acc": val["acc"], "val_top5": val["top5"],
                "lr": lr, "seconds": seconds, "train_seconds": train_seconds,
                "images_per_s": tr_n / max(train_seconds, 1e-9),
            }
            history.append(record)
            schedule.epoch_end(val["loss"])
            improved = val["acc"] > best["val_acc"]
            if improved:
                best = {"epoch": epoch + 1, "val_acc": val["acc"], "val_loss": val["loss"]}
            stop_reason = _early_stop_update(early, record, config)
            elapsed = time.perf_counter() - t_start
            if stop_reason is None and config.time_limit_s is not None and \
                    epoch + 1 < config.epochs and elapsed + seconds > config.time_limit_s:
                stop_reason = "time_limit"
            if out is not None and dist.is_main:
                if improved and config.save_best:
                    _save_torch({"model": raw_model.state_dict(), "epoch": epoch + 1,
                                 "val_acc": val["acc"]}, out / "best.pt")
                _save_torch({
                    "format": CHECKPOINT_FORMAT, "epoch": epoch + 1,
                    "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(), "scaler": scaler.state_dict(),
                    "rng": _rng_state(), "best": best, "early_stop": early,
                    "stop_reason": stop_reason,
                    "history": history, "config": config.as_dict(),
                }, ckpt_path)
                atomic_write_text(out / "metrics.jsonl",
                                  "".join(json.dumps(r) + "\n" for r in history))
            if speak:
                log(_epoch_line(record, config.epochs))
            epoch_bar.update(1)
            epoch_bar.set_postfix(val_acc=f"{100 * val['acc']:.1f}%")
            _callbacks_call(callbacks, "on_epoch_end", record, history)
            if stop_reason is not None:
                status = stop_reason
                if speak:
                    log(f"[train] stopping after epoch {epoch + 1}: {stop_reason.replace('_', ' ')}")
                break
    except NonFiniteLossError as e:
        if out is not None and dist.is_main:
            atomic_write_text(out / "summary.json", _json(dict(
                base_summary, status="failed", error=str(e), epochs_run=len(history),
                best_epoch=best["epoch"], best_val_acc=best["val_acc"] if best["epoch"] else None,
                history_tail=history[-3:])))
        raise
    finally:
        epoch_bar.close()

    # ---- final test ---------------------------------------------------------------------
    test = evaluate(eval_model, data.test, device=device, amp=amp, channels_last=channels_last,
                    dist=dist)
    test_best = None
    if config.save_best and best["epoch"] is not None and history and \
            best["epoch"] != history[-1]["epoch"] and out is not None and (out / "best.pt").exists():
        final_state = {k: v.detach().clone() for k, v in raw_model.state_dict().items()}
        raw_model.load_state_dict(load_checkpoint(out / "best.pt", map_location=device)["model"])
        test_best = evaluate(eval_model, data.test, device=device, amp=amp,
                             channels_last=channels_last, dist=dist)
        raw_model.load_state_dict(final_state)
    elif best["epoch"] is not None and history and best["epoch"] == history[-1]["epoch"]:
        test_best = test
    last = history[-1] if history else {}
    summary = dict(
        base_summary,
        status=status,
        epochs_run=len(history),
        best_epoch=best["epoch"],
        best_val_acc=best["val_acc"] if best["epoch"] is not None else None,
        best_val_loss=best["val_loss"] if best["epoch"] is not None else None,
        train_acc_at_best=(history[best["epoch"] - 1]["train_acc"]
                           if best["epoch"] is not None and len(history) >= best["epoch"] else None),
        final_val_acc=last.get("val_acc"),
        final_train_acc=last.get("train_acc"),
        test_acc=test["acc"], test_top5=test["top5"], test_loss=test["loss"],
        test_images=test["images"],
        test_acc_best=None if test_best is None else test_best["acc"],
        wall_seconds_this_session=time.perf_counter() - t_start,
        train_seconds_total=sum(r["seconds"] for r in history),
    )
    if out is not None and dist.is_main:
        atomic_write_text(out / "summary.json", _json(summary))
    if speak:
        extra = "" if test_best is None or test_best is test else \
            f" (best-validation weights, epoch {best['epoch']}: {100 * test_best['acc']:.2f}%)"
        log(f"[train] {status}: test accuracy {100 * test['acc']:.2f}% on {test['images']} "
            f"images{extra}" + (f"; files in {out}" if out else ""))
    _callbacks_call(callbacks, "on_fit_end", summary)
    if dist.active:  # leave together: rank 0 has written its files before anyone tears down
        import torch.distributed as tdist

        tdist.barrier()
    return FitResult(raw_model, history, summary, out)


def _checkpoint_note(ckpt_path: Optional[Path], history: list) -> str:
    if ckpt_path is None:
        return "No checkpoint is kept (config.out is None)."
    if ckpt_path.exists():
        return (f"The last good checkpoint, {ckpt_path} (after epoch {len(history)}), "
                "is intact.")
    return f"No checkpoint was written yet ({ckpt_path} does not exist)."


def _early_stop_update(early: dict, record: dict, config: TrainConfig) -> Optional[str]:
    if config.early_stop_patience is None:
        return None
    value = record[config.early_stop_metric]
    better = early["best"] is None or (value < early["best"] if config.early_stop_metric == "val_loss"
                                       else value > early["best"])
    if better:
        early["best"], early["bad_epochs"] = value, 0
        return None
    early["bad_epochs"] += 1
    return "early_stopped" if early["bad_epochs"] >= config.early_stop_patience else None


def _check_resume_compatible(saved: dict, config: TrainConfig, path: Path) -> None:
    now = config.as_dict()
    keys = RESUME_MUST_MATCH
    if config.schedule in ("cosine", "onecycle"):
        keys = keys + ("epochs",)  # the LR curve of these schedules depends on the length
    for key in keys:
        a, b = saved.get(key), now.get(key)
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            a, b = list(a or []), list(b or [])
        if a != b:
            raise ConfigError(key, now.get(key),
                              f"the checkpoint {path} was trained with {key}={saved.get(key)!r}; "
                              "resume with the same value, or start a new out folder")


def _epoch_line(r: dict, epochs: int) -> str:
    return (f"epoch {r['epoch']:>3}/{epochs}  train loss {r['train_loss']:.3f} "
            f"acc {100 * r['train_acc']:5.1f}%  val loss {r['val_loss']:.3f} "
            f"acc {100 * r['val_acc']:5.1f}% top5 {100 * r['val_top5']:5.1f}%  "
            f"lr {r['lr']:.3g}  {r['seconds']:.1f}s  {r['images_per_s']:.0f} img/s")


# --------------------------------------------------------------------------------------
# Building model and data from a config (the command line and the ablation runner)
# --------------------------------------------------------------------------------------
def make_model(config: TrainConfig, num_classes: Optional[int] = None,
               in_chans: Optional[int] = None) -> nn.Module:
    """create_model(config.model, **config.model_args) for the config's dataset."""
    from .data import DATASETS
    from .models import create_model, list_models

    names = list_models()
    if config.model not in names:
        close = difflib.get_close_matches(config.model, names, n=3, cutoff=0.5)
        raise ConfigError("model", config.model,
                          (f"did you mean {', '.join(close)}? " if close else "")
                          + f"allowed: {', '.join(names)}")
    if config.dataset == SYNTHETIC:
        classes, chans = SYNTHETIC_CLASSES, 3
    else:
        classes, chans = DATASETS[config.dataset].num_classes, DATASETS[config.dataset].in_chans
    kw = dict(config.model_args)
    kw["num_classes"] = num_classes or classes
    kw["in_chans"] = in_chans or chans
    try:
        return create_model(config.model, **kw)
    except TypeError as e:
        bad = next((k for k in config.model_args if repr(k) in str(e) or k in str(e)), "model_args")
        raise ConfigError(bad, config.model_args.get(bad, config.model_args),
                          f"model {config.model!r} does not take it ({e})") from None
    except ValueError as e:
        bad = next((k for k in config.model_args if f"{k}=" in str(e)), "model_args")
        raise ConfigError(bad, config.model_args.get(bad, config.model_args), str(e)) from None


def make_data(config: TrainConfig, dist: Optional[DistInfo] = None):
    """The DataBundle a config asks for; under DDP this process's shard, with the global
    batch config.batch_size split evenly over the processes."""
    from .data import get_loaders, synthetic_bundle

    dist = dist or _current_dist()
    if config.batch_size % dist.world_size:
        raise ConfigError("batch_size", config.batch_size,
                          f"the global batch must divide evenly over {dist.world_size} processes")
    if config.dataset == SYNTHETIC:
        n_tr, n_va, n_te = SYNTHETIC_SIZES[config.mode]
        return synthetic_bundle(config.train_size or n_tr, config.val_size or n_va,
                                config.test_size or n_te, num_classes=SYNTHETIC_CLASSES,
                                seed=config.seed, batch_size=config.batch_size // dist.world_size,
                                eval_batch_size=config.eval_batch_size, augment=config.augment,
                                cutout=config.cutout, workers=config.workers, rank=dist.rank,
                                world_size=dist.world_size)
    return get_loaders(config.dataset, root=config.data_root, mode=config.mode,
                       batch_size=config.batch_size // dist.world_size,
                       eval_batch_size=config.eval_batch_size, seed=config.seed,
                       augment=config.augment, cutout=config.cutout,
                       train_size=config.train_size, val_size=config.val_size,
                       test_size=config.test_size, workers=config.workers,
                       rank=dist.rank, world_size=dist.world_size)


def run(config: TrainConfig, callbacks: Iterable = ()) -> FitResult:
    """Seed, build the model and the data the config names, and fit. Under torchrun the
    process group is started here (and closed at the end)."""
    import torch.distributed as tdist

    from .env import seed_everything

    if config.threads:
        torch.set_num_threads(config.threads)
    started = False
    info = dist_from_env()
    if info.active and not tdist.is_initialized():
        init_distributed(config.device)
        started = True
    try:
        seed_everything(config.seed)
        model = make_model(config)  # before the data: a bad model argument fails fast
        data = make_data(config, _current_dist())
        return fit(model, data, config, callbacks=callbacks)
    finally:
        if started:
            tdist.destroy_process_group()


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
# TrainConfig field -> command-line option, where they differ in more than - vs _
_OPTION = {"model_args": "--model", "attn_layer": "--se", "time_limit_s": "--time-limit",
           "early_stop_patience": "--early-stop", "data_root": "--data-root",
           "resume": "--resume", "out": "--out", "preset": "--preset"}


def _option_for(param: str) -> str:
    return _OPTION.get(param, "--" + param.replace("_", "-"))


def _parser() -> argparse.ArgumentParser:
    from .data import DATASETS, MODES

    B = argparse.BooleanOptionalAction
    ap = argparse.ArgumentParser(
        prog="python -m course_utils.train",
        usage="%(prog)s [--model NAME] [--dataset NAME] [--epochs N] [--out DIR] [options] "
              "(all options: --help)",
        description="Train a model of the course's zoo with the Dense2Net report's recipe "
                    "(SGD lr 0.1, momentum 0.9, wd 1e-4, batch 128, 100 epochs, Dense2Net-121 "
                    "on CIFAR-100). Options left out take the preset's value (default "
                    "preset: report; see course_utils/train.py TrainConfig for every default "
                    "and where it comes from).",
        argument_default=None)
    g = ap.add_argument_group("what to train")
    g.add_argument("--preset", default="report", help=f"named recipe: {', '.join(PRESETS)}")
    g.add_argument("--config", metavar="JSON", help="TrainConfig fields from a JSON file (e.g. a "
                   "run's summary.json 'config' or an ablation run's config.json); options "
                   "given on the command line override it")
    g.add_argument("--model", help="zoo model name (python -c 'from course_utils.models "
                                   "import list_models; print(list_models())')")
    g.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (or synthetic: no files, "
                   "for tests)")
    g.add_argument("--data-root", help="folder with the dataset files (default: COURSE_DATA, data/, ...)")
    g.add_argument("--mode", help=f"data size: {', '.join(MODES)} (full = the whole dataset)")
    g.add_argument("--train-size", type=int, help="training images (multiple of the class count)")
    g.add_argument("--val-size", type=int, help="validation images (held out of the training set)")
    g.add_argument("--test-size", type=int, help="test images")
    g.add_argument("--scale", type=int, help="Dense2Net scale s (report default 4)")
    g.add_argument("--groups", type=int, help="Dense2Net cardinality C (report default 1)")
    g.add_argument("--width", type=int, help="Dense2Net split width w (default bottleneck / s)")
    g.add_argument("--se", action=B, help="squeeze-excitation in every Dense2Net layer (report sec. 4.2.5)")
    g.add_argument("--augment", action=B, help="crop + flip augmentation (report sec. 4.2.1)")
    g.add_argument("--cutout", action=B, help="Cutout, 1 hole of 8 px (report sec. 4.2.2)")
    g.add_argument("--cutout-size", type=int, help="Cutout hole side in pixels (implies --cutout)")
    o = ap.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int)
    o.add_argument("--batch-size", type=int, help="global batch (split over DDP processes)")
    o.add_argument("--eval-batch-size", type=int)
    o.add_argument("--lr", type=float)
    o.add_argument("--momentum", type=float)
    o.add_argument("--weight-decay", type=float)
    o.add_argument("--nesterov", action=B)
    o.add_argument("--schedule", help=f"one of {', '.join(SCHEDULES)}")
    o.add_argument("--milestones", type=int, nargs="+", help="step schedule: epochs where lr x gamma")
    o.add_argument("--gamma", type=float)
    o.add_argument("--plateau-patience", type=int)
    o.add_argument("--warmup-epochs", type=float)
    o.add_argument("--early-stop", type=int, metavar="PATIENCE",
                   help="stop when the early-stop metric has not improved for this many epochs")
    o.add_argument("--early-stop-metric", help=f"one of {', '.join(EARLY_STOP_METRICS)}")
    o.add_argument("--label-smoothing", type=float)
    o.add_argument("--grad-clip", type=float)
    o.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop after the epoch that would overrun this many seconds")
    d = ap.add_argument_group("devices")
    d.add_argument("--device", help=f"one of {', '.join(DEVICES)} or cuda:N")
    d.add_argument("--amp", help=f"one of {', '.join(AMP_CHOICES)}")
    d.add_argument("--channels-last", help=f"one of {', '.join(CHANNELS_LAST_CHOICES)}")
    d.add_argument("--compile", action=B)
    d.add_argument("--deterministic", action=B)
    d.add_argument("--threads", type=int, help="torch CPU threads")
    d.add_argument("--workers", type=int, help="DataLoader worker processes")
    b = ap.add_argument_group("bookkeeping")
    b.add_argument("--seed", type=int)
    b.add_argument("--out", help="folder for metrics.jsonl, checkpoint.pt, summary.json")
    b.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (report --r)")
    b.add_argument("--overwrite", action="store_true", help="start over even if OUT has a checkpoint")
    b.add_argument("--progress", action=B, help="tqdm progress bars")
    b.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return ap


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed command line asks for (the preset, then the options)."""
    if args.preset not in PRESETS:
        raise ConfigError("preset", args.preset, f"allowed: {', '.join(PRESETS)}")
    kw = dict(PRESETS[args.preset])
    if args.config is not None:
        try:
            loaded = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError("config", args.config, f"a readable JSON file is needed ({e})") from None
        loaded = loaded.get("config", loaded) if isinstance(loaded, dict) else loaded
        if not isinstance(loaded, dict):
            raise ConfigError("config", args.config, "the JSON must be an object of TrainConfig fields")
        names = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(loaded) - names)
        if unknown:
            raise ConfigError("config", args.config, f"unknown field {unknown[0]!r}; "
                              f"fields: {', '.join(sorted(names))}")
        kw.update(loaded)
    simple = ("model", "dataset", "data_root", "mode", "train_size", "val_size", "test_size",
              "augment", "epochs", "batch_size", "eval_batch_size", "lr", "momentum",
              "weight_decay", "nesterov", "schedule", "gamma", "plateau_patience",
              "warmup_epochs", "early_stop_metric", "label_smoothing", "grad_clip",
              "device", "amp", "channels_last", "compile", "deterministic", "threads",
              "workers", "seed", "out", "progress")
    for name in simple:
        v = getattr(args, name)
        if v is not None:
            kw[name] = v
    if args.milestones is not None:
        kw["milestones"], kw["milestone_fractions"] = tuple(args.milestones), None
    if args.early_stop is not None:
        kw["early_stop_patience"] = args.early_stop
    if args.time_limit is not None:
        kw["time_limit_s"] = args.time_limit
    if args.cutout_size is not None:
        if args.cutout is False:
            raise ConfigError("cutout_size", args.cutout_size, "not together with --no-cutout")
        kw["cutout"] = args.cutout_size
    elif args.cutout is not None:
        kw["cutout"] = 8 if args.cutout else 0  # report sec. 4.2.2: 1 hole of 8 px
    margs = dict(kw.get("model_args", {}))
    for name in ("scale", "groups", "width"):
        v = getattr(args, name)
        if v is not None:
            if isinstance(v, bool) or v < 1:
                raise ConfigError(name, v, "allowed: an integer >= 1")
            margs[name] = v
    if args.se:
        margs["attn_layer"] = "se"
    kw["model_args"] = margs
    kw["resume"] = bool(args.resume)
    kw["overwrite"] = bool(args.overwrite)
    if args.quiet:
        kw["verbose"] = False
    return TrainConfig(**kw)


def main(argv: Optional[Sequence[str]] = None, callbacks: Iterable = ()) -> int:
    """`python -m course_utils.train ...`: 0 on success; 2 for a bad option (the message
    names it); 1 when the data is missing or the loss became NaN. `callbacks` go to fit
    (for scripts that wrap the command line)."""
    from .data import DataIntegrityError, DataNotFoundError

    ap = _parser()
    args = ap.parse_args(argv)
    try:
        config = config_from_args(args)
        if not config.out and config.resume:
            raise ConfigError("resume", True, "--resume needs --out (the folder to resume)")
        if config.out and Path(config.out).exists() and not Path(config.out).is_dir():
            raise ConfigError("out", config.out, "allowed: a folder (this is a file)")
        if config.device != "auto":
            try:
                resolve_device(config.device)
            except ValueError as e:
                raise ConfigError("device", config.device, str(e)) from None
        run(config, callbacks=callbacks)
    except ConfigError as e:
        opt = _option_for(e.param)
        ap.error(f"argument {opt}: {e}")  # exits with status 2
    except (DataNotFoundError, DataIntegrityError) as e:
        print(f"{ap.prog}: error: argument --dataset: {e}", file=sys.stderr)
        return 1
    except (NonFiniteLossError, CheckpointError) as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{ap.prog}: interrupted; the last checkpoint is intact, continue with --resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
