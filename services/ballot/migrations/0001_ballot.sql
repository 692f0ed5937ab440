-- The ballot service's schema (票决).
--
-- Secrecy (无记名投票): `issued` records who received and cast a ballot; `ballots` and
-- `receipts` record what was cast. Nothing links the two: no deputy, no time, random ids. At
-- the close of each round its rows are rewritten in random order in one transaction (and the
-- old row versions vacuumed), so neither physical order nor transaction ids tie a ballot to the
-- deputy who cast it.

-- The roster of a congress term (届) of a jurisdiction: the nominal quota (名额) and the deputies.
-- Seated deputies (实有代表) are those not vacated; quorum and majorities count them.
CREATE TABLE terms (
    jurisdiction text NOT NULL,
    term         int NOT NULL,
    quota        int NOT NULL CHECK (quota > 0),
    PRIMARY KEY (jurisdiction, term)
);

CREATE TABLE deputies (
    jurisdiction text NOT NULL,
    term         int NOT NULL,
    deputy_id    text NOT NULL,
    name         text NOT NULL,
    seated       boolean NOT NULL DEFAULT true,      -- false: the seat is vacant (出缺)
    PRIMARY KEY (jurisdiction, term, deputy_id),
    FOREIGN KEY (jurisdiction, term) REFERENCES terms
);

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

-- Voted projects as supervision announces them (supervision.project.created): the subjects
-- of a satisfaction rating (满意度测评).
CREATE TABLE projects (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    title        text NOT NULL
);
CREATE INDEX projects_scope ON projects (jurisdiction, year);

-- A sitting of a people's congress (人代会会议).
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    term         int NOT NULL,
    name         text NOT NULL,
    year         int NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (jurisdiction, term) REFERENCES terms
);

-- Roll call (签到): who is present now. A deputy who leaves is marked absent again.
CREATE TABLE attendance (
    session_id uuid NOT NULL REFERENCES sessions(id),
    deputy_id  text NOT NULL,
    present    boolean NOT NULL,
    PRIMARY KEY (session_id, deputy_id)
);

CREATE TABLE votes (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES sessions(id),
    jurisdiction text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('selection', 'satisfaction')),
    mode         text NOT NULL CHECK (mode IN ('electronic', 'paper')),
    slate_id     uuid REFERENCES slates(id),
    year         int NOT NULL,
    subjects     jsonb NOT NULL,           -- [{id, title}]: candidates, or projects to rate
    withdrawn    jsonb NOT NULL DEFAULT '[]',  -- [{id, reason}] withdrawn before opening
    status       text NOT NULL CHECK (status IN ('draft', 'open', 'closed', 'certified')),
    rules        jsonb NOT NULL,           -- frozen at the first opening
    seats        int NOT NULL,
    seated       int,                      -- at the first opening
    present      int,
    round        int NOT NULL DEFAULT 0,   -- the current (or last) round
    result       jsonb,                    -- at each close: all rounds and where the vote stands
    certified_at timestamptz,
    certified_by text
);

-- Every round kept with its counts.
CREATE TABLE rounds (
    vote_id    uuid NOT NULL REFERENCES votes(id),
    round      int NOT NULL,
    candidates jsonb NOT NULL,             -- ids on this round's ballot
    seats      int NOT NULL,               -- seats open in this round
    issued     int NOT NULL,               -- 发出
    tally      jsonb,                      -- at close: collected, valid, invalid, counts
    totals_entered boolean NOT NULL DEFAULT false,  -- paper: tellers entered per-candidate totals
    PRIMARY KEY (vote_id, round)
);

-- Who received a ballot in a round and whether it was cast. Nothing here says how.
CREATE TABLE issued (
    vote_id   uuid NOT NULL,
    round     int NOT NULL,
    deputy_id text NOT NULL,
    cast_done boolean NOT NULL DEFAULT false,
    PRIMARY KEY (vote_id, round, deputy_id),
    FOREIGN KEY (vote_id, round) REFERENCES rounds
);

-- What was cast. Nothing here says who, or when within the round.
CREATE TABLE ballots (
    id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vote_id uuid NOT NULL,
    round   int NOT NULL,
    marks   jsonb NOT NULL,                -- {subject id: mark}
    FOREIGN KEY (vote_id, round) REFERENCES rounds
);
CREATE INDEX ballots_round ON ballots (vote_id, round);

-- Hashes of the private receipt codes handed to deputies at cast (published after certification).
CREATE TABLE receipts (
    vote_id uuid NOT NULL,
    round   int NOT NULL,
    hash    text NOT NULL,
    PRIMARY KEY (vote_id, round, hash),
    FOREIGN KEY (vote_id, round) REFERENCES rounds
);

-- 记名投票: only for a vote whose rules say `named`; a secret vote never writes here.
CREATE TABLE named_ballots (
    vote_id   uuid NOT NULL,
    round     int NOT NULL,
    deputy_id text NOT NULL,
    marks     jsonb NOT NULL,
    PRIMARY KEY (vote_id, round, deputy_id),
    FOREIGN KEY (vote_id, round) REFERENCES rounds
);
