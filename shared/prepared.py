"""Hot-path SQL as server-side prepared statements, run on a pooled SQLAlchemy connection.

A statement is turned into SQL with $n placeholders once per process and PREPAREd once per
connection; each call is then one EXECUTE with positional values. That skips SQLAlchemy's
per-call compile/result work and Postgres' parse and plan, which on the hot path (the session
check of every request, three transitions per task) cost more than the statements themselves.
"""
from __future__ import annotations

import re
import uuid
from collections import namedtuple
from typing import Any, Iterable

import psycopg2
from psycopg2.extras import Json
from sqlalchemy import JSON, Connection
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.psycopg2 import dialect as psycopg2_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

_DIALECT = psycopg2_dialect()
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class Prepared:
    """SQL with `%(name)s` parameters, named `tq_<name>` on the server.

    Rows come back as namedtuples with the statement's column names (plus `_mapping`, like
    SQLAlchemy rows). Values of parameters named in `json` are sent as JSON.
    """

    def __init__(self, name: str, sql: str, columns: Iterable[str], *, defaults: dict | None = None,
                 json: Iterable[str] = ()):
        self.name = f"tq_{name}"
        self.order: list[str] = []

        def number(match: re.Match) -> str:
            if match.group(1) not in self.order:
                self.order.append(match.group(1))
            return f"${self.order.index(match.group(1)) + 1}"

        self.sql = _PLACEHOLDER.sub(number, sql)
        self.defaults = dict(defaults or {})
        self.json = set(json)
        placeholders = ", ".join(["%s"] * len(self.order))
        self.execute_sql = f"EXECUTE {self.name}({placeholders})" if self.order else f"EXECUTE {self.name}"
        self.record = type(self.name, (namedtuple(self.name, list(columns)),), {"_mapping": property(lambda r: r._asdict())})

    @classmethod
    def from_statement(cls, name: str, statement: Select) -> Prepared:
        """Compile a SQLAlchemy statement (with `bindparam`s) for the psycopg2 dialect."""
        compiled = statement.compile(dialect=_DIALECT)
        json = {compiled.bind_names[b] for b in compiled.binds.values() if isinstance(b.type, (JSON, JSONB))}
        columns = [c.name for c in compiled.statement.selected_columns]
        return cls(name, str(compiled), columns, defaults=compiled.params, json=json)

    def values(self, params: dict[str, Any]) -> list:
        merged = {**self.defaults, **params}
        out = []
        for name in self.order:
            value = merged[name]
            if name in self.json:
                value = Json(value)
            elif isinstance(value, uuid.UUID):
                value = str(value)
            out.append(value)
        return out

    def run(self, conn: Connection, /, **params: Any) -> list:
        """Execute on `conn`; returns every row. Errors surface as SQLAlchemy's DBAPIError."""
        proxy = conn.connection
        done = proxy.info.setdefault("tq_prepared", set())
        values = self.values(params)
        cursor = proxy.cursor()
        try:
            if self.name not in done:
                cursor.execute(f"PREPARE {self.name} AS {self.sql}")
                done.add(self.name)
            cursor.execute(self.execute_sql, values)
            return [self.record(*r) for r in cursor.fetchall()]
        except psycopg2.Error as exc:
            if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                conn.invalidate()  # a broken connection must leave the pool (and its prepared statements)
            # hide_parameters: the error gets logged, and the values include callback secrets
            raise DBAPIError.instance(self.execute_sql, values, exc, psycopg2.Error, hide_parameters=True) from exc
        finally:
            cursor.close()
