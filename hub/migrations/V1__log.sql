-- The log and what guards it. Every table here holds entries exactly as
-- their authors signed them (`bytes`); the other columns are indexed copies
-- of header fields, never a second source of truth.

CREATE TABLE meta (
    key   text  PRIMARY KEY,
    value bytea NOT NULL
);

-- The log: every entry this hub holds. `pos` is the order of arrival.
CREATE TABLE entries (
    pos         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author      bytea    NOT NULL CHECK (length(author) = 32),
    seq         bigint   NOT NULL CHECK (seq >= 1),
    id          bytea    NOT NULL CHECK (length(id) = 32),
    prev        bytea             CHECK (length(prev) = 32),
    hlc_ms      bigint   NOT NULL,
    hlc_counter bigint   NOT NULL,
    kind        smallint NOT NULL,
    actor       text,
    event       bytea,
    bytes       bytea    NOT NULL,
    received_ms bigint   NOT NULL,
    CONSTRAINT entries_author_seq UNIQUE (author, seq),
    CONSTRAINT entries_id UNIQUE (id),
    CHECK ((seq = 1) = (prev IS NULL))
);
CREATE INDEX entries_by_event ON entries (event, pos) WHERE event IS NOT NULL;
CREATE INDEX entries_by_hlc ON entries (hlc_ms, hlc_counter);

-- author -> (seq, id) of the newest entry held.
CREATE TABLE heads (
    author bytea  PRIMARY KEY,
    seq    bigint NOT NULL,
    id     bytea  NOT NULL
);

-- Evidence: a second entry at a seq already held, kept, never merged.
CREATE TABLE forks (
    id          bytea  PRIMARY KEY,
    author      bytea  NOT NULL,
    seq         bigint NOT NULL,
    held_id     bytea  NOT NULL,
    bytes       bytea  NOT NULL,
    detected_ms bigint NOT NULL
);
CREATE INDEX forks_by_author ON forks (author, seq);

-- Entries that failed a check, with the reason; never in views.
CREATE TABLE quarantine (
    id          bytea  PRIMARY KEY,
    author      bytea  NOT NULL,
    seq         bigint NOT NULL,
    bytes       bytea  NOT NULL,
    reason_code text   NOT NULL,
    reason      text   NOT NULL,
    received_ms bigint NOT NULL
);
-- Gap-quarantined entries are released when the gap closes.
CREATE INDEX quarantine_gaps ON quarantine (author, seq) WHERE reason_code = 'gap';

-- Certificates of authors, verified against the deployment CA before they
-- are stored; they travel with the data.
CREATE TABLE certificates (
    author      bytea  PRIMARY KEY,
    der         bytea  NOT NULL,
    received_ms bigint NOT NULL
);
