package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Hashes made by the reference implementation (libargon2's
// argon2id_hash_encoded).
var referenceHashes = []struct {
	password, hash string
}{
	{"correct horse battery staple", "$argon2id$v=19$m=65536,t=3,p=2$bXNzZGlzcGF0Y2gtc2FsdA$47M6kazyeU8j2GDSwL1dD8badwE1JIjv51eoAWdI0M4"},
	{"périmètre sûr", "$argon2id$v=19$m=64,t=1,p=1$AAECAwQFBgc$9TxMdm1jHxMjaptNFycZpQ"},
}

func TestHashRoundTrip(t *testing.T) {
	t.Parallel()
	s, err := hashPassword("correct horse battery staple", defaultParams)
	require.NoError(t, err)
	require.Regexp(t, `^\$argon2id\$v=19\$m=65536,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, s)
	h, err := parseHash(s)
	require.NoError(t, err)
	require.Equal(t, defaultParams, h.params)
	require.Equal(t, s, h.String())
	require.True(t, h.verify("correct horse battery staple"))
	require.False(t, h.verify("correct horse battery stapler"))
	require.False(t, h.verify(""))

	again, err := hashPassword("correct horse battery staple", defaultParams)
	require.NoError(t, err)
	require.NotEqual(t, s, again, "a new salt every time")
}

func TestReferenceHashes(t *testing.T) {
	t.Parallel()
	for _, tt := range referenceHashes {
		h, err := parseHash(tt.hash)
		require.NoError(t, err, tt.hash)
		require.Equal(t, tt.hash, h.String())
		require.True(t, h.verify(tt.password), tt.hash)
		require.False(t, h.verify(tt.password+" "), tt.hash)
	}
	// The parameters are read from the string, not the defaults.
	h, err := parseHash(referenceHashes[1].hash)
	require.NoError(t, err)
	require.Equal(t, hashParams{memory: 64, time: 1, threads: 1, saltLen: 8, keyLen: 16}, h.params)
}

func TestParseHashMalformed(t *testing.T) {
	t.Parallel()
	const salt, key = "AAECAwQFBgc", "9TxMdm1jHxMjaptNFycZpQ"
	tests := []struct {
		name, hash, wantErr string
	}{
		{"empty", "", "want $argon2id$"},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key, "want $argon2id$"},
		{"missing hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt, "want $argon2id$"},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$", "want $argon2id$"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, `algorithm "argon2i"`},
		{"bcrypt", "$2y$10$abcdefghijklmnopqrstuuJ1qLk2Y0H4o0a2lOLFQ3YtS6X3m5e7S", "want $argon2id$"},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, `version "v=16"`},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, "want $argon2id$"},
		{"parameters out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, `parameter 1 "t=1"`},
		{"two parameters", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key, `parameters "m=64,t=1"`},
		{"data parameter", "$argon2id$v=19$m=64,t=1,p=1,data=x$" + salt + "$" + key, `parameters "m=64,t=1,p=1,data=x"`},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, `parameter 1 "m=064"`},
		{"plus sign", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key, `parameter 1 "m=+64"`},
		{"negative", "$argon2id$v=19$m=64,t=-1,p=1$" + salt + "$" + key, `parameter 2 "t=-1"`},
		{"not a number", "$argon2id$v=19$m=64,t=1,p=x$" + salt + "$" + key, `parameter 3 "p=x"`},
		{"overflow", "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key, `parameter 1 "m=4294967296"`},
		{"space", "$argon2id$v=19$m=64, t=1,p=1$" + salt + "$" + key, `parameter 2 " t=1"`},
		{"t=0", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, "t=0, want 1 to 16"},
		{"t too large", "$argon2id$v=19$m=64,t=17,p=1$" + salt + "$" + key, "t=17, want 1 to 16"},
		{"p=0", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "p=0, want 1 to 255"},
		{"p too large", "$argon2id$v=19$m=65536,t=1,p=256$" + salt + "$" + key, "p=256, want 1 to 255"},
		{"m below 8p", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key, "m=15, want 8×p"},
		{"m too large", "$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key, "m=1048577"},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key, "salt must be"},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$AAEC*wQFBgc$" + key, "salt must be"},
		{"salt url alphabet", "$argon2id$v=19$m=64,t=1,p=1$AAECAwQFBg-_$" + key, "salt must be"},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$AAECAwQFBg$" + key, "salt must be 8 to 64 bytes"},
		{"salt non-canonical", "$argon2id$v=19$m=64,t=1,p=1$AAECAwQFBgd$" + key, "salt must be"},
		{"empty hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", "hash must be 16 to 64 bytes"},
		{"hash too short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAECAwQFBgcICQoLDA4", "hash must be 16 to 64 bytes"},
		{"hash too long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 88), "hash must be 16 to 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHash(tt.hash)
			require.ErrorIs(t, err, errMalformedHash)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// FuzzParseHash checks that parseHash never panics, that what it accepts is
// within the bounds and formats back to the same string (one spelling per
// hash), and that a small accepted hash can be verified.
func FuzzParseHash(f *testing.F) {
	for _, tt := range referenceHashes {
		f.Add(tt.hash)
	}
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=064,t=1,p=1$AAECAwQFBgc$9TxMdm1jHxMjaptNFycZpQ")
	f.Add("$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$argon2id$v=19$m=65536,t=3,p=2$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHash(s)
		if err != nil {
			return
		}
		p := h.params
		if p.memory < 8*uint32(p.threads) || p.memory > maxMemory || p.time < 1 || p.time > maxTime || p.threads < 1 ||
			len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen || len(h.key) < minKeyLen || len(h.key) > maxKeyLen ||
			p.saltLen != len(h.salt) || p.keyLen != len(h.key) {
			t.Fatalf("parseHash(%q) accepted out-of-bounds %+v", s, p)
		}
		if got := h.String(); got != s {
			t.Fatalf("parseHash(%q).String() = %q", s, got)
		}
		if p.memory <= 1024 && p.time <= 2 {
			_ = h.verify("password")
		}
	})
}
