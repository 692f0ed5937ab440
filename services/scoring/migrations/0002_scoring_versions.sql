-- Versioned assessment methods, order-independent events (pending), what the assessment now
-- counts (investment, rectification), the county's pull cursor, and signed webhooks.

ALTER TABLE projects
    ADD COLUMN lead_unit   text,
    ADD COLUMN budget      numeric,                 -- planned investment
    ADD COLUMN funds_spent numeric;                 -- investment completed (latest report)

-- The deputies' ratings of each inspection; the method aggregates them (v1 events: one rating).
ALTER TABLE ratings ADD COLUMN scores int[];
UPDATE ratings SET scores = ARRAY[rating];
ALTER TABLE ratings ALTER COLUMN scores SET NOT NULL;
ALTER TABLE ratings ALTER COLUMN rating DROP NOT NULL;

CREATE TABLE rectifications (
    item_id    uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects(id),
    status     text NOT NULL,
    due_on     date NOT NULL,
    closed_on  date
);

-- The year's method, versioned: a correction is a new version; figures name the one they used.
CREATE TABLE method_versions (
    jurisdiction text NOT NULL,
    year         int NOT NULL,
    version      int NOT NULL,
    method       jsonb NOT NULL,
    set_at       timestamptz NOT NULL DEFAULT now(),
    set_by       text NOT NULL,
    PRIMARY KEY (jurisdiction, year, version)
);
INSERT INTO method_versions (jurisdiction, year, version, method, set_at, set_by)
    SELECT jurisdiction, year, 1, method - 'version', set_at, 'migration' FROM methods;
DROP TABLE methods;

-- Every assessment version in the order it was made: the county's ?since= cursor.
ALTER TABLE assessments
    ADD COLUMN seq            bigserial,
    ADD COLUMN method_version text NOT NULL DEFAULT 'default',
    ADD COLUMN reason         text NOT NULL DEFAULT 'published';
CREATE UNIQUE INDEX assessments_seq ON assessments (seq);

-- An event that arrived before what it depends on (e.g. an inspection before its project), parked
-- in the transaction of its inbox row and applied when the dependency arrives.
CREATE TABLE pending (
    event_id  uuid PRIMARY KEY,
    awaits    uuid NOT NULL,                        -- the project it waits for
    type      text NOT NULL,
    body      jsonb NOT NULL,                       -- the whole envelope
    parked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_awaits ON pending (awaits);

-- Signed webhooks (for county systems that cannot speak AMQP).
CREATE TABLE webhook_subscribers (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,                     -- assessments within it are sent
    name         text NOT NULL,
    url          text NOT NULL,
    secret       text NOT NULL,                     -- per subscriber: HMAC-SHA256 key
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    subscriber_id   uuid NOT NULL REFERENCES webhook_subscribers(id),
    assessment_id   uuid NOT NULL REFERENCES assessments(id),
    body            text NOT NULL,                  -- exactly the bytes signed and sent
    status          text NOT NULL DEFAULT 'pending', -- pending / delivered
    attempts        int NOT NULL DEFAULT 0,
    failures        int NOT NULL DEFAULT 0,         -- consecutive failed attempts
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    alerted_at      timestamptz,                    -- when the failures reached the alert threshold
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscriber_id, assessment_id)
);
CREATE INDEX webhook_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (                     -- the delivery log
    seq         bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries(id),
    at          timestamptz NOT NULL,
    status_code int,
    error       text,
    manual      boolean NOT NULL DEFAULT false
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
