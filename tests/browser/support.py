"""What the browser tests share: people's accounts and signing in (through the identity service,
as a person does), the accessibility check, and watching for pages that break under the
Content-Security-Policy or show a stack trace.

Set-up that is not the subject of a test (a slate and an open vote for the ballot's hard cases)
goes through the services' APIs with tokens of the development issuer, like the scenario's."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from piaojue.screenshots import PASSWORD, add_accounts, check_in, sign_in  # noqa: F401 (re-exported)
from shared.auth import Role, mint


def until(probe, what: str, timeout: float = 20) -> Any:
    """Wait for ``probe()`` to return something truthy (an event crossing between services), and
    return it; fail with ``what`` after ``timeout`` s. Sync: the browser tests drive sync Playwright."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return value


AXE = (Path(__file__).parents[2] / "web" / "static" / "vendor" / "axe.min.js").read_text()


def axe(page, what: str = "") -> None:
    """axe-core (vendored from npm) on the page as it is: no serious or critical violation.
    Evaluated through the DevTools protocol, so the page's own CSP does not need loosening."""
    page.evaluate(AXE)
    result: dict[str, Any] = page.evaluate("""async () => await axe.run(document, {resultTypes: ["violations"]})""")
    bad = [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
           for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"accessibility violations on {what or page.url}:\n" + "\n".join(bad)


def watch(page) -> list[str]:
    """Collects what must never happen on a page: CSP violations, script errors, dialogs."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text or (
        m.type == "error" and not m.text.startswith("Failed to load resource")) else None)
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    return problems


_CLIENT = httpx.Client(timeout=60)  # one connection pool for the set-up calls


def api(settings, method: str, service: str, path: str, sub: str, role: Role, town: str, json: Any = None) -> Any:
    response = _CLIENT.request(method, settings.url(service) + path, json=json,
                               headers={"authorization": f"Bearer {mint(sub, role, town)}", "idempotency-key": str(uuid.uuid4())})
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def checkin_code(settings, town: str, session_id: str) -> str:
    """The session's check-in code, once identity has heard of the session (an event from the ballot service)."""
    headers = {"authorization": f"Bearer {mint('office', Role.OFFICE, town)}"}

    def code() -> str | None:
        response = _CLIENT.get(f"{settings.url('identity')}/sessions/{session_id}/checkin-code", headers=headers)
        return response.json()["code"] if response.status_code == 200 else None

    return until(code, f"identity to learn of session {session_id}")


def open_vote(settings, town: str, deputies: list[str], titles: list[str], seats: int, mode: str = "electronic",
              tellers: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Through the services' APIs (not the subject of these tests): a slate, a session with
    everyone present, its tellers, and a vote opened. Returns the vote, its session and check-in code."""

    def call(method: str, service: str, path: str, role: Role = Role.OFFICE, json: Any = None) -> Any:
        return api(settings, method, service, path, "office" if role is Role.OFFICE else "chair", role, town, json)

    ids = []
    for title in titles:
        proposal = call("POST", "intake", "/proposals", json={"year": 2025, "title": title, "channel": "grid"})
        for stage in ("preliminary_review", "approved_by_party_committee", "candidate"):
            call("POST", "intake", f"/proposals/{proposal['id']}/screening", json={"to": stage})
        ids.append(proposal["id"])
    slate = call("POST", "intake", "/slates", json={"title": f"{town} 候选清单", "year": 2025, "seats": seats, "proposal_ids": ids})
    call("PUT", "ballot", "/terms/1/roster", json={"quota": len(deputies), "deputies": [{"deputy_id": d, "name": d} for d in deputies]})
    session = call("POST", "ballot", "/sessions", json={"name": f"{town} 人代会", "year": 2025, "term": 1})
    call("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": deputies})
    until(lambda: any(s["id"] == slate["id"] for s in call("GET", "ballot", "/slates")), "the slate to reach the ballot service")
    vote = call("POST", "ballot", f"/sessions/{session['id']}/votes", json={"slate_id": slate["id"], "mode": mode})
    keys = seat_tellers(settings, town, session["id"], tellers)
    call("POST", "ballot", f"/votes/{vote['id']}/open", Role.PRESIDING)
    return {"id": vote["id"], "session": session["id"], "get": lambda: call("GET", "ballot", f"/votes/{vote['id']}"),
            "keys": keys, "code": checkin_code(settings, town, session["id"])}


TELLERS = ("T1", "T2", "T3")


def seat_tellers(settings, town: str, session_id: str, keys: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """The session's tellers (监票人), 2 of 3, each with a key of their own, through the API: a
    secret electronic round opens only with them (the year's walk does this on the pages)."""
    from piaojue.teller import new_key, registration

    names = list(keys) if keys else list(TELLERS)
    keys = keys or {t: new_key() for t in TELLERS}
    for teller, key in keys.items():
        api(settings, "PUT", "ballot", "/tellers/me/key", teller, Role.TELLER, town, registration(key))
    api(settings, "PUT", "ballot", f"/sessions/{session_id}/tellers", "chair", Role.PRESIDING, town,
        {"tellers": names, "threshold": 2})
    return keys
