"""The code's layout rules, checked: import contracts and what a test module is.

The import contracts live in ``pyproject.toml`` (``[tool.importlinter]``):
``brokers`` stays free of Django and of ``dashboard``, the demo and the
dashboard stay apart, nothing imports the tests, no import cycles. Helpers
shared by tests live in ``tests/support/`` (shared fixtures in ``conftest.py``);
a ``test_*.py`` module holds tests and is imported by nobody.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_it_keeps_the_import_contracts():
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _defines_tests(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            return True
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            return True
    return False


def test_every_test_module_holds_tests():
    modules = sorted((ROOT / "tests").rglob("test_*.py"))
    assert modules
    without = [str(p.relative_to(ROOT)) for p in modules if not _defines_tests(p)]
    assert without == [], f"move helpers without tests to tests/support/: {without}"


def _imported_modules(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_a_test_module():
    found = []
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        for name in _imported_modules(tree):
            if name.split(".")[0] == "tests" and name.split(".")[-1].startswith("test_"):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == [], "move what is shared to tests/support/ or conftest.py: " + str(found)
