"""`python -m course_utils.dense2net`, the report's own command line (appendix, section 7):
every flag maps to the TrainConfig it should, --a and --c are exact (not ambiguous), the
defaults are the report's (all features on), bad values are refused naming the flag before
anything is written, the flags of Table 1's Dense2Net rows give the ablation runner's
configs, and a real tiny run writes the engine's files and --r resumes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import course_utils.train as T
from course_utils import dense2net as D
from course_utils.ablate import TABLE1, row_config
from course_utils.train import load_checkpoint, read_metrics

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1", COURSE_PROGRESS="0",
           PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
TINY = ["--model", "dense2net_tiny", "--dataset", "synthetic", "--mode", "smoke",
        "--device", "cpu", "--threads", "1", "--no-progress"]
MODEL_DEFAULTS = {"scale": 4, "groups": 1, "attn_layer": None}  # the builders' defaults


def changed(argv) -> dict:
    """TrainConfig fields (model_args entries as 'model_args.KEY') that argv changes."""
    base, new = D.parse_config([]).as_dict(), D.parse_config(argv).as_dict()
    out = {k: new[k] for k in base if k != "model_args" and new[k] != base[k]}
    ma, mb = base["model_args"], new["model_args"]
    out.update({f"model_args.{k}": mb.get(k) for k in set(ma) | set(mb) if ma.get(k) != mb.get(k)})
    return out


def test_defaults_are_the_reports_with_every_feature_on():
    c = D.parse_config([])
    assert c.augment is True and c.cutout == 8  # report sec. 4.2.1, 4.2.2 (8 px)
    assert c.model_args == {"scale": 4, "groups": 1, "attn_layer": "se"}
    assert c.lr == 0.1 and c.resume is False
    assert (c.model, c.dataset, c.mode, c.epochs, c.out) == \
        ("dense2net121", "cifar100", "full", 100, D.DEFAULT_OUT)
    report = T.preset("report")  # everything else: the kit's report recipe
    for k in ("batch_size", "momentum", "weight_decay", "nesterov", "schedule", "milestones",
              "gamma", "seed", "device"):
        assert getattr(c, k) == getattr(report, k), k


@pytest.mark.parametrize("argv,expected", [
    (["--a"], {"augment": False, "cutout": 0}),  # cutout needs augmented batches
    (["--c"], {"cutout": 0}),
    (["--se"], {"model_args.attn_layer": None}),
    (["--lr", "0.05"], {"lr": 0.05}),
    (["--scale", "8"], {"model_args.scale": 8}),
    (["--groups", "32"], {"model_args.groups": 32}),
    (["--r"], {"resume": True}),
    (["--a", "--c", "--scale", "8"], {"augment": False, "cutout": 0, "model_args.scale": 8}),
    (["--model", "dense2net_tiny"], {"model": "dense2net_tiny"}),
    (["--dataset", "synthetic"], {"dataset": "synthetic"}),
    (["--data-root", "/x"], {"data_root": "/x"}),
    (["--mode", "smoke"], {"mode": "smoke"}),
    (["--epochs", "3"], {"epochs": 3}),
    (["--device", "cpu"], {"device": "cpu"}),
    (["--seed", "2"], {"seed": 2}),
    (["--threads", "1"], {"threads": 1}),
    (["--out", "elsewhere"], {"out": "elsewhere"}),
    (["--overwrite"], {"overwrite": True}),
    (["--no-progress"], {"progress": False}),
    (["--quiet"], {"verbose": False}),
])
def test_each_flag_changes_exactly_its_setting(argv, expected):
    assert changed(argv) == expected


def test_a_and_c_are_exact_flags_not_abbreviations():
    ap = D.build_parser()
    args = ap.parse_args(["--a", "--c", "--se"])
    assert (args.a, args.c, args.se, args.seed) == (True, True, True, 0)  # --se is not --seed
    for kit_argv in (["--a"], ["--c"]):  # the kit's CLI: prefixes of several options
        with pytest.raises(SystemExit):
            T._parser().parse_args(kit_argv)
    with pytest.raises(SystemExit):  # allow_abbrev=False: no prefix of a long option
        ap.parse_args(["--sca", "8"])


def test_help_says_what_each_flag_does(capsys):
    with pytest.raises(SystemExit) as e:
        D.main(["--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("--lr LR learning rate", "report default: 0.1", "--r resume",
                   "--a run without data augmentation", "--se run without the SE layer",
                   "--c run without cutout", "report default: 4", "report default: 1",
                   "--se --c reproduces it"):
        assert phrase in text, phrase


@pytest.mark.parametrize("argv,flag,value", [
    (["--lr", "0"], "--lr", "0.0"),
    (["--lr", "-0.1"], "--lr", "-0.1"),
    (["--lr", "nan"], "--lr", "nan"),
    (["--scale", "0"], "--scale", "0"),
    (["--scale", "5"], "--scale", "5"),
    (["--model", "dense2net_tiny", "--scale", "96"], "--scale", "96"),
    (["--groups", "0"], "--groups", "0"),
    (["--groups", "3"], "--groups", "3"),  # w = 128/4 = 32
    (["--scale", "8", "--groups", "32"], "--groups", "32"),  # w = 16
    (["--epochs", "0"], "--epochs", "0"),
    (["--model", "densenet121_cifar"], "--model", "densenet121_cifar"),
    (["--dataset", "cifar1000"], "--dataset", "cifar1000"),
    (["--mode", "huge"], "--mode", "huge"),
    (["--device", "tpu"], "--device", "tpu"),
    (["--seed", "-1"], "--seed", "-1"),
])
def test_bad_values_exit_2_naming_the_flag_before_writing(argv, flag, value, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        D.main([*argv, "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and value in err and "allow" in err, err
    assert not out.exists()


def test_scale_and_groups_messages_list_the_allowed_values(capsys):
    with pytest.raises(SystemExit):
        D.parse_config(["--scale", "8", "--groups", "3"])
    assert "one of [1, 2, 4, 8, 16]" in capsys.readouterr().err


def test_table1_dense2net_rows_through_the_new_flags():
    rows = {r.name: r for r in TABLE1}
    keys = ("model", "dataset", "mode", "augment", "cutout", "epochs", "batch_size", "lr",
            "momentum", "weight_decay", "schedule", "milestones", "seed")
    assert D.table1_flags() == ["--se", "--c"]
    for name in D._TABLE1_FLAGS:
        ours = D.parse_config(D.table1_flags(name))
        theirs = row_config(rows[name], mode="full")
        assert {k: getattr(ours, k) for k in keys} == {k: getattr(theirs, k) for k in keys}, name
        effective = [{**MODEL_DEFAULTS, **c.model_args} for c in (ours, theirs)]
        assert effective[0] == effective[1], name
    # the report's defaults are none of Table 1's rows: SE and cutout on together
    assert D.parse_config([]).model_args["attn_layer"] == "se" and D.parse_config([]).cutout == 8
    assert rows["dense2net"].settings == {} and rows["dense2net"].model_args == {}


def test_bad_value_from_the_shell():
    r = subprocess.run([sys.executable, "-m", "course_utils.dense2net", "--a", "--c",
                        "--scale", "8", "--lr", "-1"], env=ENV, cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "argument --lr: lr=-1.0 is not allowed" in r.stderr and "ambiguous" not in r.stderr


def test_tiny_run_end_to_end_then_r_resumes(tmp_path, monkeypatch, capsys, one_torch_thread):
    monkeypatch.setitem(T.SYNTHETIC_SIZES, "smoke", (128, 32, 32))  # seconds, not minutes
    out = tmp_path / "run"
    assert D.main([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    for name in ("metrics.jsonl", "checkpoint.pt", "best.pt", "summary.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "summary.json").read_text())["config"]
    assert cfg["augment"] is True and cfg["cutout"] == 8 and cfg["lr"] == 0.1
    assert cfg["model_args"] == {"scale": 4, "groups": 1, "attn_layer": "se"}
    first = read_metrics(out)
    assert len(first) == 1
    capsys.readouterr()

    with pytest.raises(SystemExit) as e:  # the same folder again without --r: refused
        D.main([*TINY, "--epochs", "2", "--out", str(out)])
    assert e.value.code == 2 and "argument --r:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # --r with another --c than the checkpoint's
        D.main([*TINY, "--epochs", "2", "--out", str(out), "--r", "--c"])
    assert e.value.code == 2 and "argument --c:" in capsys.readouterr().err

    assert D.main([*TINY, "--epochs", "2", "--out", str(out), "--r"]) == 0
    assert f"resuming {out / 'checkpoint.pt'} after epoch 1" in capsys.readouterr().out
    history = read_metrics(out)
    assert [r["epoch"] for r in history] == [1, 2] and history[0] == first[0]
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
