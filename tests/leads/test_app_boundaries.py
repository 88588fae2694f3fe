"""leads knows nothing of distribution: distribution hooks in through its AppConfig."""

from __future__ import annotations

import ast
from pathlib import Path

LEADS = Path(__file__).resolve().parents[2] / "leads"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):  # every level: function-local imports count too
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            found += [
                (node.lineno, arg.value)
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            ]
    return found


def test_no_module_under_leads_imports_distribution() -> None:
    offenders = [
        f"{path.relative_to(LEADS.parent)}:{line} imports {module}"
        for path in sorted(LEADS.rglob("*.py"))
        for line, module in _imported_modules(ast.parse(path.read_text(), str(path)))
        if module == "distribution" or module.startswith("distribution.")
    ]
    assert LEADS.is_dir() and any(LEADS.rglob("*.py"))
    assert offenders == []
