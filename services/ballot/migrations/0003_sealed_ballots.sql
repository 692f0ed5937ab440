-- Sealed ballots, the tellers' keys, sessions that open and close, procedure departures.
--
-- Secrecy against the database: while a round is open, a cast writes the deputy's `issued` row and
-- a ballot *sealed* to the round's public key (`sealed_ballots`); the key that opens it exists
-- nowhere (not here, not in the WAL, the environment or the logs): its secret is split k of n
-- among the tellers, each share sealed to that teller's own public key (`round_shares`). At close,
-- k tellers present their shares (held only sealed to the counting process's key in memory,
-- `presented_shares`); the ballots are opened in memory, shuffled, stored as plaintext with no
-- link to any deputy (`ballots`, written by the counting transaction, which writes no `issued`
-- row), and the sealed rows deleted.

-- Sessions: opened, then closed. Their tellers (监票人) and how many of them open a round (k of n).
ALTER TABLE sessions
    ADD COLUMN status    text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN tellers   jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN threshold int;

-- A change of a deputy's status decided while the roster is frozen; applied when the next session opens.
CREATE TABLE roster_changes (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    jurisdiction text NOT NULL,
    term         int NOT NULL,
    deputy_id    text NOT NULL,
    name         text,
    seated       boolean NOT NULL,
    reason       text NOT NULL,
    decided_by   text NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,            -- when the next session opened
    FOREIGN KEY (jurisdiction, term) REFERENCES terms
);

-- Each teller's own public key (they keep the private key: `piaojue ballot teller-key`).
CREATE TABLE teller_keys (
    jurisdiction  text NOT NULL,
    teller_id     text NOT NULL,
    suite         text NOT NULL,
    public_key    bytea NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (jurisdiction, teller_id)
);

ALTER TABLE votes DROP CONSTRAINT votes_status_check;
ALTER TABLE votes ADD CONSTRAINT votes_status_check
    CHECK (status IN ('draft', 'open', 'awaiting_shares', 'closed', 'certified', 'void'));
ALTER TABLE votes
    ADD COLUMN departures  jsonb NOT NULL DEFAULT '[]',   -- [{what, label, reason, by}]
    ADD COLUMN void_reason text;

ALTER TABLE rounds
    ADD COLUMN mode        text,
    ADD COLUMN sealed      boolean NOT NULL DEFAULT false,
    ADD COLUMN void_reason text,
    ADD COLUMN unopened    int NOT NULL DEFAULT 0,   -- sealed ballots that did not open: counted invalid
    ADD COLUMN suite       text,                     -- the cipher suite of a sealed round
    ADD COLUMN public_key  bytea,                    -- the round's public key (its private key is stored nowhere)
    ADD COLUMN threshold   int,                      -- k: shares needed to open it
    ADD COLUMN count_key   bytea,                    -- the counting process's public key, while awaiting shares
    ADD COLUMN salt        text,                     -- of the commitment, revealed with the ballots
    ADD COLUMN commitment  text;                     -- hash over salt, trackers and opened ballots
UPDATE rounds r SET mode = v.mode FROM votes v WHERE v.id = r.vote_id;
ALTER TABLE rounds ALTER COLUMN mode SET NOT NULL;

-- Each teller's share of a round's key, sealed to the teller's public key, and a commitment to it.
CREATE TABLE round_shares (
    vote_id    uuid NOT NULL,
    round      int NOT NULL,
    teller_id  text NOT NULL,
    idx        int NOT NULL,
    teller_key bytea NOT NULL,
    sealed     bytea,                    -- deleted once the round is counted
    commitment text NOT NULL,
    PRIMARY KEY (vote_id, round, teller_id),
    FOREIGN KEY (vote_id, round) REFERENCES rounds
);

-- Shares presented at close, sealed to the counting process's key (never stored in the clear).
CREATE TABLE presented_shares (
    vote_id   uuid NOT NULL,
    round     int NOT NULL,
    teller_id text NOT NULL,
    count_key bytea NOT NULL,            -- the counting key it is sealed to
    sealed    bytea NOT NULL,
    PRIMARY KEY (vote_id, round, teller_id),
    FOREIGN KEY (vote_id, round) REFERENCES rounds
);

-- Ballots of an open secret round, sealed to the round's key. Nothing here says who or when.
CREATE TABLE sealed_ballots (
    vote_id uuid NOT NULL,
    round   int NOT NULL,
    sealed  bytea NOT NULL,
    FOREIGN KEY (vote_id, round) REFERENCES rounds
);
CREATE INDEX sealed_ballots_round ON sealed_ballots (vote_id, round);

-- Opened (or paper) ballots in compact form: one character per candidate of the round
-- (F for, A against, B abstain, S/J/D 满意/基本满意/不满意, - not marked); NULL: did not open.
ALTER TABLE ballots ADD COLUMN ballot text;
ALTER TABLE named_ballots ADD COLUMN ballot text;
UPDATE ballots b SET ballot = (
    SELECT string_agg(CASE b.marks ->> c.id WHEN 'for' THEN 'F' WHEN 'against' THEN 'A' WHEN 'abstain' THEN 'B'
                      WHEN 'satisfied' THEN 'S' WHEN 'basically_satisfied' THEN 'J' WHEN 'dissatisfied' THEN 'D'
                      ELSE '-' END, '' ORDER BY c.n)
    FROM rounds r, jsonb_array_elements_text(r.candidates) WITH ORDINALITY AS c(id, n)
    WHERE r.vote_id = b.vote_id AND r.round = b.round);
UPDATE named_ballots b SET ballot = (
    SELECT string_agg(CASE b.marks ->> c.id WHEN 'for' THEN 'F' WHEN 'against' THEN 'A' WHEN 'abstain' THEN 'B'
                      WHEN 'satisfied' THEN 'S' WHEN 'basically_satisfied' THEN 'J' WHEN 'dissatisfied' THEN 'D'
                      ELSE '-' END, '' ORDER BY c.n)
    FROM rounds r, jsonb_array_elements_text(r.candidates) WITH ORDINALITY AS c(id, n)
    WHERE r.vote_id = b.vote_id AND r.round = b.round);
ALTER TABLE ballots DROP COLUMN marks;
ALTER TABLE named_ballots DROP COLUMN marks;
ALTER TABLE named_ballots ALTER COLUMN ballot SET NOT NULL;

-- Receipts are now trackers: the hash of each sealed ballot opened, written at the count.
ALTER TABLE receipts RENAME COLUMN hash TO tracker;
