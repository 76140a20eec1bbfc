// Package migrations owns the application's database schema: numbered SQL
// files embedded in the binary and a runner that applies them in order, in
// one transaction, under an advisory lock. River's own tables are migrated by
// package queue.
package migrations
