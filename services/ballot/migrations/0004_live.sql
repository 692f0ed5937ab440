-- The live view (GET /sessions/{id}/live): each replica LISTENs on `ballot_live` and reads a
-- changed session once for all its clients. Every change a screen shows notifies here, in the
-- transaction that makes it (the NOTIFY is delivered only if it commits), except the casts: a
-- cast's replica notifies for its casts itself, a few times a second at most (services/ballot/
-- live_hub.py), so that the cast's commit takes no cluster-wide NOTIFY lock.
-- Payloads: "s<session id>" (that session), "v<vote id>" (the session of that vote), "t<jurisdiction>"
-- (the sessions of a jurisdiction: a roster change alters their seated count).

CREATE FUNCTION live_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ballot_live', 's' || (CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END).session_id);
    RETURN NULL;
END $$;

CREATE FUNCTION live_session_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ballot_live', 's' || NEW.id);
    RETURN NULL;
END $$;

CREATE FUNCTION live_vote_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ballot_live', 'v' || (CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END).vote_id);
    RETURN NULL;
END $$;

CREATE FUNCTION live_roster_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ballot_live', 't' || NEW.jurisdiction);
    RETURN NULL;
END $$;

CREATE TRIGGER live_attendance AFTER INSERT OR UPDATE ON attendance
    FOR EACH ROW EXECUTE FUNCTION live_session_changed();
CREATE TRIGGER live_votes AFTER INSERT OR UPDATE ON votes
    FOR EACH ROW EXECUTE FUNCTION live_session_changed();
CREATE TRIGGER live_revoked AFTER INSERT ON revoked_credentials
    FOR EACH ROW EXECUTE FUNCTION live_session_changed();
CREATE TRIGGER live_sessions AFTER UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION live_session_row_changed();
CREATE TRIGGER live_rounds AFTER UPDATE ON rounds
    FOR EACH ROW EXECUTE FUNCTION live_vote_changed();
CREATE TRIGGER live_shares AFTER INSERT OR UPDATE OR DELETE ON presented_shares
    FOR EACH ROW EXECUTE FUNCTION live_vote_changed();
CREATE TRIGGER live_deputies AFTER INSERT OR UPDATE OF seated ON deputies
    FOR EACH ROW EXECUTE FUNCTION live_roster_changed();

-- The live view reads a session's revoked credentials with its state.
CREATE INDEX revoked_credentials_session ON revoked_credentials (session_id);
