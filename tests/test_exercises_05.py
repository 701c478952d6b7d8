"""Lesson 05's graded exercises: the solutions score full marks, the untouched student
stubs 0, and plausible wrong answers less than full marks, each with the score it gets (the
checks are deterministic: constant cases, no timing but the 5 s limit per case)."""
from exercise_cases import *  # noqa: F401,F403 (the tests every lesson runs, and its helpers)
from exercise_cases import edit, lesson_path, solution_sources

LESSON = lesson_path("05_res2net")
_SOL = solution_sources(LESSON)
_NET, _PATHS, _FORWARD = _SOL["ex1_whole_res2net"], _SOL["ex2_path_counts"], _SOL["ex3_hierarchy_forward"]


_sub = edit


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


def test_a_model_built_instead_of_a_formula_is_refused(scored):
    assert any(k == "built" for _, k in scored["wrong"]), "no such wrong answer kept"
    for (exercise, key), r in scored["wrong"].items():
        if key == "built":
            assert r.reason.startswith("Forbidden: constructing a torch.nn module"), r
