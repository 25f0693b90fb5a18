// Package suggest finds what a mistyped name most likely meant, for "did
// you mean" hints in error messages.
// Boundary: it only compares strings; callers word the message.
package suggest
