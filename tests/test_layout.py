"""The code's layout rules, checked: import contracts and what a test module is.

The import contracts live in ``pyproject.toml`` (``[tool.importlinter]``):
``brokers`` stays free of Django and of ``dashboard``, the demo and the
dashboard stay apart, nothing imports the tests, no import cycles. Helpers
shared by tests live in ``tests/support/`` (shared fixtures in ``conftest.py``);
a ``test_*.py`` module holds tests and is imported by nobody.
"""

from __future__ import annotations

import ast
import re
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


# A comparison of something named ``kind`` with a broker kind's name, either way round:
# ``c.kind == "rabbitmq"``, ``kind in ("kafka", ...)``, ``"kafka" != config.kind``.
_KIND_NAME = r"""["'](?:rabbitmq|kafka)\b[^"']*["']"""
_COMPARE = r"(?:==|!=|\bnot\s+in\b|\bin\b)"
KIND_COMPARISON = re.compile(
    rf"\b[\w.]*kind\s*{_COMPARE}\s*[(\[{{]?\s*(?:[\"'][^\"']*[\"']\s*,\s*)*{_KIND_NAME}"
    rf"|{_KIND_NAME}\s*{_COMPARE}\s*[\w.]*kind\b"
)
# The one module that looks a kind up by its name.
KIND_NAME_ALLOWED = {"brokers/registry.py"}


def kind_comparisons(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each comparison of a kind with a broker kind's name."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if KIND_COMPARISON.search(line)
    ]


def test_the_kind_comparison_check_finds_what_it_must():
    found = [
        '{% if c.kind == "rabbitmq" %}',
        '{% if c.config.kind == "kafka" %}<dt>Total lag</dt>{% endif %}',
        '<th>{% if c.kind == "rabbitmq" %}Queue{% else %}Topic{% endif %}</th>',
        '  {% if letter.cluster.kind == "kafka" %}',
        '<td>{% if c.kind == "kafka" %}group {{ c.where }}{% endif %}</td>',
        '<h1>{% if job.kind == "rabbitmq.move" %}move messages{% endif %}</h1>',
        'if config.kind != "kafka":',
        "if kind in ('amqp', 'kafka'):",
        'if "rabbitmq" == self.kind:',
        '{% if "kafka" in c.kind %}',
    ]
    ignored = [
        '{% if form.target_kind == "exchange" %}',
        '<div class="kafka">',
        'kind="rabbitmq",',
        "if c.kind == Consumer.Kind.AMQP:",
    ]
    assert [line for line in found if not kind_comparisons(line)] == []
    assert [line for line in ignored if kind_comparisons(line)] == []


def test_nothing_compares_a_kind_with_a_broker_kind_name():
    # What differs between kinds is data on the BrokerKind (or on what a view
    # passes), never a comparison with the kind's name.
    paths = [
        *(ROOT / "templates").rglob("*.html"),
        *(p for d in ("dashboard", "brokers") for p in (ROOT / d).rglob("*.py")),
        *(ROOT / "dashboard").rglob("*.html"),
    ]
    assert len(paths) > 50
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line}"
        for path in paths
        if path.relative_to(ROOT).as_posix() not in KIND_NAME_ALLOWED
        for number, line in kind_comparisons(path.read_text())
    ]
    assert found == [], "compares a kind with a broker kind's name:\n" + "\n".join(found)
