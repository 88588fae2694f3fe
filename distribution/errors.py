"""Domain errors of distribution services: each has a stable `code` and an HTTP status."""

from __future__ import annotations

from config.errors import DomainError


class DistributionError(DomainError):
    """A service refused an action; `code` is stable, `status` is what the API answers."""

    code = "distribution_error"
    status = 400


class AlreadyClaimed(DistributionError):
    """Someone else has already claimed this lead."""

    code = "already_claimed"
    status = 409


class OfferExpired(DistributionError):
    """The offer expired before it was claimed."""

    code = "offer_expired"
    status = 409


class NotAllowed(DistributionError):
    """The agent may not take this lead."""

    code = "forbidden"
    status = 403


class NotFound(DistributionError):
    """No such object."""

    code = "not_found"
    status = 404


class MarketplaceError(DistributionError):
    """A refused marketplace operation, with a stable `code` and a message for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class ReturnWindowClosed(DistributionError):
    """The contract's return window has passed: the buyer may no longer return the lead."""

    code = "return_window_closed"
    status = 409
