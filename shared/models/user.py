from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(150), server_default="")
    last_name: Mapped[str] = mapped_column(String(150), server_default="")
    is_staff: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    date_joined: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Sessions (shared/tokens.py): a password change bumps the generation, ending every session
    # issued before it except the one that made the change.
    token_generation: Mapped[int] = mapped_column(Integer, server_default="0")
    kept_session: Mapped[str | None] = mapped_column(String(64), nullable=True)
