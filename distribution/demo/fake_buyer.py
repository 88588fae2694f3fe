"""A small fake buyer for `make run`'s demo (issue 12): one demo contract delivers its leads
by webhook to this view, served by the demo's own web process, so a newcomer sees a
delivery and a rejection happen in the delivery log.

Clearly a demo: routed only when settings.DEMO_FAKE_BUYER is true (the embedded run sets it;
nothing else does). It checks the Leadrouter-Signature as a real receiver would and rejects
about one lead in five ("duplicate in our CRM"), decided by the outbound id so a retry gets
the same answer.
"""

from __future__ import annotations

import json
import time
import zlib

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.signing import SIGNATURE_HEADER, SignatureError, signature_verify

DEMO_CONTRACT = "Noord Energie solar"
DEMO_SECRET = "demo-fake-buyer-secret"
DEMO_PATH = "demo/fake-buyer/"


def demo_delivery(site_url: str) -> dict[str, object]:
    """The `delivery` config of the demo contract, pointing at this view."""
    return {
        "method": "webhook",
        "url": f"{site_url.rstrip('/')}/{DEMO_PATH}",
        "secret": DEMO_SECRET,
        "timeout": "5s",
        "accept": {"field": "status", "in": ["accepted"]},
        "reason_field": "reason",
        "retry_after": "10s",
    }


def rejects(outbound_id: object) -> bool:
    """About one in five, the same every time for one outbound lead."""
    return zlib.crc32(str(outbound_id).encode()) % 5 == 0


@csrf_exempt
@require_POST
def fake_buyer(request: HttpRequest) -> HttpResponse:
    try:
        signature_verify(
            header=request.headers.get(SIGNATURE_HEADER, ""),
            secret=DEMO_SECRET,
            body=request.body,
            now=int(time.time()),
        )
    except SignatureError as exc:
        return JsonResponse({"status": "rejected", "reason": f"bad signature: {exc}"}, status=401)
    try:
        lead = json.loads(request.body)
    except ValueError:
        return JsonResponse({"status": "rejected", "reason": "not JSON"}, status=400)
    key = request.headers.get("Idempotency-Key") or lead.get("outbound_id")
    if rejects(key):
        return JsonResponse({"status": "rejected", "reason": "duplicate in our CRM"})
    return JsonResponse({"status": "accepted", "crm_id": f"demo-{key}"})
