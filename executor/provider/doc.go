// Package provider is costwise's boundary to LLM providers: it reads the
// [providers.NAME] tables of the costwise config, and gives the executor a
// small typed [Client] per provider, built on langchaingo's provider
// clients (openai, for OpenAI and every OpenAI-compatible service through
// base_url; anthropic; googleai; ollama).
//
// What this package owns:
//
//   - Configuration: [LoadConfig], [ParseConfig], [DefaultConfigPath].
//     Only the providers table is decoded; other tables of the same file
//     belong to other packages. Keys are never in the config: it names
//     environment variables, read at call time.
//   - Usage normalisation ([NormalizeUsage]): each provider's usage report
//     becomes disjoint [catalog.Usage] counts ready for pricing; a response
//     without usage is counted locally with o200k_base and flagged
//     (Response.UsageReported = false).
//   - Error classification: every failure is an [*Error] whose sentinel
//     (ErrRateLimited, ErrTransient, ErrTimeout, ErrContextLength, ErrAuth,
//     ErrInvalidRequest) says what the executor may do, with RetryAfter and
//     MayHaveBilled. Classification reads what actually happened on the
//     wire (status, headers, error body, whether the request was written)
//     through an observing http.RoundTripper, because langchaingo reduces
//     HTTP and network failures to strings.
//   - Key rotation and client-side rpm/tpm limits.
//
// What it does not do: retries (other than moving to another key after a
// 429/401/403, which were surely not billed), fallbacks between models,
// pricing and budgets — those belong to the executor. It does not import
// the executor.
//
// Package providertest serves the real OpenAI and Anthropic wire formats
// with scripted faults, for this package's tests and the executor's.
package provider
