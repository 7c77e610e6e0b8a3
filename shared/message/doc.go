// Package message is SMART Calc's one message catalogue: every sentence the
// server writes (warnings, gaps, evidence, statuses, errors, the summary
// and the plan, CDS cards, error pages) and every string of the UI, in
// English and Traditional Chinese (zh-TW), under keys with {named}
// parameters.
//
// The catalogue is messages.json beside this file. The calculate function
// serves the same bytes to the browser, whose i18n.js renders the UI's
// strings from it; the server renders its own sentences with a Printer. So
// one file holds both languages of every text a person reads, and a test
// holds the two languages to the same keys, the same parameters and
// Chinese punctuation in zh-TW.
//
// The file has two parts. "strings" are the messages, by language.
// "config_text" translates the scoring configuration's own texts (criterion
// names, band labels, the plan; shared/calc Config.Texts keys them), whose
// English is the configuration itself.
//
// Packages that produce sentences (shared/calc, shared/mapping) build Msg
// values, a key and its arguments, and never format text themselves; they
// stay pure and know nothing of the reader's language. The edge that
// answers a person (an HTTP handler, a CDS card) picks the language with
// Negotiate or a setting and renders every Msg of its answer with
// Printer.Localize before encoding it. A Msg encodes to JSON as its text.
package message
