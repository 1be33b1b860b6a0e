"""The HTTP API (issue 14, part 2): JSON over HTTP for what `mailer` offers on the command line,
served by `mailer api` (uvicorn) and documented from this code at /openapi.json and /docs.

FastAPI, because it writes the OpenAPI document from the routes' type hints (nothing to keep in step
by hand), runs plain `def` routes in a thread pool (peewee gives each thread its own connection, so
the synchronous service layer is called as the command line calls it), and is served by uvicorn.
Swagger UI's files are served from this machine (fastapi-offline ships them): nothing is loaded from
a CDN.

Every route calls the service layer (the only writer) and the domain's read models, so every rule
and every message is the command line's; api/errors.py turns refusals into `{"errors": {field:
why}}`. Nothing but app.py imports this package."""
from fastapi_offline import FastAPIOffline

from api import clients, errors, mailings, stop_list, system
from api.schemas import Errors

TITLE = "mailer"
DESCRIPTION = """SMS mailings: the client directory, mailings, their messages and statistics, the stop list.

Every request needs `Authorization: Bearer <token>`; `mailer api-token create --scope read|operator|inbound`
makes one (shown once). A read token reads; an operator token also changes things; an inbound token may
only post replies to `/inbound`.

Refusals are `{"errors": {"<field>": "<why>"}}`, in the command line's words: 422 for bad input, 404 for
an id that names nothing, 401 without a valid token, 403 for a token whose scope does not cover the route.
"""

ROUTERS = (clients.router, mailings.router, stop_list.router, system.router)


def create_app():
    # Operation ids are the route functions' names (list_clients, pause_mailing): what Postman and
    # generated clients call them.
    app = FastAPIOffline(title=TITLE, version="1", description=DESCRIPTION, redoc_url=None,
                         generate_unique_id_function=lambda route: route.name,
                         responses={status: {"model": Errors} for status in (401, 403, 404, 422)})
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    return app
