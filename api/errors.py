"""Every refusal the API makes, in one shape: `{"errors": {field: why}}`, the command line's words.

A domain ValidationError is a 422 with its own errors (the command line prints them as `error:
<field>: <why>`), or a 404 when it says an id names nothing (`no client with id 7`: the domain's
message). A request that does not fit the route (a wrong JSON type, an unknown field, a body that is
not JSON or not UTF-8) is a 422 in the same shape; no route, a 404; a wrong method, a 405. Anything
else is logged with its traceback and answered 500 without one."""
import logging

import peewee as pw
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.validation import ValidationError

log = logging.getLogger("mailer.api")


class ApiError(Exception):
    """A refusal of the API's own (a token missing, a scope too narrow)."""

    def __init__(self, status, errors, headers=None):
        super().__init__(errors)
        self.status, self.errors, self.headers = status, dict(errors), headers


def refusal(status, errors, headers=None):
    return JSONResponse({"errors": errors}, status_code=status, headers=headers)


def is_missing(exc):
    """Whether a ValidationError says that an id names nothing ('no mailing with id 7')."""
    return set(exc.errors) == {"id"} and exc.errors["id"].startswith("no ")


def field_of(loc):
    """The field a pydantic error is about: the body field, the query or path parameter (its last
    name), or `body` for the body as a whole."""
    names = [str(p) for p in loc if isinstance(p, str)]
    names = names[1:] if len(names) > 1 and names[0] in ("body", "query", "path", "header") else names
    if not names or names == ["body"]:
        return "body"
    # A list item or a dict value's error names its field ("tags"), not the item's index.
    return names[0] if names[0] != "body" else names[-1]


def why(error):
    """A pydantic error in the command line's manner of speaking."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this request"
    if kind == "json_invalid":
        return f"is not valid JSON: {ctx.get('error', 'cannot be read')}"
    if kind == "value_error":
        return str(ctx.get("error", error.get("msg", "")))
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return "must be a JSON object (Content-Type: application/json)"
    if kind == "string_type":
        return "must be a string"
    if kind == "list_type":
        return "must be a list"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    return error.get("msg", "is not valid")


def request_errors(exc):
    """{field: why} of a RequestValidationError; the first error of each field."""
    errors = {}
    for error in exc.errors():
        errors.setdefault(field_of(error.get("loc", ())), why(error))
    return errors


def install(app: FastAPI):
    @app.exception_handler(ValidationError)
    async def domain_refusal(request: Request, exc: ValidationError):
        return refusal(404 if is_missing(exc) else 422, exc.errors)

    @app.exception_handler(ApiError)
    async def api_refusal(request: Request, exc: ApiError):
        return refusal(exc.status, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def shape_refusal(request: Request, exc: RequestValidationError):
        return refusal(422, request_errors(exc))

    @app.exception_handler(HTTPException)
    async def http_refusal(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return refusal(404, {"path": f"no such route: {request.url.path}"})
        if exc.status_code == 405:
            return refusal(405, {"method": f"{request.method} is not allowed on {request.url.path}"},
                           exc.headers)
        if exc.status_code == 413:
            return refusal(413, {"body": "is too large"})
        if exc.status_code == 400:  # FastAPI could not decode the body (bytes that are not UTF-8)
            return refusal(422, {"body": "cannot be read: it must be JSON in UTF-8"})
        return refusal(exc.status_code, {"request": str(exc.detail)}, exc.headers)

    @app.exception_handler(pw.OperationalError)
    async def database_refusal(request: Request, exc: pw.OperationalError):
        # Locked past the busy timeout, or gone: the request may be tried again.
        log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
        return refusal(503, {"database": f"cannot be used now: {exc}"}, {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception):
        log.exception("error on %s %s", request.method, request.url.path)
        return refusal(500, {"server": "internal error; the server's log has the details"})
