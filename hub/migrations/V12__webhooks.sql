-- Webhooks (`hub/src/store/webhooks/`): subscriptions by rule and the
-- durable outbox of their deliveries.

-- One subscription: where to POST, the secret the hub signs with (the
-- HMAC key; kept because every delivery is signed with it, never shown
-- after creation), the rule an event change must match (the API's JSON
-- fields: kinds, categories, min_severity, area, status_from, status_to).
CREATE TABLE webhook_subscriptions (
    id bytea PRIMARY KEY CHECK (length(id) = 16),
    name text NOT NULL UNIQUE,
    url text NOT NULL,
    secret text NOT NULL,
    enabled boolean NOT NULL,
    rule jsonb NOT NULL,
    created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL
);

-- The outbox. A row is written in the projector's transaction that
-- writes the event change it reports, so every matching change has
-- exactly one row, crash or not; the delivery worker sends it until a
-- receiver answers 2xx (`delivered`) or `max_attempts` failed (`dead`).
-- `id` is the idempotency key (`Sentinel-Webhook-Id`), the same on every
-- attempt; `payload` the exact body every attempt sends.
CREATE TABLE webhook_deliveries (
    id bytea PRIMARY KEY CHECK (length(id) = 16),
    subscription bytea NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event bytea,
    kind text NOT NULL,
    payload text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    -- Pending: when it is due (a claimed one: when its lease ends).
    next_attempt_ms bigint NOT NULL,
    created_ms bigint NOT NULL,
    last_attempt_ms bigint,
    last_status integer,
    last_error text,
    delivered_ms bigint
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (subscription, created_ms DESC, id);

-- Log positions projected before a rebuild of the views: projected
-- again, they announce nothing (their changes were announced, or predate
-- every subscription). The projector deletes each as it takes it in.
CREATE TABLE webhook_quiet (
    pos bigint PRIMARY KEY
);
