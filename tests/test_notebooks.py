"""Notebook conventions, papermill runs with injected parameters, and the parameter check.
(nbval runs the notebooks as committed: `pytest --nbval-lax notebooks`, part of make test.)"""
import ast
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from course_utils import sources
from course_utils.nbtools import REQUIRED_PARAMETERS, problems
from conftest import NBVAL_SMOKE, needs_fmnist

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


def _param_cell(nb):
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_conventions(path):
    nb = nbformat.read(path, as_version=4)
    i = _param_cell(nb)
    names = {t.id for node in ast.parse(nb.cells[i].source).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    missing = set(REQUIRED_PARAMETERS) - names
    assert not missing, f"parameters cell lacks {sorted(missing)}"
    nxt = next(c for c in nb.cells[i + 1:] if c.cell_type == "code")
    assert "nb.setup(" in nxt.source, "the cell after 'parameters' must check them with nb.setup"
    assert problems(nb) == [], "outputs in git outside NBVAL_CHECK_OUTPUT cells"
    assert nb.metadata["kernelspec"]["name"] == "course-kit"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def _run(path, tmp_path, **params):
    out_dir = tmp_path / "out"
    out = tmp_path / path.name
    pm.execute_notebook(str(path), str(out), parameters={"out_dir": str(out_dir), **params},
                        kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    return nbformat.read(out, as_version=4), out_dir


# What CI runs of each notebook: nbval runs every notebook (the training lessons in smoke
# mode, the others in quick mode: conftest.NBVAL_SMOKE); papermill runs every notebook on
# Fashion-MNIST with seed 3 (smoke), and the lessons nbval runs in quick mode also in smoke
# mode with seed 7. `make course` runs every notebook in quick mode.
ANOTHER_SEED = [p for p in NOTEBOOKS if p.stem not in NBVAL_SMOKE]


@pytest.mark.parametrize("path", ANOTHER_SEED, ids=[p.stem for p in ANOTHER_SEED])
def test_papermill_smoke_with_another_seed(path, tmp_path):
    nb, out_dir = _run(path, tmp_path, mode="smoke", seed=7)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "seed = 7" in injected[0].source
    head = json.loads((out_dir / "headline.json").read_text())
    assert head["seed"] == 7 and head["mode"] == "smoke" and head["value"] is not None


def test_setup_notebook_quick_seed_7(tmp_path):
    """The command of the README and of issue 3's acceptance, as a user types it."""
    path = REPO / "notebooks" / "00_setup_and_data.ipynb"
    _, out_dir = _run(path, tmp_path, mode="quick", seed=7)
    head = json.loads((out_dir / "headline.json").read_text())
    assert head["seed"] == 7 and head["mode"] == "quick" and head["value"] == 5000


@needs_fmnist
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_papermill_smoke_on_fashion_mnist(path, tmp_path):
    nb, out_dir = _run(path, tmp_path, mode="smoke", dataset="fashion_mnist", seed=3)
    head = json.loads((out_dir / "headline.json").read_text())
    assert head["dataset"] == "fashion_mnist" and "Fashion-MNIST" in head["note"]
    shown, drawn = figures_shown_and_drawn(nb)
    assert shown >= drawn, f"{path.stem} drew {drawn} figures (plt.show() calls run) but showed {shown}"
    # every number of the prose is printed by a cell of this run or cited (course_utils.sources)
    problems = sources.report(nb)
    assert not problems, f"{path.stem}:\n" + "\n".join(problems)


def figures_shown_and_drawn(nb) -> tuple[int, int]:
    """Images in the executed notebook's outputs, and the plt.show() calls of the code
    cells that ran (a kernel whose backend was switched to Agg shows none of them)."""
    shown = drawn = 0
    for c in nb.cells:
        if c.cell_type != "code" or c.execution_count is None:
            continue
        drawn += sum(line.strip().startswith("plt.show()") for line in c.source.splitlines())
        shown += sum("image/png" in o.get("data", {}) for o in c.outputs)
    return shown, drawn


BAD = [("mode", "nonsense", "'smoke', 'quick', 'full'"),
       ("dataset", "imagenet", "'cifar10', 'cifar100', 'fashion_mnist'"),
       ("device", "tpu", "'auto', 'cpu', 'cuda', 'mps'"),
       ("seed", -1, "integer >= 0")]


# Every bad value on one notebook, and one bad value on each of the others (the check is
# nb.setup in every notebook; what each notebook must show is that its check cell stops it).
BAD_CASES = ([(NOTEBOOKS[0], *b) for b in BAD]
             + [(p, *BAD[i % len(BAD)]) for i, p in enumerate(NOTEBOOKS[1:])]
             # the lessons that show stored reference results take reference=True/False
             + [(p, "reference", "yes", "True, False") for p in NOTEBOOKS
                if p.name.startswith(("04_", "07_"))])


@pytest.mark.parametrize("path,name,value,allowed", BAD_CASES,
                         ids=[f"{p.stem}-{n}" for p, n, _, _ in BAD_CASES])
def test_bad_parameter_stops_at_the_check(path, tmp_path, name, value, allowed):
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run(path, tmp_path, **{name: value})
    err = e.value
    assert err.ename == "ParameterError"
    assert f"{name}={value!r}" in err.evalue and allowed in err.evalue
    nb = nbformat.read(tmp_path / path.name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    k = next(j for j, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", []))
    # the cell right after the injected parameters failed; nothing after it ran
    assert any(o.get("output_type") == "error" for o in code[k + 1].outputs)
    assert all(c.execution_count is None for c in code[k + 2:])


FULL_MODE_ON_A_BUDGET = [p for p in NOTEBOOKS if p.name.startswith(("02_", "03_"))]


@needs_fmnist
@pytest.mark.parametrize("path", FULL_MODE_ON_A_BUDGET, ids=[p.stem for p in FULL_MODE_ON_A_BUDGET])
def test_full_mode_code_path_on_a_tiny_budget(path, tmp_path):
    """Full mode is meant for a GPU; here its code path (full-mode sweep points, latency
    runs, schedule) runs on the CPU with every split capped at a few hundred images. On
    Fashion-MNIST, whose full copy (Debian's package) is at hand where CIFAR-10's is not."""
    # two seeds: the studies' interval code runs, a third would add time and no code path
    _, out_dir = _run(path, tmp_path, mode="full", epochs=1, subset=200, seed=1, seeds=2,
                      dataset="fashion_mnist")
    head = json.loads((out_dir / "headline.json").read_text())
    assert head["mode"] == "full" and "full mode, subset: 200 train" in head["note"]


def test_default_paths_do_not_depend_on_the_working_folder(tmp_path):
    """The README's papermill command run from another folder, default out_dir: the
    outputs land in the kit's build/out/<notebook>, nothing beside the checkout or in the
    folder the command ran from."""
    path = REPO / "notebooks" / "00_setup_and_data.ipynb"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    beside = sorted(p.name for p in REPO.parent.iterdir())
    headline = REPO / "build" / "out" / path.stem / "headline.json"
    headline.unlink(missing_ok=True)
    pm.execute_notebook(str(path), str(tmp_path / "executed.ipynb"), parameters={"mode": "smoke"},
                        kernel_name="python3", cwd=str(elsewhere), progress_bar=False)
    assert json.loads(headline.read_text())["mode"] == "smoke"
    assert list(elsewhere.iterdir()) == []
    # other processes (a parallel test worker, anything else in /tmp) may add entries
    # beside the checkout meanwhile; what this run could have put there is a folder a
    # relative default would make (build, out, runs) or one named after the notebook
    new = set(p.name for p in REPO.parent.iterdir()) - set(beside)
    assert not [n for n in new if n in ("build", "out", "runs") or path.stem in n], new


def _text(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


REFERENCE_LESSONS = [p for p in NOTEBOOKS if p.name.startswith("02_")]


@pytest.mark.parametrize("path", REFERENCE_LESSONS, ids=[p.stem for p in REFERENCE_LESSONS])
def test_missing_reference_results_give_a_message_and_the_lesson_goes_on(path, tmp_path, monkeypatch):
    """Stored reference results that are not there (COURSE_REFERENCE names an empty folder):
    the lesson says which and why, and runs to its end; reference=False hides the section."""
    monkeypatch.setenv("COURSE_REFERENCE", str(tmp_path / "empty"))
    nb, out_dir = _run(path, tmp_path, mode="smoke")
    text = _text(nb)
    assert "cannot be shown" in text and "the lesson goes on without" in text
    assert (out_dir / "headline.json").is_file()                 # the last cell ran
    monkeypatch.delenv("COURSE_REFERENCE")
    (tmp_path / "hidden").mkdir()
    nb, _ = _run(path, tmp_path / "hidden", mode="smoke", reference=False)
    text = _text(nb)
    assert "cannot be shown" not in text and "reference scale:" not in text
