"""Lesson 07: stored full-mode results are shown without retraining (and refused without
provenance); finished runs are read back; rerun=True trains again."""
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from course_utils import ablate

REPO = Path(__file__).resolve().parents[1]
NB = REPO / "notebooks" / "07_table1.ipynb"


def _stored(folder: Path, rows, title="Dense2Net report, Table 1", with_provenance=True):
    """A results folder as a full GPU run would leave it, without any training."""
    results = {}
    for i, row in enumerate(rows):
        acc = 0.70 + 0.01 * i
        summary = {"status": "completed", "best_val_acc": acc, "train_acc_at_best": 0.99,
                   "test_acc": acc - 0.005, "params": 6_762_724, "macs": 832_081_920,
                   "epochs_run": 100, "data": {"label": "CIFAR-100 (official)", "jpeg_copy": False},
                   "config": {"model": "dense2net121", "model_args": {}, "mode": "full", "epochs": 100}}
        results[(row.name, 0)] = {"status": "completed", "summary": summary}
        run = folder / row.name / "seed0"
        run.mkdir(parents=True)
        hist = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "train_acc": 0.5 + 0.004 * e,
                 "val_acc": 0.45 + 0.0025 * e, "lr": 0.1} for e in range(1, 101)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hist))
    meta = {"title": title, "mode": "full", "seeds": 1, "jobs": 1, "note": ablate.MODE_RECIPES["full"]["note"],
            "started": "2026-11-20 10:00:00", "out": "/elsewhere/runs/table1_full"}
    if with_provenance:
        meta["provenance"] = {"date": "2026-11-21 09:00:00 +0000", "host": "gpu-box", "device": "cuda:0",
                              "gpu": "NVIDIA H100", "torch": "2.14.1",
                              "command": "python -m course_utils.ablate table1 --mode full"}
    ablate._write_results(folder, list(rows), 1, results, meta)
    return folder


def _run(tmp_path, **params):
    out = tmp_path / "07.ipynb"
    pm.execute_notebook(str(NB), str(out), parameters={"out_dir": str(tmp_path / "out"), **params},
                        kernel_name="python3", cwd=str(NB.parent), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(o.get("text", "") + json.dumps(o.get("data", {}).get("text/markdown", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    return nb, text


def test_stored_full_results_are_shown_without_training(tmp_path):
    table = _stored(tmp_path / "table1_full", ablate.TABLE1)
    gap = _stored(tmp_path / "gap_full", ablate.GAP_ROWS, title=ablate.TITLES["gap"])
    nb, text = _run(tmp_path, mode="full", stored_results=str(table), stored_gap_results=str(gap))
    assert "full-mode results read from" in text and "[ablate]" not in text   # nothing trained
    assert "NVIDIA H100" in text and "python -m course_utils.ablate table1 --mode full" in text
    assert "| Dense2Net scale = 8 | 76.10 | 98.77 | 75.00 |" in text             # stored value shown
    assert "DenseNet, pytorch-cifar100's recipe" in text and "75.00% val" in text
    pngs = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert pngs >= 3       # the bar chart, train vs validation, the curves from the stored metrics
    assert not (tmp_path / "out" / "table1_full").exists()


def test_stored_results_without_provenance_are_refused(tmp_path):
    table = _stored(tmp_path / "table1_full", ablate.TABLE1[:2], with_provenance=False)
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run(tmp_path, mode="full", stored_results=str(table), stored_gap_results=str(tmp_path / "none"))
    assert "lacks provenance" in e.value.evalue and "meta.provenance.date" in e.value.evalue


def test_bad_rerun_value_is_named(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run(tmp_path, mode="smoke", rerun="yes")
    assert e.value.ename == "ParameterError" and "rerun='yes'" in e.value.evalue


def test_finished_runs_are_read_back_and_rerun_trains_again(tmp_path):
    # one seed: the two smoke rows, the control and the gap row
    _, first = _run(tmp_path, mode="smoke", seeds=1)
    assert first.count("completed in") == 4 and "(read back)" not in first
    _, second = _run(tmp_path, mode="smoke", seeds=1)
    assert second.count("(read back)") == 4 and "completed in" not in second
    metrics = sorted((tmp_path / "out").glob("*_smoke/*/seed0/metrics.jsonl"))
    assert len(metrics) == 4
    before = [m.stat().st_mtime_ns for m in metrics]
    _, forced = _run(tmp_path, mode="smoke", seeds=1, rerun=True)
    assert forced.count("completed in") == 4 and "(read back)" not in forced
    # trained again from the first epoch, not resumed at the end of the finished run
    assert all(m.stat().st_mtime_ns > t for m, t in zip(metrics, before))
    for m in metrics:
        last = (m.parent / "log.txt").read_text().rsplit("\n$ ", 1)[-1]   # the rerun's part
        assert "--overwrite" in last and "resuming" not in last and "epoch   1/1" in last, last[-500:]
