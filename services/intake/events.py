"""Events the intake service consumes."""

from __future__ import annotations

from decimal import Decimal

from services.intake.domain import screening as domain
from services.intake.domain.screening import Stage
from shared.contracts.ballot import ResultCertified
from shared.contracts.envelope import Envelope, PoisonMessage
from shared.db import UnitOfWork
from shared.messaging import Consumer

results = Consumer("intake.results")


@results.on(ResultCertified)
async def result_certified(uow: UnitOfWork, envelope: Envelope, result: ResultCertified) -> None:
    """Chosen candidates are marked chosen; each other one gets its disposition (分类处置)."""
    slate = await uow.conn.fetchrow(
        "SELECT * FROM slates WHERE id = $1 AND jurisdiction = $2 FOR UPDATE", result.slate_id, envelope.jurisdiction
    )
    if slate is None:
        raise PoisonMessage(f"result for unknown slate {result.slate_id} in {envelope.jurisdiction}")
    if slate["status"] == "decided":
        return
    chosen = {c.candidate_id for c in result.candidates if c.chosen}
    rows = await uow.conn.fetch(
        "SELECT p.* FROM proposals p JOIN slate_candidates s ON s.proposal_id = p.id WHERE s.slate_id = $1 FOR UPDATE",
        result.slate_id,
    )
    for row in rows:
        fields = row["fields"]
        if row["id"] in chosen:
            stage, disposition, reason = Stage.CHOSEN, None, None
        else:
            budget = fields.get("estimated_budget")
            disposition, reason = domain.dispose(
                fields.get("funding_secured", False), Decimal(budget) if budget is not None else None,
                fields.get("beneficiaries"),
            )
            stage = Stage.DISPOSED
        await uow.conn.execute(
            "UPDATE proposals SET stage = $2, disposition = $3, disposition_reason = $4 WHERE id = $1",
            row["id"], stage, disposition, reason,
        )
        await uow.conn.execute(
            "INSERT INTO decisions (proposal_id, actor, from_stage, to_stage, reason) VALUES ($1, $2, $3, $4, $5)",
            row["id"], f"event:{envelope.type}", row["stage"], stage, reason or "票决通过",
        )
    await uow.conn.execute("UPDATE slates SET status = 'decided' WHERE id = $1", result.slate_id)
