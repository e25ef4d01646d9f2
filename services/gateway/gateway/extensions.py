"""Flask extensions, created unbound and initialised by the app factory."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from shared.models import Base


class VerifiedTokenCache(JWTManager):
    """flask-jwt-extended parses every presented token three times (claims, header, verified
    decode), about a tenth of the gateway's CPU per request, while a client sends the same
    access token for up to 30 minutes. The claims of a token string whose signature was verified
    are kept (the exact bytes: a changed token is a miss) and re-checked only for expiry; the
    session check (auth/tokens.py) still runs on every request."""

    SIZE = 4096

    def __init__(self, app=None):
        super().__init__(app)
        self._verified: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        claims = self._verified.get(encoded_token)
        if claims is None or claims["exp"] <= time.time():
            claims = super()._decode_jwt_from_config(encoded_token)
            if "exp" in claims:  # a token without expiry is refused later: never cache it
                self._remember(encoded_token, claims)
        return dict(claims)

    def _remember(self, token: str, claims: dict) -> None:
        with self._lock:
            self._verified[token] = dict(claims)
            while len(self._verified) > self.SIZE:
                self._verified.popitem(last=False)


db = SQLAlchemy(model_class=Base)
jwt = VerifiedTokenCache()
