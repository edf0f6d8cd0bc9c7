-- Version 2: several steward instances on one database.

-- Work claimed by one instance until released or run out (see LeaseStore).
CREATE TABLE leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    until_ms bigint NOT NULL
);
CREATE INDEX leases_by_end ON leases (until_ms);

-- Message budgets every instance takes from.
CREATE TABLE buckets (
    name text COLLATE "C" PRIMARY KEY,
    tokens double precision NOT NULL,
    at_ms bigint NOT NULL,
    -- Whether the last request took a token.
    taken boolean NOT NULL
);

-- The instances serving this database, each renewing its row while alive.
-- An instance's listening connection carries app_name as its
-- application_name: when that connection is gone, so is the instance.
CREATE TABLE instances (
    id text COLLATE "C" PRIMARY KEY,
    app_name text NOT NULL,
    until_ms bigint NOT NULL
);

-- How many sockets of a user each instance holds.
CREATE TABLE presence (
    user_id text COLLATE "C" NOT NULL,
    instance text COLLATE "C" NOT NULL REFERENCES instances ON DELETE CASCADE,
    sockets integer NOT NULL,
    PRIMARY KEY (user_id, instance)
);
CREATE INDEX presence_by_instance ON presence (instance);

-- Frames too large for a NOTIFY payload, which carries their id instead.
CREATE TABLE frames (
    id bigserial PRIMARY KEY,
    at_ms bigint NOT NULL,
    body text NOT NULL
);
