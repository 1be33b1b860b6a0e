"""A CSV request body (Content-Type: text/csv), spooled to a temporary file as it arrives, so an
import of a million rows never holds the file in memory, and handed to the service as a path: the
command line's import reads it the same way (UTF-8 with or without a byte order mark, every bad
byte or row reported with its line)."""
import os
import tempfile
from contextlib import asynccontextmanager

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError

CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}


@asynccontextmanager
async def spooled_csv(request: Request):
    """The body in a temporary file (its path), removed afterwards."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("text/csv", "text/plain", "application/csv"):
        raise ApiError(415, {"body": f"must be CSV sent as Content-Type: text/csv; got {kind or 'no type'}"})
    fd, path = tempfile.mkstemp(prefix="mailer-api-import-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                await run_in_threadpool(out.write, chunk)
        yield path
    finally:
        os.unlink(path)
