-- The supervision service's schema (监督).

-- A voted project: one per chosen candidate of a certified vote.
CREATE TABLE projects (
    id            uuid PRIMARY KEY,
    jurisdiction  text NOT NULL,
    year          int NOT NULL,
    vote_id       uuid NOT NULL,
    candidate_id  uuid NOT NULL,
    title         text NOT NULL,
    lead_unit     text,                    -- 牵头实施单位
    leader        text,                    -- 责任领导
    budget        numeric,
    deadline      date,
    completion    text,                    -- completed / basically_completed / not_completed
    accepted_on   date,                    -- 验收
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vote_id, candidate_id)         -- a result creates each project exactly once
);
CREATE INDEX projects_scope ON projects (jurisdiction, year);

CREATE TABLE progress_reports (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects(id),
    reported_at  timestamptz NOT NULL DEFAULT now(),
    reported_by  text NOT NULL,
    percent_done int NOT NULL CHECK (percent_done BETWEEN 0 AND 100),
    funds_spent  numeric,
    narrative    text NOT NULL DEFAULT ''
);

CREATE TABLE inspections (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects(id),
    kind         text NOT NULL,            -- mid_term / final / look_back
    inspected_on date NOT NULL,
    rating       int NOT NULL CHECK (rating BETWEEN 0 AND 100),
    deputies     text[] NOT NULL DEFAULT '{}',
    findings     text NOT NULL DEFAULT '',
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inspections_project ON inspections (project_id);

-- 整改事项: a problem sent to the lead unit with a due date (opened, so far, by a 不满意 rating).
CREATE TABLE rectifications (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects(id),
    source      text NOT NULL,             -- satisfaction / inspection
    source_id   uuid NOT NULL,             -- the vote or inspection that raised it
    problem     text NOT NULL,
    due_on      date NOT NULL,
    status      text NOT NULL DEFAULT 'open',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, source_id)
);
