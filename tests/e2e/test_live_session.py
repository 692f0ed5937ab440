"""The live view of a session (server-sent events): present, issued and cast as they change, no
partial tally before close, the counts at close; a stream that ends saying why (the hall
display's credential revoked at identity among the reasons), resumes with Last-Event-ID, drops a
client that does not read, and survives a replica's restart."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import httpx
import jwt
import pytest

from piaojue import processes
from shared.auth import Role
from tests.e2e.town import Town, ballots_from
from tests.support import assert_problem, eventually

DEPUTIES = [f"L{i}" for i in range(5)]
REPLICA_PORT_OFFSET = 32  # a ballot replica of this module's own, besides the cluster's


async def events(response: httpx.Response):
    """The stream's events as dicts (id, event, data parsed), heartbeats left out."""
    event: dict = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


async def next_event(stream, predicate=lambda e: True, timeout: float = 15) -> dict:
    async def read():
        async for event in stream:
            if predicate(event):
                return event
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), timeout)


def state_where(predicate):
    return lambda e: e.get("event") == "state" and predicate(e["data"])


def live_url(base: str, session: dict) -> str:
    return f"{base}/sessions/{session['id']}/live"


async def test_the_live_view_follows_the_vote_and_never_sends_a_partial_tally(settings, cluster):
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, "taihu.live")
        slate = await town.slate(["甲", "乙", "丙"], seats=2)
        a, b, c = (x["candidate_id"] for x in slate["candidates"])
        session = await town.session(DEPUTIES)
        vote = await town.vote(session, slate_id=slate["id"])
        headers = {"authorization": f"Bearer {town.token('L0', Role.DEPUTY)}"}  # a deputy's device
        seen: list[dict] = []

        async def recorded(stream):
            async for event in stream:
                seen.append(event)
                yield event

        async with client.stream("GET", live_url(settings.url("ballot"), session), headers=headers) as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            assert live.headers["x-accel-buffering"] == "no"
            stream = recorded(events(live))
            first = await next_event(stream)
            assert (first["data"]["seated"], first["data"]["present"], first["data"]["votes"][0]["status"]) == (5, 5, "draft")
            assert re.fullmatch(r"[0-9a-f]{16}", first["id"])

            await town.open(vote)
            opened = await next_event(stream, state_where(lambda s: s["votes"][0]["status"] == "open"))
            assert (opened["data"]["votes"][0]["issued"], opened["data"]["votes"][0]["cast"]) == (5, 0)

            ballots = ballots_from({a: DEPUTIES, b: DEPUTIES[:3]}, DEPUTIES, [a, b, c])
            await town.cast_all(vote, {d: ballots[d] for d in DEPUTIES[:2]})
            await next_event(stream, state_where(lambda s: s["votes"][0]["cast"] == 2))
            await town.cast_all(vote, {d: ballots[d] for d in DEPUTIES[2:]})
            await next_event(stream, state_where(lambda s: s["votes"][0]["cast"] == 5))
            await town.ok("POST", "ballot", f"/votes/{vote['id']}/close", Role.PRESIDING, "chair")
            awaiting = await next_event(stream, state_where(lambda s: s["votes"][0]["status"] == "awaiting_shares"))
            assert awaiting["data"]["votes"][0]["shares"] == {"presented": 0, "needed": 2}
            await town.present_share(vote, "T1")
            await next_event(stream, state_where(lambda s: s["votes"][0].get("shares", {}).get("presented") == 1))
            await town.present_share(vote, "T2")
            closed = await next_event(stream, state_where(lambda s: s["votes"][0]["status"] == "closed"))
            result = closed["data"]["votes"][0]["result"]
            assert (result["issued"], result["collected"], result["valid"], result["invalid"]) == (5, 5, 5, 0)
            assert result["chosen"] == [a, b] and result["finished"]
        stored = (await town.ok("GET", "ballot", f"/votes/{vote['id']}"))
        assert stored["status"] == "closed"
        # Every event before the close: no result, no candidate named, nothing a tally could be read from.
        for event in seen:
            for v in event["data"].get("votes", []):
                if v["status"] not in ("closed", "certified"):
                    assert set(v) <= {"id", "kind", "status", "round", "issued", "cast", "shares"}, v
                    assert not any(cid in json.dumps(v) for cid in (a, b, c)), v
        assert [e["data"]["votes"][0]["status"] for e in seen].count("closed") == 1


async def test_bad_requests_are_refused_before_the_stream_and_a_bad_last_event_id_starts_fresh(settings, cluster):
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, "taihu.livebad")
        session = await town.session(["B0", "B1"])
        base = settings.url("ballot")

        async def status_of(path: str, token: str, **headers) -> httpx.Response:
            async with client.stream("GET", base + path, headers={"authorization": f"Bearer {token}", **headers}) as r:
                await r.aread()
                return r

        office = town.token("office", Role.OFFICE)
        for path, token in ((f"/sessions/{uuid4()}/live", office),  # unknown
                            (f"/sessions/{session['id']}/live", Town(settings, client, "taihu.other").token("o", Role.OFFICE)),
                            (f"/sessions/{session['id']}/live", town.token("B0", Role.DEPUTY, session=str(uuid4()), term=1))):
            refused = await status_of(path, token)
            assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json", refused.text
            assert refused.json()["code"] == "session-not-found"
        assert (await status_of("/sessions/not-a-uuid/live", office)).status_code == 422
        expired = await status_of(f"/sessions/{session['id']}/live", town.token("office", Role.OFFICE, ttl_s=-5))
        assert expired.status_code == 401 and expired.json()["code"] == "token-expired"

        for bad in ("x" * 5000, "12345", "ZZZZZZZZZZZZZZZZ", "0123456789abcdeg", "最后一个"):
            async with client.stream("GET", live_url(base, session), headers={
                    "authorization": f"Bearer {office}", "last-event-id": bad.encode()}) as live:
                assert live.status_code == 200
                first = await next_event(events(live))
                assert first["event"] == "state" and first["data"]["present"] == 2
        # The id it already has: nothing until something changes.
        async with client.stream("GET", live_url(base, session), headers={
                "authorization": f"Bearer {office}", "last-event-id": first["id"]}) as live:
            stream = events(live)
            await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"absent": ["B1"]})
            changed = await next_event(stream)
            assert changed["data"]["present"] == 1 and changed["id"] != first["id"]

        # One caller: a limited number of streams at once per replica.
        async with contextlib_streams(client, live_url(base, session), office, settings.live_streams_per_caller):
            over = await status_of(f"/sessions/{session['id']}/live", office)
            assert over.status_code == 429 and over.json()["code"] == "too-many-streams"
        assert (await status_of(f"/sessions/{uuid4()}/live", office)).status_code == 404  # the streams were given back


class contextlib_streams:  # noqa: N801 (used as a context manager)
    """``n`` streams held open with one token."""

    def __init__(self, client: httpx.AsyncClient, url: str, token: str, n: int) -> None:
        self.client, self.url, self.token, self.n, self.open = client, url, token, n, []

    async def __aenter__(self):
        for _ in range(self.n):
            cm = self.client.stream("GET", self.url, headers={"authorization": f"Bearer {self.token}"})
            response = await cm.__aenter__()
            assert response.status_code == 200
            stream = events(response)  # kept: a generator collected early would close its response
            await next_event(stream)
            self.open.append((cm, stream))

    async def __aexit__(self, *exc):
        for cm, _ in self.open:
            await cm.__aexit__(None, None, None)


async def test_a_stream_ends_saying_why_when_access_ends(settings, cluster):
    from shared.contracts.envelope import Envelope
    from shared.contracts.identity import CredentialRevoked
    from shared.messaging import new_broker, publish_envelope

    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, "taihu.liveend")
        session = await town.session(["E0", "E1", "E2"])
        base, revoked_credential = settings.url("ballot"), uuid4()

        def open_stream(token: str):
            return client.stream("GET", live_url(base, session), headers={"authorization": f"Bearer {token}"})

        async def ended(response) -> tuple[list[dict], dict]:
            seen = [e async for e in events(response)]
            assert seen and seen[-1]["event"] == "end", seen
            return seen[:-1], seen[-1]["data"]

        async with (open_stream(town.token("E0", Role.DEPUTY)) as absent,
                    open_stream(town.token("E1", Role.DEPUTY, credential=str(revoked_credential))) as revoked,
                    open_stream(town.token("E2", Role.DEPUTY, ttl_s=2)) as expiring,
                    open_stream(town.token("office", Role.OFFICE)) as office):
            for response in (absent, revoked, expiring, office):
                assert response.status_code == 200
            _, why = await asyncio.wait_for(ended(expiring), 10)
            assert why["reason"] == "token-expired" and why["reconnect"] is True

            await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"absent": ["E0"]})
            _, why = await asyncio.wait_for(ended(absent), 10)
            assert (why["reason"], why["reconnect"]) == ("deputy-absent", False)

            broker = new_broker(settings)
            await broker.connect()
            try:
                event = CredentialRevoked(credential_id=revoked_credential, session_id=session["id"], term=1, deputy_id="E1",
                                          reason="revoked")
                await publish_envelope(broker, Envelope(type=event.TYPE, version=event.VERSION, jurisdiction=town.jurisdiction,
                                                        correlation_id=uuid4(), producer="identity",
                                                        data=event.model_dump(mode="json")).model_dump(mode="json"))
            finally:
                await broker.stop()
            _, why = await asyncio.wait_for(ended(revoked), 10)
            assert why["reason"] == "credential-revoked"

            await town.ok("POST", "ballot", f"/sessions/{session['id']}/close", Role.PRESIDING, "chair")
            states, why = await asyncio.wait_for(ended(office), 10)
            assert why["reason"] == "session-closed" and states[-1]["data"]["status"] == "closed"
            last_id = states[-1]["id"]
        # Refused before the stream from now on; a closed session's last state once, then 204 for whoever has it.
        async with open_stream(town.token("E1", Role.DEPUTY, credential=str(revoked_credential))) as again:
            assert again.status_code == 403 and json.loads(await again.aread())["code"] == "credential-revoked"
        async with open_stream(town.token("office", Role.OFFICE)) as late:
            states, why = await ended(late)
            assert [s["id"] for s in states] == [last_id] and why["reason"] == "session-closed"
        async with client.stream("GET", live_url(base, session), headers={
                "authorization": f"Bearer {town.token('office', Role.OFFICE)}", "last-event-id": last_id}) as done:
            assert done.status_code == 204


async def test_the_hall_displays_credential_is_revoked_as_a_deputys_is(settings, cluster):
    """The office revokes the big screen's credential at identity; the ballot service hears of it
    as of a deputy's (identity.credential.revoked): the screen's stream ends credential-revoked and
    the credential reads nothing more. Revoking what is not this session's display changes nothing."""
    async with httpx.AsyncClient(timeout=30) as client:
        town, neighbour = Town(settings, client, "taihu.livescreen"), Town(settings, client, "taihu.livescreen2")
        session, other = await town.session(["P0", "P1"]), await neighbour.session(["Q0"])
        identity, base = settings.url("identity"), settings.url("ballot")
        office = {"authorization": f"Bearer {town.token('office', Role.OFFICE)}"}

        async def turn_on(s: dict, by: Town = town):  # 本机用作大屏, once identity has heard of the session
            response = await client.post(f"{identity}/sessions/{s['id']}/display",
                                         headers={"authorization": f"Bearer {by.token('office', Role.OFFICE)}"})
            return response.json() if response.status_code == 201 else None

        def revoke(credential_id, s: dict = session, headers: dict = office):
            return client.post(f"{identity}/sessions/{s['id']}/display/{credential_id}/revoke", headers=headers,
                               json={"reason": "大屏电脑已撤走"})

        def as_screen(screen: dict) -> dict:
            return {"authorization": f"Bearer {screen['access_token']}"}

        screen = await eventually(lambda: turn_on(session), what="identity to learn of the session")
        spare = await turn_on(session)  # a second screen in the hall
        elsewhere = await eventually(lambda: turn_on(other, neighbour), what="identity to learn of the other session")
        claims = jwt.decode(screen["access_token"], options={"verify_signature": False})
        assert (claims["role"], claims["session"], claims["cid"]) == ("display", session["id"], screen["credential_id"])

        # Not this session's display: an unknown id, another township's screen, another township's office.
        assert_problem(await revoke(uuid4()), 404, "credential-not-found")
        assert_problem(await revoke(elsewhere["credential_id"]), 404, "credential-not-found")
        sibling = {"authorization": f"Bearer {neighbour.token('office', Role.OFFICE)}"}
        assert_problem(await revoke(screen["credential_id"], headers=sibling), 404, "session-not-found")

        async with client.stream("GET", live_url(base, session), headers=as_screen(screen)) as live:
            assert live.status_code == 200
            stream = events(live)
            await next_event(stream, lambda e: e.get("event") == "state")
            revoked = await revoke(screen["credential_id"])
            assert revoked.status_code == 200 and revoked.json()["status"] == "revoked", revoked.text
            end = await next_event(stream, lambda e: e.get("event") == "end")
            assert (end["data"]["reason"], end["data"]["reconnect"]) == ("credential-revoked", False)
        async with client.stream("GET", live_url(base, session), headers=as_screen(screen)) as again:
            await again.aread()
            assert_problem(again, 403, "credential-revoked")
        assert_problem(await client.get(f"{base}/sessions/{session['id']}", headers=as_screen(screen)), 403, "credential-revoked")
        assert_problem(await revoke(screen["credential_id"]), 409, "credential-already-revoked")

        # The other screens are untouched.
        for other_screen, s in ((spare, session), (elsewhere, other)):
            assert (await client.get(f"{base}/sessions/{s['id']}", headers=as_screen(other_screen))).status_code == 200
        listed = (await client.get(f"{identity}/sessions/{session['id']}/credentials", headers=office)).json()
        assert {c["id"]: (c["kind"], c["status"], c["bound_by"]) for c in listed} == {
            screen["credential_id"]: ("display", "revoked", "office"), spare["credential_id"]: ("display", "active", "office")}


# ---------------------------------------------------------------- a replica of this module's own


class Replica:
    def __init__(self, settings, log: Path, **env: str) -> None:
        self.settings, self.log, self.env = settings, log, env
        self.port = settings.base_port + REPLICA_PORT_OFFSET
        self.url = f"http://{settings.http_host}:{self.port}"
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.ballot", "--port", str(self.port)],
                                         env={**os.environ, **self.env}, stdout=out, stderr=out)

        async def ready() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"{self.url}/health/ready")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(ready, timeout=60, what="the extra ballot replica")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


@pytest.fixture
async def replica(settings, cluster, tmp_path: Path):
    r = Replica(settings, tmp_path / "ballot-live.log", PIAOJUE_LIVE_QUEUE="4", PIAOJUE_LIVE_READ_SECONDS="0.02")
    try:
        await r.start()
        yield r
    finally:
        if r.proc is not None:
            processes.stop({"ballot": r.proc})


async def test_clients_reconnect_to_a_restarted_replica_and_resume_without_a_gap(settings, replica):
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, "taihu.liverestart")
        session = await town.session(DEPUTIES)
        office = town.token("office", Role.OFFICE)
        headers = {"authorization": f"Bearer {office}"}
        tokens = [town.token(d, Role.DEPUTY) for d in DEPUTIES]

        async def follow(token: str) -> tuple[str, list[dict]]:
            async with client.stream("GET", live_url(replica.url, session), headers={"authorization": f"Bearer {token}"}) as r:
                seen = [e async for e in events(r)]
            return token, seen

        followers = [asyncio.create_task(follow(t)) for t in tokens]
        async with client.stream("GET", live_url(settings.url("ballot"), session), headers=headers) as other:
            same = await next_event(events(other))  # another replica: the same state, the same id

        async def all_following() -> bool:
            metrics = (await client.get(f"{replica.url}/metrics")).text
            return "piaojue_live_clients 5.0" in metrics

        await eventually(all_following, what="five streams on the replica")
        replica.stop(signal.SIGTERM)  # graceful: every stream is told, then the process exits
        for _token, seen in [await asyncio.wait_for(f, 20) for f in followers]:
            assert seen[0]["id"] == same["id"] and seen[0]["data"] == same["data"]
            assert seen[-1]["event"] == "end" and seen[-1]["data"]["reason"] == "replica-stopping"

        # While it is down, a deputy leaves. Back up, each client resumes from the id it had.
        await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"absent": ["L4"]})
        await replica.start()
        for token in tokens[:4]:
            async with client.stream("GET", live_url(replica.url, session), headers={
                    "authorization": f"Bearer {token}", "last-event-id": same["id"]}) as resumed:
                state = await next_event(events(resumed))
                assert state["data"]["present"] == 4 and state["id"] != same["id"]
        async with client.stream("GET", live_url(replica.url, session), headers={
                "authorization": f"Bearer {tokens[4]}", "last-event-id": same["id"]}) as gone:
            assert gone.status_code == 403 and json.loads(await gone.aread())["code"] == "deputy-absent"

        # A crash: the connection just drops; the client reconnects and resumes the same way.
        async with client.stream("GET", live_url(replica.url, session), headers=headers) as r:
            stream = events(r)
            before = await next_event(stream)
            replica.stop(signal.SIGKILL)
            with pytest.raises(httpx.HTTPError):
                async for _ in stream:
                    pass
        await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": ["L4"]})
        await replica.start()
        async with client.stream("GET", live_url(replica.url, session), headers={**headers, "last-event-id": before["id"]}) as r:
            assert (await next_event(events(r)))["data"]["present"] == 5


async def test_casts_taken_by_a_replica_that_watches_nothing_reach_the_screens_of_another(settings, cluster, tmp_path: Path):
    """A load balancer sends a deputy's cast to one replica and the hall's screen to another: the
    casting replica follows no session and notifies nobody of a cast, but the screens' replica reads
    a session with an open vote every ``live_read_seconds``. Its safety-net re-read of every watched
    session is every 10 min here, so only that polling can bring the count; and once no vote is open
    the polling stops (the database is not read for idle screens)."""
    screens = Replica(settings, tmp_path / "ballot-screens.log", PIAOJUE_LIVE_REFRESH_SECONDS="600",
                      PIAOJUE_LIVE_READ_SECONDS="0.05")
    try:
        await screens.start()
        async with httpx.AsyncClient(timeout=30) as client:

            async def reads() -> float:
                metrics = (await client.get(f"{screens.url}/metrics")).text
                return float(re.search(r"^piaojue_live_reads_total (\S+)$", metrics, re.M).group(1))

            town = Town(settings, client, "taihu.livespread")
            slate = await town.slate(["甲", "乙", "丙"], seats=2)
            a, b, c = (x["candidate_id"] for x in slate["candidates"])
            session = await town.session(DEPUTIES)
            vote = await town.vote(session, slate_id=slate["id"])
            await town.open(vote)
            headers = {"authorization": f"Bearer {town.token('office', Role.OFFICE)}"}
            async with client.stream("GET", live_url(screens.url, session), headers=headers) as live:
                stream = events(live)
                await next_event(stream, state_where(lambda s: s["votes"][0]["status"] == "open"))
                ballots = ballots_from({a: DEPUTIES, b: DEPUTIES[:3]}, DEPUTIES, [a, b, c])
                await town.cast_all(vote, {d: ballots[d] for d in DEPUTIES[:2]})  # through the cluster's replica
                seen = await next_event(stream, state_where(lambda s: s["votes"][0]["cast"] == 2))
                assert seen["data"]["votes"][0]["issued"] == 5
                polled = await reads()

                async def ten_more() -> bool:
                    return await reads() >= polled + 10

                await eventually(ten_more, what="ten reads while the vote is open and nothing notifies")

                await town.ok("POST", "ballot", f"/votes/{vote['id']}/close", Role.PRESIDING, "chair")
                await next_event(stream, state_where(lambda s: s["votes"][0]["status"] == "awaiting_shares"))
                closed = await reads()
                await asyncio.sleep(1)  # twenty read intervals: absence can only be observed over a window
                assert await reads() - closed <= 1  # at most the read under way; polling would make about twenty
    finally:
        screens.stop()


async def test_a_client_that_does_not_read_is_dropped_and_resumes(settings, replica):
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, "taihu.liveslow")
        slate = await town.slate(["甲", "乙"], seats=1)
        session = await town.session(DEPUTIES)
        # Draft votes: a larger state, so that the socket's buffers fill sooner.
        await asyncio.gather(*(town.vote(session, slate_id=slate["id"]) for _ in range(120)))
        office = town.token("office", Role.OFFICE)

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # a phone on a poor line
        sock.connect((settings.http_host, replica.port))
        sock.sendall(f"GET /sessions/{session['id']}/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {office}\r\n\r\n".encode())
        first = sock.recv(1024)
        assert first.startswith(b"HTTP/1.1 200")

        # A new state each time, and one a read made a few changes later still finds new: eight in a cycle.
        flips = itertools.cycle([{"absent": [d]} for d in DEPUTIES[:4]] + [{"present": [d]} for d in DEPUTIES[:4]])

        async def dropped() -> bool:
            metrics = (await client.get(f"{replica.url}/metrics")).text
            if 'piaojue_live_ended_total{reason="too-slow"} 1.0' in metrics:
                return True
            for _ in range(10):
                await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json=next(flips))
            return False

        await eventually(dropped, timeout=60, what="the slow client to be dropped")
        sock.setblocking(False)
        received = bytearray(first)
        loop = asyncio.get_running_loop()
        while not received.endswith(b"0\r\n\r\n"):  # what was buffered, then the end and the last chunk
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
            assert chunk, "connection closed before the end event"
            received += chunk
        sock.close()
        text = received.decode(errors="replace")
        assert '"reason": "too-slow"' in text and '"reconnect": true' in text
        last_id = re.findall(r"^id: ([0-9a-f]{16})$", text, re.M)[-1]
        # A change the cycle never made: whatever state the client last got, a newer one follows.
        await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"absent": ["L4"]})
        async with client.stream("GET", live_url(replica.url, session), headers={
                "authorization": f"Bearer {office}", "last-event-id": last_id}) as resumed:
            current = await next_event(events(resumed))
            assert current["event"] == "state" and current["id"] != last_id and len(current["data"]["votes"]) == 120


async def test_streams_stay_open_while_the_database_connection_is_lost_and_catch_up_after(settings, cluster):
    import asyncpg

    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, "taihu.livedb")
        session = await town.session(DEPUTIES)
        office = town.token("office", Role.OFFICE)
        async with client.stream("GET", live_url(settings.url("ballot"), session),
                                 headers={"authorization": f"Bearer {office}"}) as live:
            stream = events(live)
            before = await next_event(stream)
            # What a database restart does to the watcher: its connection is cut (the pool's are not
            # touched here, so that the roll call below still goes through).
            admin = await asyncpg.connect(settings.database_url)
            try:
                cut = await admin.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                           " WHERE application_name = 'piaojue-ballot-live' AND datname = current_database()")
            finally:
                await admin.close()
            assert cut >= 1
            await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"absent": ["L0"]})
            after = await next_event(stream, timeout=20)  # same stream: reconnected, re-read, sent
            assert after["data"]["present"] == before["data"]["present"] - 1
