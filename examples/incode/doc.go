// Command incode plans and previews a workflow built in Go code rather than
// TOML: a three-step extraction pipeline, estimated against the embedded
// catalog and planned under a budget. Run it with
//
//	go run ./examples/incode
package main
