"""Why a sign-in attempt failed, and what the client is told.

Every attempt leaves a ``login_events`` row whose ``result`` is one of :class:`Outcome` (finer than the
API's ``LoginResult`` so audits can tell a replayed nonce from an unknown one). A failure is raised as
:class:`SignInRejected` inside the sign-in flow, recorded, then surfaced as the matching
:class:`~mintplane.common.errors.DomainError` so the client gets a status code and a message that never
contains the signature, the message text or anything secret.
"""

from __future__ import annotations

from enum import StrEnum

from mintplane.api.auth.v1 import auth_pb2
from mintplane.common.errors import (
    DomainError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)


class Outcome(StrEnum):
    """``auth.login_events.result`` values (varchar(32))."""

    SUCCESS = "success"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    NONCE_UNKNOWN = "nonce_unknown"
    NONCE_REPLAYED = "nonce_replayed"
    NONCE_WRONG_ACCOUNT = "nonce_wrong_account"
    NONCE_EXPIRED = "nonce_expired"
    DOMAIN_MISMATCH = "domain_mismatch"
    URI_MISMATCH = "uri_mismatch"
    CHAIN_MISMATCH = "chain_mismatch"
    EXPIRED_MESSAGE = "expired_message"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    RATE_LIMITED = "rate_limited"
    USER_BLOCKED = "user_blocked"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


_R = auth_pb2.LoginResult
LOGIN_RESULT: dict[Outcome, auth_pb2.LoginResult.ValueType] = {
    Outcome.SUCCESS: _R.LOGIN_RESULT_SUCCESS,
    Outcome.MALFORMED: _R.LOGIN_RESULT_MALFORMED_MESSAGE,
    Outcome.BAD_SIGNATURE: _R.LOGIN_RESULT_INVALID_SIGNATURE,
    Outcome.NONCE_UNKNOWN: _R.LOGIN_RESULT_INVALID_NONCE,
    Outcome.NONCE_REPLAYED: _R.LOGIN_RESULT_INVALID_NONCE,
    Outcome.NONCE_WRONG_ACCOUNT: _R.LOGIN_RESULT_INVALID_NONCE,
    Outcome.NONCE_EXPIRED: _R.LOGIN_RESULT_NONCE_EXPIRED,
    Outcome.DOMAIN_MISMATCH: _R.LOGIN_RESULT_DOMAIN_MISMATCH,
    Outcome.URI_MISMATCH: _R.LOGIN_RESULT_DOMAIN_MISMATCH,
    Outcome.CHAIN_MISMATCH: _R.LOGIN_RESULT_CHAIN_MISMATCH,
    Outcome.EXPIRED_MESSAGE: _R.LOGIN_RESULT_MESSAGE_NOT_VALID_NOW,
    Outcome.NOT_YET_VALID: _R.LOGIN_RESULT_MESSAGE_NOT_VALID_NOW,
    Outcome.ISSUED_IN_FUTURE: _R.LOGIN_RESULT_MESSAGE_NOT_VALID_NOW,
    Outcome.RATE_LIMITED: _R.LOGIN_RESULT_RATE_LIMITED,
    Outcome.USER_BLOCKED: _R.LOGIN_RESULT_USER_BLOCKED,
    Outcome.UNAVAILABLE: _R.LOGIN_RESULT_UNSPECIFIED,
    Outcome.INTERNAL_ERROR: _R.LOGIN_RESULT_UNSPECIFIED,
}


def outcomes_for(result: auth_pb2.LoginResult.ValueType) -> list[str]:
    """The stored results one API ``LoginResult`` stands for (ListLoginEvents' filter)."""
    return [outcome.value for outcome, mapped in LOGIN_RESULT.items() if mapped == result]


_ERROR_TYPE: dict[Outcome, type[DomainError]] = {
    Outcome.MALFORMED: InvalidArgument,
    Outcome.RATE_LIMITED: ResourceExhausted,
    Outcome.USER_BLOCKED: PermissionDenied,
    Outcome.UNAVAILABLE: Unavailable,
}


class SignInRejected(Exception):
    """A sign-in attempt refused for a known reason; carries what gets recorded and returned."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message

    def to_domain_error(self) -> DomainError:
        return _ERROR_TYPE.get(self.outcome, Unauthenticated)(self.message)
