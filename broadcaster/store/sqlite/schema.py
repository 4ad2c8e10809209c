"""The SQLite journal's schema, and the migrations that bring an older journal up to it."""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 11

OPEN_STATES: Final = "('pending', 'in_flight')"
NEXT_UPDATE_AT: Final = "(state ->> '$.next_update_at')"
"""An incident's promised next update, as SQL: the incidents_due index is on this expression, and the overdue
query must write it the same way to read that index."""
"""The states of an open delivery, as SQL. The deliveries_open index is partial on exactly this term, and
queries name it to read that index (one that says `INDEXED BY deliveries_open` fails without it)."""

SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS incidents (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,             -- JSON of the Incident as it stands now
    is_open     INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_recent ON incidents (updated_at);
-- Open incidents by their promised next update: the overdue check (every 15 s, and /readyz) reads the few
-- that are late rather than every incident the journal has ever had.
CREATE INDEX IF NOT EXISTS incidents_due ON incidents ({NEXT_UPDATE_AT}, id) WHERE is_open = 1;

CREATE TABLE IF NOT EXISTS updates (
    id              TEXT PRIMARY KEY,
    incident_id     TEXT NOT NULL REFERENCES incidents (id),
    seq             INTEGER NOT NULL,
    status          TEXT NOT NULL,
    impact          TEXT NOT NULL,
    message         TEXT NOT NULL,
    components      TEXT NOT NULL,         -- JSON list of component changes
    created_at      REAL NOT NULL,
    next_update_at  REAL,
    author          TEXT NOT NULL,
    incident_after  TEXT NOT NULL,         -- JSON of the Incident right after this update
    idempotency_key TEXT UNIQUE,
    request_digest  TEXT,                  -- what the request under idempotency_key said, to refuse other content
    content_digest  TEXT,                  -- what makes two submissions the same update (domain.drafts)
    UNIQUE (incident_id, seq)
);
-- Two commanders posting the same update at once (chat and the form) make one: the intake looks for the
-- same content among the last minute's updates.
CREATE INDEX IF NOT EXISTS updates_content ON updates (content_digest, created_at);
-- Idempotency keys beyond an update's own: a form's key that was answered with the same update posted from
-- chat a moment before, so that the form sent again later still answers that update.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            TEXT PRIMARY KEY,
    update_id      TEXT NOT NULL REFERENCES updates (id),
    request_digest TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- acceptance order, the order lanes deliver in
    id           TEXT NOT NULL UNIQUE,
    update_id    TEXT NOT NULL REFERENCES updates (id),
    incident_id  TEXT NOT NULL,
    update_seq   INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    target       TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created_at   REAL NOT NULL,
    not_before   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    finished_at  REAL,
    lease_owner  TEXT,
    lease_until  REAL,
    last_error   TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    external_id  TEXT,
    has_progress INTEGER NOT NULL DEFAULT 0      -- 1 while an attempt may still read its `progress` rows
);
-- Partial indexes hold only open deliveries: they stay small however long the history grows, and a
-- delivery enters and leaves each once instead of moving on every change of state. Leases have no index
-- of their own: only the periodic recovery looks for them, through deliveries_open, and an index would
-- cost every claim and every outcome a write.
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (channel, target, seq) WHERE state IN {OPEN_STATES};
-- Failed deliveries wait for an operator's `requeue`, which finds them here rather than in the whole history.
CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (channel) WHERE state = 'failed';
CREATE INDEX IF NOT EXISTS deliveries_update ON deliveries (update_id);
CREATE INDEX IF NOT EXISTS deliveries_thread ON deliveries (incident_id, channel, target, update_seq);
-- Deliveries an attempt may still resume (open, or failed and requeueable) that saved progress: few at any
-- time, whatever the history. When one can no longer be attempted, its progress is pruned and the flag
-- cleared.
CREATE INDEX IF NOT EXISTS deliveries_progress ON deliveries (state) WHERE has_progress = 1;

-- What a long delivery has done so far (an email fan-out: one row per recipient), appended as it goes so a
-- retry after a crash resumes instead of repeating. note is '' for a step that went through, else why it
-- was refused. Once the delivery can no longer be attempted, the '' rows are pruned: refusals are kept.
CREATE TABLE IF NOT EXISTS progress (
    delivery_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    note        TEXT NOT NULL,
    PRIMARY KEY (delivery_id, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL,
    number      INTEGER NOT NULL,
    started_at  REAL,
    finished_at REAL NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id);

-- Addresses that must not be mailed again (one-click unsubscribes), kept in the journal so that two
-- processes adding at once never lose one. The email channel reads them beside its suppression file.
CREATE TABLE IF NOT EXISTS suppressions (
    address  TEXT PRIMARY KEY,             -- lower-cased
    reason   TEXT NOT NULL,
    source   TEXT NOT NULL,                -- "unsubscribe", ...
    added_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS controls (
    channel    TEXT NOT NULL,
    target     TEXT NOT NULL,              -- '' pauses the whole channel
    paused     INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (channel, target)
);

-- Confirmed subscribers (the form's double opt-in, or an operator); the subscribers file stays a file.
CREATE TABLE IF NOT EXISTS subscribers (
    kind       TEXT NOT NULL,              -- "email" or "webhook"
    address    TEXT NOT NULL,              -- a lower-cased email address, or a webhook URL
    state      TEXT NOT NULL,              -- JSON of the rest of the Subscriber
    PRIMARY KEY (kind, address)
) WITHOUT ROWID;

-- What each publish target of the mirror holds (JSON: path -> content hash), so a publish sends only what
-- changed and deletes only what it put there.
CREATE TABLE IF NOT EXISTS publish_manifests (
    target   TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,
    saved_at REAL NOT NULL
) WITHOUT ROWID;

-- Web sessions: the cookies and login links are signed, so the journal keeps only what must be refused though
-- its signature still holds, on every instance: logged-out sessions, and login links already redeemed, each
-- until it would have expired anyway. A write prunes what has expired first: both stay small.
CREATE TABLE IF NOT EXISTS revoked_sessions (
    id    TEXT PRIMARY KEY,
    until REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revoked_sessions_until ON revoked_sessions (until);
CREATE TABLE IF NOT EXISTS redeemed (
    purpose TEXT NOT NULL,                 -- what was redeemed: "login-link"
    nonce   TEXT NOT NULL,
    until   REAL NOT NULL,
    PRIMARY KEY (purpose, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS redeemed_until ON redeemed (until);
"""

# What takes a journal from version N-1 to N. A new journal gets SCHEMA (already the latest) directly.
MIGRATIONS: Final = {
    2: "DROP INDEX IF EXISTS deliveries_queue;\n"
    "DROP INDEX IF EXISTS deliveries_order;\n"
    "DROP INDEX IF EXISTS deliveries_thread;\n"
    "CREATE INDEX deliveries_due ON deliveries (channel, seq) WHERE state = 'pending';\n"
    f"CREATE INDEX deliveries_open ON deliveries (channel, target, seq) WHERE state IN {OPEN_STATES};\n"
    "CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'in_flight';\n"
    "CREATE INDEX deliveries_thread ON deliveries (incident_id, channel, target, update_seq);",
    3: "DROP INDEX IF EXISTS deliveries_leased;",
    4: "CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (channel) WHERE state = 'failed';",
    # Progress moves from one JSON value per delivery, rewritten whole at each save, to rows appended as
    # they happen. What an open (or still requeueable) delivery had saved comes along: email's accepted
    # addresses and refusals, and any other channel's text values (X's text digest and post id, which keep
    # a retry from posting again). Refusals are kept for finished deliveries too.
    5: "CREATE TABLE progress (delivery_id TEXT NOT NULL, key TEXT NOT NULL, note TEXT NOT NULL, "
    "PRIMARY KEY (delivery_id, key)) WITHOUT ROWID;\n"
    "INSERT OR IGNORE INTO progress (delivery_id, key, note) SELECT d.id, a.value, '' "
    "FROM deliveries d, json_each(d.progress, '$.accepted') a WHERE d.progress != '{}' "
    f"AND (d.state IN {OPEN_STATES} OR (d.state = 'failed' AND d.expires_at > unixepoch()));\n"
    "INSERT OR REPLACE INTO progress (delivery_id, key, note) SELECT d.id, r.key, r.value "
    "FROM deliveries d, json_each(d.progress, '$.refused') r WHERE d.progress != '{}';\n"
    "INSERT OR REPLACE INTO progress (delivery_id, key, note) SELECT d.id, e.key, e.value "
    "FROM deliveries d, json_each(d.progress) e WHERE d.progress != '{}' AND e.type = 'text';\n"
    "ALTER TABLE deliveries ADD COLUMN has_progress INTEGER NOT NULL DEFAULT 0;\n"
    "UPDATE deliveries SET has_progress = 1 WHERE id IN (SELECT delivery_id FROM progress) "
    f"AND (state IN {OPEN_STATES} OR (state = 'failed' AND expires_at > unixepoch()));\n"
    "ALTER TABLE deliveries DROP COLUMN progress;\n"
    "CREATE INDEX deliveries_progress ON deliveries (state) WHERE has_progress = 1;",
    6: "ALTER TABLE updates ADD COLUMN request_digest TEXT;\n"
    "CREATE TABLE suppressions (address TEXT PRIMARY KEY, reason TEXT NOT NULL, source TEXT NOT NULL, "
    "added_at REAL NOT NULL) WITHOUT ROWID;",
    7: f"CREATE INDEX incidents_due ON incidents ({NEXT_UPDATE_AT}, id) WHERE is_open = 1;",
    8: "ALTER TABLE updates ADD COLUMN content_digest TEXT;\n"
    "CREATE INDEX updates_content ON updates (content_digest, created_at);\n"
    "CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, update_id TEXT NOT NULL REFERENCES updates (id), "
    "request_digest TEXT) WITHOUT ROWID;",
    9: "CREATE TABLE subscribers (kind TEXT NOT NULL, address TEXT NOT NULL, state TEXT NOT NULL, "
    "PRIMARY KEY (kind, address)) WITHOUT ROWID;",
    10: "CREATE TABLE IF NOT EXISTS publish_manifests (target TEXT PRIMARY KEY, manifest TEXT NOT NULL, "
    "saved_at REAL NOT NULL) WITHOUT ROWID;",
    11: "CREATE TABLE revoked_sessions (id TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID;\n"
    "CREATE INDEX revoked_sessions_until ON revoked_sessions (until);\n"
    "CREATE TABLE redeemed (purpose TEXT NOT NULL, nonce TEXT NOT NULL, until REAL NOT NULL, "
    "PRIMARY KEY (purpose, nonce)) WITHOUT ROWID;\n"
    "CREATE INDEX redeemed_until ON redeemed (until);",
}
