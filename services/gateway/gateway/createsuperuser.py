"""Create a staff user for the admin dashboard, or make an existing user staff.

    python -m gateway.createsuperuser                       # prompts for what is missing
    python -m gateway.createsuperuser --username admin --email admin@example.com --no-input

Values come from the arguments, else from TASKQUEUE_SUPERUSER_USERNAME / _EMAIL / _PASSWORD,
else (on a terminal, without --no-input) from prompts; the password prompt does not echo.
Prefer the variable or the prompt for the password: command-line arguments show in `ps`.

An existing user (same username) becomes active staff; their email and password change only
when given. A new user needs all three. The database is $DATABASE_URL (shared.settings).
Exit status: 0 done, 1 database unreachable, 2 invalid or missing input.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from shared.db import make_engine
from shared.models import User
from shared.settings import Settings

from .auth import passwords
from .auth.schemas import USERNAME_FORMAT, USERNAME_RE
from .errors import ValidationError
from .openapi.body import Body
from .openapi.fields import Email, String

ENV_PREFIX = "TASKQUEUE_SUPERUSER_"


@dataclass
class Outcome:
    user_id: int
    username: str
    created: bool


def create_or_upgrade(session: Session, username: str, email: str | None, password: str | None) -> Outcome:
    """Create the staff user, or make the existing one active staff (updating email/password
    when given). Raises ValidationError (with per-field messages) on bad input."""
    existing = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    _form(session, creating=existing is None, with_password=existing is None or bool(password)).read(
        {"username": username or None, "email": email or None, "password": password or None}
    )
    user = existing or User(username=username, first_name="", last_name="")
    if email:
        user.email = email
    if password:
        user.password_hash = passwords.hash_password(password)
    user.is_staff = True
    user.is_active = True
    session.add(user)
    session.commit()
    return Outcome(user.id, user.username, existing is None)


def _form(session: Session, creating: bool, with_password: bool) -> Body:
    """The command's input as a body: email and password are optional when upgrading an
    existing user, and a new username may not clash with another in any letter case."""

    def username_problem(username: str, _reader) -> str | None:
        if not USERNAME_RE.match(username):
            return USERNAME_FORMAT
        clash = select(User.id).where(func.lower(User.username) == username.lower())
        if creating and session.execute(clash).first():
            return "A user with that username (in another letter case) already exists."
        return None

    fields = {
        "username": String(required=True, max_len=150, blank=False, check=username_problem),
        "email": Email(required=creating),
    }
    if with_password:
        fields["password"] = String(required=True, max_len=passwords.MAX_LENGTH, min_len=passwords.MIN_LENGTH)
    return Body(fields)


def _ask(label: str, secret: bool = False) -> str:
    if secret:
        return getpass.getpass(f"{label}: ")
    return input(f"{label}: ").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.createsuperuser",
        description="Create a staff user for /admin/, or make an existing user staff.",
    )
    parser.add_argument("--username", default=os.environ.get(ENV_PREFIX + "USERNAME"))
    parser.add_argument("--email", default=os.environ.get(ENV_PREFIX + "EMAIL"))
    parser.add_argument("--password", default=os.environ.get(ENV_PREFIX + "PASSWORD"),
                        help=f"visible in `ps`: prefer ${ENV_PREFIX}PASSWORD or the prompt")
    parser.add_argument("--no-input", action="store_true", help="never prompt (CI): missing values are errors")
    args = parser.parse_args(argv)
    interactive = not args.no_input and sys.stdin.isatty()

    settings = Settings.from_env()
    engine = make_engine(settings.database_url, pool_size=1, application_name="createsuperuser")
    try:
        outcome = _run(engine, args, interactive)
    except OperationalError as exc:
        print(f"error: cannot use the database: {str(exc.orig or exc).strip()}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if outcome is None:
        return 2
    if outcome.created:
        print(f"created staff user {outcome.username!r} (id {outcome.user_id})")
    else:
        print(f"user {outcome.username!r} (id {outcome.user_id}) is now active staff")
    return 0


def _run(engine, args: argparse.Namespace, interactive: bool) -> Outcome | None:
    """Ask for what is missing, then create or upgrade; None (after printing why) on bad input."""
    with Session(engine) as session:
        username = args.username or (_ask("Username") if interactive else "")
        exists = bool(username) and session.execute(select(User.id).where(User.username == username)).first()
        email, password = args.email, args.password
        if interactive and not exists and not email:
            email = _ask("Email address")
        if interactive and not password:
            label = "Password (empty keeps the current one)" if exists else "Password"
            password = _ask(label, secret=True)
            if password and password != _ask("Password (again)", secret=True):
                print("error: the passwords do not match", file=sys.stderr)
                return None
        try:
            return create_or_upgrade(session, username or "", email, password)
        except ValidationError as exc:
            for field, messages in exc.fields.items():
                for message in messages:
                    print(f"error: {field}: {message}", file=sys.stderr)
            return None


if __name__ == "__main__":
    sys.exit(main())
