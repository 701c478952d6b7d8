"""course_utils.stats against answers computed by hand and against printed t tables."""

import math

import pytest

from course_utils import stats


@pytest.mark.parametrize("df,q", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281),
                                  (30, 2.0423)])
def test_t_quantile_matches_the_printed_table(df, q):
    assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)
    assert stats.t_quantile(0.025, df) == pytest.approx(-q, abs=1e-4)


def test_t_interval_by_hand():
    # diffs 1, 2, 3: mean 2, s = 1, half width = t(0.975, 2) / sqrt(3) = 4.30265 / 1.73205
    iv = stats.t_interval([1.0, 2.0, 3.0])
    assert (iv.mean, iv.n) == (2.0, 3)
    assert iv.low == pytest.approx(2 - 2.484138, abs=1e-5)
    assert iv.high == pytest.approx(2 + 2.484138, abs=1e-5)
    assert iv.excludes_zero is False
    # accuracies of two configurations over seeds 0-2, paired by seed
    base = {0: 40.0, 1: 41.0, 2: 39.5}
    var = {0: 43.0, 1: 44.5, 2: 42.0}                  # diffs 3.0, 3.5, 2.5: s = 0.5
    iv = stats.paired_interval(base, var)
    assert iv.mean == pytest.approx(3.0)
    assert iv.high - iv.mean == pytest.approx(4.302653 * 0.5 / math.sqrt(3), abs=1e-5)
    assert iv.excludes_zero is True
    assert "excludes 0" in stats.verdict(iv, "variant - base", " points")


def test_pairing_is_by_seed_not_by_position():
    assert stats.paired_differences({0: 1.0, 2: 5.0, 1: 2.0}, {2: 6.0, 0: 1.5}) == [0.5, 1.0]
    with pytest.raises(ValueError, match="seeds"):
        stats.paired_differences({0: 1.0}, {1: 1.0})


def test_one_seed_has_no_interval_and_says_so():
    iv = stats.t_interval([2.5])
    assert iv.low is None and iv.excludes_zero is None
    assert "no interval" in stats.verdict(iv, "d")
    assert stats.mean_std([2.5]) == (2.5, None)
    m, s = stats.mean_std([1.0, 2.0, 4.0])
    assert m == pytest.approx(7 / 3) and s == pytest.approx(math.sqrt(7 / 3))


def test_contains_zero_verdict():
    iv = stats.t_interval([-1.0, 1.0, 0.5])
    assert iv.excludes_zero is False
    assert "cannot tell" in stats.verdict(iv, "d")


def test_control_is_the_noise_floor_of_one_configuration():
    iv = stats.control([40.0, 41.0, 40.5, 41.5])        # (40.5-40, 41.5-41) = 0.5, 0.5
    assert iv.mean == pytest.approx(0.5) and iv.low == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 4"):
        stats.control([1.0, 2.0, 3.0])


def test_pair_agreement_and_its_chance_level():
    assert stats.pair_agreement([1, 2, 3], [10, 20, 30]) == 1.0
    assert stats.pair_agreement([1, 2, 3], [30, 20, 10]) == 0.0
    assert stats.pair_agreement([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / 3)  # tie agrees not
    assert stats.pair_agreement_chance([1, 2, 3, 4]) == 0.5
    assert stats.pair_agreement_chance([1, 1, 2]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="b:"):
        stats.pair_agreement([1, 2], [1])


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="non-finite"):
        stats.t_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="level"):
        stats.t_interval([1.0, 2.0], level=95)


def test_a_difference_that_rounds_to_zero_prints_without_a_minus_sign():
    """Both sides sum to 106.02, yet the mean difference comes out as about -2.4e-15 in
    floating point: the sentence says +0.00, not -0.00."""
    iv = stats.paired_interval({0: 34.77, 1: 38.65, 2: 32.6}, {0: 38.05, 1: 35.49, 2: 32.48})
    assert -1e-9 < iv.mean < 0
    line = stats.verdict(iv, "a minus b", " points")
    assert "a minus b: +0.00 points" in line and "-0.00" not in line
    assert "+1.00" in stats.verdict(stats.paired_interval({0: 1.0, 1: 2.0}, {0: 2.0, 1: 3.0}), "x")
