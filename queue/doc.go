// Package queue owns the River plumbing: the client built from a Config, River's
// own schema migrations and checks, and periodic jobs declared with cron specs.
// It knows nothing of the jobs' meaning; package dispatch declares and works them.
package queue
