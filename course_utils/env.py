"""Devices, seeds and a report of the environment the course runs in."""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def kit_root() -> Path:
    """The kit's folder (the one holding notebooks/ and pyproject.toml): where default
    outputs (build/) and stored results (data/) live, whatever the working folder of the
    kernel or the command. Falls back to the working folder when course_utils is installed
    on its own, away from the kit."""
    root = Path(__file__).resolve().parents[1]
    if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file():
        return root
    return Path.cwd()


def default_out_dir(notebook: str) -> Path:
    """build/out/<notebook> in the kit's folder: a notebook's outputs when out_dir is None."""
    return kit_root() / "build" / "out" / notebook


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu. An explicit choice that is not
    available here raises ValueError naming it."""
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ValueError(f"device={device!r} is not known; allowed: {', '.join(DEVICES)}")
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is visible; "
                         "use device='auto' or 'cpu'")
    if device == "mps" and not has_mps:
        raise ValueError("device='mps' was asked for but Apple MPS is not available; "
                         "use device='auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment_report() -> dict:
    """Versions, device and threads: the first cell of notebook 00 prints this."""
    import torchvision

    rep = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "device_auto": str(resolve_device("auto")),
    }
    if torch.cuda.is_available():
        rep["gpu"] = torch.cuda.get_device_name(0)
    for mod in ("matplotlib", "ipywidgets", "torchinfo", "papermill"):
        try:
            rep[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional in plain-Python use
            rep[mod] = "not installed"
    return rep
