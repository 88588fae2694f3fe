"""Server-rendered buyer pages under /buyer/ (DESIGN §4 "The buyer's side"): the leads
their company bought (search, filters, CSV), a lead's details and its return, spend against
budgets per contract, pausing and resuming their contracts.

Thin views: authorise (a buyer; only their company), call one selector or service, render
or redirect with a message. Mutations are POST-only with CSRF."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from distribution.errors import DistributionError
from distribution.models import DeliveryStatus
from distribution.selectors import buyer as selectors
from distribution.services.marketplace.buyer import buyer_contract_set_paused, buyer_return_request

STATUS_CHOICES = [
    (DeliveryStatus.DELIVERED.value, "Delivered"),
    ("return_requested", "Return requested"),
    (DeliveryStatus.RETURNED.value, "Returned"),
]
PAGE_ROWS = 500


def buyer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, with a buyer profile; agents and managers get a clear 403."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not hasattr(request.user, "buyer"):
            return HttpResponseForbidden("These pages are for buyers.")
        return view(request, *args, **kwargs)

    return wrapper


def _company_id(request: HttpRequest) -> int:
    user = request.user
    assert isinstance(user, User)
    return int(user.buyer.company_id)


def _filters(request: HttpRequest) -> dict[str, Any]:
    contract = request.GET.get("contract", "")
    status = request.GET.get("status", "")
    return {
        "q": request.GET.get("q", "").strip(),
        "contract_id": int(contract) if contract.isdigit() else None,
        "status": status if status in {s for s, _ in STATUS_CHOICES} else "",
    }


@require_GET
@buyer_required
def home(request: HttpRequest) -> HttpResponse:
    """The leads the company bought, newest first: search, filter by contract and status."""
    company_id = _company_id(request)
    filters = _filters(request)
    rows = selectors.buyer_outbound_list(
        company_id=company_id, limit=PAGE_ROWS, newest_first=True, **filters
    )
    now = timezone.now()
    return render(
        request,
        "buyer/home.html",
        {
            "rows": [(o, selectors.may_return(o, now=now)) for o in rows],
            "filters": filters,
            "contracts": selectors.buyer_contracts(company_id=company_id),
            "statuses": STATUS_CHOICES,
            "query": request.GET.urlencode(),
            "company": request.user.buyer.company,  # type: ignore[union-attr]
        },
    )


@require_GET
@buyer_required
def leads_csv(request: HttpRequest) -> HttpResponse:
    """The same list (same filters) as CSV, every row."""
    rows = selectors.buyer_outbound_list(
        company_id=_company_id(request), limit=None, newest_first=True, **_filters(request)
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="leads.csv"'
    writer = csv.writer(response)
    lead_fields = ["first_name", "last_name", "email", "phone", "postcode", "city", "country",
                   "company_name"]  # fmt: skip
    writer.writerow(["id", "lead_id", *lead_fields, "contract", "price", "status",
                     "return_status", "created_at", "attributes"])  # fmt: skip
    for o in rows:
        doc = selectors.buyer_lead_row(o)
        writer.writerow(
            [
                o.pk,
                o.lead_id,
                *(doc["lead"][f] for f in lead_fields),
                doc["contract"],
                doc["price"],
                doc["status"],
                o.return_status,
                o.created_at.isoformat(),
                json.dumps(doc["lead"]["attributes"], sort_keys=True),
            ]
        )
    return response


@require_GET
@buyer_required
def lead_detail(request: HttpRequest, outbound_id: int) -> HttpResponse:
    """One bought lead: contact details, contract, price, status; the return form while
    the contract's return window is open."""
    outbound = selectors.buyer_outbound_get(
        company_id=_company_id(request), outbound_id=outbound_id
    )
    if outbound is None:
        raise Http404("No such lead among your company's leads.")
    return render(
        request,
        "buyer/lead_detail.html",
        {
            "o": outbound,
            "doc": selectors.buyer_lead_row(outbound),
            "may_return": selectors.may_return(outbound),
            "closes_at": selectors.return_closes_at(outbound),
        },
    )


@require_POST
@buyer_required
def return_lead(request: HttpRequest, outbound_id: int) -> HttpResponse:
    """Return the lead with a reason (a manager approves or denies it)."""
    try:
        buyer_return_request(
            user=request.user,  # type: ignore[arg-type]
            outbound_id=outbound_id,
            reason=request.POST.get("reason", ""),
        )
    except DistributionError as exc:
        if exc.status == 404:
            raise Http404(exc.detail) from exc
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Return requested; a manager will approve or deny it.")
    return redirect("buyer:lead", outbound_id=outbound_id)


@require_GET
@buyer_required
def contracts(request: HttpRequest) -> HttpResponse:
    """Spend against budget (and count against caps) per contract, with a chart of the
    spend per day; pause / resume buttons."""
    spend = selectors.buyer_spend(company_id=_company_id(request))
    chart = {
        str(s.contract.pk): {"name": s.contract.name, "days": s.days, "spent": s.spent_per_day}
        for s in spend
    }
    return render(request, "buyer/contracts.html", {"spend": spend, "chart": chart})


@require_POST
@buyer_required
def contract_pause(request: HttpRequest, contract_id: int, verb: str) -> HttpResponse:
    """`pause` or `resume` one of the company's contracts."""
    if verb not in ("pause", "resume"):
        raise Http404("Pause or resume.")
    try:
        contract = buyer_contract_set_paused(
            user=request.user,  # type: ignore[arg-type]
            contract_id=contract_id,
            paused=verb == "pause",
        )
    except DistributionError as exc:
        if exc.status == 404:
            raise Http404(exc.detail) from exc
        messages.error(request, exc.detail)
    else:
        state = "paused: it gets no new leads" if contract.paused else "resumed"
        messages.success(request, f"{contract.name} {state}.")
    return redirect("buyer:contracts")
