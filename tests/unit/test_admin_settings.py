"""ADMIN_SESSION_SECRET: explicit, or derived from JWT_SECRET_KEY (never a fixed dev value in production)."""
from __future__ import annotations

from shared.settings import DEV_JWT_SECRET, Settings, derive_secret


def test_admin_session_secret_is_derived_from_the_jwt_key(monkeypatch):
    monkeypatch.delenv("ADMIN_SESSION_SECRET", raising=False)
    monkeypatch.setenv("TASKQUEUE_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "prod-key-1")
    first = Settings.from_env().admin_session_secret
    assert first == derive_secret("prod-key-1", "admin-session")
    assert len(first) == 64 and first != "prod-key-1"
    assert first != derive_secret(DEV_JWT_SECRET, "admin-session")  # production never gets the dev value
    monkeypatch.setenv("JWT_SECRET_KEY", "prod-key-2")
    assert Settings.from_env().admin_session_secret != first


def test_admin_session_secret_can_be_set_and_is_redacted(monkeypatch):
    monkeypatch.setenv("ADMIN_SESSION_SECRET", "explicit-admin-secret")
    monkeypatch.setenv("ADMIN_SESSION_HOURS", "2")
    s = Settings.from_env()
    assert s.admin_session_secret == "explicit-admin-secret" and s.admin_session_hours == 2
    assert s.redacted()["admin_session_secret"] == "***"


def test_development_default_is_derived_from_the_dev_jwt_key(monkeypatch):
    for name in ("ADMIN_SESSION_SECRET", "JWT_SECRET_KEY", "TASKQUEUE_ENV", "ADMIN_SESSION_HOURS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env()
    assert s.admin_session_secret == derive_secret(DEV_JWT_SECRET, "admin-session")
    assert s.admin_session_hours == 12
