package cda

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris must load on hosts without a zoneinfo database.
)

// paris is the zone of an HL7 time stamp that carries no UTC offset: the
// documents come from French producers, whose clocks are on French time.
var paris = mustLoadLocation("Europe/Paris")

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("cda: load %s: %v", name, err)) // unreachable: time/tzdata is embedded
	}
	return loc
}

// ParseTS parses an HL7 v3 TS value (YYYY, YYYYMM, … up to YYYYMMDDHHMMSS.S,
// then an optional +ZZZZ or -ZZZZ UTC offset); a value without offset is
// French local time (Europe/Paris).
func ParseTS(s string) (time.Time, error) {
	orig := s
	loc := paris
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		z := s[i+1:]
		if len(z) != 4 || !digits(z) {
			return time.Time{}, fmt.Errorf("cda: time stamp %q: bad UTC offset", orig)
		}
		hh, _ := strconv.Atoi(z[:2])
		mm, _ := strconv.Atoi(z[2:])
		if hh > 14 || mm > 59 {
			return time.Time{}, fmt.Errorf("cda: time stamp %q: bad UTC offset", orig)
		}
		off := hh*3600 + mm*60
		if s[i] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
		s = s[:i]
	}
	var frac string
	if i := strings.IndexByte(s, '.'); i >= 0 {
		frac, s = s[i+1:], s[:i]
		if len(s) != 14 || frac == "" || len(frac) > 9 || !digits(frac) {
			return time.Time{}, fmt.Errorf("cda: time stamp %q: bad fraction of second", orig)
		}
	}
	switch len(s) {
	case 4, 6, 8, 10, 12, 14:
	default:
		return time.Time{}, fmt.Errorf("cda: time stamp %q: bad length", orig)
	}
	if !digits(s) {
		return time.Time{}, fmt.Errorf("cda: time stamp %q: not digits", orig)
	}
	// Fill the missing components with their first value, then let the
	// time package check ranges (month 13, 30 February, hour 24…).
	full := s + "0101000000"[len(s)-4:]
	t, err := time.ParseInLocation("20060102150405", full, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("cda: time stamp %q: %w", orig, err)
	}
	if frac != "" {
		ns, _ := strconv.Atoi((frac + "000000000")[:9])
		t = t.Add(time.Duration(ns))
	}
	return t, nil
}

// digits reports whether s is made of ASCII digits only.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
