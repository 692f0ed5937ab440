-- Plumbing every service has in its own schema: outbox, inbox, idempotent HTTP commands, audit.
-- Applied with search_path = the service's schema.

CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,          -- publish order
    id           uuid NOT NULL UNIQUE,           -- event id = AMQP message_id
    routing_key  text NOT NULL,
    body         jsonb NOT NULL,                 -- the whole envelope
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Idempotent consumer: an event id is written here in the same transaction as its effect.
CREATE TABLE inbox (
    event_id    uuid PRIMARY KEY,
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Idempotency-Key of HTTP commands: a retried request gets the first answer.
CREATE TABLE idempotency (
    principal   text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,                  -- method + path + body hash
    status      int NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);

-- Who did what, when, before/after.
CREATE TABLE audit (
    seq          bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    jurisdiction text NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    entity       text NOT NULL,
    entity_id    text NOT NULL,
    before       jsonb,
    after        jsonb
);
CREATE INDEX audit_entity ON audit (entity, entity_id);
