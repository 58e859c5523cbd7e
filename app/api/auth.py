"""/auth: register, issue and revoke API tokens, who am I."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_babel import gettext as _
from flask_restx import Namespace, Resource

from app.accounts.auth import bearer_token, require_user
from app.accounts.models import ApiToken, User
from app.accounts.service import authenticate, issue_token, register_user, revoke_token
from app.api import schemas
from app.api.common import login_limit
from app.api.contract import body, returns
from app.errors import Unauthorized
from app.extensions import db, limiter

ns = Namespace("auth", description="Accounts and API tokens")


def user_dict(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "role": user.role}


@ns.route("/register")
class Register(Resource):
    @ns.doc(security=[])
    @ns.expect(schemas.Credentials)
    @returns(ns, schemas.UserOut, code=201, description="Registered")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(409, "Username taken (code username_taken)", schemas.Error)
    @ns.response(422, "Bad username or password", schemas.Error)
    @ns.response(429, "Too many attempts", schemas.Error)
    @limiter.limit(login_limit)
    def post(self):
        """Create a writer account."""
        data = body(schemas.Credentials)
        user = register_user(data.get("username"), data.get("password"))
        return user_dict(user), 201


@ns.route("/tokens")
class TokenList(Resource):
    @ns.doc(security=[])
    @ns.expect(schemas.Credentials)
    @returns(ns, schemas.TokenOut, code=201, description="Token issued")
    @ns.response(400, "Not a JSON object", schemas.Error)
    @ns.response(401, "Wrong credentials or suspended", schemas.Error)
    @ns.response(429, "Too many attempts", schemas.Error)
    @limiter.limit(login_limit)
    def post(self):
        """Exchange a username and password for a bearer token (shown once)."""
        data = body(schemas.Credentials)
        user = authenticate(data.get("username"), data.get("password"))
        return {"token": issue_token(user), "user": user_dict(user)}, 201


@ns.route("/tokens/current")
class CurrentToken(Resource):
    @ns.response(204, "Revoked")
    @ns.response(401, "No or bad token", schemas.Error)
    def delete(self):
        """Revoke the bearer token this request was made with."""
        raw = bearer_token(request)
        if raw is None:
            raise Unauthorized(_("Send the token to revoke as 'Authorization: Bearer <token>'."))
        token = (
            g.get("api_token")
            or db.session.scalars(
                db.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(raw))
            ).first()
        )
        if token is None:
            raise Unauthorized(_("The API token is invalid or revoked."), code="bad_token")
        revoke_token(token)
        return "", 204


@ns.route("/me")
class Me(Resource):
    @returns(ns, schemas.UserOut, description="The signed-in user")
    @ns.response(401, "No or bad token", schemas.Error)
    def get(self):
        """Who this token (or session) belongs to."""
        return user_dict(require_user())
