"""Browser views for reading and writing stories."""

from flask import Blueprint

bp = Blueprint("stories", __name__)
