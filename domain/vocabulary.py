"""The service's words, each defined once: message statuses, mailing states, attempt outcomes and the
policies for an attempt in doubt."""

# A message's status. `unknown` is final: an attempt may have reached the gateway without a valid
# answer (in doubt), and it is not sent again unless the operator says so. `suppressed`: its phone
# opted out after the audience was built, and it was kept off the wire.
PENDING, SENT, FAILED, EXPIRED, CANCELLED, UNKNOWN, SUPPRESSED = (
    "pending", "sent", "failed", "expired", "cancelled", "unknown", "suppressed")
MESSAGE_STATUSES = (PENDING, SENT, FAILED, EXPIRED, CANCELLED, UNKNOWN, SUPPRESSED)
FINAL_STATUSES = (SENT, FAILED, EXPIRED, CANCELLED, UNKNOWN, SUPPRESSED)
# The statuses of an original's messages whose clients a resend (a clone with --only) may reach: those
# that did not go. `unknown` only when named: each may have been delivered.
RESEND_STATUSES = (FAILED, EXPIRED, CANCELLED, UNKNOWN)

# How a status is said to an operator: `unknown` is an attempt in doubt (it may have reached the phone).
STATUS_LABELS = {UNKNOWN: "in doubt"}


def status_label(status):
    return STATUS_LABELS.get(status, status)


# A mailing's state.
SCHEDULED, RUNNING, PAUSED, FINISHED = "scheduled", "running", "paused", "finished"
MAILING_STATES = (SCHEDULED, RUNNING, PAUSED, FINISHED, CANCELLED)
LIVE_STATES = (SCHEDULED, RUNNING, PAUSED)  # may still send
SENDING_STATES = (RUNNING, PAUSED)  # audience materialized, end not reached

# What one attempt (or decision) came to, as the journal records it: a status, or `retry`.
RETRY = "retry"
ATTEMPT_OUTCOMES = (SENT, RETRY, FAILED, EXPIRED, CANCELLED, UNKNOWN, SUPPRESSED)
# Of those, what a request to the gateway came to, and what was decided without one.
REQUEST_OUTCOMES = (SENT, RETRY, FAILED, UNKNOWN)
DECISIONS = (EXPIRED, CANCELLED, SUPPRESSED)

# Where an opt-out came from (OptOut.source): `reply` a STOP the client answered (POST /inbound),
# `api` an entry added over the HTTP API.
OPT_OUT_SOURCES = ("cli", "console", "import", "reply", "api")

# What the gateway's answer says, before the policy turns it into a status: sent, retry later, failed
# for good, or in doubt (the request may have reached it; no valid answer came back).
DOUBT = "doubt"
VERDICTS = (SENT, RETRY, FAILED, DOUBT)

# What an attempt in doubt becomes (MAILER_IN_DOUBT).
HOLD, RETRY_IN_DOUBT = "hold", "retry"
IN_DOUBT_POLICIES = (HOLD, RETRY_IN_DOUBT)

# The gateway backends (MAILER_GATEWAY; engine.gateways).
PROBE, CONSOLE, SMSAERO = "probe", "console", "smsaero"
GATEWAY_BACKENDS = (PROBE, CONSOLE, SMSAERO)
# Said by the description of every backend that sends nowhere (the console backend, a local
# simulator): the dashboard tells a dry run from real sending by it.
LOCAL_ONLY = "nothing leaves this machine"


def is_local_gateway(description):
    """Whether a consumer's gateway description (its heartbeat's) is one that sends nowhere; a
    consumer of an earlier version said `local simulator …`."""
    return LOCAL_ONLY in description or description.startswith("local simulator")
