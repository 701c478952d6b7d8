"""Lesson 07's exercises (issue 18): the solutions score full marks, the untouched student
stubs 0, and plausible wrong answers less than full marks, with the partial credit each gets
(deterministic: every case is a fixed number, scored by course_utils.answers.check_answers)."""
from exercise_cases import *  # noqa: F401,F403 (the tests every lesson runs, and its helpers)
from exercise_cases import edit, lesson_path, solution_sources

LESSON = lesson_path("07_table1")

_PAIRED = (
    "def paired_t95(base, variant):\n"
    "    seeds = sorted(set(base) & set(variant))\n"
    "    diffs = [variant[s] - base[s] for s in seeds]\n"
    "{PAIRING}"
    "    n = len(diffs)\n"
    "    mean = sum(diffs) / n\n"
    "    if n < 2:\n"
    "        return mean, None, None\n"
    "    sd = (sum((d - mean) ** 2 for d in diffs) / (n - 1)) ** 0.5\n"
    "    half = T975[n - 1] * sd / n ** 0.5\n"
    "    return mean, mean - half, mean + half\n")
_DECIDE = (
    "def decide(base, variant, control, claimed):\n"
    "    if control is not None:\n"
    "        _, low, high = paired_t95(base, control)\n"
    "        if low is not None and (low > 0 or high < 0):\n"
    "            return 'cannot resolve'\n"
    "    mean, low, high = paired_t95(base, variant)\n"
    "    if low is None or low <= 0 <= high:\n"
    "        return 'cannot resolve'\n"
    "    return 'reproduces' if (mean > 0) == (claimed > 0) else 'contradicts'\n")
PAIRED = _PAIRED.replace("{PAIRING}", "")

_SEEDS = ("def seeds_for(sd, half_width):\n"
          "    for n in range(2, 32):\n"
          "        if T975[n - 1] * sd / n ** 0.5 <= half_width:\n"
          "            return n\n"
          "    return None\n")

_AGREE = ("def agreement_beyond_chance(a, b):\n"
          "    n = len(a)\n"
          "    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]\n"
          "    observed = sum((a[i] - a[j]) * (b[i] - b[j]) > 0 for i, j in pairs) / len(pairs)\n"
          "    untied_a = sum(a[i] != a[j] for i, j in pairs) / len(pairs)\n"
          "    untied_b = sum(b[i] != b[j] for i, j in pairs) / len(pairs)\n"
          "    chance = 0.5 * untied_a * untied_b\n"
          "    return observed, chance, (observed - chance) / (1 - chance)\n")

# Plausible wrong answers: (key, what is wrong, answer source, the score it gets: each case an
# equal share of the points; exercise 1 scores every interval and every decision as a case)
WRONG = {
    "ex1_decide": [
        ("position", "seeds paired by position (the dicts' order), not by seed",
         _PAIRED.replace("{PAIRING}", "    diffs = [v - b for b, v in zip(base.values(), variant.values())]\n")
         + "\n\n" + _DECIDE, 3.2),
        ("normal", "the normal 1.96 instead of Student's t",
         PAIRED.replace("T975[n - 1]", "1.96") + "\n\n" + _DECIDE, 1.8),
        ("n", "the standard deviation divided by n, not n - 1",
         PAIRED.replace("/ (n - 1)) ** 0.5", "/ n) ** 0.5") + "\n\n" + _DECIDE, 2.2),
        ("unpaired", "the rows compared unpaired: difference of the means, standard error of two independent means",
         "def paired_t95(base, variant):\n"
         "    b, v = list(base.values()), list(variant.values())\n"
         "    mean = sum(v) / len(v) - sum(b) / len(b)\n"
         "    n = min(len(b), len(v))\n"
         "    if n < 2:\n"
         "        return mean, None, None\n"
         "    var = lambda x: sum((y - sum(x) / len(x)) ** 2 for y in x) / (len(x) - 1)\n"
         "    half = T975[n - 1] * (var(b) / len(b) + var(v) / len(v)) ** 0.5\n"
         "    return mean, mean - half, mean + half\n\n\n" + _DECIDE, 1.4),
        ("control", "the control ignored",
         PAIRED + "\n\n" + _DECIDE.replace("if control is not None:", "if False:"), 3.8),
        ("sign", "the decision read from the mean's sign, the interval ignored",
         PAIRED + "\n\n" + _DECIDE.replace("if low is None or low <= 0 <= high:", "if mean == 0:"), 3.2),
        ("library", "course_utils.stats called (switched off in the check)",
         "from course_utils import stats\n\n"
         "def paired_t95(base, variant):\n"
         "    iv = stats.paired_interval(base, variant)\n"
         "    return iv.mean, iv.low, iv.high\n\n\n"
         "def decide(base, variant, control, claimed):\n"
         "    return stats.finding(stats.paired_interval(base, variant), claimed)\n", 0.0),
    ],
    "ex2_seeds": [
        ("normal", "the normal 1.96 instead of Student's t (too few seeds)",
         _SEEDS.replace("T975[n - 1]", "1.96"), 0.7273),
        ("df", "n degrees of freedom instead of n - 1",
         _SEEDS.replace("T975[n - 1]", "T975.get(n, 2.04)"), 1.6364),
        ("sqrt", "the standard error with the square root of n - 1",
         _SEEDS.replace("n ** 0.5", "(n - 1) ** 0.5"), 1.0909),
    ],
    "ex3_agreement_chance": [
        ("half", "chance taken as one half whatever the ties",
         _AGREE.replace("chance = 0.5 * untied_a * untied_b", "chance = 0.5"), 1.0),
        ("ties_b", "b's ties ignored in the chance level (the lesson's chance for an untied b)",
         _AGREE.replace("chance = 0.5 * untied_a * untied_b", "chance = 0.5 * untied_a"), 1.2),
        ("weak", "a pair tied in both lists counted as agreeing",
         _AGREE.replace("(b[i] - b[j]) > 0 for", "(b[i] - b[j]) > 0 or (a[i] == a[j] and b[i] == b[j]) for"), 1.8),
        ("raw", "kappa not normalised: observed - chance",
         _AGREE.replace("(observed - chance) / (1 - chance)", "observed - chance"), 0.0),
    ],
}


def test_calling_the_kits_statistics_is_refused(scored):
    assert any(k == "library" for _, k in scored["wrong"]), "no such wrong answer kept"
    for (exercise, key), r in scored["wrong"].items():
        if key == "library":
            assert r.reason.startswith("Forbidden: course_utils.stats is switched off")
