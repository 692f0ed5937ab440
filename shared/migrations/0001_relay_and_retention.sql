-- The relay claims rows (claimed_until: a lease; another replica takes them over after it) and
-- keeps each aggregate's events in order; housekeeping prunes by age.
ALTER TABLE outbox ADD COLUMN aggregate text NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;
ALTER TABLE outbox ADD COLUMN attempts int NOT NULL DEFAULT 0;
CREATE INDEX outbox_unpublished_aggregate ON outbox (aggregate, seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX inbox_received ON inbox (received_at);
CREATE INDEX idempotency_created ON idempotency (created_at);
