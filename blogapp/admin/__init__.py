"""The dashboard: log in, write posts, moderate comments and linkbacks, site settings."""
from flask import Blueprint

bp = Blueprint("admin", __name__)

from . import routes  # noqa: E402,F401
from . import tools  # noqa: E402,F401
