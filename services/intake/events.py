"""Events the intake service consumes: the certified result (dispositions and the project
library's carry-over), supervision's news of projects (for the tracking lookup), and its own
merges (told to the proposers of the merged proposals)."""

from __future__ import annotations

from decimal import Decimal

from services.intake import store
from services.intake.domain import carryover, eligibility
from services.intake.domain import screening as rules
from services.intake.domain.screening import Disposition, ProposalFields, Stage
from services.intake.settings import get_intake_settings
from shared.contracts.ballot import ResultCertified
from shared.contracts.envelope import Envelope, PoisonMessage
from shared.contracts.intake import ProposalMerged
from shared.contracts.supervision import InspectionRecorded, ProgressReported, ProjectCompleted, ProjectCreated
from shared.db import UnitOfWork
from shared.messaging import Consumer

results = Consumer("intake.results")
projects = Consumer("intake.projects")
notices = Consumer("intake.notices")


@results.on(ResultCertified)
async def result_certified(uow: UnitOfWork, envelope: Envelope, result: ResultCertified) -> None:
    """Chosen candidates are marked chosen; each other one gets its disposition (分类处置), and one
    for the project library enters next year's intake with its history."""
    slate = await uow.conn.fetchrow(
        "SELECT * FROM slates WHERE id = $1 AND jurisdiction = $2 FOR UPDATE", result.slate_id, envelope.jurisdiction
    )
    if slate is None:
        raise PoisonMessage(f"result for unknown slate {result.slate_id} in {envelope.jurisdiction}")
    if slate["status"] == "decided":
        return
    counts = {c.candidate_id: c for c in result.candidates}
    rows = await uow.conn.fetch(
        "SELECT p.* FROM proposals p JOIN slate_candidates s ON s.proposal_id = p.id WHERE s.slate_id = $1"
        " ORDER BY s.position NULLS LAST, p.created_at FOR UPDATE OF p", result.slate_id,
    )
    for row in rows:
        fields = row["fields"]
        if counts.get(row["id"]) and counts[row["id"]].chosen:
            stage, disposition, reason = Stage.CHOSEN, None, None
        else:
            budget = fields.get("estimated_budget")
            disposition, reason = rules.dispose(
                fields.get("funding_secured", False), Decimal(budget) if budget is not None else None,
                fields.get("beneficiaries"),
            )
            stage = Stage.DISPOSED
        await store.update(uow.conn, row["id"], stage=stage, disposition=disposition, disposition_reason=reason)
        await store.decide(uow.conn, row["id"], f"event:{envelope.type}", row["stage"], stage, reason or "票决通过")
        if disposition is Disposition.PROJECT_LIBRARY:
            await _carry_over(uow, row, result, counts.get(row["id"]), reason)
    await uow.conn.execute("UPDATE slates SET status = 'decided' WHERE id = $1", result.slate_id)


async def _carry_over(uow: UnitOfWork, row, result: ResultCertified, counted, reason: str) -> None:
    """项目库: the candidate enters next year's intake of its jurisdiction, to be screened again."""
    merged = await uow.conn.fetch("SELECT fields FROM proposals WHERE merged_into = $1 ORDER BY created_at", row["id"])
    proposals = [{"title": r["fields"]["title"], "channel": r["fields"]["channel"], "location": r["fields"].get("location", "")}
                 for r in [row, *merged]]
    supporters = (await store.supporters(uow.conn, [row["id"]]))[row["id"]]
    votes = counted and {"session": result.session_name, "vote_id": str(result.vote_id), "for": counted.for_votes,
                         "against": counted.against, "abstain": counted.abstain, "rank": counted.rank, "seated": result.seated}
    history = carryover.history(row["year"], {"id": row["id"], "code": row["code"], "title": row["fields"]["title"]},
                                proposals, supporters, votes, reason)
    fields = ProposalFields.model_validate({**row["fields"], "proposer": "", "contact": ""})
    year = row["year"] + 1
    settings = await store.year_settings(uow.conn, row["jurisdiction"], year)
    carried = await store.insert_proposal(uow.conn, row["jurisdiction"], year, fields,
                                          eligibility.check(fields.public(), settings["eligibility"]),
                                          get_intake_settings().contact_retention_days, carried_from=row["id"], history=history)
    await store.decide(uow.conn, carried["id"], "event:ballot.result.certified", Stage.SUBMITTED, Stage.SUBMITTED,
                       f"由{row['year']}年项目库结转：{reason}")


@projects.on(ProjectCreated)
async def project_created(uow: UnitOfWork, envelope: Envelope, project: ProjectCreated) -> None:
    await store.project_event(uow.conn, project.project_id, envelope.jurisdiction, project.year,
                              proposal_id=project.candidate_id)


@projects.on(ProgressReported)
async def progress_reported(uow: UnitOfWork, envelope: Envelope, progress: ProgressReported) -> None:
    """The latest report wins, whatever order reports arrive in."""
    await store.project_progress(uow.conn, progress.project_id, envelope.jurisdiction, progress.year,
                                 progress.percent_done, progress.as_of)


@projects.on(InspectionRecorded)  # version 1 or 2: the lookup shows the kind and the day, not a score
async def inspection_recorded(uow: UnitOfWork, envelope: Envelope, inspection) -> None:
    await store.project_event(uow.conn, inspection.project_id, envelope.jurisdiction, inspection.year,
                              inspection={"kind": inspection.kind, "on": inspection.inspected_on.isoformat()})


@projects.on(ProjectCompleted)
async def project_completed(uow: UnitOfWork, envelope: Envelope, completed: ProjectCompleted) -> None:
    await store.project_event(uow.conn, completed.project_id, envelope.jurisdiction, completed.year,
                              completion=completed.completion, accepted_on=completed.accepted_on)


@notices.on(ProposalMerged)
async def proposal_merged(uow: UnitOfWork, envelope: Envelope, merged: ProposalMerged) -> None:
    """告知: each proposer whose proposal was merged reads, by their tracking code, that it is now
    handled together with the others who asked the same."""
    still = [r["id"] for r in await uow.conn.fetch(
        "SELECT id FROM proposals WHERE id = ANY($1::uuid[]) AND merged_into = $2", merged.merged, merged.item_id)]
    others = merged.supporters - 1
    await store.tell_proposers(uow.conn, still, "merged",
                               f"您的提案与另外 {others} 条相同诉求合并为「{merged.title}」一并办理，可继续用本查询码查看进展。",
                               envelope.id)
