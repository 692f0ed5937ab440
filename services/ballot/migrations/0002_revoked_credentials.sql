-- Deputies' voting credentials that identity has revoked (identity.credential.revoked): a ballot
-- cast with one of them is refused (the office revoked it, or the deputy left).
CREATE TABLE revoked_credentials (
    credential_id uuid PRIMARY KEY,
    session_id    uuid NOT NULL,
    deputy_id     text NOT NULL,
    reason        text NOT NULL,
    revoked_at    timestamptz NOT NULL DEFAULT now()
);
