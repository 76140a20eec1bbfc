// Package correspondents owns who the hospital's reports can go to: the import
// of the national directory (the Annuaire Santé MSSanté extraction) and of the
// MSSanté trust-space whitelist, their storage, and the resolver that turns a
// recipient listed by the DPI into routes (MSSanté, paper, or review) each
// with a machine-readable reason and a sentence a secretary can read.
package correspondents
