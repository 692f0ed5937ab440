-- Intake in depth: tracking codes, contacts kept apart (PIPL), eligibility, merging, the project
-- library, public notice (公示), feasibility scores, spreadsheet imports, and what intake learns
-- of projects for the tracking lookup.

-- Proposers' personal information, apart from the proposal so that erasing it is one update and
-- nothing else can leak it. Erased after the retention period that follows the year's end.
CREATE TABLE contacts (
    proposal_id uuid PRIMARY KEY REFERENCES proposals(id),
    proposer    text NOT NULL DEFAULT '',
    contact     text NOT NULL DEFAULT '',
    erase_after date NOT NULL,
    erased_at   timestamptz
);
CREATE INDEX contacts_due ON contacts (erase_after) WHERE erased_at IS NULL;
INSERT INTO contacts (proposal_id, proposer, contact, erase_after)
    SELECT id, coalesce(fields->>'proposer', ''), coalesce(fields->>'contact', ''), make_date(year, 12, 31) + 365
    FROM proposals;
UPDATE proposals SET fields = fields - 'proposer' - 'contact';

CREATE TABLE imports (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    file_hash    text NOT NULL,             -- sha256 of the file: the same file imports once
    rows         int NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (jurisdiction, year, file_hash)
);

ALTER TABLE proposals
    ADD COLUMN code             text,                              -- 查询码, public
    ADD COLUMN merged_into      uuid REFERENCES proposals(id),     -- 合并 into this item
    ADD COLUMN carried_from     uuid REFERENCES proposals(id),     -- 项目库: last year's item
    ADD COLUMN history          jsonb,                             -- what the carried item brings along
    ADD COLUMN eligibility      jsonb NOT NULL DEFAULT '[]',       -- failed checks, with overrides
    ADD COLUMN overrides        jsonb NOT NULL DEFAULT '{}',       -- rule id → {reason, by, at}
    ADD COLUMN feasibility      jsonb,                             -- 可行性论证 scores
    ADD COLUMN rejection_reason text,
    ADD COLUMN import_id        uuid REFERENCES imports(id),
    ADD COLUMN import_row       int;
-- Codes for the proposals already there: 10 characters of the same alphabet as new ones.
UPDATE proposals p SET code = (
    SELECT substr(s, 1, 5) || '-' || substr(s, 6, 5) FROM (
        SELECT string_agg(substr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', get_byte(b, i) % 31 + 1, 1), '' ORDER BY i) AS s
        FROM (SELECT sha256(uuid_send(gen_random_uuid()) || uuid_send(p.id)) AS b) x, generate_series(0, 9) i) y);
ALTER TABLE proposals ALTER COLUMN code SET NOT NULL;
ALTER TABLE proposals ADD CONSTRAINT proposals_code_key UNIQUE (code);
ALTER TABLE proposals ADD CONSTRAINT proposals_import_row_key UNIQUE (import_id, import_row);
CREATE INDEX proposals_merged_into ON proposals (merged_into) WHERE merged_into IS NOT NULL;
CREATE UNIQUE INDEX proposals_carried_once ON proposals (carried_from) WHERE carried_from IS NOT NULL;

-- A slate under public notice (公示) is not yet sent to the ballot.
ALTER TABLE slates DROP CONSTRAINT slates_status_check;
ALTER TABLE slates ADD CONSTRAINT slates_status_check CHECK (status IN ('in_notice', 'published', 'decided'));
ALTER TABLE slates ADD COLUMN sent_at timestamptz, ADD COLUMN notice_override text;
UPDATE slates SET sent_at = created_at;
-- position: the order the office listed the candidates in, which is the ballot's order.
ALTER TABLE slate_candidates ADD COLUMN supporters int, ADD COLUMN feasibility numeric(4, 1), ADD COLUMN position int;

CREATE TABLE notices (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    slate_id     uuid NOT NULL REFERENCES slates(id),
    kind         text NOT NULL CHECK (kind IN ('slate', 'result')),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    created_by   text NOT NULL,
    UNIQUE (slate_id, kind)
);

CREATE TABLE objections (                    -- comments and objections received during a notice
    id          uuid PRIMARY KEY,
    notice_id   uuid NOT NULL REFERENCES notices(id),
    received_at timestamptz NOT NULL DEFAULT now(),
    text        text NOT NULL,
    source      text NOT NULL DEFAULT '',     -- how it came in (来信, 电话, 现场), not who
    recorded_by text NOT NULL,
    answer      text,
    answered_at timestamptz,
    answered_by text
);

-- The year's rules of a jurisdiction: eligibility (负面清单), feasibility weights, notice period.
CREATE TABLE year_settings (
    jurisdiction        text NOT NULL,
    year                int NOT NULL,
    eligibility         jsonb,               -- null: the default negative list
    feasibility_weights jsonb,               -- null: the default weights
    notice_days         int NOT NULL DEFAULT 0,
    updated_by          text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (jurisdiction, year)
);

-- The township's gazetteer (地名): villages, roads and schools with local short names, which the
-- duplicate detector reads places through.
CREATE TABLE places (
    jurisdiction text NOT NULL,
    name         text NOT NULL,
    kind         text NOT NULL,
    aliases      text[] NOT NULL DEFAULT '{}',
    within       text,
    ends         text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (jurisdiction, name)
);

-- What intake learns of a project from supervision's events, for the tracking lookup. Keyed by
-- project, so that events arriving in any order build the same row.
CREATE TABLE projects (
    project_id   uuid PRIMARY KEY,
    proposal_id  uuid,
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    percent_done int,                    -- the latest progress report
    progress_as_of date,
    completion   text,
    accepted_on  date,
    inspections  jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX projects_proposal ON projects (proposal_id);

-- Told to the proposer of a merged proposal (告知), shown by the tracking lookup.
CREATE TABLE proposer_notices (
    proposal_id uuid NOT NULL REFERENCES proposals(id),
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    text        text NOT NULL,
    event_id    uuid NOT NULL,
    PRIMARY KEY (proposal_id, event_id)
);

-- The public lookup's rate limit: lookups per client per minute, shared by every replica.
-- UNLOGGED: losing the counters in a crash only forgives a minute.
CREATE UNLOGGED TABLE lookups (
    client  text NOT NULL,
    minute  timestamptz NOT NULL,
    count   int NOT NULL,
    PRIMARY KEY (client, minute)
);
