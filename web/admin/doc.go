// Package admin serves the screens of the CME and of the administrators:
// the dispatch rules (their list in French, the editor of their YAML text
// with its dry run and the form of the common rules, their versions), the
// national directory and the hospital's local correspondents with their
// proposals, the quarantine of refused messages (read, processed again, set
// aside), the audit log and its CSV export, and the users (UI.Routes). Its
// pages are rendered in the dashboard's frame (package dashboard: AddPages,
// Render, the error pages, the flash message and the signed-in user);
// package web mounts it behind the login.
package admin
