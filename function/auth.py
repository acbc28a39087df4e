"""The optional shared token: bearer, a configured header, or a CloudEvent extension.

Compared in constant time. Kubeless, OpenFaaS and Fission outputs of Falcosidekick
cannot carry any header of ours: for those, authenticity rests on the network path.
"""

from __future__ import annotations

import hmac
from typing import Any, List, Mapping, Optional

from .errors import Unauthorized
from .message import HTTPMessage


class TokenCheck:
    def __init__(self, token: Optional[str], header: str, extension: str) -> None:
        self._token = token.encode("utf-8") if token else None
        self.header = header.lower()
        self.extension = extension.lower()

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def presented(self, msg: HTTPMessage, attributes: Optional[Mapping[str, Any]] = None
                  ) -> List[str]:
        """Every credential the request carries: a proxy or a Broker may add a bearer token
        of its own beside ours, so no one source hides the others."""
        found = []
        authorization = msg.header("authorization") or ""
        if authorization[:7].lower() == "bearer ":
            found.append(authorization[7:].strip())
        for value in (msg.header(self.header), msg.header("ce-" + self.extension),
                      (attributes or {}).get(self.extension)):
            if isinstance(value, str):
                found.append(value)
        return found

    def verify(self, msg: HTTPMessage, attributes: Optional[Mapping[str, Any]] = None) -> None:
        if self._token is None:
            return
        given = self.presented(msg, attributes)
        if not given:
            raise Unauthorized(
                f"missing token: expected 'Authorization: Bearer', header {self.header!r} "
                f"or CloudEvent extension {self.extension!r}")
        # Compare every one, in constant time each, without stopping at the first match.
        matches = [hmac.compare_digest(g.encode("utf-8"), self._token) for g in given]
        if not any(matches):
            raise Unauthorized("wrong token")
