import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _pyproject_pins():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        deps += extra
    return {re.split(r"[=<>!~ ]", d)[0].lower(): d.replace(" ", "") for d in deps}


def _env_pins():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {re.split(r"[=<>!~ ]", d)[0].lower(): d.replace(" ", "") for d in pip}


def test_environment_yml_and_pyproject_list_the_same_pins():
    py, env = _pyproject_pins(), _env_pins()
    assert set(py) == set(env), f"only in pyproject: {set(py) - set(env)}; only in environment.yml: {set(env) - set(py)}"
    assert py == env
    assert py["torch"] == "torch==2.14.1" and py["torchvision"] == "torchvision==0.29.1"


def _tracked():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing tracked to check")
    return [REPO / p for p in out.stdout.decode().split("\0") if p]


def test_no_tracked_file_over_2mb_and_no_data_or_checkpoints():
    files = _tracked()
    assert files, "git ls-files listed nothing"
    big = [str(p) for p in files if p.is_file() and p.stat().st_size > 2_000_000]
    assert not big, f"files over 2 MB in git: {big}"
    # the one exception (README, Layout): a reference run's weights that a lesson inspects,
    # data/reference/<table>/<row>/seed<k>/model.pt, at most 1 MB each and 5 MB in all
    allowed = [p for p in files if p.name == "model.pt"
               and p.relative_to(REPO).parts[:2] == ("data", "reference")]
    assert all(p.stat().st_size <= 1_000_000 for p in allowed), allowed
    assert sum(p.stat().st_size for p in allowed) <= 5_000_000, allowed
    banned = [str(p) for p in files if p.suffix in {".pt", ".pth", ".npz", ".gz", ".tar"}
              and p not in allowed]
    assert not banned, f"data or checkpoints in git: {banned}"


def test_every_torch_load_uses_weights_only():
    bad = []
    for p in _tracked():
        if p.suffix in {".py", ".ipynb"} and p.is_file():
            for m in re.finditer(r"torch\.load\(([^)]*)\)", p.read_text()):
                if "weights_only=True" not in m.group(1):
                    bad.append(f"{p.relative_to(REPO)}: {m.group(0)}")
    assert not bad, bad


def _quick_start_commands() -> list[str]:
    """The commands of the README's first code block under its "Quick start" heading."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(r"#+\s*quick start", ln, re.I))
    block, seen = [], False
    for ln in lines[start + 1:]:
        if ln.startswith("#"):
            break
        if ln.startswith("    ") and ln.strip():
            block.append(ln.split("#", 1)[0].strip())
            seen = True
        elif seen and ln.strip():
            break  # the block ended
    return block


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here: the "
                    "README's two commands are Makefile targets, and only `make -n` can show what they run")
def test_readme_quick_start_is_the_two_commands():
    """The quick start is exactly `make course` and `make test`, and each is a target of
    the Makefile that sets up and prepares the data, then runs the notebooks (the
    runbook) or the test suite (pytest over tests and notebooks)."""
    assert _quick_start_commands() == ["make course", "make test"]
    for target, runs in (("course", "-m course_utils.runbook"), ("test", "-m pytest")):
        r = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True,
                           timeout=60)  # -n: print the recipe, run nothing
        assert r.returncode == 0, f"make -n {target}: {r.stderr}"
        assert "-m course_utils.data prepare" in r.stdout and runs in r.stdout, r.stdout
    assert "tests notebooks" in subprocess.run(["make", "-n", "test"], cwd=REPO, text=True,
                                               capture_output=True, timeout=60).stdout


# ------------------------------------------------------------- the package's shape
PACKAGE = REPO / "course_utils"
MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 100
# Imports run one way: a module imports only from its own layer or a lower one. viz,
# nbtools and sources import nothing of the kit (plots and notebook files of plain
# values), nor does kernelpoll (papermill's wait on the kernel), so every layer may use
# them; a base module imports only checks, files and kernelpoll; a module not listed is
# in the top layer.
LAYERS = (
    ("base", {"checks", "files", "env", "viz", "nbtools", "sources", "stats", "kernelpoll"}),
    ("data", {"datafiles", "sample", "data"}),
    ("models", {"layers", "dense_layers", "models", "profile"}),
    ("train", {"config", "devices", "schedule", "checkpoint", "summary", "train"}),
    ("results", {"ablate", "ablate_results", "runs", "launch", "dense2net", "compare", "reference",
                 "refstudy"}),
    ("widgets and notebooks", {"callbacks", "widgets", "nb", "classroom", "answers", "sandbox", "runbook"}),
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def _layer(module: str) -> int:
    top = module.split(".")[0]
    return next((i for i, (_, mods) in enumerate(LAYERS) if top in mods), len(LAYERS))


def _kit_imports(path: Path) -> set[str]:
    """The kit's modules `path` imports, at module level or inside functions."""
    import ast

    module = _module(path)
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            names = ([".".join(base + [node.module])] if node.module
                     else [".".join(base + [a.name]) for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils."):
            names = [node.module.removeprefix("course_utils.")]
        elif isinstance(node, ast.Import):
            names = [a.name.removeprefix("course_utils.") for a in node.names
                     if a.name.startswith("course_utils.")]
        else:
            continue
        found.update(n for n in names if n and n != module)
    return found


def test_no_file_over_700_lines_and_no_function_over_100():
    import ast

    long_files, long_functions = [], []
    for p in sorted(PACKAGE.rglob("*.py")):
        text = p.read_text()
        n = len(text.splitlines())
        if n > MAX_FILE_LINES:
            long_files.append(f"{p.relative_to(REPO)}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{p.relative_to(REPO)}:{node.lineno} {node.name}: "
                                          f"{length} lines")
    assert not long_files, f"over {MAX_FILE_LINES} lines: {long_files}"
    assert not long_functions, f"over {MAX_FUNCTION_LINES} lines: {long_functions}"


def test_imports_run_one_way_without_cycles():
    graph = {_module(p): _kit_imports(p) for p in PACKAGE.rglob("*.py")}
    upward = [f"{m} ({LAYERS[_layer(m)][0] if _layer(m) < len(LAYERS) else 'top'}) imports {d}"
              for m, deps in graph.items() for d in deps
              if m != "__init__" and _layer(d) > _layer(m)]
    assert not upward, upward
    for m in [m for m in graph if _layer(m) == 0]:
        assert not graph[m] - {"checks", "files", "kernelpoll"}, f"{m} is a base module: {graph[m]}"
    # a cycle: a module reachable from itself (packages stand for their __init__)
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for d in graph.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen
    cycles = [m for m in graph if m in reach(m)]
    assert not cycles, f"import cycles through {sorted(cycles)}"
