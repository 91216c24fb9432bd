-- Event searches and the map's clusters ask for boxes of longitude and
-- latitude: a planar test on each event's point, which this index
-- answers in one probe per box (the geography index needed a geodesic
-- probe per degree of longitude).
CREATE INDEX events_geom ON events USING gist ((geog::geometry));
