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
