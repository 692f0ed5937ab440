"""A check schemathesis runs beside its own (loaded by test_api_contract.py through ``hooks``).

Schemathesis' ``positive_data_acceptance`` is told that 422 is an acceptable answer to a
schema-valid request, because some rules cannot be written in a JSON Schema: a slate must be
competitive (差额), a mark must be for a candidate on the ballot, an Idempotency-Key must not be
reused for another request. Such a refusal carries the rule's own code. This check keeps the other
half of positive_data_acceptance's promise: a request the schema allows is never refused as
malformed (``invalid-request``, ``invalid-characters``): that would mean the schema is wrong."""

from __future__ import annotations

import schemathesis

MALFORMED = {"invalid-request", "invalid-characters"}


@schemathesis.check
def schema_valid_data_is_never_refused_as_malformed(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    problem = response.json()
    if problem.get("code") in MALFORMED:
        raise AssertionError(f"schema-valid data refused as {problem['code']}: {problem.get('detail')}")
    return None
