// Package catalog is costwise's model catalog: which models exist, what one
// call to each of them costs, what they can do and how well they do it.
//
// It owns four things:
//
//   - the typed model record ([Model]) with its prices ([Prices], [Rate]),
//     long-context tiers, service tiers, limits, capabilities, latency,
//     tokenizer parameters and per-task quality scores;
//   - loaders for the project's TOML format ([LoadTOML], documented key by
//     key in README.md) and for LiteLLM's model_prices_and_context_window.json
//     ([LoadLiteLLM]), with [Load] telling them apart by content;
//   - field-by-field overlaying of catalogs ([Merge], [LoadFiles]) on top of
//     the catalog embedded in the binary ([Default]);
//   - exact pricing of one call from its token counts ([Price]).
//
// Boundary: the package does not count tokens (estimator/tokens does), does
// not estimate latency or quality of a workflow step, and does no I/O beyond
// reading the catalog files it is given. A price that a catalog does not
// state is "unknown", never zero: [Rate] carries that distinction and
// [Price] lists every component it could not price.
package catalog
