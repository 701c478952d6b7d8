"""One ablation run, ``OUT/<row>/seed<k>/``, in its own process, and what its folder says.

The ablation runner (:mod:`course_utils.ablate`) runs each (row, seed) through
:func:`run_one` on this machine; the cluster launcher (:mod:`course_utils.launch`) runs the
very same function inside a Slurm job. Either way the folder holds config.json, log.txt
and the engine's files (metrics.jsonl, checkpoint.pt, best.pt, summary.json); a cluster
run also holds job.json (the launcher, the job id, the jobs before it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from .ablate_results import _DONE
from .config import TrainConfig
from .files import atomic_write_text

__all__ = ["read_back", "read_json", "run_one", "same_run", "tail"]

REPO = Path(__file__).resolve().parents[1]


def read_json(p: Path) -> Optional[dict]:
    try:
        return json.loads(Path(p).read_text())
    except (OSError, ValueError):
        return None


def tail(p: Path, n: int = 6) -> str:
    """The last `n` non-empty lines of a log, joined with " | " (600 characters at most)."""
    try:
        lines = [ln for ln in Path(p).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-600:]


def same_run(a: dict, b: dict) -> bool:
    """Whether two recorded configs describe the same run (a finished one is read back)."""
    keys = ("model", "model_args", "dataset", "mode", "epochs", "batch_size", "lr", "augment",
            "cutout", "seed", "schedule", "train_size", "val_size", "test_size")
    return all(json.dumps(a.get(k)) == json.dumps(b.get(k)) for k in keys)


def read_back(run_dir: Path, config: TrainConfig) -> Optional[dict]:
    """The result of a run that already finished with this config, or None."""
    old = read_json(Path(run_dir) / "summary.json")
    if old and old.get("status") in _DONE and same_run(old.get("config", {}), config.as_dict()):
        return {"status": old["status"], "summary": old, "reused": True, "seconds": 0.0}
    return None


def run_one(run_dir: Path, config: TrainConfig, force: bool, timeout: Optional[float],
            notebook: Optional[Path] = None, kernel: str = "python3",
            child_setup: Optional[Callable[[], None]] = None) -> dict:
    """One run in its own process: ``python -m course_utils.train --config config.json``,
    or, with `notebook`, papermill executing that notebook with the run's parameters.
    child_setup: called in the child before it starts (a cluster job uses it to leave
    the scheduler's checkpoint signal to the job's own process)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = config.as_dict()
    cfg["milestones"] = list(config.milestones)  # as given (fractions stay fractions)
    summary_path = run_dir / "summary.json"
    if not force:
        done = read_back(run_dir, config)
        if done is not None:
            return done
    atomic_write_text(run_dir / "config.json", json.dumps(cfg, indent=2) + "\n")
    if notebook is None:
        cmd = [sys.executable, "-m", "course_utils.train", "--config",
               str(run_dir / "config.json"), "--out", str(run_dir), "--no-progress"]
        # force: start over (a finished run's checkpoint would otherwise be resumed at its end)
        cmd.append("--overwrite" if force else "--resume")
    else:
        if force:
            cfg["overwrite"], cfg["resume"] = True, False
        params = {"mode": config.mode, "dataset": config.dataset, "data_root": config.data_root,
                  "seed": config.seed, "epochs": config.epochs, "device": config.device,
                  "out_dir": str(run_dir), "train_config": json.dumps(cfg)}
        # papermill's command line with the lost-wake-up guard (course_utils/kernelpoll.py)
        cmd = [sys.executable, "-m", "course_utils.kernelpoll", str(notebook), str(run_dir / "executed.ipynb"),
               "-y", json.dumps(params), "-k", kernel, "--cwd", str(Path(notebook).parent),
               "--no-progress-bar"]
    env = dict(os.environ, COURSE_PROGRESS="0", PYTHONUNBUFFERED="1")
    if config.threads:
        env["OMP_NUM_THREADS"] = str(config.threads)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    with open(run_dir / "log.txt", "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        try:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                                env=env, timeout=timeout, preexec_fn=child_setup).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    seconds = time.perf_counter() - t0
    summary = read_json(summary_path)
    if rc == 0 and summary and summary.get("status") in _DONE:
        return {"status": summary["status"], "summary": summary, "reused": False,
                "seconds": seconds}
    why = f"exit status {rc}" if rc != "timeout" else f"timed out after {timeout:.0f} s"
    return {"status": "failed", "summary": summary, "reused": False, "seconds": seconds,
            "error": f"{why}: {tail(run_dir / 'log.txt')}"}
