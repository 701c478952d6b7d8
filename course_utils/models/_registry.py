"""The model registry: every public builder registers itself under its function name.

``create_model(name, **kwargs)`` builds a registered model (stamped with its name and
arguments, ``model.course_cfg``); ``list_models(pattern)``
lists names (fnmatch patterns such as ``"dense*"``); ``model_info(name)`` returns the
model's default input size, class count, family and a short note on where it comes from.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from torch import nn

__all__ = ["ModelInfo", "register_model", "create_model", "list_models", "model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """What a lesson, widget or test needs to know about a registered model."""

    name: str
    family: str  # "densenet", "dense2net", "res2net", "xception", "cnn"
    input_size: Tuple[int, int, int]  # (C, H, W) the model was designed for
    num_classes: int  # the builder's default
    test_input_size: Tuple[int, int, int]  # smallest input the smoke test uses (fast on CPU)
    source: str = ""  # the paper / reference and the number it gives
    tags: Tuple[str, ...] = field(default=())  # e.g. ("imagenet",), ("cifar", "small")


_builders: Dict[str, Callable[..., nn.Module]] = {}
_infos: Dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    input_size: Tuple[int, int, int],
    num_classes: int,
    test_input_size: Optional[Tuple[int, int, int]] = None,
    source: str = "",
    tags: Tuple[str, ...] = (),
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a builder under its ``__name__`` with its :class:`ModelInfo`."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _builders:
            raise ValueError(f"model name {name!r} is registered twice")
        _builders[name] = fn
        _infos[name] = ModelInfo(
            name=name,
            family=family,
            input_size=tuple(input_size),
            num_classes=num_classes,
            test_input_size=tuple(test_input_size or input_size),
            source=source,
            tags=tuple(tags),
        )
        return fn

    return wrap


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(str(name), list(_builders), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"unknown model name={name!r}.{hint} Allowed: one of list_models(): {', '.join(sorted(_builders))}"
    )


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name``; keyword arguments go to its builder.

    Every builder accepts at least ``num_classes`` and ``in_chans``. The model carries
    what it was built as, ``model.course_cfg = {"name": name, "args": kwargs}`` (timm's
    ``pretrained_cfg`` habit): the training engine records the model from there.
    """
    if name not in _builders:
        raise _unknown(name)
    model = _builders[name](**kwargs)
    model.course_cfg = {"name": name, "args": dict(kwargs)}
    return model


def list_models(pattern: Optional[str] = None) -> List[str]:
    """Sorted registered names, optionally filtered by an fnmatch pattern (``"res2*"``)."""
    names = sorted(_builders)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model."""
    if name not in _infos:
        raise _unknown(name)
    return _infos[name]
