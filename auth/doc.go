// Package auth owns who may use the web dashboard and what they may do: the
// users (local accounts whose passwords are Argon2id PHC strings), their roles
// and the permissions these grant (secretary, cme, admin; each user
// optionally restricted to some hospital services), the login with its
// durable throttle (growing delays per username and client address, never a
// lockout, shared by every instance through PostgreSQL; Authenticate), the
// client's address behind trusted reverse proxies (ClientAddress), the
// in-memory limit of wrong API tokens per address (AddressLimiter), the
// sessions (a random cookie token whose
// SHA-256 only is stored, absolute and idle timeouts), the HTTP middleware
// that finds the user of a request, requires one, checks a permission and
// the CSRF token of forms, and the append-only audit log that the rest of the
// service writes to, in its own transactions, when a user changes something.
//
// The package never renders the dashboard's pages: the login form is
// package web's, the users' screen and the audit log's package web/admin's,
// which call Store and Sessions. The command line creates the first accounts (mssdispatch user add).
//
// A typical chain of middleware:
//
//	r.Use(auth.ClientAddress(trustedProxies)) // for ClientIP
//	r.Use(sessions.Middleware, sessions.CSRF)
//	r.Get("/login", showLogin)   // CSRFToken(ctx) in the form
//	r.Post("/login", doLogin)    // store.Authenticate, then sessions.Login
//	r.Group(func(r chi.Router) {
//		r.Use(sessions.RequireUser)
//		r.With(auth.Require(auth.PermRules)).Put("/rules", putRules)
//	})
//
// Single sign-on can come later without rework: Sessions.Login takes a User
// however it was authenticated, so an OpenID Connect provider (Pro Santé
// Connect, the hospital's identity provider) only has to map its ID token to
// a user, and the users table already has the source (the issuer) and
// external_subject (its subject) columns such accounts need, with no local
// password (password_hash NULL: Authenticate always refuses them).
package auth
