"""Secrets never reach a log line; settings come from the environment."""

from __future__ import annotations

import json

import pytest

from mintplane.common.log import configure_logging, get_logger, redact_text
from mintplane.common.settings import SERVICE_PORTS, InfraSettings

pytestmark = pytest.mark.unit


def test_url_passwords_are_redacted() -> None:
    assert redact_text("postgresql://mintplane:s3cret@db:5432/x") == "postgresql://mintplane:***@db:5432/x"
    assert redact_text("amqp://u:p%40ss@mq/") == "amqp://u:***@mq/"
    assert redact_text("no url here") == "no url here"


def test_log_lines_mask_sensitive_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True, service="test")
    get_logger("t").info(
        "connecting", dsn="postgresql://app:topsecret@127.0.0.1/db", api_key="k-123", refresh_token="r", user="ann"
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["dsn"] == "postgresql://app:***@127.0.0.1/db"
    assert line["api_key"] == "***"
    assert line["refresh_token"] == "***"
    assert line["user"] == "ann"
    assert line["service"] == "test"
    assert "topsecret" not in json.dumps(line)


def test_settings_from_env_and_secret_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINTPLANE_PG_DSN", "postgresql://a:b@h:1/d")
    monkeypatch.setenv("MINTPLANE_PG_POOL_MAX", "3")
    settings = InfraSettings()
    assert settings.pg_dsn.get_secret_value() == "postgresql://a:b@h:1/d"
    assert settings.pg_pool_max == 3
    assert "a:b@" not in repr(settings)


def test_seed_ports() -> None:
    assert SERVICE_PORTS == {
        "auth": 50051, "user": 50052, "wallet": 50053, "orchestrator": 50054,
        "media": 50055, "chain_registry": 50056, "catalog": 50057, "indexer": 50058,
    }
