package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: the run (or a node of it) is not in the ledger.
	ErrNotFound = errors.New("ledger: not found")
	// ErrWorkflowChanged: ResumeRun was given a workflow whose hash differs
	// from the one the run was started with.
	ErrWorkflowChanged = errors.New("ledger: workflow file changed since the run started")
	// ErrNodeSucceeded: StartNode on a node that already succeeded; resume
	// must take its output from CompletedNodes instead of paying again.
	ErrNodeSucceeded = errors.New("ledger: node already succeeded")
	// ErrRunSucceeded: ResumeRun on a run that already succeeded.
	ErrRunSucceeded = errors.New("ledger: run already succeeded")
	// ErrInvalid: a record failed validation before anything was written.
	ErrInvalid = errors.New("ledger: invalid record")
)

func runNotFound(id string) error {
	return fmt.Errorf("%w: no run %q in the ledger (`costwise runs` lists the recorded runs)", ErrNotFound, id)
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Sync is SQLite's synchronous setting, i.e. when commits are fsynced.
type Sync int

// Synchronous settings. Both survive a killed process (the data is in the
// OS page cache once the commit returns); they differ on power loss or an
// OS crash.
const (
	// SyncFull fsyncs the write-ahead log at every commit: a commit that
	// returned survives power loss. The default.
	SyncFull Sync = iota
	// SyncNormal fsyncs only at checkpoints: never corrupt, but the last
	// commits before a power loss may be rolled back.
	SyncNormal
)

func (s Sync) pragma() string {
	if s == SyncNormal {
		return "NORMAL"
	}
	return "FULL"
}

// String names the setting as SQLite does.
func (s Sync) String() string { return s.pragma() }

// Options tune Open; the zero value is what Open uses.
type Options struct {
	// Synchronous defaults to SyncFull. A ledger commit happens once per
	// provider call, which takes seconds, so the fsync (about a millisecond
	// on an SSD) is noise, and it guarantees that a recorded (paid) call is
	// never forgotten and re-paid after a power loss.
	Synchronous Sync
	// BusyTimeout is how long a write waits for another process holding the
	// database's write lock; 0 means 10s.
	BusyTimeout time.Duration
	// Now is the clock for created/updated/started/finished timestamps;
	// nil means time.Now.
	Now func() time.Time
}

// Ledger is an open ledger database. Its methods are safe for concurrent
// use by many goroutines: reads run on a pool of read-only connections,
// writes are serialised on one connection, each inside one BEGIN IMMEDIATE
// transaction (SQLite allows one writer; other processes wait busy_timeout).
type Ledger struct {
	path string
	w    *sql.DB // one connection: all writes
	r    *sql.DB // read-only pool
	now  func() time.Time
}

// DefaultPath is where costwise keeps its ledger:
// $XDG_DATA_HOME/costwise/ledger.db, or ~/.local/share/costwise/ledger.db
// when XDG_DATA_HOME is unset or not absolute (as the XDG spec requires).
func DefaultPath() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "costwise", "ledger.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("ledger: cannot find the default ledger path (set XDG_DATA_HOME or HOME, or pass a path): %w", err)
	}
	return filepath.Join(home, ".local", "share", "costwise", "ledger.db"), nil
}

// Open opens the ledger at path with default Options, creating the file and
// its parent directories if needed and migrating the schema to the current
// version.
func Open(path string) (*Ledger, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with explicit Options.
func OpenWith(path string, o Options) (*Ledger, error) {
	if path == "" {
		return nil, errors.New("ledger: empty path (use ledger.DefaultPath())")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("ledger: path %q: give a plain file path (no ':memory:', 'file:' URI or '?')", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("ledger: creating the directory for %s: %w", abs, err)
	}
	busy := o.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1&_synchronous=%s&_dqs=0",
		busy.Milliseconds(), o.Synchronous.pragma())

	w, err := sql.Open("sqlite", abs+"?"+common+"&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("ledger: opening %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	l := &Ledger{path: abs, w: w, now: o.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if err := l.checkJournal(); err != nil {
		w.Close()
		return nil, err
	}
	if err := migrate(w, abs); err != nil {
		w.Close()
		return nil, err
	}
	// Opened after migrate: the file is in WAL mode (persistent) and has
	// the schema, so read-only connections need not change either.
	r, err := sql.Open("sqlite", abs+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("ledger: opening %s for reading: %w", abs, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(4)
	if err := r.Ping(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("ledger: opening %s for reading: %w", abs, err)
	}
	l.r = r
	return l, nil
}

// checkJournal makes sure the DSN's journal_mode=WAL took effect (it can
// not on some file systems); the crash-safety argument relies on it.
func (l *Ledger) checkJournal() error {
	var mode string
	if err := l.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("ledger: opening %s: %w", l.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("ledger: %s: journal_mode is %q, not wal (is it on a network file system?); use a local path", l.path, mode)
	}
	return nil
}

// Path is the absolute path of the database file.
func (l *Ledger) Path() string { return l.path }

// Close closes the database. Every write has already committed when its
// method returned, so Close loses nothing.
func (l *Ledger) Close() error {
	return errors.Join(l.r.Close(), l.w.Close())
}

// HashWorkflow is the workflow hash stored with a run: hex SHA-256 of the
// workflow file's bytes.
func HashWorkflow(file []byte) string {
	s := sha256.Sum256(file)
	return hex.EncodeToString(s[:])
}

// NewRunID makes a run id such as "r_20261127T041200Z_ab12cd": the UTC
// time to the second, so ids sort by creation time, and 24 random bits so
// that runs started in the same second differ.
func NewRunID(t time.Time) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand.Read does not fail on supported platforms
	}
	return "r_" + t.UTC().Format("20060102T150405Z") + "_" + hex.EncodeToString(b[:])
}

// Check verifies the database: SQLite's integrity_check and
// foreign_key_check, every run's spent equal to the sum of its attempts,
// and every attempt's fields within their domains. It returns nil when all
// hold, else an error listing the problems (at most 20).
func (l *Ledger) Check() error {
	ctx := context.Background()
	var problems []string
	rows, err := l.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("ledger: check %s: %w", l.path, err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("ledger: check %s: %w", l.path, err)
		}
		if s != "ok" {
			problems = append(problems, "integrity_check: "+s)
		}
	}
	rows.Close()
	queries := []struct{ what, q string }{
		{"foreign key violation", `SELECT "table" || ' rowid ' || COALESCE(rowid, '?') || ' -> ' || parent FROM pragma_foreign_key_check`},
		{"spent differs from the sum of attempts", `
			SELECT r.id || ': spent ' || r.spent_nano || ', attempts sum to ' || COALESCE(SUM(a.cost_nano), 0)
			FROM runs r LEFT JOIN attempts a ON a.run_id = r.id
			GROUP BY r.id HAVING r.spent_nano <> COALESCE(SUM(a.cost_nano), 0)`},
		{"bad attempt", `
			SELECT run_id || ' seq ' || seq FROM attempts
			WHERE seq <= 0 OR model = '' OR cost_nano < 0 OR latency_ms < 0 OR ended_at < started_at
			   OR seq > (SELECT last_seq FROM runs WHERE id = run_id)`},
	}
	for _, c := range queries {
		rows, err := l.r.QueryContext(ctx, c.q)
		if err != nil {
			return fmt.Errorf("ledger: check %s: %w", l.path, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return fmt.Errorf("ledger: check %s: %w", l.path, err)
			}
			problems = append(problems, c.what+": "+s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("ledger: check %s: %w", l.path, err)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > 20 {
		problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
	}
	return fmt.Errorf("ledger: %s failed its check:\n  %s", l.path, strings.Join(problems, "\n  "))
}
