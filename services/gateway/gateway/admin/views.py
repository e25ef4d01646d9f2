"""The dashboard's views: overview, login/logout, and read-only model views with actions.

Model views never create, edit or delete rows (flask-admin's forms are switched off). The
actions call the API's own functions (`gateway.tasks.actions`, `gateway.dead_letters.actions`,
`gateway.webhooks.actions`) with the object's owner, one object at a time, so a bulk action
is exactly N API calls: the same guarded transitions, outbox events and handoff.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import redis
from flask import flash, g, redirect, render_template_string, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import (
    BaseSQLAFilter,
    BooleanEqualFilter,
    FilterEqual,
    IntEqualFilter,
    UuidFilterEqual,
)
from flask_admin.model import typefmt
from markupsafe import Markup
from sqlalchemy import func, select

from shared import statuses, webhooks
from shared.broker import queue_depths
from shared.models import DeadLetter, Task, User, WebhookAttempt, WebhookDelivery
from shared.routing import QUEUES
from shared.task_types import TASK_TYPES

from ..dead_letters import actions as dead_letter_actions
from ..errors import ApiError
from ..extensions import db
from ..runtime import get_runtime
from ..tasks import actions as task_actions
from ..webhooks import actions as webhook_actions
from . import auth

log = logging.getLogger(__name__)

TASKS, DEAD, DELIVERIES = Task.__table__, DeadLetter.__table__, WebhookDelivery.__table__
FAILING_WINDOW = timedelta(hours=24)
MAX_ACTION_IDS = 1000
STATUS_STYLES = {  # task statuses, and the deliveries' pending/success/failure
    statuses.PENDING: "dark", statuses.SCHEDULED: "warning", statuses.QUEUED: "info",
    statuses.RUNNING: "primary", statuses.RETRY: "warning", statuses.SUCCESS: "success",
    statuses.FAILURE: "danger", statuses.REVOKED: "secondary",
}


# --------------------------------------------------------------------------- access


class StaffOnly:
    """Every page and action needs a logged-in active staff user; anyone else is sent to the
    login page (never a 403 that would confirm what exists)."""

    def is_accessible(self) -> bool:
        return auth.current_staff() is not None

    def inaccessible_callback(self, name, **kwargs):
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("admin.login", next=target))


def csrf_failed(exc):
    """A POST under /admin without a valid CSRF token: 400, nothing done."""
    page = render_template_string(
        "<!doctype html><title>Bad request</title><h1>Bad request (400)</h1>"
        "<p>CSRF check failed: {{ reason }}</p><p>Reload the page and try again, or "
        '<a href="{{ url_for(\'admin.login\') }}">log in</a> again.</p>',
        reason=exc.description,
    )
    return page, 400


# --------------------------------------------------------------------------- formatting


def utc_time(view, value: datetime, name: str) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def json_block(view, context, model, name):
    value = getattr(model, name)
    if value is None:
        return ""
    return Markup('<pre class="tq-json mb-0">{}</pre>').format(_pretty_json(value))


def json_preview(view, context, model, name):
    value = getattr(model, name)
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def text_block(view, context, model, name):
    value = getattr(model, name) or ""
    return Markup('<pre class="tq-text mb-0">{}</pre>').format(value) if value else ""


def text_preview(view, context, model, name):
    value = (getattr(model, name) or "").strip().splitlines()
    first = value[0] if value else ""
    return first if len(first) <= 100 else first[:99] + "…"


def status_badge(view, context, model, name):
    value = getattr(model, name) or ""
    style = STATUS_STYLES.get(value, "secondary")
    return Markup('<span class="badge badge-{} tq-status" data-status="{}">{}</span>').format(style, value, value)


def _usernames(ids: Iterable[int]) -> dict[int, str]:
    """Usernames of these user ids, cached for the request (one query per page)."""
    names: dict[int, str] = g.setdefault("tq_admin_usernames", {})
    missing = {i for i in ids if i is not None and i not in names}
    if missing:
        rows = db.session.execute(select(User.id, User.username).where(User.id.in_(missing))).all()
        names.update({row.id: row.username for row in rows})
    return names


def owner_link(view, context, model, name):
    owner_id = getattr(model, name)
    username = _usernames([owner_id]).get(owner_id, f"#{owner_id}")
    return Markup('<a href="{}">{}</a>').format(url_for("admin_users.details_view", id=owner_id), username)


def task_link(view, context, model, name):
    task_id = getattr(model, name)
    if task_id is None:
        return ""
    return Markup('<a href="{}"><code>{}</code></a>').format(url_for("admin_tasks.details_view", id=task_id), task_id)


def details_link(endpoint: str, label_attr: str):
    def fmt(view, context, model, name):
        return Markup('<a class="tq-details-link" href="{}">{}</a>').format(
            url_for(f"{endpoint}.details_view", id=model.id), getattr(model, label_attr)
        )

    return fmt


# --------------------------------------------------------------------------- filters


class OwnerUsernameFilter(BaseSQLAFilter):
    """Rows owned by the user with this username (case-insensitive)."""

    def apply(self, query, value, alias=None):
        owner_ids = select(User.id).where(func.lower(User.username) == value.strip().lower())
        return query.filter(self.get_column(alias).in_(owner_ids))

    def operation(self):
        return "username is"


def _choices(values: Iterable[str]) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


# --------------------------------------------------------------------------- overview and login


class OverviewView(StaffOnly, AdminIndexView):
    """/admin/: counts per status, queue depths, dead letters, failing webhooks; plus login."""

    PUBLIC = ("login", "logout")

    def _handle_view(self, name, **kwargs):
        if name in self.PUBLIC:
            return None
        return super()._handle_view(name, **kwargs)

    @expose("/")
    def index(self):
        return self.render("tq_admin/overview.html", **overview())

    @expose("/login/", methods=("GET", "POST"))
    def login(self):
        target = auth.safe_next(request.values.get("next"), url_for(".index"))
        if request.method == "GET" and auth.current_staff() is not None:
            return redirect(target)
        error, username = None, ""
        if request.method == "POST":
            username = request.form.get("username", "")
            user = auth.authenticate(username, request.form.get("password", ""))
            if user is not None:
                auth.login(user)
                log.info("admin login", extra={"admin_user": user.username})
                return redirect(target)
            log.info("admin login refused", extra={"admin_user": username[:150]})
            error = "Please enter the username and password of an active staff account."
        return self.render("tq_admin/login.html", error=error, username=username, next=request.values.get("next", ""))

    @expose("/logout/", methods=("POST",))
    def logout(self):
        auth.logout()
        flash("You have been logged out.", "info")
        return redirect(url_for(".login"))


def overview() -> dict[str, Any]:
    """Everything the overview shows: four queries and one Redis pipeline."""
    since = func.now() - FAILING_WINDOW
    failing = (DELIVERIES.c.status == webhooks.FAILURE, func.coalesce(DELIVERIES.c.last_attempt_at, DELIVERIES.c.queued_at) >= since)
    with db.engine.connect() as conn:
        counts = dict(conn.execute(select(TASKS.c.status, func.count()).group_by(TASKS.c.status)).all())
        dead = conn.execute(
            select(func.count().label("total"), func.count().filter(DEAD.c.reprocessed.is_(False)).label("waiting"))
        ).one()
        failing_summary = conn.execute(
            select(func.count().label("deliveries"), func.count(DELIVERIES.c.task_id.distinct()).label("tasks")).where(*failing)
        ).one()
        recent_failures = conn.execute(
            select(DELIVERIES.c.id, DELIVERIES.c.task_id, DELIVERIES.c.event, DELIVERIES.c.request_url,
                   DELIVERIES.c.response_status_code, DELIVERIES.c.error_message, DELIVERIES.c.attempts,
                   DELIVERIES.c.last_attempt_at)
            .where(*failing)
            .order_by(DELIVERIES.c.last_attempt_at.desc().nulls_last(), DELIVERIES.c.id)
            .limit(10)
        ).all()
    try:
        depths, redis_error = queue_depths(get_runtime().redis), None
    except redis.RedisError as exc:
        depths, redis_error = {}, str(exc) or type(exc).__name__
    return {
        "status_counts": [(s, counts.get(s, 0)) for s in statuses.ALL],
        "total_tasks": sum(counts.values()),
        "queue_depths": [(q, depths.get(q)) for q in QUEUES],
        "redis_error": redis_error,
        "dead_letters": dead,
        "failing": failing_summary,
        "recent_failures": recent_failures,
        "failing_hours": int(FAILING_WINDOW.total_seconds() // 3600),
        "status_styles": STATUS_STYLES,
    }


# --------------------------------------------------------------------------- model views


class ReadOnlyModelView(StaffOnly, ModelView):
    """Lists and details only: rows change through actions, never through forms."""

    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
    can_view_details = True
    can_set_page_size = True
    page_size = 50
    named_filter_urls = True  # ?flt0_status_equals=queued rather than ?flt0_3=queued
    details_template = "tq_admin/details.html"
    column_type_formatters = {**typefmt.BASE_FORMATTERS, datetime: utc_time}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, datetime: utc_time}
    pk_type: Callable[[str], Any] = uuid.UUID

    def get_one(self, id):
        try:
            key = self.pk_type(str(id))
        except (TypeError, ValueError):
            return None
        return db.session.get(self.model, key)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        if isinstance(rows, list) and rows and hasattr(rows[0], "owner_id"):
            _usernames(r.owner_id for r in rows)
        return count, rows

    def detail_actions(self, model) -> list[tuple[str, str, str, str | None]]:
        """(action, label, button style, confirmation) offered on the object's details page."""
        return []

    # ---- running an action over the selected ids

    def _targets(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
        """The arguments of the API's action function for each selected object: (id, owner)."""
        model = self.model
        rows = db.session.execute(select(model.id, model.owner_id).where(model.id.in_(ids))).all()
        return {row.id: (row.id, row.owner_id) for row in rows}

    def _run_action(self, verb: str, ids: list[str], perform: Callable[..., Any], noun: str) -> None:
        """Call `perform(*self._targets(...)[id])` for each id (the API's function, with the
        owner), then flash what happened. One object's refusal (e.g. a finished task) never
        stops the rest."""
        parsed, problems = [], []
        for raw in ids[:MAX_ACTION_IDS]:
            try:
                parsed.append(uuid.UUID(str(raw)))
            except ValueError:
                problems.append(f"{raw}: not a valid id")
        found = self._targets(parsed) if parsed else {}
        done = []
        for object_id in parsed:
            args = found.get(object_id)
            if args is None:
                problems.append(f"{object_id}: not found")
                continue
            try:
                perform(*args)
                done.append(object_id)
            except ApiError as exc:
                problems.append(f"{object_id}: {exc.message}")
        staff = auth.current_staff()
        log.info(
            "admin action",
            extra={"admin_user": staff.username if staff else None, "action": verb, "object": noun,
                   "succeeded": [str(i) for i in done[:100]], "refused": problems[:100]},
        )
        if done:
            plural = noun if len(done) == 1 else (noun[:-1] + "ies" if noun.endswith("y") else noun + "s")
            flash(f"{verb.capitalize()}: {len(done)} {plural} done.", "success")
        for problem in problems[:20]:
            flash(f"{verb.capitalize()} refused for {problem}", "error")
        if len(problems) > 20:
            flash(f"... and {len(problems) - 20} more refused.", "error")


class UserView(ReadOnlyModelView):
    pk_type = int
    column_list = ["id", "username", "email", "is_staff", "is_active", "date_joined"]
    column_details_list = ["id", "username", "email", "first_name", "last_name", "is_staff", "is_active",
                           "date_joined", "tasks"]
    column_searchable_list = ["username", "email"]
    column_sortable_list = ["id", "username", "email", "date_joined"]
    column_default_sort = ("id", True)
    column_filters = [
        BooleanEqualFilter(User.is_staff, "Staff"),
        BooleanEqualFilter(User.is_active, "Active"),
    ]
    column_formatters = {"username": details_link("admin_users", "username")}
    column_formatters_detail = {
        "tasks": lambda v, c, m, n: Markup('<a href="{}">their tasks</a>').format(
            url_for("admin_tasks.index_view", flt0_owner_id_equals=m.id)
        ),
    }


class TaskView(ReadOnlyModelView):
    column_list = ["name", "status", "task_type", "queue", "priority", "owner_id", "retry_count", "created_at",
                   "completed_at"]
    column_details_list = [
        "id", "name", "owner_id", "status", "task_type", "queue", "priority", "payload", "result",
        "error_message", "traceback", "retry_count", "max_retries", "retry_delay", "timeout", "attempts",
        "scheduled_at", "created_at", "updated_at", "started_at", "completed_at", "enqueued_at",
        "lease_expires_at", "worker_id", "tags", "meta", "idempotency_key", "callback_url", "callback_events",
        "callback_headers", "callback_max_attempts", "callback_status", "callback_attempts",
        "callback_last_attempt_at", "callback_last_response_code", "callback_last_error", "deliveries",
    ]  # never callback_secret
    column_labels = {"owner_id": "Owner", "meta": "Metadata", "retry_count": "Failures"}
    column_searchable_list = ["name"]
    column_sortable_list = ["name", "status", "task_type", "queue", "priority", "created_at", "completed_at"]
    column_default_sort = ("created_at", True)
    column_filters = [
        FilterEqual(Task.status, "Status", options=_choices(statuses.ALL)),
        FilterEqual(Task.task_type, "Task type", options=_choices(TASK_TYPES)),
        FilterEqual(Task.queue, "Queue", options=_choices(QUEUES)),
        OwnerUsernameFilter(Task.owner_id, "Owner"),
        IntEqualFilter(Task.owner_id, "Owner id"),
        IntEqualFilter(Task.priority, "Priority"),
        UuidFilterEqual(Task.id, "Id"),
    ]
    column_formatters = {
        "name": details_link("admin_tasks", "name"),
        "status": status_badge,
        "owner_id": owner_link,
    }
    column_formatters_detail = {
        "status": status_badge,
        "owner_id": owner_link,
        "payload": json_block,
        "result": json_block,
        "tags": json_block,
        "meta": json_block,
        "callback_events": json_block,
        "callback_headers": json_block,
        "error_message": text_block,
        "traceback": text_block,
        "deliveries": lambda v, c, m, n: Markup('<a href="{}">webhook deliveries of this task</a>').format(
            url_for("admin_deliveries.index_view", flt0_task_equals=m.id)
        ),
    }

    def detail_actions(self, model):
        offered = []
        if model.status in statuses.CANCELLABLE:
            offered.append(("cancel", "Cancel task", "danger", "Cancel this task?"))
        if model.status in statuses.RETRYABLE:
            offered.append(("retry", "Retry task", "primary", None))
        return offered

    @action("cancel", "Cancel", "Cancel the selected tasks?")
    def action_cancel(self, ids):
        self._run_action("cancel", ids, task_actions.cancel, "task")

    @action("retry", "Retry", "Retry the selected tasks (failed or revoked ones)?")
    def action_retry(self, ids):
        self._run_action("retry", ids, task_actions.retry, "task")


class DeadLetterView(ReadOnlyModelView):
    column_list = ["task_name", "task_type", "owner_id", "error_message", "retry_count", "created_at", "reprocessed",
                   "reprocessed_at"]
    column_details_list = ["id", "task_name", "task_type", "owner_id", "original_task_id", "priority", "payload",
                           "error_message", "traceback", "retry_count", "created_at", "reprocessed", "reprocessed_at",
                           "reprocessed_task_id"]
    column_labels = {"owner_id": "Owner", "original_task_id": "Original task", "reprocessed_task_id": "New task",
                     "retry_count": "Failures"}
    column_searchable_list = ["task_name"]
    column_sortable_list = ["task_name", "task_type", "created_at", "reprocessed_at"]
    column_default_sort = ("created_at", True)
    column_filters = [
        FilterEqual(DeadLetter.task_type, "Task type", options=_choices(TASK_TYPES)),
        BooleanEqualFilter(DeadLetter.reprocessed, "Reprocessed"),
        OwnerUsernameFilter(DeadLetter.owner_id, "Owner"),
        IntEqualFilter(DeadLetter.owner_id, "Owner id"),
    ]
    column_formatters = {
        "task_name": details_link("admin_dead_letters", "task_name"),
        "owner_id": owner_link,
        "error_message": text_preview,
    }
    column_formatters_detail = {
        "owner_id": owner_link,
        "original_task_id": task_link,
        "reprocessed_task_id": task_link,
        "payload": json_block,
        "error_message": text_block,
        "traceback": text_block,
    }

    def detail_actions(self, model):
        return [] if model.reprocessed else [("reprocess", "Reprocess", "primary", None)]

    @action("reprocess", "Reprocess", "Create a new task from each selected dead letter?")
    def action_reprocess(self, ids):
        self._run_action("reprocess", ids, dead_letter_actions.reprocess, "dead letter")


def attempt_log(view, context, model, name):
    attempts = db.session.execute(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id == model.id).order_by(WebhookAttempt.attempt, WebhookAttempt.id)
    ).scalars().all()
    if not attempts:
        return "no attempt yet"
    rows = Markup("").join(
        Markup("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
            a.attempt, a.created_at, a.status_code if a.status_code is not None else "", a.error,
            a.duration_ms if a.duration_ms is not None else "",
        )
        for a in attempts
    )
    head = Markup("<tr><th>#</th><th>at</th><th>status</th><th>error</th><th>ms</th></tr>")
    return Markup('<table class="table table-sm mb-0">{}{}</table>').format(head, rows)


class WebhookDeliveryView(ReadOnlyModelView):
    column_list = ["queued_at", "event", "status", "attempts", "request_url", "response_status_code", "last_attempt_at",
                   "task_id", "owner_id"]
    column_details_list = ["id", "task_id", "owner_id", "event", "status", "attempts", "max_attempts", "request_url",
                           "request_headers", "request_body", "signature", "queued_at", "next_attempt_at",
                           "last_attempt_at", "response_status_code", "response_body", "error_message", "replay_of_id",
                           "event_id", "attempt_log"]
    column_labels = {"owner_id": "Owner", "task_id": "Task", "replay_of_id": "Replay of", "response_status_code": "Response"}
    column_searchable_list = ["request_url"]
    column_sortable_list = ["queued_at", "event", "status", "last_attempt_at", "response_status_code"]
    column_default_sort = ("queued_at", True)
    column_filters = [
        FilterEqual(WebhookDelivery.status, "Status", options=_choices(webhooks.DELIVERY_STATUSES)),
        FilterEqual(WebhookDelivery.event, "Event", options=_choices(webhooks.EVENTS)),
        UuidFilterEqual(WebhookDelivery.task_id, "Task"),
        OwnerUsernameFilter(WebhookDelivery.owner_id, "Owner"),
        IntEqualFilter(WebhookDelivery.owner_id, "Owner id"),
    ]
    column_formatters = {
        "queued_at": details_link("admin_deliveries", "queued_at"),
        "status": status_badge,
        "task_id": task_link,
        "owner_id": owner_link,
    }
    column_formatters_detail = {
        "status": status_badge,
        "task_id": task_link,
        "owner_id": owner_link,
        "replay_of_id": lambda v, c, m, n: Markup('<a href="{}"><code>{}</code></a>').format(
            url_for("admin_deliveries.details_view", id=m.replay_of_id), m.replay_of_id
        ) if m.replay_of_id else "",
        "request_headers": json_block,
        "request_body": text_block,
        "response_body": text_block,
        "error_message": text_block,
        "attempt_log": attempt_log,
    }

    def detail_actions(self, model):
        return [("replay", "Replay", "primary", "Send this delivery again (a new delivery, same body)?")]

    def _targets(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
        """(task id, delivery id, owner): webhook_actions.replay's arguments."""
        rows = db.session.execute(
            select(WebhookDelivery.id, WebhookDelivery.task_id, WebhookDelivery.owner_id).where(WebhookDelivery.id.in_(ids))
        ).all()
        return {row.id: (row.task_id, row.id, row.owner_id) for row in rows}

    @action("replay", "Replay", "Replay the selected deliveries (new deliveries, same bodies)?")
    def action_replay(self, ids):
        self._run_action("replay", ids, webhook_actions.replay, "delivery")


def add_model_views(admin) -> None:
    admin.add_view(UserView(User, db, name="Users", endpoint="admin_users", url="users"))
    admin.add_view(TaskView(Task, db, name="Tasks", endpoint="admin_tasks", url="tasks"))
    admin.add_view(DeadLetterView(DeadLetter, db, name="Dead letters", endpoint="admin_dead_letters", url="dead-letters"))
    admin.add_view(WebhookDeliveryView(WebhookDelivery, db, name="Webhook deliveries", endpoint="admin_deliveries",
                                       url="webhook-deliveries"))
