"""The API's bodies, as pydantic models: FastAPI reads requests into them and writes the OpenAPI
document from them. Request bodies refuse unknown fields (a typo is said, not ignored). Answers are
the command line's JSON (domain.stats' as_dict functions) read through these models, so the document
says what each answer holds; a field the read model adds later and a model here lacks is left out of
the answer, and tests/test_api_routes.py compares the two."""
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from domain.vocabulary import MAILING_STATES, MESSAGE_STATUSES

MessageStatus = Literal[MESSAGE_STATUSES]  # type: ignore[valid-type]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Errors(BaseModel):
    """Every refusal: each field that is wrong and why, in the command line's words (it prints
    `error: <field>: <why>`)."""
    errors: dict[str, str] = Field(examples=[{"phone": "must be 7 followed by 10 digits, like 79001234567; "
                                                       "got '123'"}])


# ---------------------------------------------------------------------------------------------------
# Clients


class ClientFields(Body):
    operator: str | None = Field(None, description="3-digit operator code (default: digits 2-4 of the phone)")
    tags: list[str] | None = Field(None, description="its tags, the first one first (its `tag`); on an "
                                                     "edit, they replace its tags ([] for none)")
    tz: str | None = Field(None, description="IANA zone (default: MAILER_TZ or the server's)")
    name: str | None = Field(None, description="for {name} in a text")
    attrs: dict[str, str] | None = Field(None, description="attributes for {attr.KEY} in a text (KEY: a-z, 0-9, "
                                                           "_); on an edit, those given are set and a key "
                                                           "given \"\" is removed")


class ClientCreate(ClientFields):
    phone: str = Field(description="7 followed by 10 digits", examples=["79001234567"])


class ClientEdit(ClientFields):
    phone: str | None = Field(None, description="7 followed by 10 digits")


class Client(BaseModel):
    id: int
    phone: str
    operator: str
    tag: str = Field(description="its first tag ('' without tags)")
    tags: list[str]
    tz: str
    name: str
    attrs: dict[str, str]
    opted_out: bool = Field(description="its phone is on the stop list")


class ClientPage(BaseModel):
    items: list[Client]
    total: int = Field(description="how many match the filter in all")
    limit: int
    offset: int


class Deleted(BaseModel):
    deleted: int


class ImportRejected(BaseModel):
    line: int
    row: str
    error: str


class ImportReport(BaseModel):
    imported: int
    total: int = Field(description="rows read (the header left out)")
    rejected: list[ImportRejected]


# ---------------------------------------------------------------------------------------------------
# Mailings


class MailingFields(Body):
    text: str | None = Field(None, description="the text; {name} and {attr.KEY} for personal texts")
    start: str | None = Field(None, description="ISO 8601 (without an offset: in MAILER_TZ), now, or +10m/+2h/+1d",
                              examples=["now"])
    end: str | None = Field(None, description="ISO 8601, or +10m/+2h/+1d", examples=["+2h"])
    operator: list[str] | None = Field(None, description="only clients of any of these operator codes "
                                                         "(each may be a comma list)")
    tag: list[str] | None = Field(None, description="only clients with any of these tags")
    all_tags: list[str] | None = Field(None, description="only clients with every one of these tags")
    not_tags: list[str] | None = Field(None, description="leave out clients with any of these tags")
    skip_recent: str | None = Field(None, description="leave out clients messaged in the last 24h (90m, 2d, 1w)")
    window: str | None = Field(None, description="HH:MM-HH:MM in each client's local time, or any "
                                                 "(default on create: MAILER_DEFAULT_WINDOW)")
    days: str | None = Field(None, description="mon-fri, mon,wed,fri, sat-sun, or any")
    confirm_parts: bool = Field(False, description="save a text of more SMS parts than MAILER_MAX_PARTS")


class MailingCreate(MailingFields):
    text: str
    start: str = Field(examples=["now"])
    end: str = Field(examples=["+2h"])
    spread: bool = Field(False, description="send its messages evenly until its end, not all at once")


class MailingEdit(MailingFields):
    """A scheduled mailing can change anything; a running or paused one its text, end and spread.
    [] or "" clears a part of the filter, the window or the days."""
    spread: bool | None = None


class MailingClone(MailingFields):
    """A new mailing from another: its text, filter, window, days and spread unless given, from
    `start` (default now) for as long as the original ran unless `end` is given. With `only`, a
    resend to the clients of the original's messages in those statuses."""
    only: list[str] | None = Field(None, description="failed, expired, cancelled and/or unknown (in doubt)",
                                   examples=[["failed", "expired"]])
    spread: bool | None = None


class Filter(BaseModel):
    operators: list[str]
    tags: list[str]
    all_tags: list[str]
    not_tags: list[str]
    skip_recent: str | None


class Mailing(BaseModel):
    id: int
    state: Literal[MAILING_STATES]  # type: ignore[valid-type]
    text: str
    start: str
    end: str
    operator: str | None
    tag: str | None
    filter: Filter
    audience: str = Field(description="its filter in words")
    window: str | None
    days: str | None
    spread: bool
    reason: str = Field(description="why it is paused or cancelled, when it says")
    started_at: str | None
    archived: bool
    cloned_from: int | None
    only: list[str] | None


# One count per message status, from the vocabulary.
MailingStats = create_model(
    "MailingStats",
    id=(int, ...), state=(str, ...), started=(bool, ...),
    total=(int | None, Field(description="messages it has, or the audience it would have now")),
    materialized=(int, ...),
    **{status: (int, ...) for status in MESSAGE_STATUSES},
    text=(str, ...), operator=(str | None, ...), tag=(str | None, ...), filter=(Filter, ...),
    window=(str | None, ...), days=(str | None, ...), spread=(bool, ...), start=(str, ...), end=(str, ...),
    reason=(str, ...), archived=(bool, ...), cloned_from=(int | None, ...), only=(list[str] | None, ...),
    encoding=(str, ...), parts_per_message=(int, ...), parts_sent=(int, ...), parts_total=(int, ...),
    # only with MAILER_SEGMENT_PRICE set (left out of the answer otherwise, as the command line does)
    cost_sent=(str | None, None), cost_total=(str | None, None), currency=(str | None, None),
)


class MailingDetail(BaseModel):
    mailing: Mailing
    stats: MailingStats  # type: ignore[valid-type]


class MailingPage(BaseModel):
    items: list[MailingStats]  # type: ignore[valid-type]
    total: int
    limit: int
    offset: int


class MailingDeleted(BaseModel):
    id: int
    outcome: Literal["deleted", "archived"]
    messages: int


class Resent(BaseModel):
    id: int
    resent: int = Field(description="in-doubt messages that will be sent again with the same msgId")
    opted_out: int = Field(description="in-doubt messages left alone: their phones are on the stop list")


class TestSend(Body):
    to: list[str] | None = Field(None, description="numbers to send it to (default: MAILER_TEST_PHONES)")


class TestSendResult(BaseModel):
    phone: str
    msg_id: int
    outcome: str
    http_status: int | None
    latency_ms: float | None
    error: str


class Message(BaseModel):
    id: int
    mailing: int
    client: int | None = Field(description="None once the client was deleted")
    phone: str
    status: MessageStatus
    attempts: int
    last_error: str
    created_at: str | None
    sent_at: str | None
    next_attempt_at: str | None
    text: str | None = Field(description="the text it went with (None before it went)")


class MessagePage(BaseModel):
    items: list[Message]
    total: int
    limit: int
    offset: int


class Attempt(BaseModel):
    id: int
    at: str
    outcome: str
    http_status: int | None
    latency_ms: float | None
    error: str
    owner: str | None = Field(description="the consumer that made it")


# ---------------------------------------------------------------------------------------------------
# Statistics, the stop list, health, inbound replies


class Summary(BaseModel):
    messages: dict[str, int] = Field(description="messages by status, over every mailing")
    mailings: dict[str, int] = Field(description="mailings by state")


class OptOut(BaseModel):
    phone: str
    source: str
    reason: str
    created_at: str | None
    client_id: int | None = Field(description="the client with this phone now, if any")


class OptOutPage(BaseModel):
    items: list[OptOut]
    total: int | None = Field(description="entries in all (None with a search)")
    limit: int
    offset: int


class OptOutAdd(Body):
    phones: list[str] = Field(min_length=1, examples=[["79001234567"]])
    reason: str = Field("", description="why, as the client said it")


class OptOutAdded(BaseModel):
    added: int = Field(description="phones that were not on the list yet")
    given: int


class OptOutRemoved(BaseModel):
    removed: int


class Consumer(BaseModel):
    owner: str
    host: str
    pid: int
    backend: str | None = Field(description="MAILER_GATEWAY of that consumer: probe, console, smsaero")
    gateway: str
    beat_at: str
    alive: bool


class Health(BaseModel):
    alive: int = Field(description="consumers whose heartbeat is fresh")
    consumers: list[Consumer]


class Inbound(Body):
    """A reply a client sent, as a gateway forwards it."""
    phone: str = Field(description="7 followed by 10 digits; a leading + is taken off", examples=["79001234567"])
    text: str = Field(examples=["STOP"])


class InboundResult(BaseModel):
    opted_out: bool = Field(description="the reply was STOP or СТОП: the phone is on the stop list")
    added: int = Field(description="1 when the phone was not on the list before")
