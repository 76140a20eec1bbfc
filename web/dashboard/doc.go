// Package dashboard serves the secretaries' screens: the worklists and the
// search of all deliveries, a report's page and the actions on its
// deliveries, the selection of a worklist, the paper batches and letters,
// the statistics and the adoption campaign (UI.Routes). It also renders
// every page of the dashboard in its frame (layout, menu with the
// worklists' counts, flash message, French labels of the codes): package
// web renders the login page through it, package admin adds its screens'
// templates to it (UI.AddPages) and answers with UI.Render and its error
// pages. It reads through Views (a *readmodel.Reader) and acts through
// Actions (a *desk.Desk) and Letters (a *letters.Desk); package web
// mounts it behind the login.
package dashboard
