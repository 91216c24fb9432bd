-- Peers the sync server has seen: one row per certificate key, updated at
-- the end of every session with a verified peer identity. Admin status
-- only; nothing here is signed or synced.
CREATE TABLE peers (
    author                   bytea  PRIMARY KEY CHECK (length(author) = 32),
    name                     text   NOT NULL,
    role                     text   NOT NULL,
    last_seen_ms             bigint NOT NULL,
    last_addr                text   NOT NULL,
    sessions                 bigint NOT NULL DEFAULT 0,
    last_close               text   NOT NULL,
    -- `count(*) FROM entries` when the last session ended: entries that
    -- arrived after it are ones this peer has likely not received.
    hub_entries_at_last_seen bigint NOT NULL DEFAULT 0
);
CREATE INDEX peers_by_last_seen ON peers (last_seen_ms DESC);
