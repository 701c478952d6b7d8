"""Lesson 05's graded exercises: the solutions score full marks, the untouched student
stubs 0, and plausible wrong answers less than full marks, each with the score it gets (the
checks are deterministic: constant cases, no timing but the 5 s limit per case)."""
import pytest

from exercise_cases import (assert_every_exercise_has_wrong_answers, assert_solutions_full,
                            assert_untouched_zero, assert_wrong_below_full, lesson_path, score_all,
                            solution_sources, wrong_ids)

LESSON = lesson_path("05_res2net")
_SOL = solution_sources(LESSON)
_NET, _PATHS, _FORWARD = _SOL["ex1_whole_res2net"], _SOL["ex2_path_counts"], _SOL["ex3_hierarchy_forward"]


def _sub(src, old, new):
    assert old in src, old
    return src.replace(old, new)


WRONG = {
    "ex1_whole_res2net": [
        ("s_convs", "s convolutions K_i instead of s - 1 (the identity subset convolved too)",
         _sub(_NET, "max(1, scale - 1) * (", "scale * ("), 0.8),
        ("groups", "the groups left out of the 3x3 weights (cardinality ignored there)",
         _sub(_NET, "9 * w * w // cardinality", "9 * w * w"), 1.6),
        ("se_bias", "the SE's two 1x1 convolutions counted without their biases",
         _sub(_NET, "total += 2 * out * r + r + out", "total += 2 * out * r"), 1.6),
        ("built", "the network built on the meta device and counted",
         "from course_utils.models.res2net import Res2Net\n\n"
         "def res2net_params(layers, base_width=26, scale=4, cardinality=1, se=False, num_classes=1000, stem='imagenet'):\n"
         "    with torch.device('meta'):\n"
         "        return profile.count_params(Res2Net(layers=layers, base_width=base_width, scale=scale,\n"
         "            cardinality=cardinality, attn_layer='se' if se else None, num_classes=num_classes, stem=stem))\n",
         0.0),
    ],
    "ex2_path_counts": [
        ("eq3_for_paper", "the report's Eq. 3 where the paper's form is asked (x_1 always fed into K_2)",
         _sub(_sub(_PATHS, '([i - 1] if form == "report_eq3" else [])', "[i - 1]"),
              '(9 ** (i - 1) if form == "report_eq3" else 0)', "9 ** (i - 1)"), 1.8333),
        ("x1_one_more", "Eq. 3's x_1 given one convolution too many (through a K_1)",
         _sub(_sub(_PATHS, '([i - 1] if form == "report_eq3" else [])', '([i] if form == "report_eq3" else [])'),
              '(9 ** (i - 1) if form == "report_eq3" else 0)', '(9 ** i if form == "report_eq3" else 0)'), 1.6667),
        ("longest_only", "only the longest path counted (x_2 through every K_i)",
         _sub(_PATHS, "entries = [i - j + 1 for j in range(2, i + 1)]", "entries = [i - 1]"), 1.8333),
        ("float", "total_paths summed in floating point",
         _sub(_PATHS, "sum(9 ** n for n in range(1, i))", "sum(9.0 ** n for n in range(1, i))"), 2.0),
    ],
    "ex3_hierarchy_forward": [
        ("eq3", "the report's Eq. 3 where the paper's form is asked (x_2 + x_1 into the first convolution)",
         _sub(_FORWARD, "    ys, y = [], None\n",
              "    ys, y = [], (xs[0] if identity == 'first' else None)\n"), 1.7143),
        ("last_order", "identity last, but the identity subset concatenated first",
         _sub(_FORWARD, "else ys + [xs[-1]]", "else [xs[-1]] + ys"), 2.2857),
        ("no_groups", "the groups left out of the 3x3 convolutions",
         _sub(_FORWARD, "padding=1, groups=groups)", "padding=1)"), 2.8571),
        ("no_relu", "no ReLU after the hierarchy's convolutions",
         _sub(_FORWARD, "y = F.relu(F.conv2d(z if y is None else z + y, k, padding=1, groups=groups))",
              "y = F.conv2d(z if y is None else z + y, k, padding=1, groups=groups)"), 0.0),
    ],
}


@pytest.fixture(scope="module")
def scored():
    return score_all(LESSON, WRONG)


def test_every_exercise_keeps_wrong_answers():
    assert_every_exercise_has_wrong_answers(LESSON, WRONG)


def test_solutions_score_full_marks(scored):
    assert_solutions_full(scored)


def test_untouched_answers_score_zero(scored):
    assert_untouched_zero(scored)


@pytest.mark.parametrize("exercise,key", wrong_ids(WRONG), ids=[f"{e}-{k}" for e, k in wrong_ids(WRONG)])
def test_a_wrong_answer_scores_less_than_full_marks(scored, exercise, key):
    assert_wrong_below_full(scored, WRONG, exercise, key)
    if key == "built":
        assert scored["wrong"][(exercise, key)].reason.startswith("Forbidden: constructing a torch.nn module"), \
            scored["wrong"][(exercise, key)]
