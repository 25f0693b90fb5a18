// Package tomlpos finds where keys stand in a TOML document, so that errors
// found after decoding (unknown keys, values out of range) can name a
// line:col. BurntSushi/toml reports positions for syntax errors only; its
// MetaData does not expose where each key was written.
//
// The scanner is lenient: it runs on documents that already decoded
// successfully, so it does not validate TOML, it only follows its structure
// (tables, arrays of tables, dotted keys, inline tables, arrays and every
// string form, including multi-line strings).
package tomlpos
