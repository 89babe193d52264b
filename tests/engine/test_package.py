"""Tests for the nerwin.engine package: its import boundary and the operators ops attaches."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nerwin.engine
from nerwin.engine import Tensor
from nerwin.engine.ops import TENSOR_METHODS

ENGINE = Path(nerwin.engine.__file__).parent
MODULES = sorted(ENGINE.glob("*.py"))


def _nerwin_imports(path: Path) -> list[str]:
    """Every nerwin module `path` imports, at any depth (lazy imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return [name for name in names if name == "nerwin" or name.startswith("nerwin.")]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_engine_imports_nothing_of_nerwin_outside_the_engine(path):
    outside = [m for m in _nerwin_imports(path) if not m.startswith("nerwin.engine")]
    assert not outside, f"{path.name} imports {outside}"


def test_engine_tensor_module_imports_no_op():
    assert _nerwin_imports(ENGINE / "tensor.py") == ["nerwin.engine.sparse"]


def test_engine_operators_exist_when_only_the_tensor_module_is_imported():
    code = (
        "import numpy as np\n"
        "from nerwin.engine.tensor import Tensor\n"
        "t = Tensor(np.array([1.0, 2.0]), requires_grad=True)\n"
        "((2.0 - t) * t / 2.0 + 1.0).sum().backward()\n"
        "print(t.grad.tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[0.0,", "-1.0]"]  # d/dt (2t - t^2)/2 = 1 - t


@pytest.mark.parametrize("name", TENSOR_METHODS)
def test_engine_operator_is_a_documented_tensor_method(name):
    method = getattr(Tensor, name)
    assert method is TENSOR_METHODS[name]
    assert method.__name__ == name and method.__doc__


def test_engine_reflected_operators_keep_operand_order():
    t = Tensor(np.array([2.0, 4.0]))
    assert (1.0 - t).data.tolist() == [-1.0, -3.0]
    assert (8.0 / t).data.tolist() == [4.0, 2.0]
    assert (np.array([1.0, 1.0]) - t).data.tolist() == [-1.0, -3.0]  # ndarray defers to Tensor
    assert (t.reshape(1, 2) @ np.ones((2, 1))).data.tolist() == [[6.0]]
