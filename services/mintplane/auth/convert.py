"""Domain records -> protobuf messages of mintplane.api.auth.v1 (the only place that knows both)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from mintplane.api.auth.v1 import auth_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.auth.errors import LOGIN_RESULT, Outcome
from mintplane.auth.repository import LoginEventRecord, SessionRecord
from mintplane.auth.tokens import IssuedTokens


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _optional_timestamps(**values: datetime | None) -> dict[str, Timestamp]:
    return {name: timestamp(value) for name, value in values.items() if value is not None}


def session_state(session: SessionRecord, now: datetime) -> auth_pb2.SessionState.ValueType:
    if session.revoked_at is not None:
        return auth_pb2.SESSION_STATE_REVOKED
    if session.expires_at <= now:
        return auth_pb2.SESSION_STATE_EXPIRED
    return auth_pb2.SESSION_STATE_ACTIVE


def session(record: SessionRecord, now: datetime) -> auth_pb2.Session:
    return auth_pb2.Session(
        session_id=record.session_id,
        user_id=record.user_id,
        device_id=record.device_id or "",
        ip_address=record.ip_address or "",
        user_agent=record.user_agent or "",
        address=record.address or "",
        chain=common_pb2.ChainRef(caip2=record.chain_id or ""),
        state=session_state(record, now),
        created_at=timestamp(record.created_at),
        expires_at=timestamp(record.expires_at),
        **_optional_timestamps(last_used_at=record.last_used_at, revoked_at=record.revoked_at),
    )


def token_pair(tokens: IssuedTokens) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=tokens.access_token,
        access_token_expires_at=timestamp(tokens.access_expires_at),
        refresh_token=tokens.refresh_token,
        refresh_token_expires_at=timestamp(tokens.refresh_expires_at),
        token_type="Bearer",  # noqa: S106  (the OAuth token type, not a secret)
    )


def login_event(record: LoginEventRecord) -> auth_pb2.LoginEvent:
    try:
        result = LOGIN_RESULT[Outcome(record.result)]
    except ValueError:
        result = auth_pb2.LOGIN_RESULT_UNSPECIFIED
    return auth_pb2.LoginEvent(
        id=record.id,
        user_id=record.user_id or "",
        address=record.account_id or "",
        ip_address=record.ip_address or "",
        user_agent=record.user_agent or "",
        result=result,
        error_message=record.error_message or "",
        chain=common_pb2.ChainRef(caip2=record.chain_id or ""),
        domain=record.domain or "",
        **_optional_timestamps(occurred_at=record.timestamp),
    )


def json_web_key(jwk: Mapping[str, str]) -> auth_pb2.JsonWebKey:
    fields = auth_pb2.JsonWebKey.DESCRIPTOR.fields_by_name
    return auth_pb2.JsonWebKey(**{k: v for k, v in jwk.items() if k in fields})
