"""A run folder's files: checkpoints, metrics, summaries, RNG states, resume checks.

What a run leaves in ``OUT``:

- ``metrics.jsonl``: one JSON object per epoch (epoch, train_loss, train_acc, train_top5,
  val_loss, val_acc, val_top5, lr, seconds, train_seconds, images_per_s);
- ``checkpoint.pt``: model, optimizer, LR schedule, grad scaler, RNG states, epoch, best,
  history, config; rewritten after every epoch; ``--resume`` continues from it;
- ``best.pt``: the model weights of the epoch with the best validation accuracy;
- ``summary.json``: config (the model and data as they were trained, see
  :func:`course_utils.summary.recorded_config`), best epoch, test accuracy, parameters,
  MACs, data source (including whether it is the JPEG copy of CIFAR-10), device, status.

Every file is written atomically (:mod:`course_utils.files`), so a killed process never
leaves a half-written one; checkpoints are read with ``torch.load(weights_only=True)``
(tensors and plain containers only, no code). :func:`open_run_folder` decides, before a
run trains, whether it resumes (and from what) or starts the folder afresh.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .config import ConfigError, TrainConfig
from .files import atomic_write_bytes, atomic_write_text, remove_stale_temp_files

__all__ = ["CHECKPOINT_FORMAT", "RESUME_MUST_MATCH", "CheckpointError", "ResumeState",
           "atomic_write_bytes", "atomic_write_text", "check_out_folder", "checkpoint_note",
           "check_resume_compatible", "load_checkpoint", "open_run_folder", "read_metrics",
           "rng_state", "save_torch", "set_rng_state", "to_json", "write_metrics"]

CHECKPOINT_FORMAT = 1
# a resumed run must agree with its checkpoint on these (anything else may change,
# e.g. more epochs, a different device or more workers)
RESUME_MUST_MATCH = ("model", "model_args", "dataset", "mode", "train_size", "val_size",
                     "test_size", "batch_size", "seed", "augment", "cutout", "schedule",
                     "lr", "momentum", "weight_decay", "nesterov")
RUN_FILES = ("checkpoint.pt", "best.pt", "metrics.jsonl", "summary.json")


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read (truncated, corrupt, or not written by fit)."""


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------
def to_json(obj) -> str:
    """`obj` as the run folder's JSON files hold it (indented; tensors' and paths' names)."""
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


def save_torch(obj, path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


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


def write_metrics(out: Path, history: list) -> None:
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))


# --------------------------------------------------------------------------------------
# RNG states (stored as tensors and numbers: weights_only=True loads them)
# --------------------------------------------------------------------------------------
def rng_state() -> dict:
    st = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"name": st[0], "keys": torch.from_numpy(st[1].astype(np.int64)),
                       "pos": int(st[2]), "has_gauss": int(st[3]), "gauss": float(st[4])}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(Exception):  # a different number of GPUs: keep fresh states
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# --------------------------------------------------------------------------------------
# Resume or start afresh
# --------------------------------------------------------------------------------------
def check_out_folder(config: TrainConfig) -> None:
    """Before anything is built: `out` must be a folder (or not exist yet), and one that
    holds a run must be resumed or overwritten (nothing is lost by accident)."""
    if not config.out:
        return
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("out", config.out, "allowed: a folder (this is a file)")
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not (config.resume or config.overwrite):
        raise ConfigError("resume", config.resume,
                          f"{ckpt} already holds a run: pass resume=True (--resume) to "
                          "continue it, overwrite=True (--overwrite) to start over, or "
                          "choose another out folder")


def check_resume_compatible(saved: dict, config: dict, path: Path) -> None:
    """The recorded config of a checkpoint and of this run agree where they must."""
    keys = RESUME_MUST_MATCH
    if config.get("schedule") in ("cosine", "onecycle"):
        keys = keys + ("epochs",)  # the LR curve of these schedules depends on the length
    for key in keys:
        a, b = saved.get(key), config.get(key)
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            a, b = list(a or []), list(b or [])
        if a != b:
            raise ConfigError(key, config.get(key),
                              f"the checkpoint {path} was trained with {key}={saved.get(key)!r}; "
                              "resume with the same value, or start a new out folder")


@dataclass
class ResumeState:
    """Where a run starts: nothing (a fresh run) or its checkpoint's contents."""

    checkpoint: Optional[dict] = None
    path: Optional[Path] = None
    history: list = field(default_factory=list)

    @property
    def epoch(self) -> int:
        return int(self.checkpoint["epoch"]) if self.checkpoint else 0


def _say(text: str) -> None:
    print(text, flush=True)


def open_run_folder(config: TrainConfig, record: dict, *, is_main: bool, device,
                    log=_say) -> ResumeState:
    """Prepare config.out for a run whose recorded config is `record`: create it, remove
    a killed writer's temp files, then either load its checkpoint (resume=True and one
    is there; metrics.jsonl is rewritten from it) or remove an older run's files.
    Raises ConfigError for a folder that holds a run and is neither resumed nor
    overwritten, or whose checkpoint was trained otherwise; CheckpointError when it
    cannot be read."""
    if not config.out:
        return ResumeState()
    out = Path(config.out)
    ckpt_path = out / "checkpoint.pt"
    check_out_folder(config)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out)
    if config.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location=device)
        check_resume_compatible(ck.get("config", {}), record, ckpt_path)
        state = ResumeState(ck, ckpt_path, list(ck["history"]))
        if is_main:  # the checkpoint is the truth: metrics.jsonl agrees with it
            write_metrics(out, state.history)
        if config.verbose and is_main:
            log(f"[train] resuming {ckpt_path} after epoch {state.epoch}")
        return state
    if config.resume and config.verbose and is_main:
        log(f"[train] --resume: no checkpoint in {out} yet, starting from epoch 1")
    if is_main:  # a fresh start: no file of an older run may be left to mix with this one
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
    return ResumeState(path=ckpt_path)


def checkpoint_note(ckpt_path: Optional[Path], epochs_done: int) -> str:
    """What a failed run says about its checkpoint."""
    if ckpt_path is None:
        return "No checkpoint is kept (config.out is None)."
    if ckpt_path.exists():
        return f"The last good checkpoint, {ckpt_path} (after epoch {epochs_done}), is intact."
    return f"No checkpoint was written yet ({ckpt_path} does not exist)."
