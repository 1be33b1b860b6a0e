"""/mailings and /messages: mailings, their messages and each message's attempts, as `mailer
mailings ...` offers them."""
from fastapi import APIRouter, Query

import service
from api import schemas
from api.auth import READS, WRITES
from api.params import Id, Limit, Offset
from domain import mailings, stats
from domain.validation import ValidationError

router = APIRouter(tags=["mailings"])


def given(body, *leave_out):
    """The fields a body sets (not None), as the command line passes its flags to the service."""
    return {k: v for k, v in body.model_dump(exclude=set(leave_out)).items() if v is not None}


def mailing_json(mailing):
    return stats.mailing_as_dict(mailing)


@router.get("/mailings", dependencies=READS, response_model=schemas.MailingPage, response_model_exclude_unset=True,
            summary="List mailings with their counts, newest first")
def list_mailings(archived: bool = Query(False, description="archived mailings too"),
                  limit: Limit = 50, offset: Offset = 0):
    rows, total = stats.mailing_page(limit, offset, archived=archived)
    return {"items": [r.as_dict() for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/mailings/{id}", dependencies=READS, response_model=schemas.MailingDetail, response_model_exclude_unset=True,
            summary="A mailing and its counts")
def get_mailing(id: Id):
    return {"mailing": mailing_json(mailings.get_mailing(id)), "stats": stats.mailing_row(id).as_dict()}


@router.post("/mailings", dependencies=WRITES, response_model=schemas.Mailing, status_code=201,
             summary="Create a mailing")
def create_mailing(body: schemas.MailingCreate):
    return mailing_json(service.create_mailing(**given(body)))


@router.patch("/mailings/{id}", dependencies=WRITES, response_model=schemas.Mailing, summary="Change a mailing")
def edit_mailing(id: Id, body: schemas.MailingEdit):
    return mailing_json(service.edit_mailing(id, **given(body)))


def state_route(action):
    def change(id: Id):
        return mailing_json(service.set_mailing_state(id, action))
    change.__name__ = f"{action}_mailing"
    router.post(f"/mailings/{{id}}/{action}", dependencies=WRITES, response_model=schemas.Mailing,
                summary=f"{action.capitalize()} a mailing")(change)


for _action in ("pause", "resume", "cancel"):
    state_route(_action)


@router.post("/mailings/{id}/clone", dependencies=WRITES, response_model=schemas.Mailing, status_code=201,
             summary="A new mailing from this one (with only: a resend)")
def clone_mailing(id: Id, body: schemas.MailingClone | None = None):
    fields = given(body or schemas.MailingClone(), "only", "confirm_parts")
    return mailing_json(service.clone_mailing(id, only=body.only if body else None,
                                              confirm_parts=bool(body and body.confirm_parts), **fields))


@router.post("/mailings/{id}/resend-in-doubt", dependencies=WRITES, response_model=schemas.Resent,
             summary="Send its in-doubt messages again, with the same msgId (each may have arrived already)")
def resend_in_doubt(id: Id):
    done = service.resend_in_doubt(id)
    return {"id": id, "resent": done.resent, "opted_out": done.opted_out}


@router.delete("/mailings/{id}", dependencies=WRITES, response_model=schemas.MailingDeleted,
               summary="Delete a mailing that never started; archive one that did")
def delete_mailing(id: Id):
    done = service.delete_mailing(id)
    return {"id": done.mailing_id, "outcome": done.outcome, "messages": done.messages}


@router.post("/mailings/{id}/test", dependencies=WRITES, response_model=list[schemas.TestSendResult],
             summary="Send its text now to your own numbers (its window and statistics left alone)")
def test_send(id: Id, body: schemas.TestSend | None = None):
    rows = service.send_test(id, body.to if body else None)
    return [{"phone": r.phone, "msg_id": r.msg_id, "outcome": r.outcome, "http_status": r.http_status,
             "latency_ms": r.latency_ms, "error": r.error} for r in rows]


@router.get("/mailings/{id}/messages", dependencies=READS, response_model=schemas.MessagePage,
            summary="A page of a mailing's messages, by client")
def list_messages(id: Id, status: schemas.MessageStatus | None = Query(None),
                  phone: str = Query("", description="part of a phone"), limit: Limit = 100, offset: Offset = 0):
    mailings.get_mailing(id)
    query = stats.message_query(id, status, phone).limit(limit).offset(offset)
    return {"items": [stats.message_as_dict(m) for m in query],
            "total": stats.message_count(id, status, phone), "limit": limit, "offset": offset}


@router.get("/messages/{id}/attempts", dependencies=READS, response_model=list[schemas.Attempt],
            tags=["mailings"], summary="Every attempt (and decision) about one message, oldest first")
def message_attempts(id: Id):
    rows = stats.journal_page(message=id, limit=None)
    if not rows and not stats.message_exists(id):
        raise ValidationError({"id": f"no message with id {id}"})
    return [{"id": a.id, "at": stats.iso(a.at), "outcome": a.outcome, "http_status": a.http_status,
             "latency_ms": a.latency_ms, "error": a.error, "owner": a.owner} for a in rows]
