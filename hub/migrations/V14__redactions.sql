-- Redactions (`hub/src/store/redactions.rs`, `docs/protocol.md` 1.6):
-- views of the log's `redaction` entries (kind 7), like every view.
--
-- The values each redaction erases, by field and hash: every view derived
-- from an event's document is masked with its rows.
CREATE TABLE redactions (
    event bytea NOT NULL,
    field text  NOT NULL CHECK (field IN ('title', 'description', 'note')),
    hash  bytea NOT NULL,
    entry bytea NOT NULL,
    PRIMARY KEY (event, field, hash)
);

-- The blobs erased, content-addressed: gone from `event_media`, deleted
-- from the blob folder (`erased` once the file is gone), never served,
-- fetched or accepted again.
CREATE TABLE redacted_blobs (
    hash   bytea   PRIMARY KEY,
    event  bytea   NOT NULL,
    entry  bytea   NOT NULL,
    erased boolean NOT NULL DEFAULT false
);
CREATE INDEX redacted_blobs_pending ON redacted_blobs (hash) WHERE NOT erased;

-- The projector's queue takes redactions too.
DROP INDEX entries_unprojected;
CREATE INDEX entries_unprojected ON entries (pos)
    WHERE NOT projected AND kind IN (1, 2, 3, 7);
