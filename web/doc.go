// Package web owns the HTTP side of the service: the chi router, health and
// readiness probes, Prometheus metrics, the REST API for the DPI (raw HL7
// and JSON intake, report status, the directory, the rules) behind a bearer
// token, the limits of what a client may send (limits.go), and the
// dashboard's frame: the login, the session, CSRF and permission middleware
// in front of the screens, the directory's type-ahead, River's UI and the
// profiler for admins. The screens themselves are in package
// web/dashboard (the secretaries': worklists, reports, paper, statistics;
// the pages' layout and rendering) and package web/admin (the rules, the
// directory, the quarantine, the audit log, the users), their charts in
// web/svgchart. None issues SQL: they read through package readmodel
// (dashboard.Views) and act through the domain (dashboard.Actions, a
// *desk.Desk), which checks every action against its state machine.
package web
