// Command costwise plans and runs multi-step LLM workflows at the lowest cost
// that meets their quality, latency and budget constraints.
//
// Exit codes: 0 ok, 1 bad input or failed run, 2 usage, 3 no plan satisfies
// the constraints.
//
// Boundary: the command parses flags, wires the packages together
// (graph -> estimator -> policies -> planner -> executor) and formats their
// results for people (tables) and programs (JSON contracts documented in the
// README); it holds no planning or pricing logic of its own.
package main
