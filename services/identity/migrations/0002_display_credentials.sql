-- The hall display's credential (大屏) is recorded with the deputies' voting credentials, so that
-- the office can revoke it the same way (identity.credential.revoked): a row without a deputy or
-- a device, ended only by the office.
ALTER TABLE credentials ADD COLUMN kind text NOT NULL DEFAULT 'voting' CHECK (kind IN ('voting', 'display'));
ALTER TABLE credentials ALTER COLUMN deputy_id DROP NOT NULL, ALTER COLUMN device_hash DROP NOT NULL;
ALTER TABLE credentials ADD CONSTRAINT credentials_holder
    CHECK (kind = 'display' OR (deputy_id IS NOT NULL AND device_hash IS NOT NULL));
