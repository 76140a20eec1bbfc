// Package web owns the HTTP side of the service: the chi router, health and
// readiness probes, Prometheus metrics, the REST API for the DPI (raw HL7
// and JSON intake, report status, the directory, the rules) behind a bearer
// token, the secretaries' dashboard (server-rendered pages: worklists,
// reports, paper, quarantine, rules, statistics, administration) behind a
// login, and River's UI. It issues no SQL: it reads through package
// readmodel (Views) and acts through the domain (Dashboard, a
// *dispatch.Service), which checks every action against its state machine.
package web
