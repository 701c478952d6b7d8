"""course_utils.compare: seeded studies chosen on validation and tested once."""

import math

import pytest
import torch
from torch import nn

from course_utils.compare import SeedRun, Study
from course_utils.data import synthetic_bundle
from course_utils.train import TrainConfig


def _tiny(width=8, classes=4):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def _cfg(epochs=2):
    return TrainConfig(epochs=epochs, lr=0.05, schedule="cosine", device="cpu", amp="off",
                       batch_size=32, progress=False, verbose=False, time_limit_s=None)


@pytest.fixture(scope="module")
def study():
    d = synthetic_bundle(n_train=128, n_val=64, n_test=64, batch_size=32, augment=False)
    st = Study(d, seeds=(0, 1, 2))
    st.run("narrow", lambda: _tiny(4), _cfg())
    st.run("wide", lambda: _tiny(16), _cfg())
    st.run_control("narrow")
    return st


def _fake_study(values: dict) -> Study:
    """A study whose runs are given accuracies (no training)."""
    st = Study(synthetic_bundle(n_train=32, n_val=16, n_test=16), seeds=(0, 1, 2))
    for label, accs in values.items():
        st.runs[label] = {s: SeedRun(label, s, v, v + 10.0, [], None) for s, v in enumerate(accs)}
    return st


def test_training_runs_see_no_test_split_and_seeds_pair(study):
    assert study._train_data.test is None and study.data.test is not None
    assert set(study.runs) == {"narrow", "wide", "narrow (control: seeds +1000)"}
    for label in study.runs:
        assert sorted(study.runs[label]) == [0, 1, 2]
    # same seed, same architecture: identical runs; control seeds differ from the baseline's
    again = Study(study.data, seeds=(1,))
    again.run("narrow", lambda: _tiny(4), _cfg())
    assert again.runs["narrow"][1].val_acc == study.runs["narrow"][1].val_acc
    ctrl = study.values("narrow (control: seeds +1000)")
    assert ctrl != study.values("narrow")


def _first_batches(bundle, epochs=2):
    out = []
    for e in range(epochs):
        bundle.set_epoch(e)
        x, y = next(iter(bundle.train))
        out.append((x.clone(), y.clone()))
    return out


def test_another_seed_draws_another_data_order_on_the_same_split():
    d = synthetic_bundle(n_train=96, n_val=32, n_test=32, batch_size=16, augment=True)
    a, a2, b = d.with_seed(1), d.with_seed(1), d.with_seed(2)
    for (xa, ya), (xa2, ya2) in zip(_first_batches(a), _first_batches(a2)):
        assert torch.equal(xa, xa2) and torch.equal(ya, ya2)          # a seed repeats itself
    assert not any(torch.equal(ya, yb) and torch.equal(xa, xb)
                   for (xa, ya), (xb, yb) in zip(_first_batches(a), _first_batches(b)))
    # the split is the study's: the same images behind train, val and test, shared not copied
    assert b.train.dataset.images.data_ptr() == d.train.dataset.images.data_ptr()
    assert b.val is d.val and b.test is d.test and d.train.batch_sampler.seed == 0
    with pytest.raises(ValueError, match="seed"):
        d.with_seed(-1)


def test_table_and_verdicts_with_hand_computed_numbers():
    # baseline 40, 42, 44; variant 43, 44, 48: differences 3, 2, 4 -> mean 3, sd 1,
    # t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138
    st = _fake_study({"base": [40, 42, 44], "variant": [43, 44, 48]})
    iv = st.difference("base", "variant")
    assert iv.mean == pytest.approx(3.0)
    assert iv.low == pytest.approx(3.0 - 2.484138, abs=1e-5)
    assert iv.high == pytest.approx(3.0 + 2.484138, abs=1e-5)
    assert st.summary("base") == pytest.approx((42.0, 2.0))
    table = st.table("base")
    assert "42.00 +-  2.00" in table and "+3.00 [ +0.52,  +5.48]" in table and "(baseline)" in table
    (line,) = st.verdicts("base")
    assert line.startswith("variant minus base: +3.00 points") and "excludes 0" in line
    st2 = _fake_study({"base": [40, 42, 44], "variant": [43, 41, 46]})
    assert "cannot tell the two apart" in st2.verdicts("base")[0]
    assert st.summary("base", "gap") == pytest.approx((10.0, 0.0))


def test_choose_excludes_controls_and_test_is_once(study):
    st = _fake_study({"a": [40, 41, 42], "b": [45, 46, 47], "a (control)": [60, 60, 60]})
    st.controls["a (control)"] = "a"
    assert st.choose() == "b"
    chosen = study.choose()
    assert chosen in ("narrow", "wide")
    means = {k: study.summary(k)[0] for k in ("narrow", "wide")}
    assert chosen == max(means, key=means.get)
    out = study.test()
    assert out["label"] == chosen and out["images"] == 64 and len(out["per_seed"]) == 3
    assert 0 <= out["acc"] <= 100 and math.isfinite(out["std"])
    assert study.test(chosen) is out  # asking again: the same numbers, not a new look
    other = "wide" if chosen == "narrow" else "narrow"
    with pytest.raises(RuntimeError, match="already used for"):
        study.test(other)
    with pytest.raises(RuntimeError, match="already used for"):
        study.run("late", lambda: _tiny(4), _cfg())


def test_bad_input_names_the_parameter(study):
    d = study.data
    for seeds, msg in [((), "seeds"), ((0, 0), "repeats"), ((-1,), "seeds"), (("0",), "seeds")]:
        with pytest.raises(ValueError, match=msg):
            Study(d, seeds=seeds)
    st = Study(d, seeds=(0,))
    with pytest.raises(ValueError, match="label"):
        st.run("", lambda: _tiny(), _cfg())
    with pytest.raises(TypeError, match="make_model"):
        st.run("x", _tiny(), _cfg())
    with pytest.raises(KeyError, match="baseline: 'nope'"):
        st.table("nope")
    with pytest.raises(ValueError, match="metric"):
        study.values("narrow", "loss")


def test_groups_feed_seed_curves(study):
    import matplotlib
    matplotlib.use("Agg")
    from course_utils import viz

    groups = study.groups(["narrow", "wide"])
    assert [len(v) for v in groups.values()] == [3, 3]
    fig = viz.seed_curves(groups)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 2  # a band per configuration
    one = viz.seed_curves({"narrow": groups["narrow"][:1]})
    assert len(one.axes[0].collections) == 0  # one seed: no band
    with pytest.raises(ValueError, match="band"):
        viz.seed_curves(groups, band="sem")
    # the mean line is the mean of the seeds' curves
    ys = [[100 * r["val_acc"] for r in h] for h in groups["narrow"]]
    mean = [sum(c) / len(c) for c in zip(*ys)]
    assert list(ax.lines[0].get_ydata()) == pytest.approx(mean)


def test_a_control_whose_interval_excludes_zero_is_called_a_false_alarm():
    # control minus baseline: 2, 2.5, 1.5 -> mean 2, sd 0.5, half-width 4.302653 * 0.5 / sqrt(3)
    # = 1.242, so [0.76, 3.24] excludes 0 although the configuration is the same
    st = _fake_study({"base": [40, 42, 44], "variant": [41, 41, 45],
                      "base (control: seeds +1000)": [42, 44.5, 45.5]})
    st.controls["base (control: seeds +1000)"] = "base"
    lines = st.verdicts("base")
    assert "excludes 0" in lines[0] and "false alarm" in lines[1] and "1 time in 20" in lines[1]
    assert lines[2].startswith("variant minus base")
    quiet = _fake_study({"base": [40, 42, 44], "base (control: seeds +1000)": [41, 41, 45]})
    quiet.controls["base (control: seeds +1000)"] = "base"
    assert len(quiet.verdicts("base")) == 1 and "false alarm" not in quiet.verdicts("base")[0]
