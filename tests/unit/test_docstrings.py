"""Every module, public class and public function or method in ``assist/`` has a docstring.

Public means a name without a leading underscore, at module level or in a public class
(nested classes included); functions inside functions are not checked. An empty module
(an ``__init__.py`` with no statements) needs none.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "assist"

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _undocumented(node: ast.AST, prefix: str = "") -> Iterator[str]:
    """``lineno name`` of each public definition under ``node`` without a docstring."""
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, Definition) or child.name.startswith("_"):
            continue
        if not ast.get_docstring(child):
            yield f"{child.lineno} {prefix}{child.name}"
        if isinstance(child, ast.ClassDef):
            yield from _undocumented(child, f"{prefix}{child.name}.")


def missing_docstrings(package: Path = PACKAGE) -> list[str]:
    """``path: module`` and ``path:lineno name`` for everything that lacks a docstring."""
    missing = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        name = path.relative_to(package.parent).as_posix()
        if tree.body and not ast.get_docstring(tree):
            missing.append(f"{name}: module")
        missing += [f"{name}:{where}" for where in _undocumented(tree)]
    return missing


def test_the_package_is_found():
    assert (PACKAGE / "__init__.py").is_file()
    assert len(list(PACKAGE.rglob("*.py"))) > 10


def test_every_public_definition_has_a_docstring():
    missing = missing_docstrings()
    assert not missing, f"{len(missing)} without a docstring:\n" + "\n".join(missing)


def test_the_check_finds_what_is_missing(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(
        "def public():\n    pass\n\n\n"
        "def _private():\n    pass\n\n\n"
        "class Thing:\n"
        '    """Documented."""\n\n'
        "    def method(self):\n        def inner():\n            pass\n\n"
        "    async def _hidden(self):\n        pass\n\n"
        "    class Inner:\n        pass\n\n\n"
        "class _Private:\n    def method(self):\n        pass\n"
    )
    assert missing_docstrings(package) == [
        "pkg/mod.py: module",
        "pkg/mod.py:1 public",
        "pkg/mod.py:12 Thing.method",
        "pkg/mod.py:19 Thing.Inner",
    ]
