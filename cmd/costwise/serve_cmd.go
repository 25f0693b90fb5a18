package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/internal/server"
	"github.com/costwise/costwise/planner"
)

func newServeCmd(cf *catalogFlags) *cobra.Command {
	var addr, config, ledgerPath string
	var syncLedger, simulate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an OpenAI-compatible gateway that answers every call with the cheapest model meeting its route",
		Long: `Serve POST /v1/chat/completions (OpenAI format, streaming or not) and GET /v1/models:
a request's model is a catalog id (pinned), a [[route]] name from the config, or
costwise/auto (task guessed from the prompt). Every answer carries the headers
x-costwise-model, x-costwise-cost-usd and x-costwise-escalations, and is recorded
in the ledger. Also POST /v1/estimate, /v1/plan and /v1/preview (a workflow as TOML,
or JSON with the same keys; the JSON of the matching command), POST /v1/runs
(body {"workflow": TOML text or JSON workflow, "inputs": {"NAME": "VALUE"},
"simulate": false}; answers 202 {"run_id": ..., "status": "running"} and runs the
workflow in the background, at most 4 at once) and GET /v1/runs/{id} (the JSON of
costwise run --json, read from the ledger), GET /metrics (Prometheus) and GET /healthz.

Keys, budgets and routes come from the config file's [[server.key]], [server] and
[[route]] tables; providers from its [providers.*] tables. Without keys the server
only listens on a loopback address. SIGINT or SIGTERM stops it after in-flight
requests finish; workflow runs still executing are stopped between calls and stay
resumable with costwise run --resume RUN_ID (given the same workflow text).`,
		Example: `  costwise serve --addr 127.0.0.1:8080
  costwise serve --addr 0.0.0.0:8080 --config /etc/costwise.toml --ledger /var/lib/costwise/ledger.db`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			defer server.TuneGC()() // GOGC 400 unless GOGC is set: fewer collections on the tail
			cfgPath := config
			if cfgPath == "" {
				cfgPath = provider.DefaultConfigPath()
			}
			scfg, err := server.LoadConfig(cfgPath)
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			if err := server.CheckBind(addr, len(scfg.Keys)); err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			var pcfg *provider.Config
			if _, statErr := os.Stat(cfgPath); simulate && errors.Is(statErr, fs.ErrNotExist) {
				pcfg = &provider.Config{Path: cfgPath} // the simulator needs no provider
			} else if pcfg, err = provider.LoadConfig(cfgPath); err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			defer pcfg.Close()
			cat, err := cf.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cascades, err := cf.loadCascades(cmd.ErrOrStderr(), cat)
			if err != nil {
				return err
			}
			l, err := openLedger(ledgerPath)
			if err != nil {
				return err
			}
			defer l.Close() // after Serve has waited for in-flight requests
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			var clients executor.Clients = pcfg
			if simulate {
				clients = executor.NewSimulator(cat, serveRunSeed)
				fmt.Fprintln(cmd.ErrOrStderr(), "costwise serve: SIMULATED: no provider is called; answers are placeholders priced from the catalog, marked x-costwise-simulated and recorded as simulated")
			}
			srv, err := server.New(server.Options{Catalog: cat, Clients: clients, Recorder: executor.LedgerRecorder{L: l},
				SyncLedger: syncLedger, Router: executor.RouterOptions{Cascades: cascades, Simulated: simulate},
				Config: scfg, Workflows: &cliWorkflows{cat: cat, cascades: cascades}, Runs: &cliRuns{cat: cat, cascades: cascades, clients: pcfg, led: l}, Logger: logger})
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return &exitError{code: exitBadInput, msg: fmt.Sprintf("--addr %s: %v", addr, err)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "costwise serve: listening on http://%s (%d keys, %d routes, config %s); Ctrl-C stops after in-flight requests\n",
				ln.Addr(), len(scfg.Keys), len(scfg.Routes), cfgPath)
			if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return &exitError{code: exitBadInput, msg: "serve: " + err.Error()}
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "costwise serve: stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (host:port)")
	f.StringVar(&config, "config", "", "config file with [providers.*], [[server.key]] and [[route]] (default ./costwise.toml, then $XDG_CONFIG_HOME/costwise/config.toml)")
	f.StringVar(&ledgerPath, "ledger", "", "ledger database (default $XDG_DATA_HOME/costwise/ledger.db)")
	f.BoolVar(&simulate, "simulate", false, "answer every chat request with the built-in simulator (no provider, no API key; answers are placeholders, costs are estimates, all marked and recorded as simulated)")
	f.BoolVar(&syncLedger, "sync-ledger", false, "write each chat request to the ledger before answering it (no crash loses one; two commits per request, so a few hundred requests/s at most) instead of in batches after it")
	return cmd
}

// cliWorkflows answers the server's planning endpoints with the CLI's own
// pipeline and JSON builders, so that HTTP and CLI give the same JSON
// (estimate --json, plan --json, preview --format json) with the CLI's
// default options (estimator.DefaultSamples runs, seed 1, 10 s search, 4
// alternatives, the default baseline).
type cliWorkflows struct {
	cat      *catalog.Catalog
	cascades []estimator.Cascade // offered to every workflow (--cascades)
}

func (c *cliWorkflows) Workflow(ctx context.Context, kind server.WorkflowKind, name string, src []byte) (int, any, error) {
	w, err := graph.Parse(name, src)
	if err != nil {
		return 0, nil, inputError(err)
	}
	p := &pipeline{cat: c.cat, samples: estimator.DefaultSamples, seed: 1, cascades: c.cascades}
	if kind == server.KindEstimate {
		_, est, err := p.estimate(w)
		if err != nil {
			return 0, nil, serverError(err)
		}
		return http.StatusOK, estimateJSON(est), nil
	}
	pl, err := p.plan(ctx, w, planner.Options{Timeout: 10 * time.Second, Alternatives: 4})
	if err != nil {
		return 0, nil, serverError(err)
	}
	res := pl.plan
	if !res.Feasible {
		return http.StatusUnprocessableEntity, planJSON(res), nil
	}
	if kind == server.KindPlan {
		return http.StatusOK, planJSON(res), nil
	}
	base, err := frontierBaseline(res.Estimate, "")
	if err != nil {
		return 0, nil, &server.InputError{Msg: err.Error()}
	}
	return http.StatusOK, previewJSON(res, base), nil
}

// inputError lists a load error's diagnostics, one per line.
// serverError turns a pipeline error into the server's: problems with the
// workflow are the client's (400), anything else the server's.
func serverError(err error) error {
	var se *stageError
	if errors.As(err, &se) {
		return inputError(se.err)
	}
	return &server.InputError{Msg: err.Error()}
}

func inputError(err error) error {
	var errs graph.Errors
	if errors.As(err, &errs) {
		lines := make([]string, len(errs))
		for i, d := range errs {
			lines[i] = d.Error()
		}
		return &server.InputError{Msg: strings.Join(lines, "\n")}
	}
	return &server.InputError{Msg: err.Error()}
}
