import re
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
    banned = [str(p) for p in files if p.suffix in {".pt", ".pth", ".npz", ".gz", ".tar"}]
    assert not banned, f"data or checkpoints in git: {banned}"


def test_every_torch_load_uses_weights_only():
    bad = []
    for p in _tracked():
        if p.suffix in {".py", ".ipynb"} and p.is_file():
            for m in re.finditer(r"torch\.load\(([^)]*)\)", p.read_text()):
                if "weights_only=True" not in m.group(1):
                    bad.append(f"{p.relative_to(REPO)}: {m.group(0)}")
    assert not bad, bad


def test_readme_quick_start_is_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert "make course" in text and "make test" in text
