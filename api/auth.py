"""Every API request names its token: `Authorization: Bearer <token>`. No token, or one that is
unknown or revoked, is a 401; a token whose scope does not cover the route (a read token writing, an
inbound token reading) a 403. The token is never logged nor echoed."""
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

import service
from api.errors import ApiError
from domain import api_tokens
from domain.api_tokens import INBOUND, OPERATOR, READ

bearer = HTTPBearer(auto_error=False, description="a token from `mailer api-token create --scope "
                                                  "read|operator|inbound`")
CHALLENGE = {"WWW-Authenticate": "Bearer"}
NEEDS = {READ: "a read or operator token", OPERATOR: "an operator token",
         INBOUND: "an inbound or operator token"}


def need(scope):
    """A dependency that lets a request through only with a live token covering `scope`."""
    def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)):
        if credentials is None:
            raise ApiError(401, {"token": "missing: send Authorization: Bearer <token> (mailer api-token "
                                          "create makes one)"}, CHALLENGE)
        row = api_tokens.find(credentials.credentials)
        if row is None:
            raise ApiError(401, {"token": "unknown or revoked"}, CHALLENGE)
        if not api_tokens.allows(row.scope, scope):
            raise ApiError(403, {"token": f"a {row.scope} token cannot do this: it needs {NEEDS[scope]}"})
        service.api_token_used(row)
        return row
    check.__name__ = f"need_{scope}"
    return check


READS = [Depends(need(READ))]
WRITES = [Depends(need(OPERATOR))]
REPLIES = [Depends(need(INBOUND))]
