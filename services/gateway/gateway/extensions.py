"""Flask extensions, created unbound and initialised by the app factory."""
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from shared.models import Base

db = SQLAlchemy(model_class=Base)
jwt = JWTManager()
