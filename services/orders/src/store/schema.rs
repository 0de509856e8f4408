//! The order store's layout: SQLite migrations (applied in order, never edited once shipped)
//! and MongoDB indexes.

use holdfast_common::docstore::{IndexOrder, IndexSpec, Schema};

pub const SCHEMA: Schema = Schema {
    sqlite_migrations: &[
        r"
        CREATE TABLE orders (
            order_id          TEXT PRIMARY KEY,
            user_id           TEXT NOT NULL,
            event_id          TEXT NOT NULL,
            seat_ids          TEXT NOT NULL,
            amount_minor      INTEGER NOT NULL,
            currency          TEXT NOT NULL,
            payment_intent_id TEXT NOT NULL UNIQUE,
            status            TEXT NOT NULL,
            created_at        INTEGER NOT NULL,
            idempotency_key   TEXT,
            request_hash      TEXT,
            response_status   INTEGER,
            response_body     TEXT
        );
        CREATE UNIQUE INDEX orders_idempotency ON orders (user_id, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE INDEX orders_by_user ON orders (user_id, created_at);
        CREATE TABLE sold_seats (
            event_id TEXT NOT NULL,
            seat_id  TEXT NOT NULL,
            order_id TEXT NOT NULL,
            PRIMARY KEY (event_id, seat_id)
        );
        CREATE TABLE outbox (
            id          TEXT PRIMARY KEY,
            routing_key TEXT NOT NULL,
            payload     TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            sent_at     INTEGER
        );
        CREATE INDEX outbox_pending ON outbox (created_at) WHERE sent_at IS NULL;
    ",
        r"
        -- Idempotency records get a table of their own (the layout of the MongoDB collection)
        -- with an expiry, so that a key is usable again once it is forgotten. Records kept
        -- so far expire a day (the default IDEMPOTENCY_TTL_SECONDS) after their order.
        CREATE TABLE idempotency (
            user_id      TEXT NOT NULL,
            key          TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status       INTEGER NOT NULL,
            body         TEXT NOT NULL,
            order_id     TEXT NOT NULL,
            created_at   INTEGER NOT NULL,
            expires_at   INTEGER NOT NULL,
            PRIMARY KEY (user_id, key)
        );
        INSERT INTO idempotency
            SELECT user_id, idempotency_key, request_hash, response_status, response_body,
                   order_id, created_at, created_at + 86400000
            FROM orders WHERE idempotency_key IS NOT NULL;
        DROP INDEX orders_idempotency;
        ALTER TABLE orders DROP COLUMN idempotency_key;
        ALTER TABLE orders DROP COLUMN request_hash;
        ALTER TABLE orders DROP COLUMN response_status;
        ALTER TABLE orders DROP COLUMN response_body;
    ",
        r"
        -- Cancellations: the seats given back so far, what was refunded, and a revision that
        -- each cancellation bumps (two cancellations of one order cannot both apply). Refunds
        -- are rows of their own; the waitlist is one row per user and event.
        ALTER TABLE orders ADD COLUMN cancelled_seat_ids TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE orders ADD COLUMN refunded_minor INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD COLUMN email TEXT;
        CREATE INDEX orders_by_event ON orders (event_id, created_at);
        CREATE TABLE refunds (
            refund_id         TEXT PRIMARY KEY,
            order_id          TEXT NOT NULL,
            event_id          TEXT NOT NULL,
            user_id           TEXT NOT NULL,
            payment_intent_id TEXT,
            seat_ids          TEXT NOT NULL,
            amount_minor      INTEGER NOT NULL,
            currency          TEXT NOT NULL,
            cancelled_by      TEXT NOT NULL,
            created_at        INTEGER NOT NULL
        );
        CREATE INDEX refunds_by_order ON refunds (order_id, created_at);
        CREATE INDEX refunds_by_event ON refunds (event_id);
        CREATE TABLE waitlist (
            event_id       TEXT NOT NULL,
            user_id        TEXT NOT NULL,
            seats          INTEGER NOT NULL,
            joined_at      INTEGER NOT NULL,
            email          TEXT,
            offer_hold_id  TEXT,
            offer_until    INTEGER,
            PRIMARY KEY (event_id, user_id)
        );
        CREATE INDEX waitlist_queue ON waitlist (event_id, joined_at, user_id);
    ",
        r"
        -- When each cancelled seat was given back, index for index with cancelled_seat_ids;
        -- for cancellations stored before, taken from their refunds.
        ALTER TABLE orders ADD COLUMN cancelled_at TEXT NOT NULL DEFAULT '[]';
        UPDATE orders SET cancelled_at = (
            SELECT json_group_array(
                (SELECT r.created_at FROM refunds r, json_each(r.seat_ids) s
                 WHERE r.order_id = orders.order_id AND s.value = c.value
                 ORDER BY r.created_at DESC LIMIT 1))
            FROM json_each(orders.cancelled_seat_ids) c
        )
        WHERE cancelled_seat_ids <> '[]';
    ",
        r"
        -- Pruning (common::retention): published outbox messages and expired idempotency
        -- records, found by when they were done with.
        CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
        CREATE INDEX idempotency_expiry ON idempotency (expires_at);
    ",
        r"
        -- The waitlist as a line (see store::line): a sequence number per entry, the count of
        -- entries per block of numbers at levels 1 to 4, and per event the next number, the
        -- entries and the seats wanted; places are counted from these, never by reading the
        -- queue. Entries so far are numbered in the order they were served (joined_at, user).
        ALTER TABLE waitlist ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        UPDATE waitlist SET seq = (
            SELECT n FROM (
                SELECT event_id AS e, user_id AS u,
                       ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY joined_at, user_id) AS n
                FROM waitlist
            ) WHERE e = waitlist.event_id AND u = waitlist.user_id
        );
        DROP INDEX waitlist_queue;
        CREATE UNIQUE INDEX waitlist_line ON waitlist (event_id, seq);
        CREATE INDEX waitlist_wanting ON waitlist (event_id, seats, seq)
            WHERE offer_hold_id IS NULL;
        CREATE INDEX waitlist_offers ON waitlist (event_id, offer_until)
            WHERE offer_hold_id IS NOT NULL;
        CREATE INDEX waitlist_offer_holds ON waitlist (event_id, offer_hold_id)
            WHERE offer_hold_id IS NOT NULL;
        CREATE TABLE waitlist_lines (
            event_id TEXT PRIMARY KEY,
            next_seq INTEGER NOT NULL,
            entries  INTEGER NOT NULL,
            seats    INTEGER NOT NULL
        );
        INSERT INTO waitlist_lines
            SELECT event_id, MAX(seq) + 1, COUNT(*), SUM(seats) FROM waitlist GROUP BY event_id;
        CREATE TABLE waitlist_blocks (
            event_id TEXT NOT NULL,
            level    INTEGER NOT NULL,
            block    INTEGER NOT NULL,
            entries  INTEGER NOT NULL,
            PRIMARY KEY (event_id, level, block)
        ) WITHOUT ROWID;
        INSERT INTO waitlist_blocks
            SELECT event_id, 1, seq >> 8, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 8;
        INSERT INTO waitlist_blocks
            SELECT event_id, 2, seq >> 16, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 16;
        INSERT INTO waitlist_blocks
            SELECT event_id, 3, seq >> 24, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 24;
        INSERT INTO waitlist_blocks
            SELECT event_id, 4, seq >> 32, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 32;
    ",
        r"
        -- Tickets: one per sold seat, made with its order and revoked with its seat's
        -- cancellation. At most one valid ticket per seat. A transferred ticket has no holder
        -- id until an account with its address claims it with the code mailed there. Orders
        -- bought before tickets existed get theirs here, each with a random id and secret.
        CREATE TABLE tickets (
            ticket_id    TEXT PRIMARY KEY,
            event_id     TEXT NOT NULL,
            seat_id      TEXT NOT NULL,
            order_id     TEXT NOT NULL,
            holder_id    TEXT,
            holder_email TEXT,
            status       TEXT NOT NULL,
            version      INTEGER NOT NULL,
            secret       TEXT NOT NULL,
            transfers    INTEGER NOT NULL DEFAULT 0,
            claim_hash   TEXT,
            entered_at   INTEGER,
            entry_gate   TEXT,
            inside       INTEGER NOT NULL DEFAULT 0,
            changed_at   INTEGER NOT NULL
        );
        CREATE INDEX tickets_by_order ON tickets (order_id);
        CREATE INDEX tickets_by_holder ON tickets (holder_id);
        CREATE UNIQUE INDEX tickets_claims ON tickets (claim_hash) WHERE claim_hash IS NOT NULL;
        CREATE INDEX tickets_changed ON tickets (event_id, changed_at, ticket_id);
        CREATE UNIQUE INDEX tickets_one_valid_per_seat ON tickets (event_id, seat_id)
            WHERE status = 'valid';
        WITH live AS MATERIALIZED (
            SELECT lower(hex(randomblob(16))) AS h, o.event_id, s.value AS seat_id, o.order_id,
                   o.user_id, lower(o.email) AS email, o.created_at
            FROM orders o, json_each(o.seat_ids) s
            WHERE s.value NOT IN (SELECT value FROM json_each(o.cancelled_seat_ids))
        )
        INSERT INTO tickets (ticket_id, event_id, seat_id, order_id, holder_id, holder_email,
                             status, version, secret, changed_at)
            SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a'
                   || substr(h, 18, 3) || '-' || substr(h, 21, 12),
                   event_id, seat_id, order_id, user_id, email, 'valid', 1,
                   lower(hex(randomblob(6))), created_at
            FROM live;
    ",
        r"
        -- Check-in: scanner devices (their tokens' secrets hashed), each event's ticket
        -- policy (re-entry, transfers), and the nonces of offline scans already reconciled,
        -- with what each answered. Transfers are kept as a record of who gave what to whom.
        CREATE TABLE devices (
            device_id   TEXT PRIMARY KEY,
            event_id    TEXT NOT NULL,
            name        TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_by  TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            revoked     INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX devices_by_event ON devices (event_id, created_at);
        CREATE TABLE ticket_policies (
            event_id        TEXT PRIMARY KEY,
            reentry         INTEGER NOT NULL,
            transfers       INTEGER NOT NULL,
            transfer_cutoff INTEGER NOT NULL,
            max_transfers   INTEGER NOT NULL
        );
        CREATE TABLE transfers (
            transfer_id TEXT PRIMARY KEY,
            ticket_id   TEXT NOT NULL,
            event_id    TEXT NOT NULL,
            from_user   TEXT NOT NULL,
            from_email  TEXT,
            to_email    TEXT NOT NULL,
            version     INTEGER NOT NULL,
            created_at  INTEGER NOT NULL
        );
        CREATE INDEX transfers_by_ticket ON transfers (ticket_id, created_at);
        CREATE TABLE scan_nonces (
            scanner    TEXT NOT NULL,
            nonce      TEXT NOT NULL,
            outcome    TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (scanner, nonce)
        ) WITHOUT ROWID;
        CREATE INDEX scan_nonces_expiry ON scan_nonces (expires_at);
    ",
        r"
        -- The relay that claimed a message publishes it (store::OutboxStore::claim_outbox).
        ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
    ",
    ],
    mongo_indexes: &[
        IndexSpec {
            collection: "orders",
            name: "orders_unique_intent",
            keys: &[("paymentIntentId", IndexOrder::Ascending)],
            unique: true,
        },
        IndexSpec {
            collection: "orders",
            name: "orders_by_user",
            keys: &[
                ("userId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Descending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "idempotency",
            name: "idempotency_unique_key",
            keys: &[
                ("userId", IndexOrder::Ascending),
                ("key", IndexOrder::Ascending),
            ],
            unique: true,
        },
        IndexSpec {
            collection: "idempotency",
            name: "idempotency_expiry",
            keys: &[("expiresAt", IndexOrder::ExpiresAt)],
            unique: false,
        },
        IndexSpec {
            collection: "sold_seats",
            name: "sold_seats_unique_seat",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("seatId", IndexOrder::Ascending),
            ],
            unique: true,
        },
        IndexSpec {
            collection: "orders",
            name: "orders_by_event",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "refunds",
            name: "refunds_by_order",
            keys: &[
                ("orderId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "refunds",
            name: "refunds_by_event",
            keys: &[("eventId", IndexOrder::Ascending)],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_one_entry_per_user",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("userId", IndexOrder::Ascending),
            ],
            unique: true,
        },
        // The line's reads (see `line`): places by sequence number, the head by seats wanted,
        // offers by end and by hold, block counts by level.
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_line",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("seq", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_wanting",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("seats", IndexOrder::Ascending),
                ("seq", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_offers",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("offerUntil", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_offer_holds",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("offerHoldId", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist_blocks",
            name: "waitlist_blocks_by_level",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("level", IndexOrder::Ascending),
                ("block", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "tickets",
            name: "tickets_by_order",
            keys: &[("orderId", IndexOrder::Ascending)],
            unique: false,
        },
        IndexSpec {
            collection: "tickets",
            name: "tickets_by_holder",
            keys: &[("holderId", IndexOrder::Ascending)],
            unique: false,
        },
        IndexSpec {
            collection: "tickets",
            name: "tickets_by_claim",
            keys: &[("claimHash", IndexOrder::Ascending)],
            unique: false,
        },
        IndexSpec {
            collection: "transfers",
            name: "transfers_by_ticket",
            keys: &[
                ("ticketId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "tickets",
            name: "tickets_changed",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("changedAt", IndexOrder::Ascending),
                ("_id", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "devices",
            name: "devices_by_event",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "scan_nonces",
            name: "scan_nonces_expiry",
            keys: &[("expiresAt", IndexOrder::ExpiresAt)],
            unique: false,
        },
        IndexSpec {
            collection: "outbox",
            name: "outbox_pending",
            keys: &[
                ("sentAt", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
    ],
};
