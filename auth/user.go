package auth

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what a user is at the hospital, which decides what they may do.
type Role string

// The roles of the dashboard's users.
const (
	// RoleSecretary sees the worklists and acts on the deliveries of their services.
	RoleSecretary Role = "secretary"
	// RoleCME is the medical committee: it sees everything and edits the dispatch rules.
	RoleCME Role = "cme"
	// RoleAdmin may do everything, including managing users.
	RoleAdmin Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleSecretary || r == RoleCME || r == RoleAdmin
}

// Permission is something a user may be allowed to do.
type Permission int

// The permissions, each granted to some roles (see User.Can).
const (
	// PermView is seeing worklists, reports and statistics: every role.
	PermView Permission = iota
	// PermAct is acting on deliveries (approve, edit the recipient, paper,
	// resend, cancel): secretary and admin.
	PermAct
	// PermCorrespondents is changing the local correspondents that
	// override the national directory, for every service's letters: admin,
	// and the users an admin grants it (GrantCorrespondents). The others
	// with PermAct propose a change, which one of them applies.
	PermCorrespondents
	// PermRules is editing the CME's dispatch rules: cme and admin.
	PermRules
	// PermAdmin is managing users, reading the audit log, the jobs (River
	// UI), quarantined payloads and directory imports: admin.
	PermAdmin
)

// String returns the permission's name, for logs.
func (p Permission) String() string {
	switch p {
	case PermView:
		return "view"
	case PermAct:
		return "act"
	case PermCorrespondents:
		return "correspondents"
	case PermRules:
		return "rules"
	case PermAdmin:
		return "admin"
	}
	return fmt.Sprintf("Permission(%d)", int(p))
}

// Grants an admin gives a user beyond their role.
const (
	// GrantCorrespondents allows changing the local directory (PermCorrespondents).
	GrantCorrespondents = "correspondents"
)

// User is an account of the dashboard.
type User struct {
	ID          int64
	Username    string
	DisplayName string
	Role        Role
	// Services are the hospital services whose deliveries the user sees;
	// empty means all of them.
	Services []string
	// Grants are what an admin allows the user beyond their role (the
	// Grant constants).
	Grants []string
	// Source is "local" for an account with a password here, later the
	// issuer of an external identity provider (OIDC).
	Source      string
	Disabled    bool
	CreatedAt   time.Time
	LastLoginAt *time.Time // nil before the first login
}

// Can reports whether u may do p; a disabled user may do nothing.
func (u User) Can(p Permission) bool {
	if u.Disabled || !u.Role.Valid() {
		return false
	}
	switch p {
	case PermView:
		return true
	case PermAct:
		return u.Role == RoleSecretary || u.Role == RoleAdmin
	case PermCorrespondents:
		return u.Role == RoleAdmin || slices.Contains(u.Grants, GrantCorrespondents)
	case PermRules:
		return u.Role == RoleCME || u.Role == RoleAdmin
	case PermAdmin:
		return u.Role == RoleAdmin
	}
	return false
}

// SeesService reports whether u sees the deliveries of service: true when
// u.Services is empty (all services) or contains it.
func (u User) SeesService(service string) bool {
	return len(u.Services) == 0 || slices.Contains(u.Services, service)
}

// NewUser is an account to create with a password (Source "local").
type NewUser struct {
	// Username is 2 to 64 of a-z, 0-9, '.', '_' and '-'; upper case is
	// lowered.
	Username string
	// DisplayName defaults to Username.
	DisplayName string
	// Password is at least 12 characters.
	Password string
	Role     Role
	// Services are the services the user sees; empty means all.
	Services []string
}

// Password bounds.
const (
	minPasswordLen   = 12   // characters
	maxPasswordBytes = 1024 // longer input is refused without hashing
)

// ErrInvalid is what the errors of a user, username or password that
// AddUser or SetPassword refuse are (an *InvalidError).
var ErrInvalid = errors.New("invalid")

// InvalidError is the error of a field AddUser or SetPassword refuse; Field
// is "username", "password", "role", "display_name" or "service".
type InvalidError struct {
	Field string
	Msg   string
}

func (e *InvalidError) Error() string {
	if strings.HasPrefix(e.Msg, `"`) { // the value refused, then why
		return "invalid " + e.Field + " " + e.Msg
	}
	return "invalid " + e.Field + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

var usernameRE = regexp.MustCompile(`^[a-z0-9._-]{2,64}$`)

// normalizeUsername lowers and trims a username as typed.
func normalizeUsername(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

func validateUsername(name string) error {
	if !usernameRE.MatchString(name) {
		return &InvalidError{Field: "username", Msg: fmt.Sprintf("%q: want 2 to 64 of a-z, 0-9, '.', '_' and '-'", name)}
	}
	return nil
}

func validatePassword(password string) error {
	switch {
	case utf8.RuneCountInString(password) < minPasswordLen:
		return &InvalidError{Field: "password", Msg: fmt.Sprintf("at least %d characters", minPasswordLen)}
	case len(password) > maxPasswordBytes:
		return &InvalidError{Field: "password", Msg: fmt.Sprintf("at most %d bytes", maxPasswordBytes)}
	case !utf8.ValidString(password) || strings.ContainsAny(password, "\x00\r\n"):
		return &InvalidError{Field: "password", Msg: "not valid UTF-8 text on one line"}
	}
	return nil
}

// validate normalises and checks nu.
func (nu NewUser) validate() (NewUser, error) {
	nu.Username = normalizeUsername(nu.Username)
	if err := validateUsername(nu.Username); err != nil {
		return NewUser{}, err
	}
	if !nu.Role.Valid() {
		return NewUser{}, &InvalidError{Field: "role", Msg: fmt.Sprintf("%q: want %s, %s or %s", nu.Role, RoleSecretary, RoleCME, RoleAdmin)}
	}
	if err := validatePassword(nu.Password); err != nil {
		return NewUser{}, err
	}
	nu.DisplayName = strings.TrimSpace(nu.DisplayName)
	if nu.DisplayName == "" {
		nu.DisplayName = nu.Username
	}
	if !utf8.ValidString(nu.DisplayName) || strings.ContainsRune(nu.DisplayName, 0) || utf8.RuneCountInString(nu.DisplayName) > 200 {
		return NewUser{}, &InvalidError{Field: "display_name", Msg: "at most 200 characters of text"}
	}
	services := make([]string, 0, len(nu.Services))
	for _, s := range nu.Services {
		s = strings.TrimSpace(s)
		if s == "" || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return NewUser{}, &InvalidError{Field: "service", Msg: fmt.Sprintf("%q", s)}
		}
		if !slices.Contains(services, s) {
			services = append(services, s)
		}
	}
	nu.Services = services
	return nu, nil
}

// clean makes s storable as PostgreSQL text (valid UTF-8, no NUL) of at most
// limit characters.
func clean(s string, limit int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit])
	}
	return s
}
