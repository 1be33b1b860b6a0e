"""/optouts: the stop list, as `mailer optout ...` offers it; and POST /inbound, where a gateway
forwards the replies clients send: a STOP puts the phone on the list."""
from urllib.parse import parse_qs

import pydantic
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

import service
from api import schemas
from api.auth import READS, REPLIES, WRITES
from api.csv_body import CSV_BODY, spooled_csv
from api.errors import ApiError
from api.params import Limit, Offset
from domain import inbound, opt_outs
from domain.validation import ValidationError

router = APIRouter(tags=["stop list"])


@router.get("/optouts", dependencies=READS, response_model=schemas.OptOutPage,
            summary="The stop list, newest first")
def list_opt_outs(search: str = Query("", description="part of a phone or a reason"),
                  limit: Limit = 50, offset: Offset = 0):
    rows = opt_outs.page(limit, offset, search)
    return {"items": [r.as_dict() for r in rows], "total": None if search else opt_outs.count(),
            "limit": limit, "offset": offset}


@router.post("/optouts", dependencies=WRITES, response_model=schemas.OptOutAdded,
             summary="Put phones on the stop list (their pending messages are suppressed)")
def add_opt_outs(body: schemas.OptOutAdd):
    added = service.opt_out(body.phones, "api", body.reason)
    return {"added": added, "given": len({p.strip() for p in body.phones})}


@router.delete("/optouts/{phone}", dependencies=WRITES, response_model=schemas.OptOutRemoved,
               summary="Take a phone off the stop list (the client asked again)")
def remove_opt_out(phone: str):
    return {"removed": service.opt_in([phone])}


@router.post("/optouts/import", dependencies=WRITES, response_model=schemas.ImportReport, openapi_extra=CSV_BODY,
             summary="Put every phone of a CSV (header phone[,reason]) on the stop list")
async def import_opt_outs(request: Request, reason: str = Query("", description="the reason of rows that give none")):
    async with spooled_csv(request) as path:
        report = await run_in_threadpool(service.import_opt_outs, path, reason)
    return report.as_dict()


# Read by hand (read_reply) to take a form too; documented from the same model.
INBOUND_BODY = {"requestBody": {"required": True, "content": {
    kind: {"schema": schemas.Inbound.model_json_schema()}
    for kind in ("application/json", "application/x-www-form-urlencoded")}}}


@router.post("/inbound", dependencies=REPLIES, response_model=schemas.InboundResult, openapi_extra=INBOUND_BODY,
             tags=["inbound"], summary="A reply a client sent, forwarded by the gateway",
             description="JSON or form-encoded `phone` and `text`. A reply whose first word (trimmed, any "
                         "case, a trailing . or ! left off) is STOP or СТОП puts the phone on the stop list "
                         "(source `reply`, the reply as its reason); any other reply is answered 200 and "
                         "ignored: it is nobody's to read here.")
async def receive_reply(request: Request):
    reply = await read_reply(request)
    if not inbound.is_stop(reply.text):
        return {"opted_out": False, "added": 0}
    added = await run_in_threadpool(service.opt_out, [inbound.phone_of(reply.phone)], "reply",
                                    inbound.reason_of(reply.text))
    return {"opted_out": True, "added": added}


async def read_reply(request: Request):
    """The reply's fields, from JSON or a form, checked as schemas.Inbound."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        if kind == "application/x-www-form-urlencoded":
            fields = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
            return schemas.Inbound.model_validate(fields)
        if kind == "application/json" or kind.endswith("+json"):
            return schemas.Inbound.model_validate_json(raw)
    except UnicodeDecodeError:
        raise ValidationError({"body": "is not UTF-8 text"}) from None
    except pydantic.ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    raise ApiError(415, {"body": f"must be JSON or a form (application/x-www-form-urlencoded); got {kind or 'no type'}"})
