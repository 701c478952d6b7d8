"""The Dense2Net report's own command line (its appendix, section 7), on the kit's engine.

The report runs ``python3 dense2net.py`` with seven options, and its boolean flags
*remove* features that are all on by default. This module keeps that interface as
written::

    python -m course_utils.dense2net                      # the report's defaults, all on
    python -m course_utils.dense2net --a --c --scale 8    # no augmentation, no cutout, s = 8
    python -m course_utils.dense2net --r                  # resume runs/dense2net/checkpoint.pt

The report's options (argparse with ``allow_abbrev=False``: ``--a``, ``--c``, ``--se``
and ``--r`` are exact flags, never abbreviations of longer ones):

- ``--lr LR``: learning rate; report default 0.1.
- ``--r``: resume training from ``OUT/checkpoint.pt``. Give the same flags as the
  first run: the engine refuses a resume whose ``--lr``, ``--a``, ``--c``, ``--se``,
  ``--scale``, ``--groups``, ``--model``, ``--dataset``, ``--mode`` or ``--seed``
  differ from the checkpoint's (``--epochs`` may grow).
- ``--a``: run without data augmentation (crop + flip, report sec. 4.2.1). Cutout is
  applied to augmented batches only, so ``--a`` turns cutout off as well.
- ``--se``: run *without* the SE layer (report sec. 4.2.5). Note: in
  ``python -m course_utils.train``, ``--se`` means the opposite (add SE).
- ``--c``: run without cutout (1 hole of 8 px, report sec. 4.2.2).
- ``--scale S``: Res2Net scale s; report default 4. It must divide the Res2Net
  module's input channels (128 in ``dense2net121``, 48 in ``dense2net_tiny``).
- ``--groups C``: cardinality; report default 1. It must divide the split width
  w = channels / s (32 in ``dense2net121`` at s = 4).

Options the kit needs besides the report's (defaults: the report's recipe, i.e. the
``report`` preset of :mod:`course_utils.train`, where the report states one):

- ``--model``: ``dense2net121`` (report Fig. 6, the default) or ``dense2net_tiny``
  (reduced width, for a CPU lesson).
- ``--dataset``: ``cifar100`` (report sec. 4.1, the default), any dataset of
  :mod:`course_utils.data`, or ``synthetic`` (no files; for tests).
- ``--data-root``: where the dataset files are (default: the data layer's search order).
- ``--mode``: ``full`` (the whole training split, 10% held out for validation; the
  default), ``quick`` or ``smoke`` (subsets for lessons and CI).
- ``--epochs``: 100 (report sec. 3.2, 4.1).
- ``--device``: ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
- ``--seed``: 0; ``--threads``: torch CPU threads (default: torch's).
- ``--out``: the run folder, default ``runs/dense2net`` (metrics.jsonl, checkpoint.pt,
  best.pt, summary.json, as ``python -m course_utils.train`` writes them).
- ``--overwrite``: start over in an ``--out`` that already holds a checkpoint (without
  it such a run is refused, so that nothing is lost).
- ``--no-progress``, ``--quiet``: no progress bars; no per-epoch lines.

Everything else is the report's recipe as the kit's ``report`` preset fixes it: SGD,
momentum 0.9, weight decay 1e-4, batch 128, LR x0.1 at epochs 30 and 60 (the report's
first schedule; its later plateau schedule is ``python -m course_utils.train --preset
report_plateau``). For any other setting use ``python -m course_utils.train``.

The defaults (SE and cutout on) are not Table 1's "Dense2Net" row, which has neither:
``--se --c`` reproduces that row (see :func:`table1_flags`).

Bad values (an ``--lr`` <= 0, a ``--scale`` or ``--groups`` the model does not allow,
...) exit with status 2 and a message naming the flag, the value and what is allowed,
before anything is written.
"""

from __future__ import annotations

if __name__ == "__main__":
    # as in course_utils.train: before torch loads OpenMP, idle threads sleep instead of
    # spinning (spinning made training up to 6x slower on a shared CPU)
    import os as _os

    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import sys
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .train import CheckpointError, ConfigError, NonFiniteLossError, TrainConfig, preset, run

__all__ = ["DEFAULT_OUT", "MODELS", "build_parser", "config_from_args", "main",
           "parse_config", "table1_flags"]

PROG = "python -m course_utils.dense2net"
MODELS = ("dense2net121", "dense2net_tiny")
DEFAULT_OUT = "runs/dense2net"
CUTOUT_PX = 8  # report sec. 4.2.2: 1 hole of 8 px
REPORT_DEFAULTS = dict(lr=0.1, scale=4, groups=1)  # report appendix

# TrainConfig field (as ConfigError names it) -> this command line's flag
_FLAG = {"lr": "--lr", "resume": "--r", "augment": "--a", "attn_layer": "--se",
         "cutout": "--c", "scale": "--scale", "groups": "--groups",
         "model_args": "--scale/--groups/--se", "model": "--model", "dataset": "--dataset",
         "data_root": "--data-root", "mode": "--mode", "epochs": "--epochs",
         "device": "--device", "seed": "--seed", "threads": "--threads", "out": "--out"}

# Table 1's Dense2Net rows (course_utils.ablate.TABLE1 names) as flags of this command
# line; the DenseNet rows are another model (python -m course_utils.ablate / .train)
_TABLE1_FLAGS = {
    "dense2net_noaug": ["--a", "--se"],
    "dense2net": ["--se", "--c"],
    "dense2net_scale2": ["--se", "--c", "--scale", "2"],
    "dense2net_scale8": ["--se", "--c", "--scale", "8"],
    "dense2net_cutout": ["--se"],
    "dense2net_groups": ["--se", "--c", "--groups", "32"],
    "dense2net_se": ["--c"],
}


def table1_flags(row: str = "dense2net") -> list[str]:
    """The flags of this command line that train a Dense2Net row of the report's Table 1
    (full size; add --model/--mode/... for smaller runs)."""
    if row not in _TABLE1_FLAGS:
        raise ConfigError("row", row, f"allowed: {', '.join(_TABLE1_FLAGS)}")
    return list(_TABLE1_FLAGS[row])


def _flag(param: str) -> str:
    return _FLAG.get(param, "--" + param.replace("_", "-"))


def build_parser() -> argparse.ArgumentParser:
    from .data import DATASETS, MODES
    from .env import DEVICES

    ap = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="The Dense2Net report's command line (appendix, section 7) on the kit's "
                    "engine. Every feature is on by default (augmentation, SE, cutout); "
                    "the boolean flags remove one each, as in the report. The defaults "
                    "are not Table 1's 'Dense2Net' row, which has no SE and no cutout: "
                    "--se --c reproduces it.",
        epilog="Everything else is the report's recipe (course_utils.train preset "
               "'report'): SGD momentum 0.9, weight decay 1e-4, batch 128, LR x0.1 at "
               "epochs 30 and 60. Other settings: python -m course_utils.train.")
    r = ap.add_argument_group("the report's options")
    r.add_argument("--lr", type=float, default=REPORT_DEFAULTS["lr"],
                   help="learning rate, > 0 (report default: %(default)s)")
    r.add_argument("--r", action="store_true",
                   help="resume training from OUT/checkpoint.pt (give the first run's flags)")
    r.add_argument("--a", action="store_true",
                   help="run without data augmentation (crop + flip; also no cutout, "
                        "which applies to augmented batches only). Default: augmentation on")
    r.add_argument("--se", action="store_true",
                   help="run without the SE layer (the opposite of course_utils.train's "
                        "--se). Default: SE on")
    r.add_argument("--c", action="store_true",
                   help=f"run without cutout (1 hole of {CUTOUT_PX} px). Default: cutout on")
    r.add_argument("--scale", type=int, default=REPORT_DEFAULTS["scale"],
                   help="Res2Net scale s, a divisor of the module's channels (128 in "
                        "dense2net121, 48 in dense2net_tiny) (report default: %(default)s)")
    r.add_argument("--groups", type=int, default=REPORT_DEFAULTS["groups"],
                   help="cardinality C, a divisor of the split width channels/s "
                        "(report default: %(default)s)")
    k = ap.add_argument_group("the kit's options (defaults: the report's recipe)")
    k.add_argument("--model", default="dense2net121",
                   help=f"one of {', '.join(MODELS)} (default: %(default)s, report Fig. 6)")
    k.add_argument("--dataset", default="cifar100",
                   help=f"one of {', '.join(DATASETS)} or synthetic (no files, for tests) "
                        "(default: %(default)s, report sec. 4.1)")
    k.add_argument("--data-root", default=None,
                   help="folder with the dataset files (default: COURSE_DATA, data/, ...)")
    k.add_argument("--mode", default="full",
                   help=f"one of {', '.join(MODES)}; full = the whole training split "
                        "(default: %(default)s, as the report)")
    k.add_argument("--epochs", type=int, default=100,
                   help="epochs, >= 1 (default: %(default)s, report sec. 3.2)")
    k.add_argument("--device", default="auto",
                   help=f"one of {', '.join(DEVICES)} or cuda:N (default: %(default)s)")
    k.add_argument("--seed", type=int, default=0, help="seed, >= 0 (default: %(default)s)")
    k.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's)")
    k.add_argument("--out", default=DEFAULT_OUT,
                   help="run folder: metrics.jsonl, checkpoint.pt, best.pt, summary.json "
                        "(default: %(default)s)")
    k.add_argument("--overwrite", action="store_true",
                   help="start over in an OUT that already holds a checkpoint")
    k.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars")
    k.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return ap


@functools.lru_cache(maxsize=None)
def _module_channels(model: str) -> int:
    """Input channels of the model's Res2Net modules (built on the meta device: no
    memory, a fraction of a second)."""
    import torch

    from .layers import Res2NetModule
    from .models import create_model

    with torch.device("meta"):
        m = create_model(model, scale=1, groups=1)
    return next(x.width for x in m.modules() if isinstance(x, Res2NetModule))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_model_args(model: str, scale: int, groups: int) -> None:
    if model not in MODELS:
        raise ConfigError("model", model, f"allowed: {', '.join(MODELS)}")
    channels = _module_channels(model)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1 or channels % scale:
        raise ConfigError("scale", scale, f"{model} allows a divisor of its {channels} "
                          f"Res2Net channels: one of {_divisors(channels)}")
    width = channels // scale
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or width % groups:
        raise ConfigError("groups", groups, f"{model} at scale {scale} allows a divisor of "
                          f"its split width w = {channels}/{scale} = {width}: one of "
                          f"{_divisors(width)}")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed options ask for: the report preset, then the options.
    Raises ConfigError (naming the field) for a value that is not allowed."""
    _check_model_args(args.model, args.scale, args.groups)
    model_args = {"scale": args.scale, "groups": args.groups}
    if not args.se:
        model_args["attn_layer"] = "se"  # report sec. 4.2.5, on unless --se
    augment = not args.a
    cutout = CUTOUT_PX if (augment and not args.c) else 0
    return preset(
        "report", model=args.model, model_args=model_args, dataset=args.dataset,
        data_root=args.data_root, mode=args.mode, epochs=args.epochs, lr=args.lr,
        augment=augment, cutout=cutout, device=args.device, seed=args.seed,
        threads=args.threads, out=args.out, resume=bool(args.r),
        overwrite=bool(args.overwrite), progress=bool(args.progress),
        verbose=not args.quiet)


def parse_config(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    """The TrainConfig a command line (a list of arguments) asks for, without running it;
    a bad value exits with status 2 as :func:`main` does."""
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return config_from_args(args)
    except ConfigError as e:
        ap.error(f"argument {_flag(e.param)}: {e}")


def _check_out(config: TrainConfig) -> None:
    """A folder that holds a run, in this command line's words (--r); the engine checks
    the rest (course_utils.checkpoint.check_out_folder)."""
    ckpt = Path(config.out) / "checkpoint.pt"
    if ckpt.exists() and not (config.resume or config.overwrite):
        raise ConfigError("resume", False, f"{ckpt} already holds a run: pass --r to "
                          "continue it, --overwrite to start over, or another --out")


def main(argv: Optional[Sequence[str]] = None, callbacks: Iterable = ()) -> int:
    """`python -m course_utils.dense2net ...`: 0 on success; 2 for a bad option (the
    message names the flag); 1 when the data is missing, a checkpoint cannot be read or
    the loss became NaN."""
    from .data import DataIntegrityError, DataNotFoundError

    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        config = config_from_args(args)
        _check_out(config)
        run(config, callbacks=callbacks)  # checks the device before anything is built
    except ConfigError as e:
        ap.error(f"argument {_flag(e.param)}: {e}")  # exits with status 2
    except (DataNotFoundError, DataIntegrityError) as e:
        print(f"{PROG}: error: argument --dataset: {e}", file=sys.stderr)
        return 1
    except NonFiniteLossError as e:
        print(f"{PROG}: error: {e} (here: a lower --lr, then --r)", file=sys.stderr)
        return 1
    except CheckpointError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the last checkpoint is intact, continue with --r",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
