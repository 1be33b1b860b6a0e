"""/stats and /health: statistics, as `mailer stats` gives them, and the consumers' heartbeats, as
`mailer health` reads them."""
from fastapi import APIRouter

from api import schemas
from api.auth import READS
from api.params import Id
from domain import stats

router = APIRouter(tags=["statistics and health"])


@router.get("/stats", dependencies=READS, response_model=schemas.Summary,
            summary="Messages by status and mailings by state, over everything")
def stats_summary():
    messages, mailings = stats.totals()
    return {"messages": messages, "mailings": mailings}


@router.get("/stats/mailings", dependencies=READS, response_model=list[schemas.MailingStats], response_model_exclude_unset=True,
            summary="Every mailing's statistics (what `mailer stats` prints), oldest first")
def stats_of_mailings():
    return stats.mailing_stats()


@router.get("/stats/mailings/{id}", dependencies=READS, response_model=schemas.MailingStats, response_model_exclude_unset=True,
            summary="One mailing's statistics (what `mailer stats ID` prints)")
def stats_of_mailing(id: Id):
    return stats.mailing_stats(id)[0]


@router.get("/health", dependencies=READS, response_model=schemas.Health,
            summary="Is a consumer alive? (what `mailer health` reads)")
def health():
    beats = [{"owner": h.owner, "host": h.host, "pid": h.pid, "backend": h.backend, "gateway": h.gateway,
              "beat_at": stats.iso(h.beat_at), "alive": alive} for h, alive in stats.consumers()]
    return {"alive": sum(b["alive"] for b in beats), "consumers": beats}
