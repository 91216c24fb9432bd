-- The projector's cursor: which event entries (event_change, media_attached)
-- the views have taken in. A flag per entry, not a high-water mark of
-- `pos`: identity values are handed out when a transaction inserts, not
-- when it commits, so a batch committed late can hold positions below ones
-- already projected, and a "projected up to pos N" cursor would skip it.
-- The projector sets the flag in the transaction that writes the views.
-- Adding a column with a constant default rewrites nothing (PostgreSQL 11+);
-- every event entry already held starts out unprojected.
ALTER TABLE entries ADD COLUMN projected boolean NOT NULL DEFAULT false;

-- The projector's queue: only unprojected event entries, in log order.
CREATE INDEX entries_unprojected ON entries (pos)
    WHERE NOT projected AND kind IN (1, 2);
