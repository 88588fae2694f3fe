"""Pausing and resuming a buyer's contract."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from crm.models import Contract
from distribution.errors import MarketplaceError


def contract_pause(*, contract_id: int, actor: Any = None) -> Contract:
    """Pause a contract (the buyer stops buying for a while; nothing else changes)."""
    return _contract_set_paused(contract_id=contract_id, paused=True)


def contract_resume(*, contract_id: int, actor: Any = None) -> Contract:
    """Resume a paused contract."""
    return _contract_set_paused(contract_id=contract_id, paused=False)


def _contract_set_paused(*, contract_id: int, paused: bool) -> Contract:
    with transaction.atomic():
        contract = Contract.objects.select_for_update(no_key=True).filter(pk=contract_id).first()
        if contract is None:
            raise MarketplaceError("unknown_contract", f"No contract with id {contract_id}.")
        if contract.paused != paused:
            contract.paused = paused
            contract.save(update_fields=["paused", "updated_at"])
        return contract
