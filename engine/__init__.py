"""The sending engine: claim, mark, send, settle and recover, and the gateway client. No huey: the
tasks and the consumer drive it, and the engine tests drive it in process.

storage     transactions, what a failing database raises, and waiting for it to come back
dispatcher  claims due messages, marks them on the wire, posts them and settles the answers
liveness    heartbeats, taking dead consumers for dead without comparing clocks, and taking over
gateways    the gateway backends (probe, console, smsaero): one attempt each and a verdict on its answer
"""
import os
import socket
import uuid

# This consumer process, as leases, heartbeats and the journal name it.
OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
