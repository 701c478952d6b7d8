"""What a run says about itself: its recorded config, summary.json, the printed lines.

Values travel one way. The model says what it is (``model.course_cfg``, stamped by
``models.create_model``: its registry name and arguments), the data bundle says what it
holds (``DataBundle.recipe()``: dataset, mode, sizes, batch, augmentation), and
:func:`recorded_config` writes both into the config a run records (summary.json,
checkpoint.pt) and compares on resume; the TrainConfig passed to ``fit`` only adds how
to train. A config that names another model or dataset than the ones trained is not
recorded as if it had been.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .config import ConfigError, TrainConfig

__all__ = ["FitResult", "count_macs_note", "data_source", "epoch_line", "model_record",
           "recorded_config"]

_PLAIN = (str, int, float, bool, type(None))


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


def _plain(v):
    """A value as JSON and torch.load(weights_only=True) can hold it (others as repr)."""
    if isinstance(v, _PLAIN):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return repr(v)


def model_record(model: nn.Module, data, config: TrainConfig) -> dict:
    """{"model": name, "model_args": args} of a model built by create_model (its stamp);
    num_classes and in_chans are left out where the data implies them. A model from
    elsewhere is recorded by its class name, with config.model_args."""
    stamp = getattr(model, "course_cfg", None)
    if not stamp:
        return {"model": type(model).__name__, "model_args": dict(config.model_args)}
    info = getattr(data, "info", None)
    implied = {"num_classes": getattr(info, "num_classes", None),
               "in_chans": getattr(info, "in_chans", None)}
    args = {k: _plain(v) for k, v in stamp["args"].items()
            if not (k in implied and v == implied[k])}
    return {"model": stamp["name"], "model_args": args}


def recorded_config(config: TrainConfig, model: nn.Module, data, world_size: int = 1) -> TrainConfig:
    """The config a run records: `config` with what to train read from the model and the
    data (module docstring). Raises ConfigError for loaders built for another number of
    processes than this run's."""
    facts = model_record(model, data, config)
    recipe = getattr(data, "recipe", None)
    if recipe is not None:
        if data.world_size != world_size:
            raise ConfigError("data", f"loaders for world_size={data.world_size}",
                              f"this run has world_size={world_size}: build the data with "
                              f"rank and world_size={world_size} (train.make_data does)")
        facts.update(recipe())
    return replace(config, **facts)


def data_source(data) -> dict:
    """The data, as summary.json records it (its info, and whether it is an official copy)."""
    info = getattr(data, "info", None)
    if info is None:
        return {"label": "unknown (data has no .info)"}
    d = info.as_dict() if hasattr(info, "as_dict") else {"label": str(info)}
    src = getattr(info, "source", None)
    if src is not None:
        d["official"] = bool(getattr(src, "official", False))
        d["jpeg_copy"] = str(getattr(src, "kind", "")).startswith("jpeg")
    return d


def count_macs_note(model: nn.Module, example: torch.Tensor) -> tuple[Optional[int], str]:
    """MACs of one image, and how they were counted (or why not)."""
    try:
        from .profile import count_macs
    except Exception as e:  # noqa: BLE001 - profile.py is optional for the engine
        return None, f"course_utils.profile unavailable ({type(e).__name__})"
    try:
        return int(count_macs(model, example[:1])), "FlopCounterMode, one image, FLOPs/2"
    except Exception as e:  # noqa: BLE001 - a model the counter cannot trace still trains
        return None, f"MAC count failed: {type(e).__name__}: {e}"[:200]


def epoch_line(r: dict, epochs: int) -> str:
    return (f"epoch {r['epoch']:>3}/{epochs}  train loss {r['train_loss']:.3f} "
            f"acc {100 * r['train_acc']:5.1f}%  val loss {r['val_loss']:.3f} "
            f"acc {100 * r['val_acc']:5.1f}% top5 {100 * r['val_top5']:5.1f}%  "
            f"lr {r['lr']:.3g}  {r['seconds']:.1f}s  {r['images_per_s']:.0f} img/s")


def best_of(best: dict, history: list) -> dict:
    """The summary's best-epoch fields."""
    ep = best["epoch"]
    return {"best_epoch": ep,
            "best_val_acc": best["val_acc"] if ep is not None else None,
            "best_val_loss": best["val_loss"] if ep is not None else None,
            "train_acc_at_best": (history[ep - 1]["train_acc"]
                                  if ep is not None and len(history) >= ep else None)}


NO_BEST = {"epoch": None, "val_acc": -1.0, "val_loss": math.inf}
