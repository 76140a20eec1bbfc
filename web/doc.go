// Package web owns the HTTP side of the service: the chi router, health and
// readiness probes, Prometheus metrics, and the REST API for the DPI (raw HL7
// intake, report status) behind a bearer token. Later: the secretaries'
// dashboard and the River UI mount.
package web
