// Package ruleset keeps the CME's dispatch rules in the database: their
// versions with the YAML source as written and who wrote them (Store.Set,
// Version, History; every change in the audit log), the version in force
// (InForce: the newest, else rules.DefaultSet), which the resolve job of
// package dispatch/worker plans each report under (dispatch.PlanReport),
// and the dry run of a proposed version (Store.DryRun): the newest reports
// planned again under the rules in force and under the proposal
// (dispatch.Replan), writing nothing, and the deliveries that would change
// for their recipient. The rules screen (package web/admin), the REST API's
// /api/v1/rules (package web) and the rules command of cmd/mssdispatch are
// its users. The rules themselves, their YAML and the choice of a rule, are
// package rules'.
package ruleset
