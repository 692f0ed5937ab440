-- The audit trail as a hash chain (shared/audit.py): each row carries the hash of the row before it
-- (prev_hash) and its own hash = sha256(prev_hash || the row's canonical content). One head row per
-- schema, locked by every transaction that appends (at its end), so concurrent writers cannot fork
-- the chain and seq order is chain order. Rows written before this migration are chained by
-- `piaojue migrate` (shared.db.migrate) the first time it runs.
ALTER TABLE audit ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;

CREATE TABLE audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint NOT NULL DEFAULT 0,   -- the last chained row (0: none yet)
    hash bytea                        -- its hash (NULL: none yet)
);
INSERT INTO audit_head DEFAULT VALUES;
