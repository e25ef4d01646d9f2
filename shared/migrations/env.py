"""Alembic environment: online migrations only, serialised by a Postgres advisory lock."""
from alembic import context
from sqlalchemy import create_engine, pool, text

from shared.models import Base

MIGRATION_LOCK = 7_413_001  # arbitrary constant shared by every migrating process


def run() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        conn.commit()
        try:
            context.configure(connection=conn, target_metadata=Base.metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()


run()
