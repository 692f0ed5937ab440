"""The one way supervision's rules say no: a stable code, and the HTTP status it maps to."""

from __future__ import annotations


class SupervisionRefused(Exception):
    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.status = code, status
