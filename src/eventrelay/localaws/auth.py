"""Who is calling: session credentials this endpoint issued (verified, unexpired) or base credentials.

Base credentials are verified against ``localaws.users`` when that is configured; otherwise any base
access key is accepted unverified (as LocalStack does) and the caller is ``user/local``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from multidict import CIMultiDictProxy

from eventrelay.localaws.iam import Role
from eventrelay.localaws.sigv4 import SignatureError, SignedRequest, parse_authorization, verify

MAX_SESSIONS = 100_000  # issued session credentials kept; expired ones are pruned first, then the oldest
ACCESS_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS access key ids are base32-like upper case


class Denied(Exception):
    """Authentication failed. ``kind``: missing | malformed | unknown_key | bad_signature | skew | expired."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Session:
    access_key: str
    secret: str
    token: str
    expires_at: float
    role: Role
    session_name: str

    @property
    def arn(self) -> str:
        account = self.role.arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.role.name}/{self.session_name}"

    @property
    def assumed_role_id(self) -> str:
        return f"{self.role.role_id}:{self.session_name}"

    def __repr__(self) -> str:  # never show the secret or the token
        return f"Session({self.access_key}, {self.arn}, expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True)
class Caller:
    arn: str
    access_key: str
    session: Session | None
    """None for base credentials."""


class Sessions:
    """Session credentials issued by AssumeRole. ``clock`` may be replaced (tests: expiry)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._by_key: dict[str, Session] = {}

    def issue(self, role: Role, session_name: str, duration: int) -> Session:
        self._prune()
        session = Session(
            access_key="ASIA" + "".join(secrets.choice(ACCESS_KEY_ALPHABET) for _ in range(16)),
            secret=secrets.token_urlsafe(30)[:40],
            token="IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(120),
            expires_at=self.clock() + duration,
            role=role,
            session_name=session_name,
        )
        self._by_key[session.access_key] = session
        return session

    def get(self, access_key: str) -> Session | None:
        return self._by_key.get(access_key)

    def _prune(self) -> None:
        if len(self._by_key) < MAX_SESSIONS:
            return
        now = self.clock()
        self._by_key = {k: s for k, s in self._by_key.items() if s.expires_at > now}
        while len(self._by_key) >= MAX_SESSIONS:
            self._by_key.pop(next(iter(self._by_key)))


class Authenticator:
    def __init__(self, sessions: Sessions, users: dict[str, str], account: str) -> None:
        self.sessions = sessions
        self.users = users
        self.account = account

    def authenticate(self, method: str, raw_path: str, headers: CIMultiDictProxy[str], body: bytes) -> Caller:
        try:
            signed = parse_authorization(headers)
        except SignatureError as exc:
            raise Denied(exc.reason, str(exc)) from exc
        session = self.sessions.get(signed.access_key)
        if session is not None:
            if signed.security_token != session.token:
                raise Denied("unknown_key", "The security token included in the request is invalid.")
            self._verify(signed, session.secret, method, raw_path, headers, body)
            if session.expires_at <= self.sessions.clock():
                raise Denied("expired", "The security token included in the request is expired")
            return Caller(session.arn, session.access_key, session)
        if signed.access_key.startswith("ASIA") or signed.security_token:
            raise Denied("unknown_key", "The security token included in the request is invalid.")
        if self.users:
            secret = self.users.get(signed.access_key)
            if secret is None:
                raise Denied("unknown_key", "The security token included in the request is invalid.")
            self._verify(signed, secret, method, raw_path, headers, body)
            return Caller(f"arn:aws:iam::{self.account}:user/{signed.access_key}", signed.access_key, None)
        return Caller(f"arn:aws:iam::{self.account}:user/local", signed.access_key, None)

    @staticmethod
    def _verify(
        signed: SignedRequest,
        secret: str,
        method: str,
        raw_path: str,
        headers: CIMultiDictProxy[str],
        body: bytes,
    ) -> None:
        try:
            verify(signed, secret, method=method, raw_path=raw_path, headers=headers, body=body)
        except SignatureError as exc:
            kind = "skew" if exc.reason == "skew" else "bad_signature"
            raise Denied(kind, str(exc)) from exc
