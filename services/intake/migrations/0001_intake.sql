-- The intake service's schema (征集).

CREATE TABLE proposals (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    stage        text NOT NULL,
    fields       jsonb NOT NULL,           -- ProposalFields
    disposition  text,                     -- once not chosen
    disposition_reason text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proposals_scope ON proposals (jurisdiction, year);

-- Every screening decision: who, when, from, to, why.
CREATE TABLE decisions (
    seq         bigserial PRIMARY KEY,
    proposal_id uuid NOT NULL REFERENCES proposals(id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    from_stage  text NOT NULL,
    to_stage    text NOT NULL,
    reason      text NOT NULL DEFAULT ''
);

CREATE TABLE slates (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    title        text NOT NULL,
    year         int NOT NULL,
    seats        int NOT NULL,
    status       text NOT NULL CHECK (status IN ('published', 'decided')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE slate_candidates (
    slate_id    uuid NOT NULL REFERENCES slates(id),
    proposal_id uuid NOT NULL REFERENCES proposals(id) UNIQUE,
    PRIMARY KEY (slate_id, proposal_id)
);
