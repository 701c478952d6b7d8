"""The reference-scale studies of lessons 02 and 03 (course_utils.refstudy) and what the
lessons read from stored Table 1 results (reference.rebuild_table, table1_effects,
convergence, load_checkpoint_model). The runs here are written by a stand-in for the
training process (known accuracies, no training): what is tested is the bookkeeping,
the statistics and the refusals; the training command itself is tested with the runner."""

import json
from pathlib import Path

import pytest
import torch

from course_utils import refstudy, reference, stats
from course_utils.models import create_model
from course_utils.models.spectrum import spectrum_params

# final validation accuracy (percent) of each fig10 variant by seed; the control is the
# baseline again with other seeds
VAL = {"mid_act_none": [60.0, 62.0, 61.0], "mid_act_relu": [55.0, 56.5, 54.0],
       "mid_act_elu": [61.0, 63.5, 61.5], "mid_act_none_control": [60.5, 61.0, 61.5]}
TEST = {"mid_act_none": 0.59, "mid_act_relu": 0.53, "mid_act_elu": 0.6125, "mid_act_none_control": 0.6}


def fake_run(run_dir, config, force, timeout, *_, **__):
    """Writes what the training command writes, with the accuracies above; counts calls."""
    fake_run.calls.append(str(run_dir))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    folder, seed = run_dir.parent.name, int(run_dir.name.removeprefix("seed"))
    val = VAL[folder][seed] / 100
    lines = [{"epoch": e, "val_acc": val - 0.1 * (3 - e), "train_acc": val + 0.05 * e,
              "train_loss": 1.0 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    summary = {"status": "completed", "best_val_acc": val, "train_acc_at_best": val + 0.15,
               "test_acc": TEST[folder] + seed / 1000, "test_images": 10000, "params": 16906,
               "precision": "fp32", "train_seconds_total": 12.0, "config": config.as_dict(),
               "data": {"label": "CIFAR-10 (fake)"}}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return {"status": "completed", "summary": summary, "seconds": 0.1}


@pytest.fixture
def study_dir(tmp_path, monkeypatch):
    fake_run.calls = []
    monkeypatch.setattr(refstudy, "run_one", fake_run)
    res = refstudy.run_study("fig10", out=tmp_path / "fig10", seeds=(0, 1, 2), jobs=2,
                             log=lambda *_: None)
    return tmp_path, res


def test_a_study_chooses_on_validation_and_reports_the_test_split_of_that_choice_only(study_dir):
    tmp, res = study_dir
    assert res["meta"]["complete"] and len(fake_run.calls) == 12
    assert res["chosen"]["label"] == "mid_act=elu"          # highest mean validation accuracy
    assert res["chosen"]["test_by_seed"] == {"0": 61.25, "1": 61.35, "2": 61.45}
    stored = json.loads((tmp / "fig10" / "results.json").read_text())
    assert "test" not in json.dumps(stored["rows"])          # no other variant's test accuracy
    md = (tmp / "fig10" / "results.md").read_text()
    assert "Chosen on validation: mid_act=elu" in md and "(control: seeds +1000)" in md


def test_a_stored_study_is_a_study_again(study_dir):
    tmp, _ = study_dir
    ref = refstudy.load("fig10", root=tmp)
    s = ref.study
    assert s.values("mid_act=relu") == {0: 55.0, 1: 56.5, 2: 54.0}
    iv = s.difference("mid_act=none", "mid_act=relu")
    assert iv == stats.paired_interval({0: 60, 1: 62, 2: 61}, {0: 55, 1: 56.5, 2: 54})
    assert s.controls == {"mid_act=none (control: seeds +1000)": "mid_act=none"}
    assert s.choose() == "mid_act=elu"
    assert "mid_act=relu minus mid_act=none" in "\n".join(s.verdicts("mid_act=none"))
    curves = s.groups()["mid_act=relu"]
    assert len(curves) == 3 and [h["epoch"] for h in curves[0]] == [1, 2, 3]
    assert "reference scale" in ref.label and "fp32" in ref.label
    assert s.test("mid_act=elu") == {"label": "mid_act=elu", "acc": pytest.approx(61.35),
                                     "std": pytest.approx(0.1), "per_seed": {0: 61.25, 1: 61.35, 2: 61.45},
                                     "images": 10000}
    with pytest.raises(RuntimeError, match="already used for 'mid_act=elu'"):
        s.test("mid_act=relu")                               # the test split was used once


def test_finished_runs_are_not_trained_again_and_a_missing_one_is(study_dir, monkeypatch):
    tmp, _ = study_dir

    def real_readback(run_dir, config, force, timeout, *a, **k):
        from course_utils.runs import read_back
        done = read_back(Path(run_dir), config)
        return done if done is not None else fake_run(run_dir, config, force, timeout)

    monkeypatch.setattr(refstudy, "run_one", real_readback)
    (tmp / "fig10" / "mid_act_elu" / "seed1" / "summary.json").unlink()
    fake_run.calls = []
    res = refstudy.run_study("fig10", out=tmp / "fig10", seeds=(0, 1, 2), log=lambda *_: None)
    assert fake_run.calls == [str((tmp / "fig10" / "mid_act_elu" / "seed1").resolve())]
    assert res["meta"]["complete"]


def test_an_incomplete_or_unprovenanced_study_is_refused_with_the_reason(study_dir):
    tmp, _ = study_dir
    with pytest.raises(reference.ReferenceMissing, match="'spectrum'.*refstudy spectrum"):
        refstudy.load("spectrum", root=tmp)
    path = tmp / "fig10" / "results.json"
    res = json.loads(path.read_text())
    res["meta"]["complete"] = False
    path.write_text(json.dumps(res))
    with pytest.raises(reference.ReferenceMissing, match="not every run has finished"):
        refstudy.load("fig10", root=tmp)
    res["meta"]["complete"] = True
    del res["meta"]["provenance"]["date"]
    path.write_text(json.dumps(res))
    with pytest.raises(reference.ReferenceMissing, match="provenance"):
        refstudy.load("fig10", root=tmp)


def test_the_studies_train_what_the_lessons_train():
    tasks = refstudy._tasks("fig10", Path("/tmp/x"), (0, 1), {})
    assert [(t[0], t[1], t[2].seed) for t in tasks][-2:] == [
        ("mid_act=none (control: seeds +1000)", 0, 1000), ("mid_act=none (control: seeds +1000)", 1, 1001)]
    assert {t[2].model_args["mid_act"] for t in tasks} == {None, "relu", "elu"}
    cfg = tasks[0][2]
    assert (cfg.train_size, cfg.val_size, cfg.epochs, cfg.lr, cfg.schedule, cfg.amp) == (
        4000, 2000, 20, 0.1, "cosine", "off")
    # the spectrum's points hold the extreme 64-channel net's parameter count within 5%
    target = spectrum_params(64, 64)
    labels = []
    for v in refstudy.variants("spectrum"):
        n = sum(p.numel() for p in create_model(v.model, **v.model_args).parameters())
        assert abs(n / target - 1) <= 0.05, v
        labels.append(v.label)
    assert labels == ["1 segment", "3 segments", "4 segments", "8 segments",   # 2: -5.2%, left out
                      "extreme", "extreme, no mid ReLU"]


def test_bad_jobs_and_seeds_name_the_parameter(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        refstudy.run_study("fig10", out=tmp_path, jobs=0)
    with pytest.raises(ValueError, match="seeds"):
        refstudy.run_study("fig10", out=tmp_path, seeds=(-1,))
    with pytest.raises(ValueError, match="study.*allowed: fig10, spectrum"):
        refstudy.variants("fig11")


def test_finding_reads_the_interval_against_the_papers_sign():
    up = stats.paired_interval({0: 1, 1: 2, 2: 3}, {0: 3, 1: 4.5, 2: 5})    # clearly higher
    flat = stats.paired_interval({0: 1, 1: 2, 2: 3}, {0: 3, 1: 1, 2: 3})
    assert stats.finding(up, 1) == "reproduces" and stats.finding(up, -1) == "contradicts"
    assert stats.finding(flat, 1) == "cannot resolve"
    assert stats.finding(stats.paired_interval({0: 1}, {0: 5}), 1) == "cannot resolve"
    with pytest.raises(ValueError, match="expected_sign"):
        stats.finding(up, 0)


# ---------------------------------------------------------------- stored Table 1
def _table_run(folder, row, seed, val, train, metrics=(0.3, 0.5, 0.6)):
    d = folder / row / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model": "densenet_tiny", "seed": seed}))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": i + 1, "val_acc": v, "train_acc": v})
                                             + "\n" for i, v in enumerate(metrics)))
    (d / "summary.json").write_text(json.dumps({
        "status": "completed", "best_val_acc": val, "train_acc_at_best": train, "test_acc": val,
        "test_images": 100, "epochs_run": 3, "precision": "fp32",
        "config": {"model": "densenet_tiny", "epochs": 3, "mode": "full"},
        "data": {"label": "CIFAR-10 (fake)"}}))


def _stored_table(folder, vals):
    """Finished runs {row: ([val per seed], train)} and a results.json whose runner knew
    none of them (rebuild_table must find them on disk)."""
    for row, (vs, train) in vals.items():
        for s, v in enumerate(vs):
            _table_run(folder, row, s, v, train)
    meta = {"title": "t", "mode": "reference", "seeds": 3, "first_seed": 0, "note": "n", "out": "o",
            "jobs": 2, "started": "2026-12-07",
            "provenance": {"date": "2026-12-07", "device": "cpu", "command": "c", "git_commit": "x"}}
    (folder / "results.json").write_text(json.dumps({"meta": meta, "rows": []}))


def test_a_stored_table_counts_every_stored_run_and_reads_against_the_report(tmp_path):
    folder = tmp_path / "table1"
    vals = {"densenet_noaug": ([0.60, 0.61, 0.59], 0.95), "densenet": ([0.64, 0.66, 0.645], 0.72),
            "dense2net": ([0.63, 0.655, 0.64], 0.73), "densenet_control": ([0.65, 0.64, 0.655], 0.72)}
    # the runner's last invocation knew only one run: its results.json says so
    _stored_table(folder, vals)
    table = reference.rebuild_table(folder)
    assert {r["name"]: r["seeds_done"] for r in table} == {
        "densenet_noaug": 3, "densenet": 3, "dense2net": 3, "densenet_control": 3}
    res = reference.load("table1", root=tmp_path)
    assert "seeds 0-2" in reference.table_label(res) and "12 runs finished" in reference.table_label(res)
    eff = {(e["new"], e["old"], e["metric"]): e for e in reference.table1_effects(res)}
    aug_gap = eff[("densenet", "densenet_noaug", "gap")]
    assert aug_gap["finding"] == "reproduces" and aug_gap["report"] == pytest.approx(-7.78)
    aug_val = eff[("densenet", "densenet_noaug", "val")]
    assert aug_val["interval"].mean == pytest.approx((4 + 5 + 5.5) / 3) and aug_val["finding"] == "reproduces"
    assert eff[("dense2net", "densenet", "val")]["finding"] in ("contradicts", "cannot resolve")
    assert eff[("densenet_control", "densenet", "val")]["finding"] == "noise floor, as expected"
    conv = reference.convergence(res, "densenet")
    assert set(conv) == {0, 1, 2} and conv[0]["moved"] == pytest.approx(10.0)   # epochs 2-3
    assert conv[0]["gap"] == pytest.approx(8.0)


def test_a_control_that_excludes_zero_leaves_every_claim_unresolved(tmp_path):
    """Lesson 07's rule (its exercise 1): two runs of one configuration that differ make
    the table's intervals untrusted; each claim says what its interval alone would say."""
    folder = tmp_path / "table1"
    vals = {"densenet_noaug": ([0.60, 0.61, 0.59], 0.95), "densenet": ([0.64, 0.66, 0.645], 0.72),
            "densenet_control": ([0.63, 0.652, 0.636], 0.72)}
    _stored_table(folder, vals)
    reference.rebuild_table(folder)
    eff = {(e["new"], e["old"], e["metric"]): e for e in
           reference.table1_effects(reference.load("table1", root=tmp_path))}
    ctl = eff[("densenet_control", "densenet", "val")]
    assert ctl["finding"] == "false alarm" and ctl["interval"].mean == pytest.approx(-0.9)
    gap = eff[("densenet", "densenet_noaug", "gap")]
    assert gap["finding"] == "cannot resolve" and gap["interval_finding"] == "reproduces"
    assert "control's interval excludes 0 too" in gap["verdict"] and "-0.90 points" in gap["verdict"]
    val = eff[("densenet", "densenet_noaug", "val")]
    assert val["finding"] == "cannot resolve" and val["interval_finding"] == "reproduces"
    assert "5.4 times the control's difference" in val["verdict"]   # +4.83 against -0.90


def test_the_stored_densenet_checkpoint_loads_as_the_model_lesson_04_inspects():
    model, info = reference.load_checkpoint_model("table1/densenet/seed0")
    ck = torch.load(reference.REFERENCE_DIR / "table1/densenet/seed0/model.pt", weights_only=True)
    assert info["model_name"] == "densenet_tiny" and not model.training
    assert all(torch.equal(v, ck["model"][k]) for k, v in model.state_dict().items())
    assert "reference scale" in info["label"] and info["provenance"]["date"]
    with pytest.raises(reference.ReferenceMissing, match="not there"):
        reference.load_checkpoint_model("table1/densenet/seed9")


def test_publishing_again_keeps_each_runs_own_provenance(tmp_path):
    runs, into = tmp_path / "runs", tmp_path / "ref" / "table1"
    meta = {"title": "t", "mode": "reference", "seeds": 2, "first_seed": 0, "note": "n", "out": "o",
            "jobs": 2, "started": "s", "provenance": {"date": "day one", "device": "cpu", "command": "first"}}
    _table_run(runs, "densenet", 0, 0.6, 0.7)
    (runs / "results.json").write_text(json.dumps({"meta": meta, "rows": [{"name": "densenet"}]}))
    reference.publish(runs, into, log=lambda *_: None)
    _table_run(runs, "densenet", 1, 0.62, 0.7)               # trained by a later invocation
    meta["provenance"].update(date="day two", command="second")
    (runs / "results.json").write_text(json.dumps({"meta": meta, "rows": [{"name": "densenet"}]}))
    reference.publish(runs, into, log=lambda *_: None)

    def prov(row, seed):
        return json.loads((into / row / f"seed{seed}" / "results.json").read_text())["provenance"]

    # a summary without its finishing time: the date of the invocation that published it
    # first, said so; the command is the one that trains this row and seed, not the
    # invocation's (which may have named other rows)
    first, second = prov("densenet", 0), prov("densenet", 1)
    assert (first["date"], second["date"]) == ("day one", "day two") and "date_note" in first
    assert first["command"] == ("python -m course_utils.ablate table1 --mode reference --rows densenet "
                                "--seeds 1 --first-seed 0 --control none --jobs 1 --out o")
    assert second["command"].replace("--first-seed 1", "--first-seed 0") == first["command"]
    table = json.loads((into / "results.json").read_text())["rows"]
    assert [r["seeds_done"] for r in table if r["name"] == "densenet"] == [2]

    # a run that records when and at which commit it finished (train does since 2026-12-07),
    # a control row, and a third seed while the last invocation said --seeds 2: the stored
    # table counts every stored seed
    _table_run(runs, "densenet", 2, 0.63, 0.7)
    summary = json.loads((runs / "densenet" / "seed2" / "summary.json").read_text())
    summary.update(finished="2026-12-07 16:00:00 +0000", git_commit="abc1234", device={"cpu_threads": 1})
    (runs / "densenet" / "seed2" / "summary.json").write_text(json.dumps(summary))
    _table_run(runs, "densenet_control", 0, 0.61, 0.7)
    meta["provenance"].update(date="day three", command="third", cpu_threads=2)
    (runs / "results.json").write_text(json.dumps({"meta": meta, "rows": [{"name": "densenet"}]}))
    reference.publish(runs, into, log=lambda *_: None)
    third = prov("densenet", 2)
    assert (third["date"], third["git_commit"], third["cpu_threads"]) == ("2026-12-07 16:00:00 +0000", "abc1234", 1)
    assert "date_note" not in third
    assert prov("densenet_control", 0)["command"] == (
        "python -m course_utils.ablate table1 --mode reference --rows densenet "
        "--seeds 1 --first-seed 0 --control densenet --jobs 1 --out o")
    table = {r["name"]: r for r in json.loads((into / "results.json").read_text())["rows"]}
    assert table["densenet"]["seeds_done"] == 3 and table["densenet_control"]["status"] == "1/3 seeds"

    # --refresh-provenance rewrites a run published before, keeping its date
    (into / "densenet" / "seed0" / "results.json").write_text(json.dumps(
        {"provenance": {"date": "day one", "git_commit": "old", "command": "a wrong one"}}))
    reference.publish(runs, into, log=lambda *_: None)
    assert prov("densenet", 0)["command"] == "a wrong one"          # kept without the flag
    reference.publish(runs, into, refresh_provenance=True, log=lambda *_: None)
    assert prov("densenet", 0)["command"] == first["command"]
    assert (prov("densenet", 0)["date"], prov("densenet", 0)["git_commit"]) == ("day one", "old")


def test_a_study_runs_provenance_names_the_study_command(tmp_path):
    meta = {"study": "spectrum", "out": str(tmp_path / "sp"), "provenance": {"date": "d", "command": "x"}}
    res = reference._run_results(meta, "extreme", 2, {"status": "completed", "config": {"seed": 2}},
                                 "extreme/seed2")
    assert res["provenance"]["command"] == (f"python -m course_utils.refstudy spectrum --seeds 1 "
                                            f"--first-seed 2 --jobs 1 --out {tmp_path / 'sp'}")
