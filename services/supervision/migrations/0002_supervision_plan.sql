-- The year after the vote: project plans, supervision groups by term, the key supervision plan,
-- progress with history and photos, per-deputy inspection ratings, and the rectification loop.

-- Per-jurisdiction settings: the board's colours and the congress term (届) now serving.
CREATE TABLE jurisdiction_settings (
    jurisdiction text PRIMARY KEY,
    board        jsonb NOT NULL DEFAULT '{}',
    current_term int
);

-- 换届: a new term takes over; projects and their history stay.
CREATE TABLE term_changes (
    jurisdiction text NOT NULL,
    from_term    int,
    to_term      int NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    changed_by   text NOT NULL
);

ALTER TABLE projects
    ADD COLUMN funding_source   text,            -- 资金来源
    ADD COLUMN presidium_member text;            -- 联系项目的主席团成员

CREATE TABLE milestones (                        -- 时间节点 of the project's year
    project_id       uuid NOT NULL REFERENCES projects(id),
    due_on           date NOT NULL,
    expected_percent int NOT NULL CHECK (expected_percent BETWEEN 0 AND 100),
    description      text NOT NULL DEFAULT '',
    PRIMARY KEY (project_id, due_on)
);

-- 监督小组: the deputies supervising a project, per term; a new term's group takes over.
CREATE TABLE supervisors (
    project_id uuid NOT NULL REFERENCES projects(id),
    term       int NOT NULL,
    deputy     text NOT NULL,
    is_leader  boolean NOT NULL DEFAULT false,   -- 监督长
    PRIMARY KEY (project_id, term, deputy)
);

ALTER TABLE progress_reports
    ADD COLUMN as_of          date,              -- the day the report describes (reported_at: when filed)
    ADD COLUMN milestones_met date[] NOT NULL DEFAULT '{}',
    ADD COLUMN reason         text,              -- why percent went down, if it did
    ADD COLUMN backdated      boolean NOT NULL DEFAULT false,
    ADD COLUMN before         jsonb;             -- the latest report's figures when this one was filed
UPDATE progress_reports SET as_of = reported_at::date;
ALTER TABLE progress_reports ALTER COLUMN as_of SET NOT NULL;
CREATE INDEX progress_project ON progress_reports (project_id, as_of);

-- Photos in PostgreSQL (bytea): one backup, written in the report's transaction, seen by every replica.
CREATE TABLE photos (
    id          uuid PRIMARY KEY,
    report_id   uuid NOT NULL REFERENCES progress_reports(id),
    media_type  text NOT NULL,
    size        int NOT NULL CHECK (size > 0),
    content     bytea NOT NULL,
    uploaded_by text NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX photos_report ON photos (report_id);

ALTER TABLE inspections ALTER COLUMN rating DROP NOT NULL;
ALTER TABLE inspections ALTER COLUMN rating TYPE numeric;
ALTER TABLE inspections ADD COLUMN term int;
CREATE TABLE inspection_ratings (
    inspection_id uuid NOT NULL REFERENCES inspections(id),
    deputy        text NOT NULL,
    rating        int NOT NULL CHECK (rating BETWEEN 0 AND 100),
    PRIMARY KEY (inspection_id, deputy)
);

-- Rectification items: several findings of one inspection may each open one.
ALTER TABLE rectifications DROP CONSTRAINT rectifications_project_id_source_id_key;
CREATE UNIQUE INDEX rectifications_once_per_rating ON rectifications (project_id, source_id) WHERE source = 'satisfaction';
ALTER TABLE rectifications
    ADD COLUMN lead_unit   text,                 -- 责任单位 when it was opened
    ADD COLUMN responsible text,                 -- 责任人
    ADD COLUMN closed_on   date,
    ADD COLUMN opened_by   text NOT NULL DEFAULT 'system';
CREATE INDEX rectifications_project ON rectifications (project_id);

CREATE TABLE rectification_actions (             -- the loop's history: who, when, what, under which term
    seq         bigserial PRIMARY KEY,
    item_id     uuid NOT NULL REFERENCES rectifications(id),
    action      text NOT NULL,                   -- open / respond / verify / send_back / reopen
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL,
    actor_role  text NOT NULL,
    term        int,
    text        text NOT NULL DEFAULT '',        -- evidence or reason
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rectification_actions_item ON rectification_actions (item_id);

-- 年度重点监督计划: the year's scheduled activities.
CREATE TABLE activities (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    kind         text NOT NULL,
    title        text NOT NULL,
    scheduled_on date NOT NULL,
    status       text NOT NULL DEFAULT 'planned',
    project_ids  uuid[] NOT NULL DEFAULT '{}',
    participants text[] NOT NULL DEFAULT '{}',
    held_on      date,
    notes        text NOT NULL DEFAULT '',
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_scope ON activities (jurisdiction, year, scheduled_on);

CREATE TABLE activity_history (
    seq         bigserial PRIMARY KEY,
    activity_id uuid NOT NULL REFERENCES activities(id),
    action      text NOT NULL,
    before      jsonb,
    after       jsonb,
    reason      text,
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
