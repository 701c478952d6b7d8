from course_utils import runbook


def _row(name, seconds, status="ok"):
    return {"notebook": name, "status": status, "seconds": seconds, "error": "boom",
            "headline": {"name": "acc", "value": 0.5, "note": ""}}


def test_report_shows_this_runs_times_against_the_budgets():
    rows = [_row("02_x.ipynb", 200.0), _row("07_y.ipynb", 300.0), _row("01_z.ipynb", 1.0, "FAILED")]
    table = runbook.format_table(rows, "quick", where="test machine, 2 cores")
    lines = table.splitlines()
    assert "mode=quick" in lines[0] and "on test machine, 2 cores" in lines[0]
    assert "| 02_x.ipynb | ok | 200.0 | 180 **over** | acc: 0.5 |" in lines
    assert "| 07_y.ipynb | ok | 300.0 | 480 | acc: 0.5 |" in lines
    assert "| 01_z.ipynb | FAILED | 1.0 | 180 | boom |" in lines
    assert "total: 501.0 s, 2/3 notebooks ok" in table
    # budgets are quick mode's: other modes show none
    assert "| 02_x.ipynb | ok | 200.0 | - | acc: 0.5 |" in runbook.format_table(rows, "smoke", "m")


# ------------------------------------------------------------------ grids of runs
import json  # noqa: E402

import nbformat  # noqa: E402
import pytest  # noqa: E402

PROBE_PARAMS = 'mode = "quick"\nseed = 0\nflavour = "good"\nout_dir = None\n'
# The headline record nb.record_headline writes, without nb's torch import (4 kernels)
PROBE_BODY = '''from pathlib import Path
from course_utils.files import atomic_write_json
if flavour == "bad":
    raise ValueError(f"flavour {flavour!r} breaks this notebook")
atomic_write_json(Path(out_dir) / "headline.json", {"name": "probe accuracy",
                  "value": 0.5 + seed, "note": mode, "mode": mode, "seed": seed})
'''


def _probe_notebook(folder):
    """A notebook as the kit's are: a parameters cell, then a cell that records a headline
    (0.5 + seed), and raises for flavour="bad"."""
    folder.mkdir(parents=True, exist_ok=True)
    params = nbformat.v4.new_code_cell(PROBE_PARAMS, metadata={"tags": ["parameters"]})
    nbk = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(PROBE_BODY)])
    nbk.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                  "language": "python"}
    nbformat.write(nbk, str(folder / "90_probe.ipynb"))
    return folder


def test_grid_values_are_coerced_and_expanded_first_key_slowest():
    grid = runbook.parse_grid(["seed=0, 1", "dataset=cifar10,fashion_mnist", "lr=0.1,None"])
    assert grid == [("seed", [0, 1]), ("dataset", ["cifar10", "fashion_mnist"]),
                    ("lr", [0.1, None])]
    points = runbook.expand_grid(grid[:2])
    assert points == [{"seed": 0, "dataset": "cifar10"}, {"seed": 0, "dataset": "fashion_mnist"},
                      {"seed": 1, "dataset": "cifar10"}, {"seed": 1, "dataset": "fashion_mnist"}]
    assert runbook.point_name({"seed": 1, "data_root": "/a b/c"}) == "seed=1__data_root=_a_b_c"


def test_grid_jobs_have_their_own_file_out_dir_and_setting(tmp_path):
    grid = runbook.parse_grid(["seed=0,1", "dataset=cifar10,fashion_mnist"])
    jobs = runbook.grid_jobs([tmp_path / "06_x.ipynb"], grid, mode="smoke", build=tmp_path,
                             params={"epochs": 2})
    assert len(jobs) == 4
    assert len({j["executed"] for j in jobs}) == len({j["params"]["out_dir"] for j in jobs}) == 4
    j = jobs[1]
    assert j["executed"] == str(tmp_path / "grid" / "06_x__seed=0__dataset=fashion_mnist.ipynb")
    assert j["params"] == {"mode": "smoke", "epochs": 2, "seed": 0, "dataset": "fashion_mnist",
                           "out_dir": str(tmp_path / "grid" / "out" / "06_x"
                                          / "seed=0__dataset=fashion_mnist")}
    assert j["setting"] == {"dataset": "fashion_mnist"} and j["seed"] == 0
    mine = runbook.grid_jobs([tmp_path / "06_x.ipynb"], grid[:1], build=tmp_path,
                             params={"out_dir": str(tmp_path / "mine")})  # -p out_dir
    assert [j["params"]["out_dir"] for j in mine] == [
        str(tmp_path / "mine" / "06_x" / f"seed={s}") for s in (0, 1)]


def _grid_row(seed, value, setting, status="ok", error="", name="acc", seconds=2.0):
    head = {"name": name, "value": value, "note": ""} if status == "ok" else None
    return {"notebook": "06_x.ipynb", "setting": setting, "seed": seed, "status": status,
            "seconds": seconds, "headline": head, "error": error}


def test_grid_table_mean_std_by_hand_values_with_counts_and_failed_rows():
    a, b = {"dataset": "cifar10"}, {"dataset": "fashion_mnist"}
    rows = [_grid_row(0, 1.0, a), _grid_row(1, 2, a), _grid_row(2, 4.0, a, seconds=5.0),
            _grid_row(0, "83.1 vs 80.2", b, name="pair"),
            _grid_row(1, "84.0 vs 80.0", b, name="pair"),
            _grid_row(2, None, b, status="FAILED", error="ValueError: boom"),
            _grid_row(3, "83.1 vs 80.2", b, name="pair")]
    summary = runbook.summarize_grid(rows)
    assert [(s["setting"]["dataset"], s["status"]) for s in summary] == [
        ("cifar10", "ok"), ("fashion_mnist", "ok"), ("fashion_mnist", "FAILED")]
    # mean of 1, 2, 4 = 7/3; sample std: sqrt(((4/3)^2 + (1/3)^2 + (5/3)^2) / 2) = sqrt(7/3)
    assert summary[0]["mean"] == pytest.approx(7 / 3)
    assert summary[0]["std"] == pytest.approx((7 / 3) ** 0.5)
    assert summary[0]["n"] == 3 and summary[0]["seconds"] == 3.0
    assert summary[1]["counts"] == {"83.1 vs 80.2": 2, "84.0 vs 80.0": 1}
    assert summary[1]["ok"] == 3 and summary[1]["runs"] == 4 and "mean" not in summary[1]
    meta = {"mode": "smoke", "date": "today", "machine": "m", "grid": {"seed": [0, 1, 2]},
            "jobs": 2, "runs": 7, "ok": 6, "wall_s": 9.0, "folder": "build/grid"}
    lines = runbook.format_grid_table(summary, meta).splitlines()
    row = "| 06_x.ipynb | dataset={} | {} | {} | {} | {} | {} |".format
    assert row("cifar10", "0,1,2", "ok", "acc", "2.333 ± 1.528 (n=3)", "3.0") in lines
    assert row("fashion_mnist", "0,1,3", "ok", "pair", "83.1 vs 80.2 (×2), 84.0 vs 80.0 (×1)",
               "2.0") in lines
    assert row("fashion_mnist", "2", "FAILED", "-", "ValueError: boom", "2.0") in lines
    assert lines[-1].startswith("6/7 runs ok, 2 at a time, wall time 9.0 s")
    one = runbook.summarize_grid([_grid_row(0, 0.25, a)])
    assert runbook.format_value(one[0]) == "0.25 (n=1)"  # no std from one seed


@pytest.mark.parametrize("args, says", [
    (["--grid", "seed"], "--grid='seed' has no '='; allowed: KEY=V1,V2,..."),
    (["--grid", "=0,1"], "--grid='=0,1' names no parameter"),
    (["--grid", "seed="], "--grid='seed=' has no values; allowed: one value or more"),
    (["--grid", "seed=0,,1"], "--grid='seed=0,,1' has an empty value"),
    (["--grid", "seed=0,0"], "--grid='seed=0,0' repeats the value '0'"),
    (["--grid", "seed=0", "--grid", "seed=1"], "--grid='seed=1' repeats the key 'seed'"),
    (["--grid", "seed=0,1", "-p", "seed", "3"], "sets 'seed', which -p sets too"),
    (["--grid", "epochs=1,2"], "--grid='epochs=1,2' is not a parameter of 90_probe.ipynb; "
     "allowed: a parameter of 90_probe.ipynb: mode, seed, flavour, out_dir"),
    (["--grid", "seed=0,1", "--jobs", "0"], "argument --jobs: '0' is not allowed; "
     "allowed: an integer >= 1"),
    (["--jobs", "2"], "--jobs 2: allowed: 1 without --grid"),
])
def test_grid_argument_errors_name_the_option_value_and_what_is_allowed(args, says, tmp_path,
                                                                        capsys):
    nbs = _probe_notebook(tmp_path / "nbs")
    with pytest.raises(SystemExit) as e:
        runbook.main(["--notebooks", str(nbs), "--build", str(tmp_path / "build")] + args)
    assert e.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "build" / "grid").exists()  # nothing ran


def test_grid_runs_papermill_in_parallel_and_tabulates_seeds(tmp_path, capsys):
    """End to end: 2 seeds x 2 flavours, 2 at a time, through papermill; flavour=bad
    raises in the notebook."""
    nbs = _probe_notebook(tmp_path / "nbs")
    build = tmp_path / "build"
    rc = runbook.main(["--notebooks", str(nbs), "--build", str(build), "--mode", "smoke",
                       "--grid", "seed=0,1", "--grid", "flavour=good,bad", "--jobs", "2"])
    assert rc == 1  # a run failed
    folder = build / "grid"
    for seed in (0, 1):
        for flavour in ("good", "bad"):
            executed = folder / f"90_probe__seed={seed}__flavour={flavour}.ipynb"
            assert executed.is_file(), sorted(p.name for p in folder.iterdir())
            assert nbformat.read(str(executed), as_version=4).cells  # readable
    out = capsys.readouterr().out
    report = (folder / "grid_report.md").read_text()
    good = ("| 90_probe.ipynb | flavour=good | 0,1 | ok | probe accuracy (smoke) | "
            "1 ± 0.7071 (n=2) |")  # 0.5 and 1.5: std = sqrt(2 * 0.5^2 / 1)
    assert good in report and good in out
    bad = [ln for ln in report.splitlines() if "flavour=bad" in ln]
    assert len(bad) == 2 and all("| FAILED | - | ValueError: flavour 'bad' breaks this "
                                 "notebook |" in ln for ln in bad), report
    data = json.loads((folder / "grid_report.json").read_text())
    assert data["meta"]["runs"] == 4 and data["meta"]["ok"] == 2 and data["meta"]["jobs"] == 2
    ok = next(s for s in data["settings"] if s["status"] == "ok")
    assert ok["mean"] == pytest.approx(1.0) and ok["std"] == pytest.approx(0.5 ** 0.5)
    assert [r["seed"] for r in data["runs"]] == [0, 0, 1, 1]
