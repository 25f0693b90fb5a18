package ledger

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stepwise writes r with the step-by-step methods, as a synchronous
// recorder would: CreateRun, then per node StartNode, its attempts (the
// last with the node's result when it has one), MarkReplanned, and
// FinishRun.
func stepwise(t testing.TB, l *Ledger, r CompletedRun) {
	t.Helper()
	_, err := l.CreateRun(r.Run)
	require.NoError(t, err)
	for _, n := range r.Nodes {
		require.NoError(t, l.StartNode(r.Run.ID, n.ID))
		for i, a := range n.Attempts {
			a.RunID, a.NodeID = r.Run.ID, n.ID
			if i == len(n.Attempts)-1 {
				_, err = l.RecordFinalAttempt(a, n.Result)
			} else {
				_, err = l.RecordAttempt(a)
			}
			require.NoError(t, err)
		}
		if len(n.Attempts) == 0 {
			require.NoError(t, l.FinishNode(r.Run.ID, n.ID, n.Result))
		}
		if n.ReplanNote != "" {
			require.NoError(t, l.MarkReplanned(r.Run.ID, n.ID, n.ReplanNote))
		}
	}
	require.NoError(t, l.FinishRun(r.Run.ID, r.Status))
}

// untimed is rec without the timestamps the two ways of writing set from
// different clocks.
func untimed(rec *RunRecord) *RunRecord {
	c := *rec
	c.CreatedAt, c.UpdatedAt = time.Time{}, time.Time{}
	c.Nodes = append([]NodeRecord(nil), rec.Nodes...)
	for i := range c.Nodes {
		c.Nodes[i].StartedAt, c.Nodes[i].FinishedAt = time.Time{}, time.Time{}
	}
	return &c
}

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func attempt(model string, outcome Outcome, cost int64, startMS, endMS int) Attempt {
	return Attempt{Model: model, Provider: "p", Outcome: outcome, CostNano: cost, UsageReported: outcome == OutcomeOK,
		Usage: Usage{InputTokens: 100, OutputTokens: cost}, StartedAt: at(startMS), EndedAt: at(endMS),
		Reason: string(outcome)}
}

// routed is a routed request as the gateway records it: one planned node.
func routed(id string, status RunStatus, attempts []Attempt, res NodeResult) CompletedRun {
	return CompletedRun{
		Run: NewRun{ID: id, WorkflowName: "router:auto", WorkflowFile: "(router)", Inputs: []byte(`{"route":"auto","task":"default"}`),
			PredictedMeanUSD: 0.001, BudgetMaxNano: 5_000_000, Nodes: []PlannedNode{{ID: "call", Task: "default", PredictedCostUSD: 0.001}}},
		Status: status, CreatedAt: at(0),
		Nodes: []CompletedNode{{ID: "call", StartedAt: at(1), FinishedAt: at(90), Attempts: attempts, Result: res}},
	}
}

func TestRecordRunsWritesWhatTheStepsWrite(t *testing.T) {
	conf := 0.75
	selfCheck := attempt("small", OutcomeOK, 3, 31, 35)
	selfCheck.Purpose, selfCheck.Confidence = PurposeSelfCheck, &conf
	for _, tc := range []struct {
		name string
		run  CompletedRun
	}{
		{"one ok call", routed("r_ok", RunSucceeded, []Attempt{attempt("small", OutcomeOK, 40, 2, 30)},
			NodeResult{Status: NodeSucceeded, FinalModel: "small", Output: "hello"})},
		{"escalated after an error and an invalid answer", routed("r_esc", RunSucceeded, []Attempt{
			attempt("small", OutcomeError, 0, 2, 10), attempt("small", OutcomeInvalid, 12, 11, 20), attempt("big", OutcomeOK, 400, 21, 80)},
			NodeResult{Status: NodeSucceeded, FinalModel: "big", Output: "{\"a\": 1}"})},
		{"every rung failed", routed("r_fail", RunFailed, []Attempt{
			attempt("small", OutcomeTimeout, 7, 2, 50), attempt("big", OutcomeRateLimited, 0, 51, 52)},
			NodeResult{Status: NodeFailed})},
		{"budget stop without a call", routed("r_budget", RunBudgetExhausted, []Attempt{attempt("big", OutcomeBudget, 0, 2, 2)},
			NodeResult{Status: NodeFailed})},
		{"a cascade's self-check with its confidence", routed("r_cascade", RunSucceeded, []Attempt{
			attempt("small", OutcomeOK, 30, 2, 30), selfCheck},
			NodeResult{Status: NodeSucceeded, FinalModel: "small", Output: "ok"})},
		{"planned nodes left pending, an unplanned one, a replanned one", CompletedRun{
			Run: NewRun{ID: "r_multi", WorkflowName: "wf", WorkflowHash: HashWorkflow([]byte("wf")), Plan: []byte(`{"a":["m"]}`),
				Nodes: []PlannedNode{{ID: "a", Task: "code", PredictedCostUSD: 0.5}, {ID: "b"}, {ID: "c", Task: "writing"}}},
			Status: RunFailed,
			Nodes: []CompletedNode{
				{ID: "a", Attempts: []Attempt{attempt("m", OutcomeOK, 9, 1, 2)}, Result: NodeResult{Status: NodeSucceeded, FinalModel: "m", Output: "A"},
					ReplanNote: "ladder changed after drift"},
				{ID: "extra", Attempts: []Attempt{attempt("m", OutcomeError, 1, 3, 4)}, Result: NodeResult{Status: NodeFailed}},
				{ID: "c", Result: NodeResult{Status: NodeSkipped}},
			}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := openTest(t, Options{})
			stepwise(t, steps, tc.run)
			want, err := steps.Run(tc.run.Run.ID)
			require.NoError(t, err)

			batch := openTest(t, Options{Now: func() time.Time { return at(1000) }})
			errs, err := batch.RecordRuns([]CompletedRun{tc.run})
			require.NoError(t, err)
			require.Equal(t, []error{nil}, errs)
			got, err := batch.Run(tc.run.Run.ID)
			require.NoError(t, err)
			assert.Equal(t, untimed(want), untimed(got))
			require.NoError(t, batch.Check())

			// Timestamps: the run's own, else the time of writing.
			assert.Equal(t, orDefault(tc.run.CreatedAt, at(1000)), got.CreatedAt)
			assert.Equal(t, at(1000), got.UpdatedAt)
			for _, n := range got.Nodes {
				if n.Status == NodePending {
					assert.True(t, n.StartedAt.IsZero() && n.FinishedAt.IsZero(), "node %s", n.NodeID)
					continue
				}
				assert.False(t, n.FinishedAt.Before(n.StartedAt), "node %s", n.NodeID)
			}
		})
	}
}

func orDefault(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

func TestRecordRunsExplicitTimes(t *testing.T) {
	l := openTest(t, Options{Now: func() time.Time { return at(1000) }})
	r := routed("r_times", RunSucceeded, []Attempt{{Model: "m", Outcome: OutcomeOK, CostNano: 1}},
		NodeResult{Status: NodeSucceeded, FinalModel: "m"})
	_, err := l.RecordRuns([]CompletedRun{r})
	require.NoError(t, err)
	rec, err := l.Run("r_times")
	require.NoError(t, err)
	assert.Equal(t, at(0), rec.CreatedAt)
	assert.Equal(t, at(1), rec.Nodes[0].StartedAt)
	assert.Equal(t, at(90), rec.Nodes[0].FinishedAt)
	a := rec.Nodes[0].Attempts[0]
	assert.Equal(t, at(1000), a.StartedAt, "an attempt without times ends when written, as RecordAttempt does")
	assert.Equal(t, a.StartedAt, a.EndedAt)
	assert.EqualValues(t, 1, a.Seq)
}

func TestRecordRunsRefusesOneRunAndWritesTheOthers(t *testing.T) {
	ok := func(id string) CompletedRun {
		return routed(id, RunSucceeded, []Attempt{attempt("m", OutcomeOK, 5, 2, 3)}, NodeResult{Status: NodeSucceeded, FinalModel: "m", Output: id})
	}
	mod := func(id string, f func(*CompletedRun)) CompletedRun {
		r := ok(id)
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name string
		bad  CompletedRun
		want string
	}{
		{"an id already in the ledger", ok("r_existing"), `run id "r_existing" is already in the ledger`},
		{"no id", mod("", func(*CompletedRun) {}), "run.id is empty"},
		{"no workflow name", mod("r_x", func(r *CompletedRun) { r.Run.WorkflowName = "" }), "workflow_name is empty"},
		{"still running", mod("r_x", func(r *CompletedRun) { r.Status = RunRunning }), `status "running"`},
		{"an unknown status", mod("r_x", func(r *CompletedRun) { r.Status = "done" }), `status "done"`},
		{"inputs that are not JSON", mod("r_x", func(r *CompletedRun) { r.Run.Inputs = []byte("{") }), "inputs is not valid JSON"},
		{"a node without a final status", mod("r_x", func(r *CompletedRun) { r.Nodes[0].Result.Status = NodeRunning }), `node "call": node result status "running"`},
		{"a node listed twice", mod("r_x", func(r *CompletedRun) { r.Nodes = append(r.Nodes, r.Nodes[0]) }), `node "call" listed twice`},
		{"a planned node listed twice", mod("r_x", func(r *CompletedRun) { r.Run.Nodes = append(r.Run.Nodes, r.Run.Nodes[0]) }), `run.nodes[1]: node "call" listed twice`},
		{"a node that finished before it started", mod("r_x", func(r *CompletedRun) { r.Nodes[0].FinishedAt = at(0) }), "finished"},
		{"an attempt with a seq", mod("r_x", func(r *CompletedRun) { r.Nodes[0].Attempts[0].Seq = 4 }), "seq is 4; leave it 0"},
		{"a negative cost", mod("r_x", func(r *CompletedRun) { r.Nodes[0].Attempts[0].CostNano = -1 }), "cost_nano is -1"},
		{"an attempt that ended before it started", mod("r_x", func(r *CompletedRun) { r.Nodes[0].Attempts[0].EndedAt = at(1) }), "ended"},
		{"an attempt ending before its default start", mod("r_x", func(r *CompletedRun) {
			r.Nodes[0].Attempts[0].StartedAt = at(5000)
			r.Nodes[0].Attempts[0].EndedAt = time.Time{}
		}), "ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTest(t, Options{Now: func() time.Time { return at(1000) }})
			_, err := l.RecordRuns([]CompletedRun{ok("r_existing")})
			require.NoError(t, err)
			before, err := l.Run("r_existing")
			require.NoError(t, err)

			errs, err := l.RecordRuns([]CompletedRun{ok("r_1"), tc.bad, ok("r_2")})
			require.NoError(t, err)
			require.Len(t, errs, 3)
			assert.NoError(t, errs[0])
			assert.NoError(t, errs[2])
			require.Error(t, errs[1])
			assert.ErrorIs(t, errs[1], ErrInvalid)
			assert.Contains(t, errs[1].Error(), tc.want)

			for _, id := range []string{"r_1", "r_2"} {
				rec, err := l.Run(id)
				require.NoError(t, err, id)
				assert.EqualValues(t, 5, rec.SpentNano)
				assert.Equal(t, RunSucceeded, rec.Status)
			}
			after, err := l.Run("r_existing")
			require.NoError(t, err)
			assert.Equal(t, before, after, "a refused run changes nothing")
			if tc.bad.Run.ID == "r_x" {
				_, err := l.Run("r_x")
				assert.ErrorIs(t, err, ErrNotFound, "a refused run leaves nothing behind")
			}
			runs, err := l.Runs(0)
			require.NoError(t, err)
			assert.Len(t, runs, 3)
			require.NoError(t, l.Check())
		})
	}
}

func TestRecordRunsIsolatesARunTheDatabaseRefuses(t *testing.T) {
	l := openTest(t, Options{Now: func() time.Time { return at(1000) }})
	// A failure validation cannot foresee: a trigger refuses one run's node
	// after its run row is in, so the batch is written again with each run
	// in its own savepoint.
	_, err := l.w.Exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON nodes WHEN NEW.run_id = 'r_bad'
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
	require.NoError(t, err)
	mk := func(id string) CompletedRun {
		return routed(id, RunSucceeded, []Attempt{attempt("m", OutcomeOK, 5, 2, 3)}, NodeResult{Status: NodeSucceeded, FinalModel: "m"})
	}
	_, err = l.RecordRuns([]CompletedRun{mk("r_taken")})
	require.NoError(t, err)
	errs, err := l.RecordRuns([]CompletedRun{mk("r_1"), mk("r_bad"), mk("r_taken"), mk("r_2")})
	require.NoError(t, err)
	require.Len(t, errs, 4)
	assert.NoError(t, errs[0])
	assert.ErrorContains(t, errs[1], "injected failure")
	assert.ErrorContains(t, errs[1], `"r_bad"`)
	assert.ErrorIs(t, errs[2], ErrInvalid)
	assert.NoError(t, errs[3])
	_, err = l.Run("r_bad")
	assert.ErrorIs(t, err, ErrNotFound, "the refused run's row is rolled back with it")
	for _, id := range []string{"r_1", "r_2", "r_taken"} {
		rec, err := l.Run(id)
		require.NoError(t, err, id)
		assert.EqualValues(t, 5, rec.SpentNano, id)
	}
	require.NoError(t, l.Check())
}

func TestRecordRunsEdges(t *testing.T) {
	t.Run("an empty or all-invalid batch opens no transaction", func(t *testing.T) {
		l := openTest(t, Options{})
		errs, err := l.RecordRuns(nil)
		require.NoError(t, err)
		assert.Empty(t, errs)
		errs, err = l.RecordRuns([]CompletedRun{{}})
		require.NoError(t, err)
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], ErrInvalid)
	})
	t.Run("a failed transaction writes nothing and says so", func(t *testing.T) {
		l, err := Open(filepath.Join(t.TempDir(), "closed.db"))
		require.NoError(t, err)
		require.NoError(t, l.Close())
		errs, err := l.RecordRuns([]CompletedRun{routed("r_a", RunFailed, nil, NodeResult{Status: NodeFailed})})
		require.Error(t, err)
		assert.Nil(t, errs)
		assert.Contains(t, err.Error(), "ledger: record 1 runs")
	})
	t.Run("many runs in one batch", func(t *testing.T) {
		l := openTest(t, Options{Now: time.Now})
		var batch []CompletedRun
		var want int64
		for i := range 300 {
			cost := int64(i*10 + 1)
			want += cost
			batch = append(batch, routed(fmt.Sprintf("r_%03d", i), RunSucceeded, []Attempt{attempt("m", OutcomeOK, cost, 2, 3)},
				NodeResult{Status: NodeSucceeded, FinalModel: "m"}))
		}
		errs, err := l.RecordRuns(batch)
		require.NoError(t, err)
		for i, e := range errs {
			require.NoError(t, e, i)
		}
		runs, err := l.Runs(0)
		require.NoError(t, err)
		require.Len(t, runs, 300)
		var sum int64
		for _, r := range runs {
			sum += r.SpentNano
			assert.Equal(t, 1, r.Attempts)
		}
		assert.Equal(t, want, sum)
		require.NoError(t, l.Check())
	})
}

const (
	batchHelperEnv  = "COSTWISE_LEDGER_BATCH_CRASH_HELPER"
	batchHelperPath = "COSTWISE_LEDGER_BATCH_CRASH_PATH"
	batchSize       = 7
)

// batchCrashRun is run j of batch b of process pid, as the helper writes
// it and the parent expects it.
func batchCrashRun(pid, b, j int) CompletedRun {
	cost := int64(b*100 + j + 1)
	return routed(fmt.Sprintf("r_%d_%d_%d", pid, b, j), RunSucceeded, []Attempt{
		attempt("small", OutcomeError, 0, 2, 3), attempt("big", OutcomeOK, cost, 4, 5)},
		NodeResult{Status: NodeSucceeded, FinalModel: "big", Output: strconv.FormatInt(cost, 10)})
}

// TestBatchHelperProcess is not a test: it is the child that
// TestRecordRunsCrashSafety starts and kills. It writes batches of
// batchSize runs as fast as it can until it is killed.
func TestBatchHelperProcess(t *testing.T) {
	if os.Getenv(batchHelperEnv) != "1" {
		t.Skip("helper process for TestRecordRunsCrashSafety")
	}
	l, err := Open(os.Getenv(batchHelperPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pid := os.Getpid()
	for b := 0; ; b++ {
		runs := make([]CompletedRun, batchSize)
		for j := range runs {
			runs[j] = batchCrashRun(pid, b, j)
		}
		errs, err := l.RecordRuns(runs)
		if err == nil {
			err = errors.Join(errs...)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if b == 3 {
			fmt.Println("ready")
		}
	}
}

// TestRecordRunsCrashSafety kills a process that is writing batches
// (SIGKILL at a random moment, several times over one file) and checks
// after each kill that the database is intact and that every batch is in
// the ledger entirely or not at all, each of its runs complete.
func TestRecordRunsCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills subprocesses")
	}
	path := filepath.Join(t.TempDir(), "batch-crash.db")
	prev := 0
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBatchHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), batchHelperEnv+"=1", batchHelperPath+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err, "helper did not report ready")
		require.Equal(t, "ready\n", line)
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		require.Error(t, cmd.Wait())
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "helper must die by SIGKILL, got %v", cmd.ProcessState)

		l, err := Open(path)
		require.NoError(t, err)
		require.NoError(t, l.Check())
		runs, err := l.Runs(0)
		require.NoError(t, err)
		perBatch := map[string]int{}
		for _, s := range runs {
			var pid, b, j int
			_, err := fmt.Sscanf(strings.ReplaceAll(s.ID, "_", " "), "r %d %d %d", &pid, &b, &j)
			require.NoError(t, err, s.ID)
			perBatch[fmt.Sprintf("%d/%d", pid, b)]++
			want := batchCrashRun(pid, b, j)
			rec, err := l.Run(s.ID)
			require.NoError(t, err)
			assert.Equal(t, RunSucceeded, rec.Status, s.ID)
			require.Len(t, rec.Nodes, 1, s.ID)
			require.Len(t, rec.Nodes[0].Attempts, 2, s.ID)
			assert.Equal(t, want.Nodes[0].Result.Output, rec.Nodes[0].Output, s.ID)
			assert.Equal(t, want.Nodes[0].Attempts[1].CostNano, rec.SpentNano, s.ID)
		}
		for b, n := range perBatch {
			require.Equal(t, batchSize, n, "batch %s is in the ledger in part", b)
		}
		require.GreaterOrEqual(t, len(runs), prev+4*batchSize, "round %d wrote its first batches", round)
		t.Logf("round %d: %d runs in %d batches", round, len(runs), len(perBatch))
		prev = len(runs)
		require.NoError(t, l.Close())
	}
}

// BenchmarkRecordRuns compares writing routed requests one run per
// RecordRuns call (one commit each) and in batches, with the step-by-step
// methods (five commits per request) as the baseline. It reports the cost
// per run.
func BenchmarkRecordRuns(b *testing.B) {
	for _, size := range []int{0, 1, 8, 64} {
		name := fmt.Sprintf("batch=%d", size)
		if size == 0 {
			name = "steps"
		}
		b.Run(name, func(b *testing.B) {
			l := openTest(b, Options{Now: time.Now})
			mk := func(i int) CompletedRun {
				return routed(fmt.Sprintf("r_%d", i), RunSucceeded, []Attempt{attempt("m", OutcomeOK, 3, 2, 3)},
					NodeResult{Status: NodeSucceeded, FinalModel: "m", Output: "ok"})
			}
			// Valid before timing.
			errs, err := l.RecordRuns([]CompletedRun{mk(-1)})
			require.NoError(b, err)
			require.NoError(b, errors.Join(errs...))
			b.ReportAllocs()
			b.ResetTimer()
			batch := make([]CompletedRun, 0, max(size, 1))
			for i := 0; i < b.N; i++ {
				if size == 0 {
					stepwise(b, l, mk(i))
					continue
				}
				batch = append(batch, mk(i))
				if len(batch) == size || i == b.N-1 {
					errs, err := l.RecordRuns(batch)
					if err == nil {
						err = errors.Join(errs...)
					}
					if err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			b.StopTimer()
			runs, err := l.Runs(0)
			require.NoError(b, err)
			require.Len(b, runs, b.N+1)
		})
	}
}

// Two routed requests, answered before they were written, go into the
// ledger in one transaction.
func ExampleLedger_RecordRuns() {
	dir, err := os.MkdirTemp("", "ledger-batch-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	l, err := Open(filepath.Join(dir, "ledger.db"))
	if err != nil {
		panic(err)
	}
	defer l.Close()

	started := time.Date(2026, 11, 27, 4, 12, 0, 0, time.UTC)
	request := func(id, model string, cost int64) CompletedRun {
		return CompletedRun{
			Run: NewRun{ID: id, WorkflowName: "router:cheap-chat", WorkflowFile: "(router)",
				Nodes: []PlannedNode{{ID: "call", Task: "writing"}}},
			Status: RunSucceeded, CreatedAt: started,
			Nodes: []CompletedNode{{ID: "call", Result: NodeResult{Status: NodeSucceeded, FinalModel: model, Output: "ok"},
				Attempts: []Attempt{{Model: model, Provider: "openai", Outcome: OutcomeOK, CostNano: cost, UsageReported: true,
					Usage: Usage{InputTokens: 20, OutputTokens: 2}, StartedAt: started, EndedAt: started.Add(300 * time.Millisecond)}}}},
		}
	}
	errs, err := l.RecordRuns([]CompletedRun{
		request("r_20261127T041200Z_000001", "openai/gpt-4o-mini", 4_200),
		request("r_20261127T041200Z_000002", "openai/gpt-4o-mini", 4_200),
		request("r_20261127T041200Z_000001", "openai/gpt-4o", 70_000), // the same id again
	})
	if err != nil {
		panic(err)
	}
	for i, e := range errs {
		fmt.Printf("run %d: %v\n", i, e)
	}
	runs, err := l.Runs(0)
	if err != nil {
		panic(err)
	}
	var spent int64
	for _, r := range runs {
		spent += r.SpentNano
	}
	fmt.Printf("%d runs, %d nano-USD\n", len(runs), spent)
	// Output:
	// run 0: <nil>
	// run 1: <nil>
	// run 2: ledger: invalid record: run id "r_20261127T041200Z_000001" is already in the ledger
	// 2 runs, 8400 nano-USD
}
