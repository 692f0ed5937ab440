-- The scoring service's schema (考核).

-- Voted projects as supervision reports them.
CREATE TABLE projects (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    title        text NOT NULL,
    completion   text,
    score        numeric                   -- recomputed on each inspection
);
CREATE INDEX projects_scope ON projects (jurisdiction, year);

CREATE TABLE ratings (
    inspection_id uuid PRIMARY KEY,
    project_id    uuid NOT NULL REFERENCES projects(id),
    kind          text NOT NULL,
    rating        int NOT NULL
);

-- The year's assessment method (年度考核评比办法), set by the county; defaults apply without one.
CREATE TABLE methods (
    jurisdiction text NOT NULL,            -- the county that sets it
    year         int NOT NULL,
    method       jsonb NOT NULL,
    set_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (jurisdiction, year)
);

-- Each published assessment; a recalculation is a new version, never an overwrite.
CREATE TABLE assessments (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    version      int NOT NULL,
    figures      jsonb NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    published_by text NOT NULL,
    UNIQUE (jurisdiction, year, version)
);

-- Satisfaction ratings (满意度测评) of the projects, as certified by the ballot service.
CREATE TABLE satisfaction (
    vote_id    uuid NOT NULL,
    project_id uuid NOT NULL REFERENCES projects(id),
    tier       text NOT NULL,
    rate       numeric,                    -- (满意 + 基本满意) / votes
    PRIMARY KEY (vote_id, project_id)
);
