package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// migrations[i] takes the schema from version i to i+1 (PRAGMA
// user_version). Append only: never edit a released migration.
//
// Conventions: STRICT tables, timestamps are INTEGER unix nanoseconds (UTC),
// money is INTEGER nano-USD, estimates are REAL USD, booleans are INTEGER
// 0/1. Attempts are append-only (triggers refuse UPDATE and DELETE) and a
// trigger adds each attempt's cost to its run's spent_nano inside the
// inserting transaction, so spent_nano always equals the sum of attempts.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE runs (
	id                 TEXT    NOT NULL PRIMARY KEY,
	workflow_name      TEXT    NOT NULL,
	workflow_file      TEXT    NOT NULL,
	workflow_hash      TEXT    NOT NULL,
	inputs_json        TEXT    NOT NULL CHECK (json_valid(inputs_json)),
	plan_json          TEXT    NOT NULL CHECK (json_valid(plan_json)),
	predicted_mean_usd REAL    NOT NULL,
	predicted_p95_usd  REAL    NOT NULL,
	budget_max_nano    INTEGER NOT NULL CHECK (budget_max_nano >= 0),
	status             TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'budget_exhausted')),
	spent_nano         INTEGER NOT NULL DEFAULT 0,
	last_seq           INTEGER NOT NULL DEFAULT 0,
	simulated          INTEGER NOT NULL CHECK (simulated IN (0, 1)),
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow ON runs (workflow_name);

CREATE TABLE nodes (
	run_id             TEXT    NOT NULL REFERENCES runs (id),
	node_id            TEXT    NOT NULL,
	ord                INTEGER NOT NULL,
	status             TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
	final_model        TEXT    NOT NULL DEFAULT '',
	output             TEXT    NOT NULL DEFAULT '',
	predicted_cost_usd REAL    NOT NULL DEFAULT 0,
	started_at         INTEGER,
	finished_at        INTEGER,
	replanned          INTEGER NOT NULL DEFAULT 0 CHECK (replanned IN (0, 1)),
	replan_note        TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, node_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE attempts (
	run_id                TEXT    NOT NULL,
	node_id               TEXT    NOT NULL,
	seq                   INTEGER NOT NULL CHECK (seq > 0),
	iteration             INTEGER NOT NULL CHECK (iteration >= 0),
	model                 TEXT    NOT NULL CHECK (model <> ''),
	provider              TEXT    NOT NULL,
	outcome               TEXT    NOT NULL CHECK (outcome IN ('ok', 'error', 'invalid', 'timeout', 'rate_limited',
	                                                          'context_length', 'auth', 'budget', 'interrupted')),
	reason                TEXT    NOT NULL,
	may_have_billed       INTEGER NOT NULL CHECK (may_have_billed IN (0, 1)),
	input_tokens          INTEGER NOT NULL CHECK (input_tokens >= 0),
	cache_read_tokens     INTEGER NOT NULL CHECK (cache_read_tokens >= 0),
	cache_write_5m_tokens INTEGER NOT NULL CHECK (cache_write_5m_tokens >= 0),
	cache_write_1h_tokens INTEGER NOT NULL CHECK (cache_write_1h_tokens >= 0),
	output_tokens         INTEGER NOT NULL CHECK (output_tokens >= 0),
	reasoning_tokens      INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
	audio_in_tokens       INTEGER NOT NULL CHECK (audio_in_tokens >= 0),
	audio_out_tokens      INTEGER NOT NULL CHECK (audio_out_tokens >= 0),
	images                INTEGER NOT NULL CHECK (images >= 0),
	usage_reported        INTEGER NOT NULL CHECK (usage_reported IN (0, 1)),
	cost_nano             INTEGER NOT NULL CHECK (cost_nano >= 0),
	latency_ms            INTEGER NOT NULL CHECK (latency_ms >= 0),
	started_at            INTEGER NOT NULL,
	ended_at              INTEGER NOT NULL,
	PRIMARY KEY (run_id, seq),
	FOREIGN KEY (run_id, node_id) REFERENCES nodes (run_id, node_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX attempts_node ON attempts (run_id, node_id, iteration, seq);

CREATE TRIGGER attempts_spent AFTER INSERT ON attempts BEGIN
	UPDATE runs SET spent_nano = spent_nano + NEW.cost_nano WHERE id = NEW.run_id;
END;
CREATE TRIGGER attempts_no_update BEFORE UPDATE ON attempts BEGIN
	SELECT RAISE(ABORT, 'ledger: attempts are append-only');
END;
CREATE TRIGGER attempts_no_delete BEFORE DELETE ON attempts BEGIN
	SELECT RAISE(ABORT, 'ledger: attempts are append-only');
END;

CREATE TABLE calls_in_flight (
	run_id        TEXT    NOT NULL,
	node_id       TEXT    NOT NULL,
	seq           INTEGER NOT NULL CHECK (seq > 0),
	iteration     INTEGER NOT NULL CHECK (iteration >= 0),
	model         TEXT    NOT NULL CHECK (model <> ''),
	provider      TEXT    NOT NULL,
	estimate_nano INTEGER NOT NULL CHECK (estimate_nano >= 0),
	started_at    INTEGER NOT NULL,
	PRIMARY KEY (run_id, seq),
	FOREIGN KEY (run_id, node_id) REFERENCES nodes (run_id, node_id)
) STRICT, WITHOUT ROWID;
`,
	// 2: the task kind of each node (learning per task and model), and
	// explicit feedback on node outputs. Existing nodes get task ''.
	`
ALTER TABLE nodes ADD COLUMN task TEXT NOT NULL DEFAULT '';

CREATE TABLE feedback (
	id         INTEGER NOT NULL PRIMARY KEY,
	run_id     TEXT    NOT NULL,
	node_id    TEXT    NOT NULL,
	score      REAL    NOT NULL CHECK (score >= 0 AND score <= 1),
	note       TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	FOREIGN KEY (run_id, node_id) REFERENCES nodes (run_id, node_id)
) STRICT;
CREATE INDEX feedback_node ON feedback (run_id, node_id, created_at);

CREATE INDEX attempts_ended ON attempts (ended_at);
`,
	// 3: cascades. An attempt's purpose tells an answer from a self-check
	// call (a confidence signal whose cost is counted), and confidence is
	// the signal the cascade compared with its threshold (NULL: none).
	`
ALTER TABLE attempts ADD COLUMN purpose TEXT NOT NULL DEFAULT 'answer' CHECK (purpose IN ('answer', 'self_check'));
ALTER TABLE attempts ADD COLUMN confidence REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1));
`,
	// 4: why a run that is not finished stopped (cancelled over HTTP,
	// interrupted by a shutdown); '' while it runs or once it finished.
	`
ALTER TABLE runs ADD COLUMN stop_note TEXT NOT NULL DEFAULT '';
`,
	// 5: who started a run over HTTP (the gateway's key name; '' for runs
	// started otherwise), so that its owner still finds it after the
	// server restarts.
	`
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_owner ON runs (owner, created_at) WHERE owner <> '';
`,
}

// SchemaVersion is the schema version this package writes (PRAGMA
// user_version after Open); it equals len(migrations).
const SchemaVersion = 5

// migrate brings the database to SchemaVersion in one transaction per
// migration; running it again is a no-op. The version is read inside the
// write transaction, so two processes opening a new ledger at once do not
// both apply a migration.
func migrate(db *sql.DB, path string) error {
	for {
		done, err := migrateOne(db, path)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(db *sql.DB, path string) (done bool, err error) {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (DSN _txlock)
	if err != nil {
		return false, fmt.Errorf("ledger: migrating %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return false, fmt.Errorf("ledger: migrating %s: reading user_version: %w", path, err)
	}
	switch {
	case v > len(migrations):
		return false, fmt.Errorf("ledger: %s has schema version %d but this costwise knows only up to %d; upgrade costwise", path, v, len(migrations))
	case v == len(migrations):
		return true, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return false, fmt.Errorf("ledger: migrating %s to schema version %d: %w", path, v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(v+1)); err != nil {
		return false, fmt.Errorf("ledger: migrating %s to schema version %d: %w", path, v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("ledger: migrating %s to schema version %d: commit: %w", path, v+1, err)
	}
	return false, nil
}
