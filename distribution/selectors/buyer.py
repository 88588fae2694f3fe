"""Reads for the buyer's side (DESIGN §4 "The buyer's side", §7 buyer endpoints): the
outbound leads of one company, its contracts and their spend against caps and budgets.

Every read takes the buyer's company: a buyer never sees another company's rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.models import Contract
from distribution.db.usage import USAGE_PERIODS, cap_usage
from distribution.models import DeliveryStatus, OutboundLead, OutboundMethod, ReturnStatus

# What the buyer has (§7): delivered, returned; a portal sale is delivered when sold. Pending
# (webhook / e-mail not settled), rejected and failed ones were never theirs.
VISIBLE_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.RETURNED)
API_PAGE = 500  # the most one answer of the buyer API lists (`?after=` pages on)
CHART_DAYS = 30


def buyer_outbound_queryset(*, company_id: int) -> QuerySet[OutboundLead]:
    """The company's outbound leads the buyer may see, with lead and contract."""
    return OutboundLead.objects.filter(
        contract__company_id=company_id, status__in=VISIBLE_STATUSES
    ).select_related("lead", "contract")


def buyer_outbound_list(
    *,
    company_id: int,
    after: int | None = None,
    q: str = "",
    contract_id: int | None = None,
    status: str = "",
    limit: int | None = API_PAGE,
    newest_first: bool = False,
) -> list[OutboundLead]:
    """The company's outbound leads, oldest first (the API's order; `newest_first` for the
    pages): `after` an outbound id lists only newer ones; `q` searches name, e-mail, phone,
    postcode and city; `status` is a delivery status or `return_requested`."""
    qs = buyer_outbound_queryset(company_id=company_id)
    if after is not None:
        qs = qs.filter(pk__gt=after)
    if q:
        words = Q()
        for f in ("first_name", "last_name", "email", "phone", "postcode", "city"):
            words |= Q(**{f"lead__{f}__icontains": q})
        qs = qs.filter(words)
    if contract_id is not None:
        qs = qs.filter(contract_id=contract_id)
    if status == "return_requested":
        qs = qs.filter(return_status=ReturnStatus.REQUESTED)
    elif status:
        qs = qs.filter(status=status)
    qs = qs.order_by("-id" if newest_first else "id")
    return list(qs[:limit] if limit else qs)


def buyer_outbound_get(*, company_id: int, outbound_id: int) -> OutboundLead | None:
    """One of the company's outbound leads (None for another company's, or one not theirs)."""
    return buyer_outbound_queryset(company_id=company_id).filter(pk=outbound_id).first()


def return_closes_at(outbound: OutboundLead) -> datetime:
    """When the contract's return window for this outbound lead ends."""
    window: timedelta = outbound.contract.return_window
    return outbound.created_at + window


def may_return(outbound: OutboundLead, *, now: datetime | None = None) -> bool:
    """Whether the buyer may still return it: delivered, never returned, window open."""
    now = now or timezone.now()
    return (
        outbound.status == DeliveryStatus.DELIVERED
        and outbound.return_status == ReturnStatus.NONE
        and now < return_closes_at(outbound)
    )


def buyer_contracts(*, company_id: int) -> list[Contract]:
    return list(Contract.objects.filter(company_id=company_id).select_related("campaign"))


@dataclass
class PeriodSpend:
    period: str
    count: int
    cap: int | None
    spent: Decimal
    budget: Decimal | None

    @property
    def percent(self) -> int | None:
        """Spent as a share of the budget (of the cap without one), 0–100."""
        if self.budget:
            return min(100, int(self.spent * 100 / self.budget))
        if self.cap:
            return min(100, self.count * 100 // self.cap)
        return None


@dataclass
class ContractSpend:
    contract: Contract
    periods: list[PeriodSpend]
    days: list[str] = field(default_factory=list)  # the chart: ISO dates ...
    spent_per_day: list[float] = field(default_factory=list)  # ... and spend on each


def buyer_spend(*, company_id: int, now: datetime | None = None) -> list[ContractSpend]:
    """Each of the company's contracts with its spend and count in the current day, week and
    month (counted as caps count them: no cherry-picks, no approved returns) against its
    budgets and caps, and its spend per day over the last 30 days."""
    now = now or timezone.now()
    contracts = buyer_contracts(company_id=company_id)
    usage = cap_usage(contracts={c.pk: c.timezone for c in contracts}, now=now)
    first_day = (now - timedelta(days=CHART_DAYS - 1)).date()
    per_day: dict[tuple[int, date], Decimal] = {
        (row["contract_id"], row["day"]): row["spent"]
        for row in _counted(company_id)
        .filter(created_at__date__gte=first_day)
        .annotate(day=TruncDate("created_at"))
        .values("contract_id", "day")
        .annotate(spent=Sum("price"), n=Count("id"))
        .order_by()
    }
    days = [first_day + timedelta(days=i) for i in range(CHART_DAYS)]
    out = []
    for c in contracts:
        u = usage.get(c.pk)
        periods = [
            PeriodSpend(
                period=p,
                count=getattr(u, p) if u else 0,
                cap=getattr(c, f"cap_{p}"),
                spent=Decimal(getattr(u, f"{p}_spent")) if u else Decimal(0),
                budget=getattr(c, f"budget_{p}"),
            )
            for p in USAGE_PERIODS
        ]
        out.append(
            ContractSpend(
                contract=c,
                periods=periods,
                days=[d.isoformat() for d in days],
                spent_per_day=[float(per_day.get((c.pk, d), 0)) for d in days],
            )
        )
    return out


def _counted(company_id: int) -> QuerySet[OutboundLead]:
    return (
        OutboundLead.objects.filter(contract__company_id=company_id)
        .exclude(method=OutboundMethod.CHERRY_PICK)
        .exclude(return_status=ReturnStatus.APPROVED)
        .exclude(status__in=(DeliveryStatus.REJECTED, DeliveryStatus.FAILED))
    )


def buyer_lead_row(outbound: OutboundLead) -> dict[str, Any]:
    """The §7 document of one outbound lead (the API's list item, the CSV's row)."""
    lead = outbound.lead
    return {
        "id": outbound.pk,
        "lead": {
            "id": lead.pk,
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "email": lead.email,
            "phone": lead.phone,
            "postcode": lead.postcode,
            "city": lead.city,
            "country": lead.country,
            "company_name": lead.company_name,
            "attributes": lead.attributes or {},
        },
        "contract": outbound.contract.name,
        "price": outbound.price,
        "status": outbound.status,
        "created_at": outbound.created_at,
    }
