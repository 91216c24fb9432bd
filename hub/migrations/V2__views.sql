-- Views derived from the log (rebuildable from it): Automerge documents,
-- materialised events with geography and full-text search, media metadata.
-- The projector that fills them comes with the hub's event API.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE documents (
    event    bytea   PRIMARY KEY,
    doc      bytea   NOT NULL,
    complete boolean NOT NULL
);

CREATE TABLE events (
    fid                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event               bytea    NOT NULL UNIQUE,
    event_hex           text     NOT NULL,
    title               text     NOT NULL,
    description         text     NOT NULL,
    category            text     NOT NULL,
    severity            smallint NOT NULL,
    status              text     NOT NULL,
    assignee            text,
    notes               text     NOT NULL DEFAULT '',
    geog                geography(Point, 4326) NOT NULL,
    reported_ms         bigint   NOT NULL,
    created_by          text     NOT NULL,
    updated_hlc_ms      bigint   NOT NULL,
    updated_hlc_counter bigint   NOT NULL,
    n_notes             integer  NOT NULL,
    n_media             integer  NOT NULL,
    conflicts           jsonb    NOT NULL DEFAULT '{}',
    -- English stemming, as the node's FTS5 porter tokenizer: 'flood' finds
    -- 'Flooded underpass'. Title weighs most, then description, then notes.
    search              tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, description), 'B')
        || setweight(to_tsvector('english'::regconfig, notes), 'C')
    ) STORED
);
CREATE INDEX events_geog ON events USING gist (geog);
CREATE INDEX events_search ON events USING gin (search);
CREATE INDEX events_by_reported ON events (reported_ms DESC, event DESC);
CREATE INDEX events_by_category ON events (category);

CREATE TABLE event_media (
    event bytea  NOT NULL,
    hash  bytea  NOT NULL,
    mime  text   NOT NULL,
    size  bigint NOT NULL,
    name  text   NOT NULL,
    entry bytea  NOT NULL,
    PRIMARY KEY (event, hash)
);
