"""Tokens of the HTTP API (issue 14, part 2). A token is 32 random bytes (urlsafe base64 behind a
`mlr_` prefix), shown once when made; the database keeps only its SHA-256. A slow password hash
(bcrypt, scrypt) guards guessable secrets; 256 random bits cannot be guessed, so one SHA-256 is
enough, and it lets a request find its token by an indexed lookup of the hash.

Scopes: `read` reads everything, `operator` also changes things, `inbound` may only post replies
to POST /inbound (what a gateway forwarding replies is given: it can read nothing)."""
import hashlib
import secrets

import peewee as pw

from domain.stats import iso
from domain.times import utcnow
from domain.validation import ValidationError, validate_name
from models import ApiToken

READ, OPERATOR, INBOUND = "read", "operator", "inbound"
SCOPES = (READ, OPERATOR, INBOUND)
PREFIX = "mlr_"
USED_EVERY = 60  # seconds: last_used_at is written at most this often per token (not on every request)

# What each need is granted to.
GRANTS = {READ: (READ, OPERATOR), OPERATOR: (OPERATOR,), INBOUND: (INBOUND, OPERATOR)}


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def allows(scope, need):
    """Whether a token of `scope` may do what needs `need` (read, operator or inbound)."""
    return scope in GRANTS[need]


def clean_scope(scope):
    scope = (scope or "").strip()
    if scope not in SCOPES:
        raise ValidationError({"scope": f"must be one of {', '.join(SCOPES)}; got {scope!r}"})
    return scope


def create_token(scope, name=""):
    """A new token of `scope` -> (its row, the token itself: shown once, stored nowhere)."""
    scope, name = clean_scope(scope), validate_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.create(name=name, scope=scope, hash=token_hash(token), created_at=utcnow())
    return row, token


def find(token):
    """The live (not revoked) token row a presented token is, or None."""
    if not token:
        return None
    return ApiToken.get_or_none((ApiToken.hash == token_hash(token)) & ApiToken.revoked_at.is_null())


def note_used(row, now=None):
    """Record that the token was used, at most every USED_EVERY seconds (a write per request would
    make every read a write)."""
    now = now or utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= USED_EVERY:
        try:
            ApiToken.update(last_used_at=now).where(ApiToken.id == row.id).execute()
        except pw.OperationalError:
            pass  # a database too busy to note it must not refuse the request: it is only a note


def get_token(token_id):
    row = ApiToken.get_or_none(ApiToken.id == token_id)
    if row is None:
        raise ValidationError({"id": f"no API token with id {token_id}"})
    return row


def revoke(token_id, now=None):
    row = get_token(token_id)
    if row.revoked_at is not None:
        raise ValidationError({"id": f"API token {token_id} is revoked already"})
    ApiToken.update(revoked_at=now or utcnow()).where(ApiToken.id == row.id).execute()
    return get_token(token_id)


def tokens():
    """Every token, the newest first (revoked ones too: the list says so)."""
    return list(ApiToken.select().order_by(ApiToken.id.desc()))


def as_dict(row):
    return {"id": row.id, "name": row.name, "scope": row.scope, "created_at": iso(row.created_at),
            "last_used_at": iso(row.last_used_at), "revoked_at": iso(row.revoked_at)}
