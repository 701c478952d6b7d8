"""Where a run computes: the device, AMP, channels_last, backend switches, DDP.

The decisions are pure functions (:func:`amp_settings`, :func:`use_channels_last`,
:func:`backend_flags`, :func:`dist_from_env`), unit-tested on any machine.
:func:`prepare_process` is the one place a run sets its CPU threads, checks and resolves
its device and seeds its random number generators; :func:`placement` turns the device
into AMP, memory-format and backend settings, and :func:`wrap_model` moves a model there
(DDP, SyncBatchNorm, torch.compile).

``device="auto"`` takes CUDA, else Apple MPS, else the CPU. On CUDA: bf16 autocast (fp16
+ GradScaler on GPUs without bf16), channels_last, cuDNN autotuning (unless
``deterministic``), optional ``compile``. Under ``torchrun`` every process trains its
shard of each global batch with DistributedDataParallel (NCCL on GPUs, gloo on the CPU;
BatchNorm becomes SyncBatchNorm on CUDA), rank 0 writes the files. On the CPU:
channels_last, fp32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from . import checks
from .config import AMP_CHOICES, CHANNELS_LAST_CHOICES, ConfigError, TrainConfig
from .env import resolve_device, seed_everything

__all__ = ["source_commit", "AmpSettings", "DistInfo", "Placement", "all_reduce_", "amp_settings", "cpu_has_fast_bf16",
           "backend_flags", "current_dist", "describe_device", "dist_from_env",
           "init_distributed", "placement", "prepare_process", "use_channels_last",
           "wrap_model"]


# --------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AmpSettings:
    enabled: bool
    dtype: Optional[torch.dtype]
    scaler: bool  # a GradScaler is needed (fp16 gradients can underflow)

    def describe(self) -> str:
        if not self.enabled:
            return "fp32"
        name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        return name + (" + GradScaler" if self.scaler else "")


FP32 = AmpSettings(False, None, False)


def cpu_has_fast_bf16(cpuinfo: Optional[str] = None) -> bool:
    """Does this CPU compute bfloat16 in hardware? x86: the AVX512_BF16 or AMX_BF16
    instructions; Arm: the BF16 extension; read from /proc/cpuinfo's flags (Linux) or the
    text given. Elsewhere, or without oneDNN, False: emulated bf16 is slower than fp32."""
    if cpuinfo is None:
        if not torch.backends.mkldnn.is_available():
            return False
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def amp_settings(device_type: str, amp: str = "auto", *, bf16_supported: bool = True,
                 cpu_bf16_fast: bool = False) -> AmpSettings:
    """Which autocast dtype and whether a GradScaler, for a device type and an `amp` setting.

    auto: CUDA -> bf16 where the GPU supports it (Ampere and later), else fp16 + scaler;
    CPU -> bf16 where the CPU has bf16 instructions (`cpu_bf16_fast`, from
    cpu_has_fast_bf16: 1.3x to 1.7x the images/s of fp32 for the lesson models, measured
    with benchmarks/train.py --part precision), else fp32; MPS -> off.
    Explicit: "bf16" anywhere it is supported; "fp16" on CUDA/MPS (with a scaler);
    "off" everywhere.
    """
    checks.one_of("amp", amp, AMP_CHOICES, error=ConfigError)
    checks.one_of("device", device_type, ("cpu", "cuda", "mps"), error=ConfigError)
    if amp == "auto" and device_type == "cpu":
        amp = "bf16" if cpu_bf16_fast else "off"
    if amp == "off" or (amp == "auto" and device_type != "cuda"):
        return FP32
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
    checks.one_of("channels_last", setting, CHANNELS_LAST_CHOICES, error=ConfigError)
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


# --------------------------------------------------------------------------------------
# Distributed (torchrun)
# --------------------------------------------------------------------------------------
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


def current_dist() -> DistInfo:
    """This process's rank information: the process group's when one is running."""
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


def all_reduce_(t: torch.Tensor, dist: DistInfo, op: str = "sum") -> torch.Tensor:
    """Sum (or min) `t` over the processes in place; a no-op for a single process."""
    if dist.active:
        import torch.distributed as tdist

        tdist.all_reduce(t, op=tdist.ReduceOp.SUM if op == "sum" else tdist.ReduceOp.MIN)
    return t


def broadcast_buffers(model: nn.Module, dist: DistInfo) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank."""
    if dist.active:
        import torch.distributed as tdist

        for b in model.buffers():
            tdist.broadcast(b, 0)


def barrier(dist: DistInfo) -> None:
    if dist.active:
        import torch.distributed as tdist

        tdist.barrier()


# --------------------------------------------------------------------------------------
# A run's process and placement
# --------------------------------------------------------------------------------------
def prepare_process(config: TrainConfig, dist: Optional[DistInfo] = None) -> torch.device:
    """The one place a run sets torch's CPU threads (config.threads), checks and resolves
    its device (ConfigError naming `device` when it is not here) and seeds Python, NumPy
    and torch with config.seed. Returns the device (under DDP on CUDA: this rank's GPU)."""
    dist = dist or DistInfo()
    if config.threads:
        torch.set_num_threads(config.threads)
    if dist.active and torch.cuda.is_available() and config.device in ("auto", "cuda"):
        device = torch.device("cuda", dist.local_rank)
    else:
        try:
            device = resolve_device(config.device)
        except ValueError as e:
            raise ConfigError("device", config.device, str(e)) from None
    seed_everything(config.seed)
    return device


@dataclass(frozen=True)
class Placement:
    """Where and how a run computes: device, autocast, memory format, processes."""

    device: torch.device
    amp: AmpSettings
    channels_last: bool
    dist: DistInfo

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of images or labels on the device (images in the run's memory format)."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp.dtype, enabled=self.amp.enabled)


def placement(config: TrainConfig, device: torch.device, dist: Optional[DistInfo] = None) -> Placement:
    """AMP and channels_last for `device` as `config` asks, with the backend switches set."""
    bf16_ok = device.type != "cuda" or torch.cuda.is_bf16_supported()
    amp = amp_settings(device.type, config.amp, bf16_supported=bf16_ok,
                       cpu_bf16_fast=device.type == "cpu" and cpu_has_fast_bf16())
    channels_last = use_channels_last(device.type, config.channels_last)
    _apply_backend_flags(backend_flags(device.type, config.deterministic))
    return Placement(device, amp, channels_last, dist or DistInfo())


def wrap_model(model: nn.Module, config: TrainConfig, where: Placement):
    """(raw, train, eval) models: `model` on the device in its memory format (SyncBatchNorm
    under DDP on CUDA); the one to train (DDP, compiled); the one to evaluate (compiled)."""
    raw = model.to(where.device)
    if where.channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    train_model: nn.Module = raw
    if where.dist.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if config.sync_bn and where.device.type == "cuda":
            raw = nn.SyncBatchNorm.convert_sync_batchnorm(raw)
        ids = [where.device.index] if where.device.type == "cuda" else None
        train_model = DDP(raw, device_ids=ids)
    eval_model: nn.Module = raw
    if config.compile:
        train_model = torch.compile(train_model)
        eval_model = torch.compile(raw) if train_model is not raw else train_model
    return raw, train_model, eval_model


def source_commit(root=None) -> Optional[str]:
    """The short git commit of the kit's checkout (`root`, default the folder above this
    package), with "-dirty" appended where a tracked file of the package (course_utils/)
    differs from it, or None where there is no git or no checkout (an installed copy): what
    a run's summary and a results file record."""
    import subprocess
    from pathlib import Path

    root = str(root or Path(__file__).resolve().parents[1])

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)

    try:
        out = git("rev-parse", "--short", "HEAD")
        if out.returncode != 0 or not out.stdout.strip():
            return None
        changed = git("status", "--porcelain", "--untracked-files=no", "--", "course_utils")
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = changed.returncode == 0 and changed.stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def describe_device(device: torch.device, dist: DistInfo) -> dict:
    """The device, as summary.json records it."""
    d = {"device": str(device), "type": device.type, "world_size": dist.world_size,
         "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
         "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        d["name"] = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        import platform

        d["name"] = platform.processor() or platform.machine()
    return d
