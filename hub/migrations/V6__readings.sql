-- Sensor readings as a time series (a view of the log: one row per value
-- of each `sensor_reading` entry, filled by the projector, rebuildable),
-- and the events the hub's rules raised from readings.

CREATE TABLE readings (
    entry       bytea    NOT NULL,
    author      bytea    NOT NULL,
    seq         bigint   NOT NULL,
    -- Position of the value within the reading (a reading may carry the
    -- same name twice, in two units).
    n           smallint NOT NULL,
    kind        text     NOT NULL,
    name        text     NOT NULL,
    value       float8   NOT NULL,
    unit        text     NOT NULL,
    measured_ms bigint   NOT NULL,
    geog        geography(Point, 4326),
    PRIMARY KEY (entry, n)
);
CREATE INDEX readings_by_sensor ON readings (author, measured_ms, entry, n);
CREATE INDEX readings_by_kind ON readings (kind, name, measured_ms);
CREATE INDEX readings_geog ON readings USING gist (geog);

-- The projector's queue now takes readings too (kind 3).
DROP INDEX entries_unprojected;
CREATE INDEX entries_unprojected ON entries (pos)
    WHERE NOT projected AND kind IN (1, 2, 3);

-- One row per event a rule of this hub raised from a reading. Read back at
-- start so that a restart inside the de-duplication window raises no
-- second event. Not a view: the rule that raised an event is the hub's
-- configuration, not the log's (the event's entry names it in `actor`).
CREATE TABLE sensor_alerts (
    event       bytea  PRIMARY KEY,
    rule        text   NOT NULL,
    sensor      bytea  NOT NULL,
    measured_ms bigint NOT NULL,
    reading     bytea  NOT NULL,
    entry       bytea  NOT NULL,
    raised_ms   bigint NOT NULL
);
CREATE INDEX sensor_alerts_by_rule ON sensor_alerts (rule, sensor, measured_ms DESC);
