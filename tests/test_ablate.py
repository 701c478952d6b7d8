"""The Table 1 ablation runner: the nine rows, each mode's configs, and a real parallel
run (processes) in which one row fails and is reported, not dropped. Synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from course_utils.ablate import (
    GAP_ROWS,
    MODE_RECIPES,
    TABLE1,
    AblationRow,
    load_results,
    main,
    results_markdown,
    row_config,
    run_table,
    select_rows,
)
from course_utils.train import ConfigError


def test_table1_has_the_reports_nine_rows_and_numbers():
    assert len(TABLE1) == 9
    by = {r.name: r for r in TABLE1}
    assert (by["densenet_noaug"].report_val, by["densenet_noaug"].report_train) == (65.41, 99.98)
    assert (by["densenet"].report_val, by["dense2net"].report_val) == (71.91, 75.85)
    assert (by["dense2net_scale8"].report_val, by["dense2net_scale8"].report_train) == (76.1, 98.77)
    assert by["dense2net_se"].report_val == 74.77 and by["dense2net_groups"].report_val == 75.96
    assert [r.title for r in TABLE1][:2] == ["DenseNet No Augmentation", "DenseNet"]


def test_full_mode_is_the_reports_setting(tmp_path):
    cfgs = {r.name: row_config(r, "full", out=str(tmp_path / r.name)) for r in TABLE1}
    d, d2 = cfgs["densenet"], cfgs["dense2net"]
    assert (d.model, d2.model, d2.dataset, d2.mode) == ("densenet121_cifar", "dense2net121",
                                                        "cifar100", "full")
    assert (d2.epochs, d2.lr, d2.momentum, d2.weight_decay, d2.batch_size) == (100, 0.1, 0.9, 1e-4, 128)
    assert cfgs["densenet_noaug"].augment is False and cfgs["dense2net_noaug"].augment is False
    assert cfgs["dense2net_cutout"].cutout == 8 and cfgs["dense2net"].cutout == 0
    assert cfgs["dense2net_scale2"].model_args == {"scale": 2}
    assert cfgs["dense2net_scale8"].model_args == {"scale": 8}
    assert cfgs["dense2net_groups"].model_args == {"groups": 32}
    assert cfgs["dense2net_se"].model_args == {"attn_layer": "se"}
    assert all(c.resume for c in cfgs.values())  # a killed ablation continues
    assert not row_config(TABLE1[0], "full").resume  # no folder, nothing to resume


def test_quick_mode_keeps_each_rows_setting_on_the_small_pair():
    cfgs = {r.name: row_config(r, "quick", seed=3) for r in TABLE1}
    assert cfgs["densenet"].model == "densenet_tiny" and cfgs["dense2net"].model == "dense2net_tiny"
    assert cfgs["dense2net"].dataset == "cifar10" and cfgs["dense2net"].mode == "quick"
    # the overfitting regime: a small pool, many epochs for its size, a small batch
    d = cfgs["dense2net"]
    assert (d.train_size, d.val_size, d.test_size, d.epochs, d.batch_size) == (250, 300, 300, 12, 32)
    assert d.schedule == "cosine" and d.time_limit_s == 300
    q = MODE_RECIPES["quick"]
    assert (q["rows"], q["seeds"], q["control"]) == (("densenet_noaug", "densenet", "dense2net"), 3, "densenet")
    assert cfgs["dense2net_groups"].model_args == {"groups": 12}  # = k = w of the tiny pair
    assert cfgs["dense2net_scale8"].model_args == {"scale": 8}
    assert cfgs["dense2net_cutout"].cutout == 8 and cfgs["densenet_noaug"].augment is False
    assert cfgs["dense2net"].seed == 3 and cfgs["dense2net"].threads == 1
    assert "NOT comparable" in MODE_RECIPES["quick"]["note"]


# what each row builds: (scale, split width w, groups, SE) of its Res2Net modules, None
# for the DenseNet rows; full mode: the DenseNet-121 layout (w = 128 / s), CIFAR-100
_FULL = {"densenet_noaug": None, "densenet": None, "dense2net_noaug": (4, 32, 1, False),
         "dense2net": (4, 32, 1, False), "dense2net_scale2": (2, 64, 1, False),
         "dense2net_scale8": (8, 16, 1, False), "dense2net_cutout": (4, 32, 1, False),
         "dense2net_groups": (4, 32, 32, False), "dense2net_se": (4, 32, 1, True)}
# parameters of the full rows (course_utils/models/README.md, lesson 06's table)
_FULL_PARAMS = {"densenet": 7_048_548, "dense2net": 6_762_724, "dense2net_scale2": 7_293_540,
                "dense2net_scale8": 6_096_420, "dense2net_groups": 5_209_252,
                "dense2net_se": 6_772_120}
# quick mode: the reduced-width pair (w = 48 / s), groups = k = w = 12
_QUICK = {n: (v if v is None else (v[0], 48 // v[0], 12 if v[2] == 32 else 1, v[3]))
          for n, v in _FULL.items()}


def _res2net_settings(model):
    from course_utils.layers import Res2NetModule

    found = set()
    for m in model.modules():
        if isinstance(m, Res2NetModule):
            groups = {c.groups for c in m.convs.modules() if isinstance(c, torch.nn.Conv2d)}
            found.add((m.scale, m.width, *groups, m.attn is not None))
    return found


@pytest.mark.parametrize("mode,expected", [("full", _FULL), ("quick", _QUICK)])
def test_every_row_builds_what_it_says(mode, expected):
    """Each row's config builds its model (on the meta device: shapes only, so the full
    rows cost no memory): the family's model, the row's scale, groups and SE in every
    Res2Net module, and the full rows' parameter counts."""
    from course_utils.train import make_model

    for r in TABLE1:
        cfg = row_config(r, mode)
        with torch.device("meta"):
            model = make_model(cfg)
        assert model.course_cfg["name"] == MODE_RECIPES[mode]["models"][r.family], r.name
        want = expected[r.name]
        assert _res2net_settings(model) == (set() if want is None else {want}), r.name
        n = sum(p.numel() for p in model.parameters())
        if mode == "full":
            base = r.name.replace("_noaug", "").replace("_cutout", "")
            assert n == _FULL_PARAMS[base], r.name
            assert model.classifier.out_features == 100


def test_rows_by_name_or_position_and_bad_names():
    assert [r.name for r in select_rows(["dense2net", "1"])] == ["dense2net", "densenet_noaug"]
    with pytest.raises(ConfigError) as e:
        select_rows(["dense3net"])
    assert e.value.param == "rows" and "dense2net_scale8" in str(e.value)


def test_cli_rejects_bad_values_by_name(capsys):
    for argv, opt in ((["table1", "--rows", "nope"], "--rows"),
                      (["table1", "--mode", "medium"], "--mode"),
                      (["table1", "--seeds", "0", "--rows", "1"], "--seeds")):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--out", "/nonexistent/never-written"])
        assert e.value.code == 2
        assert f"argument {opt}:" in capsys.readouterr().err


def test_quick_results_are_labelled_not_comparable():
    table = [{"name": "dense2net", "title": "Dense2Net", "report_val": 75.85, "report_train": 99.95,
              "ours_val_mean": 40.0, "ours_val_std": 1.0, "ours_train_mean": 45.0,
              "ours_train_std": 1.0, "ours_test_mean": 39.0, "ours_test_std": 0.5,
              "diff_val": -35.85, "params": 94954, "macs": 39869316, "macs_note": "x",
              "model": "dense2net_tiny", "model_args": {}, "data": "CIFAR-10 (JPEG ...)",
              "epochs": 3, "epochs_run": [3, 2], "stopped": ["time_limit"],
              "mode": "quick", "status": "ok", "errors": []}]
    md = results_markdown(table, {"mode": "quick", "note": MODE_RECIPES["quick"]["note"],
                                  "seeds": 2, "jobs": 2, "started": "now", "out": "o"})
    assert "NOT comparable with the report" in md and "40.00 ± 1.00" in md and "-35.85" in md
    assert "| 3/2 of 3 |" in md and "ok (time limit)" in md


def test_parallel_runs_lose_nothing_and_a_failed_row_is_reported(tmp_path):
    broken = AblationRow("broken_scale5", "Dense2Net scale = 5 (48 channels do not split in 5)",
                         0.0, 0.0, "dense2net", model_args={"scale": 5},
                         quick_model_args={"scale": 5})
    rows = [select_rows(["densenet"])[0], select_rows(["dense2net_se"])[0], broken]
    logs = []
    kw = dict(seeds=1, mode="smoke", out=tmp_path, jobs=3, dataset="synthetic",
              overrides={"train_size": 160, "val_size": 40, "test_size": 40})
    table = run_table(rows, log=logs.append, **kw)
    by = {r["name"]: r for r in table}
    assert set(by) == {"densenet", "dense2net_se", "broken_scale5"}
    assert by["densenet"]["status"] == "ok" and by["dense2net_se"]["status"] == "ok"
    assert by["broken_scale5"]["status"] == "failed"
    assert "scale=5" in by["broken_scale5"]["errors"][0] and "exit status 2" in by["broken_scale5"]["errors"][0]
    assert by["dense2net_se"]["params"] > 0 and by["dense2net_se"]["macs"] > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["name"] for r in saved["rows"]] == [r.name for r in rows]
    prov = load_results(tmp_path)["meta"]["provenance"]   # where and how, for a reader later
    assert prov["device"] == "cpu" and prov["torch"] and prov["date"][:2] == "20"
    assert prov["command"].startswith("python -m course_utils.ablate")
    md = (tmp_path / "results.md").read_text()
    assert "Dense2Net scale = 5" in md and "failed" in md and "Dense2Net with SE" in md
    assert (tmp_path / "table1.png").stat().st_size > 1000
    assert "broken_scale5" in (tmp_path / "results.csv").read_text()
    for r in rows[:2]:
        s = json.loads((tmp_path / r.name / "seed0" / "summary.json").read_text())
        assert s["status"] == "completed" and s["data"]["label"].startswith("synthetic")
    # a second call reads finished runs back instead of training them again
    logs.clear()
    again = run_table(rows[:2], log=logs.append, **kw)
    assert sum("(read back)" in line for line in logs) == 2
    assert [r["ours_val_mean"] for r in again] == [by["densenet"]["ours_val_mean"],
                                                    by["dense2net_se"]["ours_val_mean"]]


def test_rows_as_papermill_batch_jobs(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(
        'mode = "smoke"\ndataset = "synthetic"\ndata_root = None\nseed = 0\nepochs = 1\n'
        'device = "cpu"\nout_dir = "out"\ntrain_config = "{}"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import json\nfrom course_utils.train import TrainConfig, run\n"
        "cfg = TrainConfig(**json.loads(train_config))\n"
        "assert cfg.out == out_dir and cfg.seed == seed\n"
        "result = run(cfg)")]
    path = tmp_path / "job.ipynb"
    nbformat.write(nb, str(path))
    table = run_table(select_rows(["densenet"]), seeds=1, mode="smoke", out=tmp_path / "res",
                      jobs=1, dataset="synthetic", notebook=path, log=lambda s: None,
                      overrides={"train_size": 80, "val_size": 40, "test_size": 40})
    assert table[0]["status"] == "ok", table[0]["errors"]
    run_dir = tmp_path / "res" / "densenet" / "seed0"
    assert (run_dir / "executed.ipynb").exists() and (run_dir / "summary.json").exists()


def test_gap_rows_are_the_recipes_they_name():
    by = {r.name: r for r in GAP_ROWS}
    assert all(r.family == "densenet" and r.report_val == 71.91 for r in GAP_ROWS)
    full = {n: row_config(r, "full") for n, r in by.items()}
    rep = full["gap_report"]
    assert (rep.model, rep.epochs, rep.schedule, rep.resolved_milestones(), rep.weight_decay) == \
        ("densenet121_cifar", 100, "step", (30, 60), 1e-4)                # report sec. 3.2, 4.1
    dp = full["gap_densenet_paper"]                                      # DenseNet paper sec. 4.2
    assert (dp.epochs, dp.batch_size, dp.nesterov, dp.resolved_milestones()) == (300, 64, True, (150, 225))
    rp = full["gap_cifar100_repro"]
    # pytorch-cifar100's train.py: plain momentum 0.9 (no Nesterov), WarmUpLR over `-warm 1`
    # epoch, MultiStepLR at 60/120/160 with gamma 0.2, wd 5e-4
    assert (rp.epochs, rp.resolved_milestones(), rp.gamma, rp.weight_decay, rp.nesterov,
            rp.momentum, rp.warmup_epochs) == (200, (60, 120, 160), 0.2, 5e-4, False, 0.9, 1.0)
    assert full["gap_longer"].epochs == 200 and full["gap_wd5e4"].weight_decay == 5e-4
    assert full["gap_plateau"].schedule == "plateau" and full["gap_plateau"].early_stop_patience == 20
    # quick mode and --epochs scale every recipe from the same base
    assert row_config(by["gap_densenet_paper"], "quick").epochs == 3 * MODE_RECIPES["quick"]["config"]["epochs"]
    assert row_config(by["gap_longer"], "quick", epochs=4).epochs == 8
    assert row_config(by["gap_report"], "quick", epochs=10).resolved_milestones() == (3, 6)


def test_load_results_needs_provenance(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no results.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"meta": {"mode": "full"}, "rows": []}))
    with pytest.raises(ValueError, match="meta.provenance.date, meta.provenance.device, meta.provenance.command"):
        load_results(tmp_path)
    prov = {"date": "2026-11-20", "device": "cuda", "command": "python -m course_utils.ablate table1 --mode full"}
    (tmp_path / "results.json").write_text(json.dumps({"meta": {"mode": "full", "provenance": prov}, "rows": []}))
    assert load_results(tmp_path)["meta"]["provenance"]["device"] == "cuda"


def test_cli_gap_and_list(capsys):
    assert main(["list", "--mode", "full"]) == 0
    out = capsys.readouterr().out
    assert "gap_cifar100_repro" in out and "epochs=200" in out and "dense2net_scale8" in out
    with pytest.raises(SystemExit):
        main(["gap", "--rows", "densenet", "--mode", "quick"])   # a Table 1 row is not a gap row
    assert "argument --rows" in capsys.readouterr().err


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_ablate_rejects_jobs_below_one_naming_it(tmp_path, jobs, capsys):
    with pytest.raises(SystemExit) as e:
        main(["table1", "--mode", "smoke", "--jobs", jobs, "--out", str(tmp_path / "t")])
    assert e.value.code == 2
    assert f"argument --jobs: jobs={int(jobs)} is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def _fake(val_by_seed, train=50.0):
    return {"status": "completed", "seconds": 1.0,
            "summary": {"best_val_acc": val_by_seed / 100, "train_acc_at_best": train / 100, "status": "completed",
                        "precision": "bf16",
                        "config": {"model": "m", "epochs": 2, "mode": "quick"},
                        "data": {"label": "CIFAR-10 sample, 1,500 images"}}}


def test_each_row_is_compared_with_its_baseline_seed_by_seed():
    from course_utils.ablate import control_row, summarize
    densenet, dense2net = select_rows(["densenet", "dense2net"])
    ctrl = control_row(densenet)
    assert (ctrl.baseline, ctrl.seed_offset, ctrl.settings) == ("densenet", 1000, densenet.settings)
    assert row_config(ctrl, "quick", 2).seed == 1002 and row_config(densenet, "quick", 2).seed == 2
    accs = {"densenet": [40.0, 41.0, 39.5], "dense2net": [43.0, 44.5, 42.0],   # diffs 3, 3.5, 2.5
            ctrl.name: [40.5, 40.0, 40.0]}                                     # diffs .5, -1, .5
    results = {(n, s): _fake(v) for n, vs in accs.items() for s, v in enumerate(vs)}
    table = {r["name"]: r for r in summarize([densenet, dense2net, ctrl], 3, results)}
    d = table["dense2net"]
    # by hand: mean 3.0, s = 0.5, t(0.975, 2) = 4.302653: half width 1.242069
    assert d["diff_vs"] == "densenet" and d["diff_n"] == 3
    assert d["diff_mean"] == pytest.approx(3.0)
    assert (d["diff_low"], d["diff_high"]) == (pytest.approx(1.757931, abs=1e-5),
                                               pytest.approx(4.242069, abs=1e-5))
    assert "excludes 0" in d["verdict"]
    c = table[ctrl.name]   # the noise floor: mean 0, s = 0.866, half width 2.151
    assert c["diff_mean"] == pytest.approx(0.0, abs=1e-12) and "cannot tell" in c["verdict"]
    assert c["diff_high"] == pytest.approx(4.302653 * 0.8660254 / 3 ** 0.5, abs=1e-5)
    assert table["densenet"]["diff_mean"] is None          # the root has no baseline
    md = results_markdown(list(table.values()), {"mode": "quick", "note": MODE_RECIPES["quick"]["note"],
                                                 "seeds": 3, "jobs": 2, "started": "now", "out": "o"})
    assert "+3.00 [+1.76, +4.24] (3)" in md and "CIFAR-10 sample, 1,500 images" in md
    assert "2 epochs" in md and "Comparisons" in md and "precision bf16" in md
    assert "control's interval excludes 0" not in md               # the control sits at 0
    # a control whose interval excludes 0 (diffs -0.45, -0.65, -1.0, the reference run's
    # false alarm): the table says its intervals are not trusted
    alarm = dict(accs, **{ctrl.name: [39.55, 40.35, 38.5]})
    results_alarm = {(n, s): _fake(v) for n, vs in alarm.items() for s, v in enumerate(vs)}
    table_alarm = summarize([densenet, dense2net, ctrl], 3, results_alarm)
    md = results_markdown(table_alarm, {"mode": "quick", "note": "n", "seeds": 3, "jobs": 2,
                                        "started": "now", "out": "o"})
    assert "control's interval excludes 0** (DenseNet (control: other seeds): -0.70 [-1.39, -0.01] (3))" in md
    assert "no interval of this table is trusted" in md
    # a missing seed pairs what both have
    del results[("dense2net", 2)]
    part = {r["name"]: r for r in summarize([densenet, dense2net], 3, results)}["dense2net"]
    assert part["diff_n"] == 2 and part["diff_mean"] == pytest.approx(3.25)


def test_the_train_validation_gap_is_compared_seed_by_seed():
    """By hand. Gaps (train - val, points): no augmentation 90-40, 85-38, 95-42 = 50, 47,
    53; augmented 60-41, 58-39, 66-44 = 19, 19, 22. Not augmented minus augmented: 31,
    28, 31: mean 30, s = sqrt(3), half width t(0.975, 2) * s / sqrt(3) = 4.302653.
    Validation: 40-41, 38-39, 42-44 = -1, -1, -2: mean -1.333333, s = 0.577350, half
    width 4.302653 / 3 = 1.434218: the interval contains 0."""
    from course_utils.ablate import summarize
    noaug, aug = select_rows(["densenet_noaug", "densenet"])
    runs = {("densenet_noaug", 0): _fake(40, 90), ("densenet_noaug", 1): _fake(38, 85),
            ("densenet_noaug", 2): _fake(42, 95), ("densenet", 0): _fake(41, 60),
            ("densenet", 1): _fake(39, 58), ("densenet", 2): _fake(44, 66)}
    table = {r["name"]: r for r in summarize([noaug, aug], 3, runs)}
    n = table["densenet_noaug"]   # compared with its baseline, the augmented row: noaug - aug
    assert n["gap_by_seed"] == pytest.approx({0: 50.0, 1: 47.0, 2: 53.0})
    assert n["gap_mean"] == pytest.approx(50.0) and n["gap_std"] == pytest.approx(3.0)
    assert n["gap_diff_mean"] == pytest.approx(30.0) and n["gap_diff_n"] == 3
    assert (n["gap_diff_low"], n["gap_diff_high"]) == (pytest.approx(25.697347, abs=1e-5),
                                                       pytest.approx(34.302653, abs=1e-5))
    assert "excludes 0" in n["gap_verdict"] and "gap" in n["gap_verdict"]
    assert n["diff_mean"] == pytest.approx(-4 / 3)
    assert (n["diff_low"], n["diff_high"]) == (pytest.approx(-2.767551, abs=1e-5),
                                               pytest.approx(0.100884, abs=1e-5))
    assert "cannot tell" in n["verdict"]
    assert table["densenet"]["gap_diff_mean"] is None
    md = results_markdown(list(table.values()), {"mode": "quick", "note": "n", "seeds": 3,
                                                 "jobs": 2, "started": "now", "out": "o"})
    assert "train - validation gap" in md and "50.00 ± 3.00" in md and "+30.00" in md


def test_cli_quick_defaults_to_three_rows_three_seeds_and_a_control(tmp_path, monkeypatch, capsys):
    from course_utils import ablate
    seen = {}

    def fake_run_table(rows, **kw):
        seen.update(rows=[r.name for r in rows], **kw)
        (Path(kw["out"])).mkdir(parents=True, exist_ok=True)
        (Path(kw["out"]) / "results.md").write_text("x")
        return []
    monkeypatch.setattr(ablate, "run_table", fake_run_table)
    assert main(["table1", "--mode", "quick", "--out", str(tmp_path / "q")]) == 0
    assert seen["rows"] == ["densenet_noaug", "densenet", "dense2net"]
    assert (seen["seeds"], seen["control"]) == (3, "densenet")
    main(["table1", "--mode", "quick", "--rows", "all", "--seeds", "1", "--control", "none",
          "--out", str(tmp_path / "a")])
    assert len(seen["rows"]) == 9 and (seen["seeds"], seen["control"]) == (1, None)
    main(["table1", "--mode", "full", "--out", str(tmp_path / "f")])
    assert len(seen["rows"]) == 9 and (seen["seeds"], seen["control"]) == (1, None)
    main(["table1", "--mode", "quick", "--rows", "dense2net", "--out", str(tmp_path / "c")])
    assert seen["rows"] == ["dense2net"] and (seen["seeds"], seen["control"]) == (3, None)
    with pytest.raises(SystemExit):   # a control named but not among the rows asked for
        main(["table1", "--mode", "quick", "--rows", "dense2net", "--control", "densenet",
              "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert "--control" in err and "densenet" in err and "'none'" in err
    assert not (tmp_path / "b").exists()    # rejected before anything ran


def test_control_row_runs_other_seeds(tmp_path):
    rows = select_rows(["densenet"])
    with pytest.raises(ConfigError, match="control"):
        run_table(rows, control="dense2net", mode="smoke", out=tmp_path, log=lambda m: None)
    table = run_table(rows, seeds=1, control="densenet", mode="smoke", out=tmp_path, jobs=2,
                      dataset="synthetic", log=lambda m: None,
                      overrides={"train_size": 80, "val_size": 40, "test_size": 40})
    by = {r["name"]: r for r in table}
    assert by["densenet_control"]["status"] == "ok" and by["densenet_control"]["diff_n"] == 1
    assert "no interval" in by["densenet_control"]["verdict"]          # one seed: said so
    cfg = json.loads((tmp_path / "densenet_control" / "seed0" / "config.json").read_text())
    assert cfg.get("seed", cfg.get("config", {}).get("seed")) == 1000


def test_the_test_split_is_reported_once_for_the_row_chosen_on_validation():
    """Validation means: densenet 40, dense2net 43, the control 45 (a control is never a
    candidate). Test accuracies exist for every run; only dense2net's (the best
    non-control row on validation) may be shown: (30 + 32) / 2 = 31, std sqrt(2)."""
    from course_utils.ablate import control_row, summarize
    densenet, dense2net = select_rows(["densenet", "dense2net"])
    ctrl = control_row(densenet)

    def run(val, test):
        r = _fake(val)
        r["summary"]["test_acc"] = test / 100
        return r
    runs = {("densenet", 0): run(39, 50), ("densenet", 1): run(41, 52),
            ("dense2net", 0): run(42, 30), ("dense2net", 1): run(44, 32),
            ("densenet_control", 0): run(45, 60), ("densenet_control", 1): run(45, 61)}
    table = {r["name"]: r for r in summarize([densenet, dense2net, ctrl], 2, runs)}
    assert [k for k, r in table.items() if r["chosen"]] == ["dense2net"]
    assert table["dense2net"]["ours_test_mean"] == pytest.approx(31.0)
    assert table["dense2net"]["ours_test_std"] == pytest.approx(2 ** 0.5)
    for k in ("densenet", "densenet_control"):
        assert table[k]["ours_test_mean"] is None and table[k]["ours_test_std"] is None
    md = results_markdown(list(table.values()), {"mode": "quick", "note": "n", "seeds": 2,
                                                 "jobs": 1, "started": "now", "out": "o"})
    assert "Chosen on validation: Dense2Net (43.00 ± 1.41)" in md
    assert "measured once: 31.00 ± 1.41" in md
    assert "51.00" not in md and "60.50" not in md    # no other row's test accuracy


def test_first_seed_moves_every_run_and_the_control_with_it(tmp_path):
    """A notebook's `seed` parameter reaches the runs: seeds first_seed + k, each in the
    folder seed<its seed>; the control trains with those + 1000 and is paired by k."""
    table = run_table(select_rows(["densenet"]), seeds=2, first_seed=5, mode="smoke",
                      out=tmp_path, dataset="synthetic", control="densenet", log=lambda *_: None,
                      overrides={"train_size": 80, "val_size": 40, "test_size": 40})
    by = {r["name"]: r for r in table}
    assert by["densenet"]["train_seeds"] == [5, 6]
    assert by["densenet_control"]["train_seeds"] == [1005, 1006]
    for row, folder, seed in (("densenet", "seed5", 5), ("densenet", "seed6", 6),
                              ("densenet_control", "seed5", 1005)):
        cfg = json.loads((tmp_path / row / folder / "config.json").read_text())
        assert cfg["seed"] == seed, (row, folder)
    assert not (tmp_path / "densenet" / "seed0").exists()
    assert by["densenet_control"]["diff_n"] == 2
    with pytest.raises(ConfigError) as e:
        run_table(select_rows(["densenet"]), first_seed=-1, mode="smoke", out=tmp_path / "x")
    assert e.value.param == "first_seed"
