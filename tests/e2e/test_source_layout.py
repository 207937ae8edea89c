"""The project's own rules for its modules: each has a docstring that states its contract, and
none grows past 600 lines (generated stubs excepted)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("cloud", "driver", "operator", "reference", "demo")
MAX_LINES = 600
MODULES = sorted(
    path
    for folder in PACKAGE_FOLDERS
    for path in (REPO / folder).rglob("*.py")
    if "csipb" not in path.parts and "__pycache__" not in path.parts
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_module_has_a_docstring_and_stays_small(path):
    source = path.read_text()
    assert ast.get_docstring(ast.parse(source)), f"{path.relative_to(REPO)} has no docstring"
    assert len(source.splitlines()) <= MAX_LINES
