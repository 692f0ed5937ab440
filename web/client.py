"""The pages' one way to the services: their own HTTP APIs, with the signed-in person's token.
A refusal comes back as ``ServiceRefused`` carrying the problem's stable code and its Chinese
title, which the page shows as it is (no rule is re-implemented here)."""

from __future__ import annotations

from typing import Any

import httpx

from shared.settings import Settings


class ServiceRefused(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str = "", body: dict | None = None) -> None:
        super().__init__(f"{status} {code}: {title}")
        self.status, self.code, self.title, self.detail, self.body = status, code, title, detail, body or {}

    @property
    def message(self) -> str:
        """The problem's title in Chinese (the services write "中文 English")."""
        return self.title.split(" ", 1)[0] if self.title and ord(self.title[0]) > 0x2E80 else self.title


class ServiceDown(Exception):
    """The service did not answer: the page says so; a cast says whether it was recorded."""


class Services:
    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.settings, self.client = settings, client

    async def response(self, method: str, service: str, path: str, token: str | None, json: Any = None,
                       params: dict | None = None, key: str | None = None, content: bytes | None = None,
                       content_type: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}  # None: a public endpoint (sign-in, check-in)
        if key:
            headers["idempotency-key"] = key
        if content_type:
            headers["content-type"] = content_type
        try:
            return await self.client.request(method, self.settings.url(service) + path, json=json, content=content,
                                             params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                                             headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceDown(f"{service}: {exc!r}") from exc

    async def call(self, method: str, service: str, path: str, token: str | None, json: Any = None,
                   params: dict | None = None, key: str | None = None) -> Any:
        response = await self.response(method, service, path, token, json, params, key)
        if response.status_code >= 400:
            raise refused(response)
        return response.json() if response.content else None  # 204: nothing to say


def refused(response: httpx.Response) -> ServiceRefused:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ServiceRefused(response.status_code, body.get("code", "http-error"), body.get("title", "") or str(response.status_code),
                          body.get("detail", ""), body)
