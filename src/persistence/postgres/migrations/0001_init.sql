-- Starling schema version 1. Keys use COLLATE "C" so that ORDER BY is byte order
-- (the order of Rust strings and of the sled store). Records are the postcard
-- encodings of src/persistence/records.rs, as in the sled store.
CREATE TABLE starling_meta (
    name text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL
);
-- 1 + the largest queued seq ever applied.
INSERT INTO starling_meta (name, value) VALUES ('next_seq', 1);

CREATE TABLE starling_sessions (
    client_id text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE starling_subscriptions (
    client_id text COLLATE "C" NOT NULL,
    filter text COLLATE "C" NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (client_id, filter)
);

CREATE TABLE starling_queue (
    client_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (client_id, seq)
);

CREATE TABLE starling_inbound_qos2 (
    client_id text COLLATE "C" NOT NULL,
    packet_id integer NOT NULL,
    PRIMARY KEY (client_id, packet_id)
);

CREATE TABLE starling_retained (
    topic text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);
