"""Bearer-token authentication for every call except the standard health service.

Health checks are exempt on purpose: service managers probe readiness without the secret,
and a health answer (SERVING or not) reveals nothing about the user's files. (The daemon
gives health calls without the token smaller pools than those that carry it: sfxmatch's own
client sends it on every call.) Everything else needs ``authorization: Bearer <token>``
metadata. The check reads only the call's headers: a call without a valid token is refused
with UNAUTHENTICATED before its request message is read, before any thread or job is given
to it, so callers without the token cannot hold anything by stalling (sending headers and
never a message).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFUSAL = (
    "missing or wrong token: send 'authorization: Bearer <token>' "
    "(the token file is in the daemon's data folder)"
)
log = logging.getLogger("sfxmatch.service.auth")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries ``token``."""
    return (("authorization", f"Bearer {token}"),)


class TokenAuth:
    """Says whether a call's metadata carries ``Bearer <token>`` (compared in constant time);
    methods under ``exempt_prefixes`` need none. Refusals are logged at most once a second
    (with how many there were), so a flood of them cannot flood the log."""

    def __init__(self, token: str, exempt_prefixes: tuple[str, ...] = (HEALTH_PREFIX,)) -> None:
        self._expected = f"Bearer {token}".encode()
        self._exempt = exempt_prefixes
        self._lock = threading.Lock()
        self._refused = 0
        self._logged_at = 0.0

    def exempt(self, method: str) -> bool:
        return method.startswith(self._exempt)

    def valid(self, metadata: Iterable[tuple[str, Any]] | None) -> bool:
        """Whether ``metadata`` carries the token (whatever the method)."""
        for key, value in metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else bytes(value)
                return hmac.compare_digest(given, self._expected)
        return False

    def allowed(self, method: str, metadata: Iterable[tuple[str, Any]] | None) -> bool:
        if self.exempt(method) or self.valid(metadata):
            return True
        self._note_refusal(method)
        return False

    def _note_refusal(self, method: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._refused += 1
            if now - self._logged_at < 1.0:
                return
            count, self._refused, self._logged_at = self._refused, 0, now
        log.warning("call refused: no valid token", extra={"method": method, "refused": count})
