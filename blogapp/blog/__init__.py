"""Readers' pages: index, posts and their threads, archives, feeds, the comment form."""
from flask import Blueprint

bp = Blueprint("blog", __name__)

from . import discovery, feeds, routes  # noqa: E402,F401  (routes register themselves on bp)
