"""REST API under /api/v1 (flask-restx), one namespace per resource."""

from flask import Flask


def init_api(app: Flask) -> None:
    pass
