-- The identity service's schema (身份): accounts and their roles, sign-in bookkeeping, refresh
-- tokens, and deputies' voting credentials per session. No private key is stored here: the
-- signing key is a secret of the identity process (PIAOJUE_AUTH_SIGNING_KEY).

-- A person (office staff, presiding officer, teller, lead unit, county staff, assessor, deputy
-- doing supervision work) or a machine (the county assessment system: client credentials).
CREATE TABLE accounts (
    id             uuid PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    display_name   text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('person', 'machine')),
    password_hash  text,                    -- argon2id; a machine's client secret; NULL: single sign-on only
    oidc_subject   text UNIQUE,             -- "<issuer>|<sub>" of the county's single sign-on
    disabled       boolean NOT NULL DEFAULT false,
    failed_signins int NOT NULL DEFAULT 0,  -- consecutive; reset by a good sign-in
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL
);

-- Roles × jurisdictions: one person may have several. A token is issued for one of them.
CREATE TABLE grants (
    account_id   uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    role         text NOT NULL,
    jurisdiction text NOT NULL,
    unit         text NOT NULL DEFAULT '',  -- lead_unit: its unit (牵头单位)
    term         int,                       -- deputy: (jurisdiction, term, deputy_id)
    deputy_id    text,
    PRIMARY KEY (account_id, role, jurisdiction)
);
CREATE INDEX grants_jurisdiction ON grants (jurisdiction);

-- Failed sign-ins, for the per-address limit (the per-account lock-out is on accounts).
CREATE TABLE signin_failures (
    address  text NOT NULL,
    username text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signin_failures_address ON signin_failures (address, at);

-- Opaque refresh tokens, stored as hashes; each is used once (rotation) and a reuse revokes
-- its whole family (a stolen token used after its owner refreshed).
CREATE TABLE refresh_tokens (
    hash         text PRIMARY KEY,
    family       uuid NOT NULL,
    account_id   uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    role         text NOT NULL,
    jurisdiction text NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);

-- Single sign-on requests in flight (state → nonce and PKCE verifier), shared by replicas.
CREATE TABLE oidc_requests (
    state      text PRIMARY KEY,
    nonce      text NOT NULL,
    verifier   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Sessions as the ballot service announces them (ballot.session.created), with the check-in
-- code (签到码) the office shows in the hall and prints on the sheets.
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    term         int NOT NULL,
    name         text NOT NULL,
    year         int NOT NULL,
    checkin_code text NOT NULL UNIQUE
);

-- Who the office confirmed present (ballot.attendance.recorded).
CREATE TABLE attendance (
    session_id uuid NOT NULL,
    deputy_id  text NOT NULL,
    present    boolean NOT NULL,
    PRIMARY KEY (session_id, deputy_id)
);

-- A deputy's personal code (个人码) for a term, set by the deputy at the first check-in of the
-- term; the office never sees it, and can only reset it (recorded).
CREATE TABLE personal_codes (
    jurisdiction text NOT NULL,
    term         int NOT NULL,
    deputy_id    text NOT NULL,
    code_hash    text NOT NULL,
    failures     int NOT NULL DEFAULT 0,
    PRIMARY KEY (jurisdiction, term, deputy_id)
);

-- A deputy's voting credential for one session, bound to one device (the hash of a key the
-- device made). reserved: a seat tablet bound by the office; active: the deputy checked in;
-- revoked: by the office; ended: the deputy left (离场). One live credential per deputy and session.
CREATE TABLE credentials (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES sessions,
    deputy_id    text NOT NULL,
    device_hash  text NOT NULL,
    tablet       boolean NOT NULL DEFAULT false,
    bound_by     text,                      -- the office account that bound a seat tablet
    status       text NOT NULL CHECK (status IN ('reserved', 'active', 'revoked', 'ended')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    expires_at   timestamptz,
    ended_at     timestamptz,
    reason       text
);
CREATE UNIQUE INDEX credentials_live ON credentials (session_id, deputy_id) WHERE status IN ('reserved', 'active');
