"""What the browser tests share: signing in, the accessibility check, and watching for pages
that break under the Content-Security-Policy or show a stack trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from piaojue.screenshots import sign_in  # noqa: F401 (re-exported: the tests sign in as a person does)

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


def open_vote(settings, town: str, deputies: list[str], titles: list[str], seats: int) -> dict[str, Any]:
    """Through the services' APIs (not the subject of these tests): a slate, a session with
    everyone present, and an electronic vote opened. Returns the vote and its candidates."""
    import uuid

    import httpx

    from shared.auth import Role, mint

    def call(method: str, service: str, path: str, role: Role = Role.OFFICE, json: Any = None) -> Any:
        token = mint("office" if role is Role.OFFICE else "chair", role, town)
        response = httpx.request(method, settings.url(service) + path, json=json, timeout=30,
                                 headers={"authorization": f"Bearer {token}", "idempotency-key": str(uuid.uuid4())})
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

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
    import time

    for _ in range(200):
        if any(s["id"] == slate["id"] for s in call("GET", "ballot", "/slates")):
            break
        time.sleep(0.05)
    vote = call("POST", "ballot", f"/sessions/{session['id']}/votes", json={"slate_id": slate["id"]})
    keys = seat_tellers(settings, town, session["id"])
    call("POST", "ballot", f"/votes/{vote['id']}/open", Role.PRESIDING)
    return {"id": vote["id"], "session": session["id"], "get": lambda: call("GET", "ballot", f"/votes/{vote['id']}"),
            "keys": keys}


TELLERS = ("T1", "T2", "T3")


def _ballot(settings, town: str, method: str, path: str, role, sub: str, json: Any = None) -> Any:
    import uuid

    import httpx

    from shared.auth import mint

    response = httpx.request(method, settings.url("ballot") + path, json=json, timeout=60,
                             headers={"authorization": f"Bearer {mint(sub, role, town)}", "idempotency-key": str(uuid.uuid4())})
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def seat_tellers(settings, town: str, session_id: str) -> dict[str, dict[str, str]]:
    """The session's tellers (监票人), 2 of 3, each with a key of their own, through the API (the
    tellers' page comes later): a secret electronic round opens only with them."""
    from piaojue.teller import new_key, registration
    from shared.auth import Role

    keys = {t: new_key() for t in TELLERS}
    for teller, key in keys.items():
        _ballot(settings, town, "PUT", "/tellers/me/key", Role.TELLER, teller, registration(key))
    _ballot(settings, town, "PUT", f"/sessions/{session_id}/tellers", Role.PRESIDING, "chair",
            {"tellers": list(TELLERS), "threshold": 2})
    return keys


def present_shares(settings, town: str, vote_id: str, keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Two tellers open their shares of the closed round's key and present them (what
    ``piaojue ballot present-share`` does): the sealed ballots are counted."""
    from piaojue.teller import open_share
    from shared.auth import Role

    for teller in TELLERS[:2]:
        mine = _ballot(settings, town, "GET", f"/votes/{vote_id}/shares/mine", Role.TELLER, teller)
        counted = _ballot(settings, town, "POST", f"/votes/{vote_id}/shares", Role.TELLER, teller, open_share(keys[teller], mine))
    return counted
