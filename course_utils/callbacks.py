"""Callbacks for :func:`course_utils.train.fit`: a live plot for notebooks, and the protocol.

A callback is any object with some of these methods (fit calls the ones it has)::

    on_fit_start(info)                      # info: what summary.json will say (config, device, ...)
    on_step_end(epoch, step, steps, loss)   # loss: a 0-dim tensor (call float() only if you need it)
    on_epoch_end(record, history)           # record: this epoch's metrics.jsonl line
    on_fit_end(summary)

    from course_utils.callbacks import LivePlot
    fit(model, data, config, callbacks=[LivePlot()])   # redraws the curves after every epoch
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

__all__ = ["Callback", "LivePlot"]


class Callback:
    """Base class with every hook doing nothing (subclass and override what you need)."""

    def on_fit_start(self, info: dict) -> None:
        pass

    def on_step_end(self, epoch: int, step: int, steps: int, loss) -> None:
        pass

    def on_epoch_end(self, record: dict, history: list) -> None:
        pass

    def on_fit_end(self, summary: dict) -> None:
        pass


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class LivePlot(Callback):
    """Accuracy and loss curves, train vs validation (the report's Figs. 8-11), redrawn
    after every epoch in place in a notebook (one output, updated through an IPython
    display handle). Outside a notebook it only saves the figure when `save_to` is set.

    Args:
        title: figure title (default: the model class and the data label).
        save_to: also write the figure there (PNG) after every epoch and at the end.
        every: redraw every `every` epochs (1 = each epoch).
    """

    def __init__(self, title: Optional[str] = None, save_to=None, every: int = 1):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} is not allowed; expected an integer >= 1")
        self.title, self.save_to, self.every = title, save_to, every
        self.handle = None
        self.figure = None
        self._in_nb = _in_notebook()

    def on_fit_start(self, info: dict) -> None:
        if self.title is None:
            self.title = f"{info.get('model_class', '')} - {info.get('data', {}).get('label', '')}"

    def _draw(self, history: list) -> None:
        import matplotlib.pyplot as plt

        from .viz import plot_history

        if self.figure is not None:
            plt.close(self.figure)
        self.figure = plot_history(history, title=self.title or "")
        if self.save_to:
            Path(self.save_to).parent.mkdir(parents=True, exist_ok=True)
            self.figure.savefig(self.save_to, dpi=110)
        if self._in_nb:
            from IPython.display import display

            if self.handle is None:
                self.handle = display(self.figure, display_id=True)
            else:
                self.handle.update(self.figure)
            plt.close(self.figure)  # shown through the handle only, not twice

    def on_epoch_end(self, record: dict, history: list) -> None:
        if record["epoch"] % self.every == 0:
            self._draw(history)
