-- A peer's outbox as the hub sees it (`hub/src/store/peers.rs`): when a
-- session ends, the entries the peer said it holds (its heads and
-- acknowledgements) that the hub's log still lacks. NULL: not measured
-- (the peer presented no heads, or every session predates this column).
ALTER TABLE peers ADD COLUMN entries_ahead bigint;
-- When the hub first saw the peer hold entries it lacks, in the run of
-- sessions that ended so (the start of the first such session, Unix ms);
-- NULL once a session ends with the hub holding everything the peer does.
ALTER TABLE peers ADD COLUMN ahead_since_ms bigint;
