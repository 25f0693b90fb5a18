package ledger

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	helperEnv     = "COSTWISE_LEDGER_CRASH_HELPER"
	helperPathEnv = "COSTWISE_LEDGER_CRASH_PATH"
	helperRunEnv  = "COSTWISE_LEDGER_CRASH_RUN"
	crashWorkers  = 4
)

// crashCost is the cost the helper records for seq; the parent recomputes
// it for every row, so a torn or mixed-up row is detected.
func crashCost(seq int64) int64 { return seq*1000 + 7 }

// TestHelperProcess is not a test: it is the child that TestCrashSafety
// starts and kills. It records attempts as fast as it can from several
// goroutines until it is killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestCrashSafety")
	}
	l, err := Open(os.Getenv(helperPathEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runID := os.Getenv(helperRunEnv)
	var recorded atomic.Int64
	var ready sync.Once
	var wg sync.WaitGroup
	for w := 0; w < crashWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				node := fmt.Sprintf("w%d_%d_%d", w, os.Getpid(), i)
				if err := l.StartNode(runID, node); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				for it := 0; it < 2; it++ {
					seq, err := l.BeginAttempt(CallStart{RunID: runID, NodeID: node, Iteration: it, Model: "m", Provider: "p", EstimateNano: 5})
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(4)
					}
					a := Attempt{RunID: runID, NodeID: node, Seq: seq, Iteration: it, Model: "m", Provider: "p",
						Outcome: OutcomeOK, Usage: Usage{InputTokens: seq, OutputTokens: 2 * seq}, UsageReported: true,
						CostNano: crashCost(seq), Reason: node}
					if it == 1 {
						_, err = l.RecordFinalAttempt(a, NodeResult{Status: NodeSucceeded, FinalModel: "m", Output: node})
					} else {
						_, err = l.RecordAttempt(a)
					}
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(5)
					}
					if recorded.Add(1) == 20 {
						ready.Do(func() { fmt.Println("ready") })
					}
				}
			}
		}(w)
	}
	wg.Wait()
}

// TestCrashSafety kills a process that is writing the ledger (SIGKILL, at
// a random moment, several times over the same file) and checks after each
// kill that the database is intact, every attempt row is complete, spent
// equals the sum of the attempts and resume settles the calls in flight.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills subprocesses")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	l, err := Open(path)
	require.NoError(t, err)
	runID, err := l.CreateRun(NewRun{WorkflowName: "crash", WorkflowHash: HashWorkflow([]byte("crash"))})
	require.NoError(t, err)
	require.NoError(t, l.Close())

	var prevAttempts int
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=1", helperPathEnv+"="+path, helperRunEnv+"="+runID)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err, "helper did not report ready")
		require.Equal(t, "ready\n", line)
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		require.Error(t, err)
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "helper must die by SIGKILL, got %v", cmd.ProcessState)

		l, err := Open(path)
		require.NoError(t, err)
		var integrity string
		require.NoError(t, l.r.QueryRow(`PRAGMA integrity_check`).Scan(&integrity))
		assert.Equal(t, "ok", integrity)
		require.NoError(t, l.Check())

		rec, err := l.Run(runID)
		require.NoError(t, err)
		var sum int64
		attempts := 0
		for _, n := range rec.Nodes {
			for _, a := range n.Attempts {
				attempts++
				sum += a.CostNano
				if a.Outcome == OutcomeInterrupted { // settled by an earlier round's ResumeRun
					assert.EqualValues(t, 5, a.CostNano)
					continue
				}
				require.Equal(t, crashCost(a.Seq), a.CostNano, "seq %d", a.Seq)
				require.Equal(t, Usage{InputTokens: a.Seq, OutputTokens: 2 * a.Seq}, a.Usage, "seq %d", a.Seq)
				require.Equal(t, n.NodeID, a.Reason)
				require.False(t, a.EndedAt.Before(a.StartedAt))
			}
			if n.Status == NodeSucceeded {
				require.Len(t, n.Attempts, 2, "a node finished only with its final attempt")
				require.Equal(t, n.NodeID, n.Output)
			}
		}
		assert.Equal(t, sum, rec.SpentNano, "spent equals the sum of attempts")
		assert.GreaterOrEqual(t, attempts, prevAttempts+20, "round %d recorded at least 20 attempts", round)
		assert.LessOrEqual(t, len(rec.InFlight), crashWorkers, "at most one call in flight per worker")
		t.Logf("round %d: %d attempts, %d in flight at the kill", round, attempts, len(rec.InFlight))

		resumed, err := l.ResumeRun(runID, HashWorkflow([]byte("crash")))
		require.NoError(t, err)
		assert.Empty(t, resumed.InFlight)
		assert.Equal(t, rec.SpentNano+5*int64(len(rec.InFlight)), resumed.SpentNano)
		require.NoError(t, l.Check())
		prevAttempts = attempts + len(rec.InFlight)
		require.NoError(t, l.Close())
	}
}
