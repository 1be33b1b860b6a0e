"""The rules of the mailing service, free of any interface or queue.

vocabulary  the words: message statuses, mailing states, attempt outcomes, in-doubt policies
settings    the one settings object, read once from the environment
validation  what a phone, an operator code, a tag, a zone or a text may be
times       operator times (now, +10m, ISO in the operator's zone) and naive UTC
windows     a mailing's daily window in each client's local time
clients     the directory: add, edit, delete, CSV import and export
mailings    defining a mailing and its audience
states      the one state machine of mailings and messages, auto-pause and the gateway pause
delivery    the delivery policy: an answer in, the message's next state out (pure functions)
stats       the read models: counts by status, the dashboard, the journal, consumer liveness
export      CSV for a spreadsheet: the one streaming writer, and a mailing's messages (CLI and console)
audit       the audit events every change writes

Nothing here imports textual, huey, requests or prometheus_client (tests/test_layers.py).
"""
