"""The JSON API (`/api/v1/`): one router per app; errors as {detail, code, errors}."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from config.errors import DomainError

api = NinjaAPI(
    title="Leadrouter API",
    version="1",
    description="Lead ingestion, the agent endpoints (offers, claims, pull, hopper) and the "
    "buyer endpoints (their leads, returns).",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def error_response(
    request: HttpRequest,
    status: int,
    code: str,
    detail: str,
    errors: dict[str, list[str]] | None = None,
) -> HttpResponse:
    return api.create_response(
        request, {"detail": detail, "code": code, "errors": errors or {}}, status=status
    )


def _field_of(loc: list[Any]) -> str:
    # ninja reports ("body", "<param>", "field", ...) for JSON bodies
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload")]
    return parts[0] if parts else "__all__"


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for err in exc.errors:
        errors.setdefault(_field_of(list(err.get("loc", []))), []).append(str(err.get("msg")))
    return error_response(request, 422, "invalid", "The request has invalid fields.", errors)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, "unauthorized", "A valid bearer token is required.")


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """Every domain error of every app (ninja finds the handler by the error's MRO), answered
    from its own attributes: a new error class needs no handler."""
    return error_response(request, exc.status, exc.code, exc.detail, exc.errors)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    codes = {400: "bad_request", 403: "forbidden", 404: "not_found", 409: "conflict"}
    return error_response(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))


def _register_routers() -> None:
    from distribution.api import router as distribution_router
    from leads.api import router as leads_router

    api.add_router("", leads_router)
    api.add_router("", distribution_router)


_register_routers()
