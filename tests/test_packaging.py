"""The package outside the repository: every subpackage ships, and a built wheel trains and tags."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_packaging_lists_every_subpackage() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nerwin").rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject's packages: {sorted(found - listed)}"


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["NERWIN_CACHE"] = str(cwd / "cache")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, (cmd, done.stdout[-2000:], done.stderr[-2000:])
    return done


@pytest.mark.slow
def test_packaging_wheel_in_a_fresh_venv_trains_and_tags(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="the `build` package builds the wheel (test extra)")
    _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("nerwin-*.whl")
    _run([sys.executable, "-m", "venv", str(tmp_path / "venv")], tmp_path)
    bin_dir = tmp_path / "venv" / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    trained = _run([str(bin_dir / "nerwin"), "train", "--out", "run"], work)
    assert "dev LOC F1" in trained.stdout
    by_name = _run(
        [
            str(bin_dir / "nerwin"),
            "train",
            "--config",
            "default",
            "--set",
            "train.epochs=1",
            "--out",
            "run2",
        ],
        work,
    )
    assert "dev LOC F1" in by_name.stdout
    code = "import nerwin; print(nerwin.load('run/model').tag('The museums in Paris are amazing.'))"
    shown = _run([str(bin_dir / "python"), "-c", code], work).stdout
    assert "Entity(text='Paris', start=15, end=20" in shown, shown
    located = _run([str(bin_dir / "python"), "-c", "import nerwin; print(nerwin.__file__)"], work)
    assert str(tmp_path / "venv") in located.stdout  # the wheel, not this checkout
