"""Model profiling in one call: parameters, MACs, latency and peak memory.

    >>> from course_utils.models import create_model
    >>> from course_utils.profile import profile_model
    >>> p = profile_model(create_model("densenet_bc_40_12"), input_size=(1, 3, 32, 32))
    >>> p.params, p.macs, p.latency_ms, p.peak_memory_bytes

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (it counts convolutions and
matrix products; MACs = FLOPs / 2); BN, activations and pooling are not counted, as is
usual in papers. Peak memory is the largest number of bytes held by tensors created
during the measured pass (activations, temporaries and, for a training step, gradients;
parameters and the input are excluded): on CUDA from the allocator's peak statistics,
on the CPU by tracking the storage of every tensor an operator returns.
"""

from __future__ import annotations

import statistics
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "ModelProfile",
    "profile_model",
    "count_params",
    "count_macs",
    "summary",
    "compare_models",
    "profiles_table",
    "TensorMemoryTracker",
]

InputSize = Sequence[int]


@dataclass
class ModelProfile:
    """The numbers ``profile_model`` measures (per pass over one input of ``input_size``)."""

    model: str  # class name, or the registry name when profiled through compare_models
    input_size: Tuple[int, ...]  # (B, C, H, W), batch included
    device: str
    mode: str  # "eval": inference forward; "train": forward + backward of a training step
    params: int  # all parameters
    trainable_params: int  # parameters with requires_grad
    macs: int  # multiply-accumulates of one forward pass (FLOPs / 2)
    flops: int  # FlopCounterMode's count for one forward pass
    latency_ms: Optional[float] = None  # median over `runs` timed passes (after warm-up)
    latency_runs: int = 0
    peak_memory_bytes: Optional[int] = None  # see module docstring

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def macs_g(self) -> float:
        return self.macs / 1e9

    @property
    def peak_memory_mb(self) -> Optional[float]:
        return None if self.peak_memory_bytes is None else self.peak_memory_bytes / 2**20

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)

    def __str__(self) -> str:
        parts = [f"{self.model} @ {tuple(self.input_size)} on {self.device} ({self.mode})",
                 f"params {self.params:,}", f"MACs {self.macs:,} ({self.macs_g:.3f} G)"]
        if self.latency_ms is not None:
            parts.append(f"latency {self.latency_ms:.2f} ms (median of {self.latency_runs})")
        if self.peak_memory_bytes is not None:
            parts.append(f"peak memory {self.peak_memory_mb:.1f} MiB")
        return ", ".join(parts)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class TensorMemoryTracker(TorchDispatchMode):
    """Track bytes held by tensors created inside the ``with`` block (CPU or any device).

    Every tensor an operator returns is attributed to its storage; a storage counts
    from its first appearance until it is freed. ``peak`` is the maximum of ``live``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: Dict[Tuple[str, int], weakref.finalize] = {}

    def _track(self, t: Tensor) -> None:
        storage = t.untyped_storage()
        nbytes = storage.nbytes()
        key = (str(t.device), storage.data_ptr())
        if nbytes == 0 or key in self._seen:
            return
        self.live += nbytes
        self.peak = max(self.peak, self.live)

        def release(key=key, nbytes=nbytes) -> None:
            self.live -= nbytes
            self._seen.pop(key, None)

        self._seen[key] = weakref.finalize(storage, release)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and not t.is_meta:
                self._track(t)
        return out

    def __exit__(self, *exc):
        for fin in list(self._seen.values()):
            fin.detach()
        self._seen.clear()
        return super().__exit__(*exc)


def _make_input(input_size: Union[InputSize, Tensor], device: torch.device) -> Tensor:
    if isinstance(input_size, Tensor):
        return input_size.to(device)
    size = tuple(int(s) for s in input_size)
    if len(size) != 4 or min(size) < 1:
        raise ValueError(f"input_size={size!r} is not allowed; expected (B, C, H, W) with positive entries")
    return torch.randn(size, device=device)


def count_macs(model: nn.Module, input_size: Union[InputSize, Tensor] = (1, 3, 32, 32)) -> int:
    """MACs of one inference forward pass, from FlopCounterMode (FLOPs / 2)."""
    device = next(model.parameters()).device
    return _count_flops(model, _make_input(input_size, device)) // 2


def _count_flops(model: nn.Module, x: Tensor) -> int:
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(model: nn.Module, x: Tensor, mode: str) -> None:
    if mode == "eval":
        with torch.no_grad():
            model(x)
    else:
        out = model(x)
        out.float().sum().backward()


def profile_model(
    model: nn.Module,
    input_size: Union[InputSize, Tensor] = (1, 3, 32, 32),
    device: Union[str, torch.device] = "cpu",
    latency: bool = True,
    memory: bool = True,
    mode: str = "eval",
    runs: int = 10,
    warmup: int = 2,
) -> ModelProfile:
    """Profile ``model`` on one input of ``input_size`` (B, C, H, W), or on a given tensor.

    Args:
        device: where to run; the model is moved there (``model.to(device)``).
        latency: time ``runs`` passes after ``warmup`` passes and report the median.
        memory: measure peak memory of one pass (see module docstring).
        mode: "eval" (inference forward, no grad) or "train" (forward + backward in
            training mode; gradients are left in ``.grad`` and BN statistics are updated).
    Returns:
        a :class:`ModelProfile`. The model's train/eval state is restored afterwards.
    """
    if mode not in ("eval", "train"):
        raise ValueError(f"mode={mode!r} is not allowed; expected 'eval' or 'train'")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs={runs}, warmup={warmup} are not allowed; expected runs >= 1, warmup >= 0")
    device = torch.device(device)
    model.to(device)
    x = _make_input(input_size, device)
    was_training = model.training
    flops = _count_flops(model, x)
    result = ModelProfile(
        model=type(model).__name__,
        input_size=tuple(x.shape),
        device=str(device),
        mode=mode,
        params=count_params(model),
        trainable_params=count_params(model, trainable_only=True),
        macs=flops // 2,
        flops=flops,
    )
    model.train(mode == "train")
    try:
        if latency:
            for _ in range(warmup):
                _run(model, x, mode)
            times = []
            for _ in range(runs):
                _sync(device)
                start = time.perf_counter()
                _run(model, x, mode)
                _sync(device)
                times.append((time.perf_counter() - start) * 1000.0)
            result.latency_ms = statistics.median(times)
            result.latency_runs = runs
        if memory:
            if mode == "train":
                model.zero_grad(set_to_none=True)  # gradients count as step memory
            if device.type == "cuda":
                _sync(device)
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
                _run(model, x, mode)
                _sync(device)
                result.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device) - base)
            else:
                with TensorMemoryTracker() as tracker:
                    _run(model, x, mode)
                result.peak_memory_bytes = int(tracker.peak)
    finally:
        model.train(was_training)
    return result


def summary(model: nn.Module, input_size: InputSize = (1, 3, 32, 32), depth: int = 3, **kwargs):
    """A torchinfo summary (layer table with output shapes, parameters and mult-adds).

    Returns torchinfo's ``ModelStatistics``; ``print()`` it for the table. Extra keyword
    arguments go to ``torchinfo.summary``.
    """
    try:
        import torchinfo
    except ImportError as err:  # pragma: no cover - torchinfo is a kit dependency
        raise ImportError("summary() needs torchinfo: pip install torchinfo") from err
    kwargs.setdefault("col_names", ("output_size", "num_params", "mult_adds"))
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("device", next(model.parameters()).device)
    return torchinfo.summary(model, input_size=tuple(input_size), depth=depth, **kwargs)


def compare_models(
    models: Iterable[Union[str, nn.Module]],
    input_size: Union[InputSize, Tensor] = (1, 3, 32, 32),
    **profile_kwargs,
) -> List[ModelProfile]:
    """Profile several models (registry names or modules) on the same input."""
    from .models import create_model  # local import: models import layers, not profile

    out = []
    for item in models:
        model = create_model(item) if isinstance(item, str) else item
        p = profile_model(model, input_size, **profile_kwargs)
        if isinstance(item, str):
            p.model = item
        out.append(p)
    return out


def profiles_table(profiles: Sequence[ModelProfile]) -> str:
    """A Markdown table of profiles (model, params, MACs, latency, peak memory)."""
    lines = ["| model | params | MACs | latency (ms) | peak memory (MiB) |", "|---|---:|---:|---:|---:|"]
    for p in profiles:
        lat = "" if p.latency_ms is None else f"{p.latency_ms:.1f}"
        mem = "" if p.peak_memory_mb is None else f"{p.peak_memory_mb:.1f}"
        lines.append(f"| {p.model} | {p.params:,} | {p.macs:,} | {lat} | {mem} |")
    return "\n".join(lines)
