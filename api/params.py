"""Ids and paging, checked as the command line checks its arguments (domain.validation's
whole_number_error: the same words), and documented as integers in the OpenAPI document."""
from typing import Annotated

from fastapi import Path, Query
from pydantic import BeforeValidator

from domain.validation import MAX_ID, whole_number_error

MAX_LIMIT = 1000  # rows a page may ask for: a page is an answer, not an export


def whole_number(minimum, maximum=MAX_ID):
    def check(value):
        why = whole_number_error("true" if value is True else "false" if value is False else value,
                                 minimum, maximum)
        if why:
            raise ValueError(why)
        return int(value)
    return BeforeValidator(check)


Id = Annotated[int, Path(ge=1, le=MAX_ID), whole_number(1)]
Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT, description="at most this many rows"), whole_number(0, MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="skip this many rows first"), whole_number(0)]
