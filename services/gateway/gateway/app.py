"""The gateway's Flask app factory: configuration injected, no import-time side effects."""
from __future__ import annotations

from datetime import timedelta

import redis
from flask import Flask

from shared import logs
from shared.db import engine_options, make_engine, sqlalchemy_url
from shared.handoff import Handoff
from shared.settings import Settings

from . import errors, health, metrics, ratelimit, validation
from .admin import init_admin
from .auth import bp as auth_bp
from .auth import tokens
from .dead_letters import bp as dead_letters_bp
from .extensions import db, jwt
from .openapi import docs
from .runtime import Runtime, release_connection
from .schedules import bp as schedules_bp
from .tasks import bp as tasks_bp
from .webhooks import bp as webhooks_bp


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logs.configure("gateway", settings.log_level)
    app = Flask(__name__)
    app.config.update(
        TASKQUEUE=settings,
        SQLALCHEMY_DATABASE_URI=sqlalchemy_url(settings.database_url),
        SQLALCHEMY_ENGINE_OPTIONS={**engine_options(settings.db_pool_size), "connect_args": {"application_name": "gateway"}},
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=settings.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=settings.refresh_token_days),
        JWT_TOKEN_LOCATION=["headers"],
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
    )
    app.json.sort_keys = False
    app.url_map.strict_slashes = False  # /tasks and /tasks/ both work: no HTML redirect for clients

    db.init_app(app)
    jwt.init_app(app)
    tokens.init(app)
    errors.register(app)
    app.before_request(validation.refuse_long_urls)

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    # Every server thread may hold a connection for its request (the session check, the view's
    # statements, waiting in a group commit): a smaller pool would open and close overflow
    # connections all the time under load (a Postgres backend forked, statements prepared anew).
    pool_size = max(settings.db_pool_size, settings.gateway_threads)
    writes = make_engine(settings.database_url, pool_size, "gateway", autocommit=True)
    with app.app_context():
        app.extensions["taskqueue"] = Runtime(
            settings=settings,
            redis=client,
            handoff=Handoff(client, writes, settings.events_stream, settings.events_maxlen),
            autocommit=writes,
        )
    app.teardown_appcontext(release_connection)

    for blueprint in (health.bp, auth_bp, tasks_bp, webhooks_bp, dead_letters_bp, schedules_bp, docs.bp):
        app.register_blueprint(blueprint)
    init_admin(app, settings)  # /admin/: staff dashboard (session login, CSRF on its forms only)
    metrics.init_app(app)  # /metrics (aggregated across server processes); first, so it also times 429s
    ratelimit.init_app(app, settings)  # after metrics: its hooks run inside the timing, so 429s count
    return app
