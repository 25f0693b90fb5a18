// Command costwise plans and runs multi-step LLM workflows at the lowest cost
// that meets their quality, latency and budget constraints.
//
// Exit codes: 0 ok, 1 bad input or failed run, 2 usage, 3 no plan satisfies
// the constraints.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
