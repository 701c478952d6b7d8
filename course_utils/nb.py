"""What every notebook does right after its `parameters` cell, and what it leaves behind.

    P = nb.setup(mode=mode, device=device, dataset=dataset, data_root=data_root,
                 seed=seed, out_dir=out_dir, notebook="01_convolution")

checks every parameter (a bad value stops the notebook there, with a message naming the
parameter and the allowed values), seeds everything, resolves the device and creates
out_dir. `out_dir=None` (every notebook's default) means build/out/<notebook> in the kit's
folder, whatever the kernel's working folder (JupyterLab, papermill, the runbook, a student
version in lessons/); a path given explicitly is taken as it is. At the end a notebook
calls `nb.record_headline(P, ...)`: the course runner
(`python -m course_utils.runbook`) prints that number in its table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import checks
from .data import DATASETS, MODES
from .env import DEVICES, default_out_dir, resolve_device, seed_everything
from .files import atomic_write_json


class ParameterError(checks.BadValue):
    """A notebook parameter has a value that is not allowed: ``ParameterError(name, value,
    allowed)`` (the message names them), or ``ParameterError(message)`` for a check a
    notebook writes itself."""

    prefix = "parameter "

    def __init__(self, param, *rest, **kw):
        if not rest:  # a message of the notebook's own
            self.param = self.value = self.allowed = None
            ValueError.__init__(self, param)
            return
        super().__init__(param, *rest, **kw)


@dataclass
class NotebookParams:
    mode: str
    device: torch.device
    dataset: str
    data_root: str | None
    seed: int
    out_dir: Path
    extra: dict

    def pick(self, smoke, quick, full):
        """The value for this mode: P.pick(smoke=1, quick=5, full=100)."""
        return {"smoke": smoke, "quick": quick, "full": full}[self.mode]


def setup(*, mode="quick", device="auto", dataset="cifar10", data_root=None, seed=0,
          out_dir=None, notebook="notebook", datasets=None, **extra) -> NotebookParams:
    """Validate the notebook parameters and prepare the run. `datasets` restricts the
    allowed datasets for a lesson that only makes sense on some of them."""
    err = dict(error=ParameterError)
    checks.one_of("mode", mode, MODES, show=repr, **err)
    checks.one_of("device", device, DEVICES, show=repr, **err)
    checks.one_of("dataset", dataset, tuple(datasets or DATASETS), show=repr, **err)
    checks.integer("seed", seed, 0, **err)
    if data_root in ("", "None"):
        data_root = None
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ParameterError("data_root", data_root, "allowed: None (search COURSE_DATA, "
                             "data/, system copies) or a folder that holds the dataset",
                             reason="is not an existing folder")
    for name, value in extra.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ParameterError(name, value, "allowed: a number >= 0")
    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise ParameterError(f"parameter {e}") from None
    _inline_plots()
    seed_everything(seed)
    if out_dir in ("", "None"):
        out_dir = None
    out = default_out_dir(notebook) if out_dir is None else Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    return NotebookParams(mode, dev, dataset, data_root, seed, out, extra)


def _inline_plots() -> None:
    """In a notebook kernel, make sure figures show: a kernel started with MPLBACKEND=Agg
    in its environment keeps Agg, and plt.show() then draws nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return
    import matplotlib

    if matplotlib.get_backend().lower() == "agg":
        shell.run_line_magic("matplotlib", "inline")


def record_headline(params: NotebookParams, name: str, value, note: str = "") -> dict:
    """Write out_dir/headline.json: the one number the course runner shows for a notebook."""
    rec = {"name": name, "value": value, "note": note, "mode": params.mode,
           "dataset": params.dataset, "seed": params.seed}
    atomic_write_json(params.out_dir / "headline.json", rec, indent=1, default=str)
    return rec
