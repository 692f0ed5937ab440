-- The ballot service's schema (票决).

-- Slates as published by intake (intake.slate.published).
CREATE TABLE slates (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    title        text NOT NULL,
    year         int NOT NULL,
    seats        int NOT NULL CHECK (seats > 0),
    candidates   jsonb NOT NULL,           -- [{candidate_id, title, summary}]
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- A sitting of a people's congress (人代会会议).
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    name         text NOT NULL,
    year         int NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The roster: seated deputies (实有代表) and who answered the roll call (签到).
CREATE TABLE roster (
    session_id uuid NOT NULL REFERENCES sessions(id),
    deputy_id  text NOT NULL,
    name       text NOT NULL,
    present    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (session_id, deputy_id)
);

CREATE TABLE votes (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES sessions(id),
    jurisdiction text NOT NULL,
    slate_id     uuid NOT NULL REFERENCES slates(id),
    status       text NOT NULL CHECK (status IN ('draft', 'open', 'closed', 'certified')),
    rules        jsonb NOT NULL,           -- frozen at open
    seats        int NOT NULL,
    seated       int,                      -- at open
    present      int,                      -- at open
    issued       int,                      -- 发出: ballots issued at open
    result       jsonb,                    -- tally and outcome, at close
    opened_at    timestamptz,
    closed_at    timestamptz,
    certified_at timestamptz,
    certified_by text
);

-- Who received a ballot and whether they have cast it. Nothing here says how they voted.
CREATE TABLE issued (
    vote_id   uuid NOT NULL REFERENCES votes(id),
    deputy_id text NOT NULL,
    cast_done boolean NOT NULL DEFAULT false,
    PRIMARY KEY (vote_id, deputy_id)
);

-- The ballots cast (无记名): no deputy, no time, a random id. Nothing here says who cast them.
CREATE TABLE ballots (
    id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vote_id uuid NOT NULL REFERENCES votes(id),
    marks   jsonb NOT NULL                 -- {candidate_id: "for" | "against" | "abstain"}
);
CREATE INDEX ballots_vote ON ballots (vote_id);
