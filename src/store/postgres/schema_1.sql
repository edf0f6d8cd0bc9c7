-- steward's PostgreSQL schema, version 1. Records are stored as JSON (the
-- same serde form the sled store writes), beside the columns the queries
-- select and order by. Instants used as keys are milliseconds since the
-- epoch, as in the sled store, so "the same time" means the same thing in
-- both. Identifiers compare byte-wise (COLLATE "C").

CREATE TABLE users (
    user_id text COLLATE "C" PRIMARY KEY,
    plan_seq bigint NOT NULL DEFAULT 0,
    proposal_seq bigint NOT NULL DEFAULT 0,
    prefs json,
    summary json,
    digest_cursor_ms bigint
);

-- Messages, notifications and outbox rows are numbered from one sequence.
CREATE SEQUENCE record_seq;

CREATE TABLE plans (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    plan_id bigint NOT NULL,
    version bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, plan_id)
);

CREATE TABLE plan_history (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    plan_id bigint NOT NULL,
    version bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, plan_id, version)
);

CREATE TABLE proposals (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    seq bigint NOT NULL,
    open boolean NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX proposals_open ON proposals (user_id, seq) WHERE open;

CREATE TABLE messages (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    seq bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- Armed triggers; plan_id names the plan a derived trigger came from.
CREATE TABLE triggers (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    id text COLLATE "C" NOT NULL,
    fire_ms bigint NOT NULL,
    plan_id bigint,
    body json NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX triggers_by_time ON triggers (fire_ms, user_id, id);
CREATE INDEX triggers_by_plan ON triggers (user_id, plan_id) WHERE plan_id IS NOT NULL;

-- The exactly-once record of every firing.
CREATE TABLE fired (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    id text COLLATE "C" NOT NULL,
    fire_ms bigint NOT NULL,
    at_ms bigint NOT NULL,
    missed boolean NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, id, fire_ms)
);

-- The inbox; queued_until_ms is set while a notification waits to be routed.
CREATE TABLE notifications (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    seq bigint NOT NULL,
    created_ms bigint NOT NULL,
    seen boolean NOT NULL,
    routed boolean NOT NULL,
    queued_until_ms bigint,
    body json NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX notifications_queued ON notifications (queued_until_ms, seq) WHERE queued_until_ms IS NOT NULL;

-- Side effects, one row per idempotency key; open while pending or sending.
CREATE TABLE outbox (
    seq bigint PRIMARY KEY,
    key text COLLATE "C" NOT NULL UNIQUE,
    user_id text COLLATE "C" NOT NULL,
    open boolean NOT NULL,
    next_ms bigint NOT NULL,
    created_ms bigint NOT NULL,
    body json NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_ms, seq) WHERE open;

-- An endpoint belongs to the user who subscribed it last.
CREATE TABLE push_subscriptions (
    endpoint text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    body json NOT NULL
);
CREATE INDEX push_by_user ON push_subscriptions (user_id);

CREATE TABLE secrets (
    name text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- The engine's work list, synced by every plan write.
CREATE TABLE work (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    plan_id bigint NOT NULL,
    step_id text COLLATE "C" NOT NULL,
    at_ms bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, plan_id, step_id)
);
CREATE INDEX work_by_time ON work (at_ms, user_id, plan_id, step_id);

CREATE TABLE attempts (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    plan_id bigint NOT NULL,
    step_id text COLLATE "C" NOT NULL,
    epoch bigint NOT NULL,
    settled boolean NOT NULL,
    next_try_ms bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, plan_id, step_id, epoch)
);
CREATE INDEX attempts_open ON attempts (next_try_ms) WHERE NOT settled;

CREATE TABLE replans (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    plan_id bigint NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (user_id, plan_id)
);

CREATE TABLE calendar_events (
    user_id text COLLATE "C" NOT NULL REFERENCES users,
    key text COLLATE "C" NOT NULL,
    starts_ms bigint NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE probe (
    id integer PRIMARY KEY,
    at_ms bigint NOT NULL
);
