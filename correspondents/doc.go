// Package correspondents owns who the hospital's reports can go to: the
// import of the national directory (the Annuaire Santé MSSanté extraction,
// from a file or an https URL, streamed and swapped in atomically) and of
// the MSSanté trust-space whitelist, re-run from their configured sources by
// a periodic River job (directory_sync, AddDirectorySync) whose state the
// import metrics report; the hospital's local directory that overrides them,
// the type-ahead search of the directory, and the resolver that turns a
// recipient listed by the DPI into routes (MSSanté, paper, or review), each
// with a machine-readable reason and a sentence a secretary can read.
package correspondents
