"""token sessions

Every token pair now belongs to a session (`sid` claim, kept across refresh rotation); logout
revokes the session (a `revoked_tokens` row keyed by the sid), so its access tokens die with
its refresh token. A password change bumps `users.token_generation` (tokens carry the
generation they were issued in as `gen`), which ends every other session at once, and
remembers the changing session in `users.kept_session` so that one stays signed in.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('token_generation', sa.Integer(), server_default='0', nullable=False))
    op.add_column('users', sa.Column('kept_session', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'kept_session')
    op.drop_column('users', 'token_generation')
