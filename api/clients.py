"""/clients: the client directory, as `mailer clients ...` offers it."""
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

import service
from api import schemas
from api.auth import READS, WRITES
from api.csv_body import CSV_BODY, spooled_csv
from api.params import Id, Limit, Offset
from domain import clients, stats

router = APIRouter(prefix="/clients", tags=["clients"])


def client_json(client_id):
    clients.get_client(client_id)  # 404: no client with id N
    return stats.client_row(client_id).as_dict()


@router.get("", dependencies=READS, response_model=schemas.ClientPage, summary="List clients, newest first")
def list_clients(search: str = Query("", description="part of a phone, tag, zone or name; an operator code"),
                 limit: Limit = 50, offset: Offset = 0):
    rows = stats.client_page(search, limit, offset)
    return {"items": [r.as_dict() for r in rows], "total": stats.client_count(search), "limit": limit,
            "offset": offset}


@router.get("/{id}", dependencies=READS, response_model=schemas.Client, summary="A client")
def get_client(id: Id):
    return client_json(id)


@router.post("", dependencies=WRITES, response_model=schemas.Client, status_code=201, summary="Add a client")
def create_client(body: schemas.ClientCreate):
    client = service.create_client(phone=body.phone, operator=body.operator, tag=body.tags or "", tz=body.tz,
                                   name=body.name or "", attrs=body.attrs or {})
    return client_json(client.id)


@router.patch("/{id}", dependencies=WRITES, response_model=schemas.Client, summary="Change a client")
def edit_client(id: Id, body: schemas.ClientEdit):
    service.edit_client(id, phone=body.phone, operator=body.operator, tag=body.tags, tz=body.tz,
                        name=body.name, attrs=body.attrs or None)
    return client_json(id)


@router.delete("/{id}", dependencies=WRITES, response_model=schemas.Deleted,
               summary="Delete a client (its messages stay; unsent ones are cancelled)")
def delete_client(id: Id):
    return {"deleted": service.delete_clients([id])}


@router.post("/import", dependencies=WRITES, response_model=schemas.ImportReport, openapi_extra=CSV_BODY,
             summary="Import clients from CSV",
             description="The body is the CSV file (Content-Type: text/csv), as `mailer clients import` "
                         "reads it: a header with phone and any of operator, tag, tags, tz, name; any other "
                         "column an attribute. Good rows go in, each bad one is reported with its line "
                         "(with all_or_nothing, none go in if any is bad).")
async def import_clients(request: Request, all_or_nothing: bool = Query(False)):
    async with spooled_csv(request) as path:
        report = await run_in_threadpool(service.import_clients, path, all_or_nothing)
    return report.as_dict()
