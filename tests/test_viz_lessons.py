"""The plots lessons 04 and 05 add to viz.py: feature-reuse heat maps (DenseNet Fig. 5
style) and receptive-field drawings of a Res2Net module's outputs."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from course_utils import viz  # noqa: E402


def _reuse(n):
    """A lower-triangular-in-time reuse matrix: (n + 1 sources) x (n targets)."""
    m = np.full((n + 1, n), np.nan)
    for t in range(n):
        m[: t + 1, t] = np.linspace(0.5, 1.0, t + 1)
    return m


def test_support_box_finds_the_nonzero_region():
    g = np.zeros((9, 9))
    g[2:7, 3:6] = 1.0
    assert viz.support_box(g) == (2, 3, 5, 3)
    assert viz.support_box(torch.tensor(g)) == (2, 3, 5, 3)
    g[0, 0] = -1e-3  # a negative gradient counts too, unless below eps
    assert viz.support_box(g) == (0, 0, 7, 6)
    assert viz.support_box(g, eps=1e-2) == (2, 3, 5, 3)
    assert viz.support_box(np.zeros((4, 4))) is None
    with pytest.raises(ValueError, match="2-D"):
        viz.support_box(np.zeros((2, 4, 4)))


def test_feature_reuse_heatmap_one_panel_per_block_with_blank_impossible_cells():
    mats = [_reuse(4), _reuse(3)]
    fig = viz.feature_reuse_heatmap(mats, titles=["block 1", "block 2"],
                                    target_labels=[["1", "2", "3", "T"], ["1", "2", "C"]])
    image_axes = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in image_axes] == ["block 1", "block 2"]
    assert len(fig.axes) == 3  # two panels and one colour bar
    arr = image_axes[0].images[0].get_array()
    assert arr.shape == (5, 4)
    assert np.ma.is_masked(arr) and arr.mask[4, 0] and not arr.mask[0, 0]  # NaN is blank
    assert [t.get_text() for t in image_axes[0].get_xticklabels()] == ["1", "2", "3", "T"]
    assert [t.get_text() for t in image_axes[0].get_yticklabels()][:2] == ["input", "1"]
    # one number written per finite cell when annotating
    assert len(image_axes[1].texts) == int(np.isfinite(mats[1]).sum())
    plt.close(fig)


def test_feature_reuse_heatmap_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        viz.feature_reuse_heatmap([np.zeros(3)])
    with pytest.raises(ValueError, match="titles has 1"):
        viz.feature_reuse_heatmap([_reuse(2), _reuse(2)], titles=["only one"])
    with pytest.raises(ValueError, match="target_labels\\[0\\] has 1"):
        viz.feature_reuse_heatmap([_reuse(2)], target_labels=[["1"]])
    plt.close("all")


def test_receptive_field_maps_outline_the_gradient_support():
    maps = []
    for r in (0, 1, 2, 3):  # 1x1, 3x3, 5x5, 7x7 around the centre of a 15x15 map
        g = torch.zeros(15, 15)
        g[7 - r:8 + r, 7 - r:8 + r] = 1.0
        maps.append(g)
    img = torch.rand(3, 15, 15)
    fig = viz.receptive_field_maps(maps, titles=["y1", "y2", "y3", "y4"], image=img, title="t")
    axes = fig.axes
    assert len(axes) == 5  # the image and one panel per output
    overlay = [p for p in axes[0].patches if isinstance(p, Rectangle)]
    assert [round(p.get_width()) for p in overlay] == [1, 3, 5, 7]
    assert [p.get_label() for p in overlay] == ["y1", "y2", "y3", "y4"]
    assert [ax.get_title() for ax in axes[1:]] == ["y1: 1x1", "y2: 3x3", "y3: 5x5", "y4: 7x7"]
    for ax, size in zip(axes[1:], (1, 3, 5, 7)):
        (box,) = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert (box.get_width(), box.get_height()) == (size, size)
        assert box.get_xy() == (7 - size // 2 - 0.5, 7 - size // 2 - 0.5)
    plt.close(fig)


def test_receptive_field_maps_without_image_and_bad_input():
    fig = viz.receptive_field_maps([np.ones((5, 5)), np.zeros((5, 5))])
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "output 1: 5x5"
    assert fig.axes[1].get_title() == "output 2"  # an all-zero map has no box
    plt.close(fig)
    with pytest.raises(ValueError, match="2-D"):
        viz.receptive_field_maps([np.zeros((1, 5, 5))])
    with pytest.raises(ValueError, match="titles has 2"):
        viz.receptive_field_maps([np.ones((5, 5))], titles=["a", "b"])
    with pytest.raises(ValueError, match="same size"):
        viz.receptive_field_maps([np.ones((5, 5))], image=torch.rand(3, 6, 6))


def test_receptive_field_maps_crop_keeps_the_boxes_in_place():
    g = np.zeros((32, 32))
    g[14:19, 10:15] = 1.0  # a 5x5 box, centre (16, 12)
    fig = viz.receptive_field_maps([g], crop=9)
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (9, 9)
    (box,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    # the crop starts at (16 - 4, 12 - 4) = (12, 8): the box sits at (14 - 12, 10 - 8)
    assert box.get_xy() == (10 - 8 - 0.5, 14 - 12 - 0.5) and box.get_width() == 5
    plt.close(fig)
    fig = viz.receptive_field_maps([g], crop=64)  # larger than the map: the whole map
    assert fig.axes[0].images[0].get_array().shape == (32, 32)
    plt.close(fig)
    with pytest.raises(ValueError, match="crop=0"):
        viz.receptive_field_maps([g], crop=0)


def test_plot_history_marks_step_drops_not_smooth_decay():
    import matplotlib
    matplotlib.use("Agg")
    from course_utils.viz import plot_history

    def hist(lrs):
        return [dict(epoch=i + 1, lr=lr, train_acc=0.5, val_acc=0.5, train_loss=1.0, val_loss=1.0)
                for i, lr in enumerate(lrs)]

    def markers(fig):  # vertical dotted lines: x data of length 2 with equal values
        return [l for l in fig.axes[0].lines if len(l.get_xdata()) == 2 and l.get_xdata()[0] == l.get_xdata()[1]]

    assert len(markers(plot_history(hist([0.1, 0.1, 0.1, 0.01, 0.01])))) == 1  # a step at epoch 4
    assert markers(plot_history(hist([0.05, 0.0125, 0.0]))) == []  # 3-epoch cosine: no step


def test_compare_runs_has_whole_epoch_ticks_and_short_titles():
    import matplotlib

    matplotlib.use("Agg")
    from course_utils.viz import compare_runs

    hist = [{"epoch": e, "val_acc": 0.1 * e, "train_loss": 2.0 / e} for e in (1, 2, 3)]
    fig = compare_runs({"a": hist, "b": hist}, title="two runs")
    for ax in fig.axes:
        fig.canvas.draw()
        ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert [ax.get_title() for ax in fig.axes] == ["validation accuracy", "training loss"]
