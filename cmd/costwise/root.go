package main

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/policies"
)

// Exit codes of the costwise command.
const (
	exitOK         = 0
	exitBadInput   = 1
	exitUsage      = 2
	exitInfeasible = 3
)

// exitError carries an exit code through cobra. Its message is already
// written when msg is empty.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError marks a mistake in how the command was called.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// run executes the CLI and returns its exit code; it never panics.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "costwise: internal error: %v (please report this with the command you ran)\n", r)
			code = exitBadInput
		}
	}()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(stderr, "costwise: %s\n", ee.msg)
		}
		if ee.code == exitUsage {
			fmt.Fprintln(stderr, "Run 'costwise --help' for usage.")
		}
		return ee.code
	}
	// Errors that cobra itself raises (unknown command, bad flag) are usage errors.
	fmt.Fprintf(stderr, "costwise: %v\nRun 'costwise --help' for usage.\n", err)
	return exitUsage
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "costwise",
		Short: "Plan and run multi-step LLM workflows at the lowest cost that meets their constraints",
		Long: `costwise prices a whole agent workflow before it runs, picks the cheapest model for
every step under constraints on the whole run, and escalates when a cheap step fails.

Exit codes: 0 ok, 1 bad input or failed run, 2 usage, 3 no plan satisfies the constraints.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })
	cf := &catalogFlags{}
	cf.register(root)
	root.AddCommand(newValidateCmd(), newGraphCmd(), newVersionCmd(),
		newModelsCmd(cf), newTokensCmd(cf), newCostCmd(cf), newEstimateCmd(cf), newPlanCmd(cf), newPreviewCmd(cf), newRunCmd(cf), newRunsCmd(cf), newStatsCmd(cf), newFeedbackCmd(cf), newEvalCmd(cf), newServeCmd(cf), newSpendCmd(cf))
	return root
}

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError("%s takes %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

// reportLoadError prints a load error, one diagnostic per line, and returns
// the exit error for bad input.
func reportLoadError(stderr io.Writer, err error) error {
	var errs graph.Errors
	if errors.As(err, &errs) {
		for _, d := range errs {
			fmt.Fprintln(stderr, d.Error())
		}
	} else {
		fmt.Fprintln(stderr, err)
	}
	return &exitError{code: exitBadInput}
}

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check workflow files and their policy rules; report every problem with file:line:col",
		Example: `  costwise validate examples/support-triage/workflow.toml
  costwise validate examples/*/workflow.toml`,
		Args: minArgs(1, "one or more workflow files"),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, path := range args {
				w, err := graph.Load(path)
				if err == nil {
					_, err = policies.Compile(w) // rules must compile too
				}
				if err == nil {
					_, err = executor.CompileRules(w) // validate, run_if, repeat.until
				}
				if err != nil {
					failed++
					_ = reportLoadError(cmd.ErrOrStderr(), err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d nodes, %d inputs, %d policies)\n", path, len(w.Nodes), len(w.Inputs), len(w.Policies))
			}
			if failed > 0 {
				return &exitError{code: exitBadInput, msg: fmt.Sprintf("%d of %d workflow(s) invalid", failed, len(args))}
			}
			return nil
		},
	}
}

func newGraphCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Export a workflow's DAG as Graphviz DOT or Mermaid",
		Example: `  costwise graph examples/code-review/workflow.toml --format dot | dot -Tsvg > review.svg
  costwise graph examples/support-triage/workflow.toml --format mermaid`,
		Args: exactArgs(1, "one workflow file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "dot" && format != "mermaid" {
				return usageError("--format must be dot or mermaid, got %q", format)
			}
			w, err := graph.Load(args[0])
			if err != nil {
				return reportLoadError(cmd.ErrOrStderr(), err)
			}
			if format == "dot" {
				return w.WriteDOT(cmd.OutOrStdout(), nil)
			}
			return w.WriteMermaid(cmd.OutOrStdout(), nil)
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot or mermaid")
	return cmd
}

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the costwise version",
		Args:  exactArgs(0, "no arguments"),
		Run: func(cmd *cobra.Command, _ []string) {
			v, goVersion := version, ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
				if v == "" {
					v = bi.Main.Version
				}
			}
			if v == "" || v == "(devel)" {
				v = "dev"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "costwise %s (%s)\n", strings.TrimPrefix(v, "v"), goVersion)
		},
	}
}
