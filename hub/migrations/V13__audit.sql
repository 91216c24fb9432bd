-- The audit stream (`hub/src/audit.rs`, `hub/src/store/audit.rs`): every
-- entry the hub verified, as one JSON line per row of the log, of
-- quarantine and of forks, in each table's order of arrival.
--
-- Quarantine and forks get an arrival order of their own, like
-- `entries.pos`. Adding an identity column numbers the rows already held
-- (in no particular order) and rewrites these two tables, which the
-- evidence quota keeps small. Inserts name their columns, so they fill it.
ALTER TABLE quarantine ADD COLUMN pos bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE forks ADD COLUMN pos bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX quarantine_by_pos ON quarantine (pos);
CREATE INDEX forks_by_pos ON forks (pos);

-- How far the stream has written, per table: every row at or below `pos`
-- is in lines written and flushed (fsynced, for a file) before the mark
-- moved. Not a view of the log: it records what left the hub.
CREATE TABLE audit_mark (
    stream   text   PRIMARY KEY CHECK (stream IN ('log', 'quarantine', 'forks')),
    pos      bigint NOT NULL CHECK (pos >= 0),
    saved_ms bigint NOT NULL
);
