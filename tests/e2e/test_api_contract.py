"""The four services' HTTP contracts (docs/openapi/<service>.json), checked against the services
running as processes: every answer of a whole year in a township is what the documents say, and
schemathesis (every check, every operation, the stateful phase following the documents' links),
trying them as an outside tester would with a township office's token, the county's token and
the roles some routes need, finds no 5xx and no answer the documents do not describe."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis

from piaojue import scenario
from shared.auth import Role, mint
from shared.settings import SERVICES

FOUR = ("intake", "ballot", "supervision", "scoring")  # not yet the identity service's contract

HERE = Path(__file__).parent
DOCS = HERE.parents[1] / "docs" / "openapi"
# A county of its own (the others' tests share taihu), so that the run may change its methods and
# assessments at will: the township's year, its neighbours', the county's ranking are all its own.
COUNTY, TOWN = "shiyanxian", "shiyanxian.shiyan"
MAX_EXAMPLES = 25  # per operation and phase: the four runs, side by side, take about half a minute on 2 cores
SEED = 7  # fixed, so that a CI run is reproducible; run with another locally to explore further

# Who calls each service in the schemathesis run, and the routes that need another role to get
# past 403 (a deputy casts, tellers enter paper ballots, the presiding officer certifies).
CALLERS: dict[str, tuple[Role, dict[str, Role]]] = {
    "intake": (Role.OFFICE, {}),
    "ballot": (Role.OFFICE, {"cast_ballot": Role.DEPUTY, "enter_paper_ballot": Role.TELLER,
                             "enter_paper_totals": Role.TELLER, "certify": Role.PRESIDING}),
    "supervision": (Role.OFFICE, {}),
    "scoring": (Role.COUNTY, {}),
}


def _token(settings, role: Role) -> str:
    jurisdiction = COUNTY if role is Role.COUNTY else TOWN
    return mint(f"contract-{role}", role, jurisdiction, secret=settings.auth_secret)


@dataclass
class Year:
    exchanges: list[httpx.Response]  # every request of the year and its answer
    known: dict[str, list]  # what the year left, by kind: ids, the term, the year


@pytest.fixture(scope="module")
async def year(settings, cluster) -> Year:
    """A whole year in the township through the four APIs (proposals, slate, votes, projects,
    inspections, an assessment), then a read of everything it left; every exchange recorded."""
    exchanges: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        exchanges.append(response)

    async with httpx.AsyncClient(timeout=30, event_hooks={"response": [keep]}) as client:
        outcome = await scenario.run(settings, town=TOWN, client=client)
        ids, office = outcome["ids"], {"authorization": f"Bearer {_token(settings, Role.OFFICE)}"}
        county = {"authorization": f"Bearer {_token(settings, Role.COUNTY)}"}
        vote = (await client.get(f"{settings.url('ballot')}/votes/{ids['vote']}", headers=office)).json()
        session = (await client.get(f"{settings.url('ballot')}/sessions/{vote['session_id']}", headers=office)).json()
        proposals = (await client.get(f"{settings.url('intake')}/proposals", headers=office)).json()
        projects = (await client.get(f"{settings.url('supervision')}/projects", headers=office)).json()
        details = [(await client.get(f"{settings.url('supervision')}/projects/{p['id']}", headers=office)).json()
                   for p in projects]
        photo = next(ph for d in details for r in d["progress"] for ph in r["photos"])
        # What the year does not do by itself: the county's webhook subscriber (a port nobody
        # listens on), a delivery sent again, the board's colours.
        hook = {"name": "县考核系统", "url": "http://127.0.0.1:9/hooks"}
        assert (await client.post(f"{settings.url('scoring')}/webhooks/subscribers", json=hook, headers=county)).status_code == 201
        assert (await client.post(f"{settings.url('scoring')}/assessments", json={"jurisdiction": TOWN, "year": 2024},
                                  headers=county)).status_code == 201
        deliveries = (await client.get(f"{settings.url('scoring')}/webhooks/deliveries", headers=county)).json()
        assert (await client.post(f"{settings.url('scoring')}/webhooks/deliveries/{deliveries['deliveries'][0]['id']}/redeliver",
                                  headers=county)).status_code == 200
        assert (await client.put(f"{settings.url('supervision')}/settings/board", json={"red_below": 30, "yellow_below": 90},
                                 headers=office)).status_code == 200
        assert (await client.post(f"{settings.url('intake')}/slates/{ids['slate']}/result-notice", json={"days": 7},
                                  headers=office)).status_code == 201
        for service, path, who in [
            ("ballot", f"/votes/{ids['vote']}/publication", office), ("ballot", f"/slates/{ids['slate']}", office),
            ("ballot", f"/votes/{ids['vote']}/ballot-paper", office), ("ballot", "/sessions?year=2024", office),
            ("ballot", f"/sessions/{session['id']}/deputies", office), ("ballot", f"/terms/{session['term']}/roster", office),
            ("ballot", "/slates?year=2024", office),
            ("intake", f"/slates/{ids['slate']}", office), ("intake", f"/proposals/{proposals[0]['id']}", office),
            ("intake", f"/proposals/{proposals[0]['id']}/contact", office), ("intake", "/slates?year=2024", office),
            ("intake", "/candidates?year=2024", office), ("intake", "/duplicates?year=2024", office),
            ("intake", "/exports/proposals?year=2024", office), ("intake", "/imports/template", office),
            ("intake", "/places", office), ("intake", f"/public/track/{proposals[0]['code']}", {}),
            ("supervision", f"/photos/{photo}", office), ("supervision", "/ledgers.xlsx?year=2024", office),
            ("scoring", "/methods/2024", county), ("scoring", "/methods/2024/versions", county),
            ("scoring", "/assessments?year=2024", county), ("scoring", "/assessments.xlsx?year=2024", county),
            ("scoring", f"/assessments/{TOWN}/2024", county), ("scoring", f"/assessments/{TOWN}/2024/versions", county),
            ("scoring", "/county/changes?year=2024", county), ("scoring", "/projects?year=2024", county),
            ("scoring", "/webhooks/subscribers", county),
        ]:
            assert (await client.get(settings.url(service) + path, headers=who)).status_code == 200
    known = {"vote": [ids["vote"]], "session": [session["id"]], "slate": [ids["slate"]], "term": [session["term"]],
             "candidate": [s["id"] for s in vote["subjects"]], "proposal": [p["id"] for p in proposals],
             "project": [p["id"] for p in projects], "year": [2024], "jurisdiction": [TOWN]}
    return Year(exchanges, known)


def _documents() -> dict[str, schemathesis.schemas.BaseSchema]:
    """Each service's committed OpenAPI document."""
    return {s: schemathesis.openapi.from_path(DOCS / f"{s}.json") for s in SERVICES}


def test_every_answer_of_a_township_year_is_what_the_openapi_documents_say(settings, year):
    documents, by_port = _documents(), {settings.port(s): s for s in SERVICES}
    checked: set[tuple[str, str]] = set()
    for response in year.exchanges:
        request, service = response.request, by_port[response.request.url.port]
        if service not in FOUR:
            continue
        operation = documents[service].find_operation_by_path(request.method, request.url.path)
        assert operation is not None, f"{request.method} {request.url.path} is in no OpenAPI document of {service}"
        operation.validate_response(response)  # status documented, content type, body schema
        checked.add((service, operation.label))
    every = {(s, result.ok().label) for s, doc in documents.items() if s in FOUR for result in doc.get_all_operations()}
    assert every - checked == NOT_IN_A_YEAR, sorted(every - checked)


# What a plain year does not call (the schemathesis run below does): health and metrics, a
# withdrawal, paper ballots, voiding, a roster change, a receipt check, the ballots' recount copy,
# the live stream, an eligibility override and an unmerge.
NOT_IN_A_YEAR = {(s, f"GET {path}") for s in FOUR for path in ("/health/live", "/health/ready", "/metrics")} | {
    ("ballot", "POST /votes/{vote_id}/withdrawals"), ("ballot", "POST /votes/{vote_id}/paper-ballots"),
    ("ballot", "PUT /votes/{vote_id}/paper-totals"), ("ballot", "GET /sessions/{session_id}/live"),
    ("ballot", "POST /votes/{vote_id}/void"), ("ballot", "POST /votes/{vote_id}/rounds/current/void"),
    ("ballot", "POST /terms/{term}/roster/changes"),
    ("ballot", "GET /votes/{vote_id}/receipts/{tracker}"), ("ballot", "GET /votes/{vote_id}/publication/ballots"),
    ("intake", "POST /proposals/{proposal_id}/eligibility/overrides"), ("intake", "POST /proposals/{proposal_id}/unmerge"),
}


BINDINGS = {  # where each service takes which of the year's values
    "intake": {"path.proposal_id": "proposal", "path.slate_id": "slate", "body.proposal_ids[*]": "proposal",
               "query.year": "year"},
    "ballot": {"path.vote_id": "vote", "path.session_id": "session", "path.slate_id": "slate", "path.term": "term",
               "body.slate_id": "slate", "body.candidate_id": "candidate", "body.term": "term", "body.year": "year"},
    "supervision": {"path.project_id": "project", "query.year": "year"},
    "scoring": {"path.jurisdiction": "jurisdiction", "body.jurisdiction": "jurisdiction", "query.year": "year",
                "path.year": "year"},
}


def _config(settings, service: str, known: dict[str, list], folder: Path) -> Path:
    """schemathesis.toml for one service (TOML strings written as JSON strings, which TOML reads)."""
    role, special = CALLERS[service]
    q = json.dumps
    lines = [
        f"hooks = {q(str(HERE / 'schemathesis_hooks.py'))}",
        f"seed = {SEED}",
        "max-stream-events = 1  # the live view streams for ever: one event is enough",
        "request-timeout = 10",
        f"headers = {{ Authorization = {q('Bearer ' + _token(settings, role))} }}",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "database = 'none'",
        "codec = 'utf-8'  # JSON Schema strings are Unicode text: no lone surrogates (those: test_bad_input.py)",
        "[checks.positive_data_acceptance]",
        "# 422 with a rule's own code: see schemathesis_hooks.py, which still refuses 422 invalid-request;",
        "# 415: a photo's bytes are not an image (the schema says only: binary);",
        "# 429: the public tracking lookup's limit per address (30 a minute), which a run this size passes",
        'expected-statuses = ["2xx", "401", "403", "404", "409", "415", "422", "429"]',
    ]
    # Half of the ids, terms and years drawn are the year's real ones, so that the run reaches past
    # 404 into the rules, on real data (it may change it: the county is its own).
    lines += ["[dictionaries]"] + [f"{kind} = {{ values = {q(values)} }}" for kind, values in known.items()]
    lines += ["[parameters]"] + [f"{q(where)} = {{ dictionary = {q(kind)}, probability = 0.5 }}"
                                 for where, kind in BINDINGS.get(service, {}).items()]
    for operation, other in special.items():
        lines += ["[[operations]]", f"include-operation-id = {q(operation)}",
                  f"headers = {{ Authorization = {q('Bearer ' + _token(settings, other))} }}"]
    path = folder / f"{service}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _schemathesis(settings, service: str, known: dict[str, list], folder: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(_config(settings, service, known, folder)),
        "run", f"{settings.url(service)}/openapi.json", "--checks", "all", "--no-color",
        cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode(errors="replace")


async def test_schemathesis_finds_no_server_error_and_no_answer_the_documents_do_not_describe(settings, year, tmp_path):
    # The four runs side by side (the services mostly wait on the database); each prints its summary.
    runs = dict(zip(CALLERS, await asyncio.gather(*(_schemathesis(settings, s, year.known, tmp_path) for s in CALLERS)),
                    strict=True))
    for service, (_, output) in runs.items():  # e.g. "1291 generated, 1291 passed, 10 skipped; 2 warnings in 24.1s"
        cases = next((line.strip() for line in output.splitlines() if " generated, " in line), "no test cases")
        print(f"schemathesis {service}: {cases}; {output.rstrip().splitlines()[-1].strip('= ')}")
    failed = {service: output for service, (code, output) in runs.items() if code != 0 or "Server error" in output}
    assert not failed, "\n\n".join(f"schemathesis against {service}:\n{output}" for service, output in failed.items())
