package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/planner/cascade"
)

// ledgerTable reads the ledger's history of real runs (nodes of task when
// it is not "") as an outcome table of complete cases, and says on stderr
// what it kept and dropped.
func ledgerTable(stderr io.Writer, path, task string) (*cascade.Table, *evalLedgerJSON, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--ledger %s: no such file; give the ledger costwise run writes (default $XDG_DATA_HOME/costwise/ledger.db)", path)}
		}
		return nil, nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--ledger %s: %v", path, unwrapPath(err))}
	}
	l, err := openLedger(path)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	rows, err := l.History(ledger.HistoryFilter{Task: task})
	if err != nil {
		return nil, nil, &exitError{code: exitBadInput, msg: err.Error()}
	}
	recs := historyRecords(rows)
	if len(recs) == 0 {
		what := "real (not simulated) runs"
		if task != "" {
			what += " of task " + strconv.Quote(task)
		}
		return nil, nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--ledger %s: no answers recorded for %s; run workflows first (costwise run), or drop --task", path, what)}
	}
	t, cov, err := cascade.FromRecords(path, recs)
	if err != nil {
		return nil, nil, &exitError{code: exitBadInput, msg: "--ledger " + err.Error()}
	}
	scope := ""
	if task != "" {
		scope = " of task " + strconv.Quote(task)
	}
	fmt.Fprintf(stderr, "ledger %s: %d answers to %d queries%s; kept %d queries answered by all of %s (complete cases), dropped %d\n",
		path, len(recs), cov.Queries, scope, cov.Rows, strings.Join(cov.Models, ", "), cov.Queries-cov.Rows)
	if len(cov.DroppedModels) > 0 {
		fmt.Fprintf(stderr, "  dropped models (too few queries in common): %s\n", strings.Join(cov.DroppedModels, ", "))
	}
	if len(cov.NoConfidence) > 0 {
		fmt.Fprintf(stderr, "  no confidence recorded on every kept query for %s: they can stand only last in a cascade\n", strings.Join(cov.NoConfidence, ", "))
	}
	info := &evalLedgerJSON{Path: path, Task: task, Answers: len(recs), Queries: cov.Queries, Rows: cov.Rows,
		Models: cov.Models, DroppedModels: cov.DroppedModels, NoConfidence: cov.NoConfidence}
	if info.DroppedModels == nil {
		info.DroppedModels = []string{}
	}
	if info.NoConfidence == nil {
		info.NoConfidence = []string{}
	}
	return t, info, nil
}

// evalLedgerJSON says what --ledger read and kept.
type evalLedgerJSON struct {
	Path          string   `json:"path"`
	Task          string   `json:"task"`
	Answers       int      `json:"answers"`        // (query, model) answers read
	Queries       int      `json:"queries"`        // node iterations with an answer
	Rows          int      `json:"rows"`           // kept: answered by every kept model
	Models        []string `json:"models"`         // kept models
	DroppedModels []string `json:"dropped_models"` // with how many queries each had
	NoConfidence  []string `json:"no_confidence"`  // kept models without a confidence column
}

// historyRecords turns ledger history into long-layout records: the query
// is the node iteration of a run; a model scores 1 for an accepted answer
// (the node's feedback score for the answer the node kept, when given) and
// 0 for a rejected one. An answer rejected without a recorded confidence
// (it failed the validate rule before any cascade judged it) counts as
// confidence 0: any cascade would escalate it.
func historyRecords(rows []ledger.HistoryRow) []cascade.Record {
	recs := make([]cascade.Record, 0, len(rows))
	for _, h := range rows {
		r := cascade.Record{
			Query:     fmt.Sprintf("run %d:%s node %s #%d", len(h.RunID), h.RunID, h.NodeID, h.Iteration), // the length keeps keys apart
			Model:     h.Model,
			CostUSD:   float64(h.CostNano) / 1e9,
			LatencyMS: float64(h.LatencyMS),
			TokensIn:  float64(h.InputTokens),
			TokensOut: float64(h.OutputTokens),
			Group:     h.Task,
		}
		switch {
		case h.Outcome == ledger.OutcomeOK && h.Answer && h.Feedback != nil:
			r.Perf = *h.Feedback
		case h.Outcome == ledger.OutcomeOK:
			r.Perf = 1
		}
		switch {
		case h.Confidence != nil:
			r.Conf, r.HasConf = *h.Confidence, true
		case h.Outcome == ledger.OutcomeInvalid:
			r.Conf, r.HasConf = 0, true
		}
		recs = append(recs, r)
	}
	return recs
}
