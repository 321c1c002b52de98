"""Who may see the dashboard and act through it: credentials, CSRF tokens, security headers.

- **Credentials.** With ``auth=(user, password)`` every request needs HTTP Basic auth (a 401 carries
  ``WWW-Authenticate`` so a browser prompts); with ``token=`` it needs ``Authorization: Bearer TOKEN`` or
  ``?token=TOKEN`` (the latter sets an HttpOnly cookie holding a digest of the token, so the pages linked
  from it work). Credentials are compared with :func:`hmac.compare_digest`.
- **CSRF.** Every POST carries ``csrf`` (a hidden form field) or an ``X-CSRF-Token`` header: an HMAC of
  the caller's identity under a secret (random per process unless given), checked on every POST.
- **Headers.** Every response gets a strict CSP (scripts and styles from the app only), ``X-Frame-Options:
  DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from resq.errors import ConfigError

__all__ = ["SECURITY_HEADERS", "TOKEN_COOKIE", "Guard", "SecurityMiddleware", "parse_auth"]

Scope = MutableMapping[str, Any]

#: The cookie a ``?token=`` visit sets (a digest of the token, never the token itself).
TOKEN_COOKIE = "resq_dashboard"

#: Sent with every response.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


def parse_auth(value: str | tuple[str, str] | None) -> tuple[str, str] | None:
    """``(user, password)`` from ``"USER:PASS"`` or a pair (None stays None).

    Raises:
        ConfigError: no colon, or an empty user or password.
    """
    if value is None:
        return None
    if isinstance(value, str):
        user, colon, password = value.partition(":")
        if not colon:
            raise ConfigError("auth must be USER:PASS (a colon between the user name and the password)")
        value = (user, password)
    user, password = value
    if not user or not password:
        raise ConfigError("auth needs a non-empty user name and password (USER:PASS)")
    return user, password


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Guard:
    """The dashboard's credentials and CSRF secret.

    Args:
        basic: ``(user, password)`` for HTTP Basic auth, or None.
        token: a bearer token, or None.
        secret: the key of the CSRF tokens (random per process by default; give the same one to every
            process that serves the dashboard behind one address).
    """

    basic: tuple[str, str] | None = None
    token: str | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        if self.token is not None and not self.token:
            raise ConfigError("the dashboard token must not be empty")

    @property
    def enabled(self) -> bool:
        """Whether requests need credentials at all."""
        return self.basic is not None or self.token is not None

    def identity(self, scope: Scope) -> str | None:
        """Who the request is (``user:NAME``, ``token`` or ``anonymous``), or None when it lacks the
        credentials this dashboard needs."""
        if not self.enabled:
            return "anonymous"
        header = _header(scope, b"authorization")
        scheme, _, value = header.partition(" ")
        if self.basic is not None and scheme.lower() == "basic" and self._basic_ok(value.strip()):
            return f"user:{self.basic[0]}"
        if self.token is not None and self._token_ok(scope, scheme, value.strip()):
            return "token"
        return None

    def _basic_ok(self, value: str) -> bool:
        assert self.basic is not None
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return _same(user, self.basic[0]) & _same(password, self.basic[1])

    def _token_ok(self, scope: Scope, scheme: str, value: str) -> bool:
        assert self.token is not None
        if scheme.lower() == "bearer" and _same(value, self.token):
            return True
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if given and _same(given, self.token):
            return True
        cookie = SimpleCookie(_header(scope, b"cookie")).get(TOKEN_COOKIE)
        return cookie is not None and _same(cookie.value, self.cookie_value())

    def cookie_value(self) -> str:
        """What the token cookie holds: a digest of the token (stable across restarts and processes)."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"resq dashboard session", hashlib.sha256).hexdigest()

    def csrf_token(self, identity: str) -> str:
        """The CSRF token of ``identity`` (an HMAC under the secret)."""
        return hmac.new(self.secret, b"csrf:" + identity.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, identity: str, given: str) -> bool:
        """Whether ``given`` is ``identity``'s CSRF token (constant-time)."""
        return bool(given) and _same(given, self.csrf_token(identity))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


class SecurityMiddleware:
    """ASGI middleware: refuse requests without the credentials (401), add the security headers to
    every response, and set the token cookie after a ``?token=`` visit. The request's identity is put
    in ``scope["resq.identity"]`` for the CSRF check."""

    def __init__(self, app: Any, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identity = self.guard.identity(scope)
        extra = self._cookie(scope) if identity == "token" else []

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS, *extra]
            await send(message)

        if identity is None:
            await self._refuse(send_with_headers)
            return
        scope["resq.identity"] = identity
        await self.app(scope, receive, send_with_headers)

    def _cookie(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        if b"token=" not in scope.get("query_string", b""):
            return []
        path = scope.get("root_path", "") or "/"
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        value = f"{TOKEN_COOKIE}={self.guard.cookie_value()}; Path={path}; HttpOnly; SameSite=Strict{secure}"
        return [(b"set-cookie", value.encode())]

    async def _refuse(self, send: Any) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if self.guard.basic is not None:
            headers.append((b"www-authenticate", b'Basic realm="resq dashboard", charset="UTF-8"'))
        else:
            headers.append((b"www-authenticate", b'Bearer realm="resq dashboard"'))
        body = b"401 Unauthorized: this dashboard needs credentials\n"
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
