"""leads knows nothing of distribution: distribution hooks in through its AppConfig."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib import admin

from leads.admin import LeadAdmin as BaseLeadAdmin
from leads.models import Lead
from leads.services import lead_ingest
from leads.signals import lead_awaits_distribution

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


@pytest.mark.django_db
def test_ingesting_a_lead_queues_its_distribution_once_on_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as queued:
        _, created = lead_ingest(source=None, data={"email": "jane@example.com"})
    with django_capture_on_commit_callbacks() as not_queued:
        lead_ingest(source=None, data={"email": "joe@example.com"}, queue=False)

    assert created
    assert len(queued) == 1  # distribution's receiver of lead_awaits_distribution
    assert not_queued == []
    assert lead_awaits_distribution.has_listeners(Lead)


def test_one_lead_admin_with_distributions_inlines_and_actions():
    registered = admin.site._registry[Lead]

    assert isinstance(registered, BaseLeadAdmin)
    inlines = [inline.__name__ for inline in type(registered).inlines]
    assert inlines == [
        "DuplicateInline",
        "ActivityInline",
        "LeadEventInline",
        "OfferInline",
        "DistributionAttemptInline",
        "WebhookAttemptInline",
        "LeadDeliveryAttemptInline",
    ]
    actions = [getattr(a, "__name__", a) for a in type(registered).actions or []]
    assert actions == [
        "merge_duplicates",
        "unlink_duplicates",
        "assign_to_agent",
        "lead_distribute_action",
        "lead_cherry_pick_action",
    ]
