"""The one base of the product's domain errors; each edge turns them into its own answer.

A domain error has a stable `code`, a `detail` for people, an HTTP `status` per class and,
for input errors, `errors` mapping each field to its messages. The API answers
`{"detail", "code", "errors"}` with `status` (config.api); agent pages and admin screens
show `detail` as a message. It lives here, outside both apps, because leads and
distribution both raise them and leads must not import distribution.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused operation; `code` is stable, `status` is what the API answers."""

    code = "error"
    status = 400

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        errors: dict[str, list[str]] | None = None,
    ):
        self.detail = detail or self.__class__.__doc__ or self.code
        super().__init__(self.detail)
        if code is not None:
            self.code = code
        self.errors = errors or {}


class NotFoundError(DomainError):
    """No such object (for apps without their own error classes)."""

    code = "not_found"
    status = 404
