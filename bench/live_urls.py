"""Bench-only URL conf (see live_settings): the product's URLs plus the references a live
figure is measured against under the same gunicorn: `/bench/trivial` (a JSON answer) and
`POST /bench/push {"id": N}` (the minimal HTTP -> Redis step: LPUSH N, which bench_live's consumer
thread turns into an UPDATE)."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urls

REF_KEY = os.environ["BROKER_KEY_PREFIX"] + "bench-ref"  # what bench_live consumes


@cache
def _redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def trivial(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@csrf_exempt
def push(request: HttpRequest) -> JsonResponse:
    _redis().lpush(REF_KEY, int(json.loads(request.body)["id"]))
    return JsonResponse({"ok": True}, status=201)


urlpatterns = [path("bench/trivial", trivial), path("bench/push", push), *product_urls]
