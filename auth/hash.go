package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// hashParams are the Argon2id parameters of a password hash.
type hashParams struct {
	memory  uint32 // KiB
	time    uint32 // passes
	threads uint8
	saltLen int
	keyLen  int
}

// defaultParams are the parameters of new hashes: RFC 9106's second
// recommended option (64 MiB) with two lanes, above OWASP's minimums.
var defaultParams = hashParams{memory: 64 << 10, time: 3, threads: 2, saltLen: 16, keyLen: 32}

// Bounds of the parameters a stored hash may carry: a hash is not trusted to
// make a login take gigabytes or minutes.
const (
	maxMemory  = 1 << 20 // 1 GiB
	maxTime    = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// errMalformedHash is returned by parseHash for a string that is not an
// Argon2id PHC string this package accepts.
var errMalformedHash = errors.New("malformed password hash")

// phcHash is a parsed PHC string.
type phcHash struct {
	params hashParams
	salt   []byte
	key    []byte
}

// b64 is the PHC strings' base64: standard alphabet, no padding, canonical.
var b64 = base64.RawStdEncoding.Strict()

// hashPassword hashes password with p into a PHC string,
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>.
func hashPassword(password string, p hashParams) (string, error) {
	salt := make([]byte, p.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(p.keyLen))
	return phcHash{params: p, salt: salt, key: key}.String(), nil
}

// String formats h as a PHC string.
func (h phcHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.memory, h.params.time, h.params.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parseHash reads an Argon2id PHC string in its canonical form (parameters
// m, t, p in that order, decimal without leading zeros, unpadded base64),
// refusing parameters outside the package's bounds.
func parseHash(s string) (phcHash, error) {
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" {
		return phcHash{}, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", errMalformedHash)
	}
	if fields[1] != "argon2id" {
		return phcHash{}, fmt.Errorf("%w: algorithm %q, want argon2id", errMalformedHash, fields[1])
	}
	if fields[2] != "v="+strconv.Itoa(argon2.Version) {
		return phcHash{}, fmt.Errorf("%w: version %q, want v=%d", errMalformedHash, fields[2], argon2.Version)
	}
	params := strings.Split(fields[3], ",")
	if len(params) != 3 {
		return phcHash{}, fmt.Errorf("%w: parameters %q, want m=…,t=…,p=…", errMalformedHash, fields[3])
	}
	var values [3]uint32
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || v != strconv.FormatUint(n, 10) {
			return phcHash{}, fmt.Errorf("%w: parameter %d %q, want %s=<number>", errMalformedHash, i+1, params[i], name)
		}
		values[i] = uint32(n)
	}
	h := phcHash{params: hashParams{memory: values[0], time: values[1]}}
	switch {
	case values[2] < 1 || values[2] > 255:
		return phcHash{}, fmt.Errorf("%w: p=%d, want 1 to 255", errMalformedHash, values[2])
	case h.params.time < 1 || h.params.time > maxTime:
		return phcHash{}, fmt.Errorf("%w: t=%d, want 1 to %d", errMalformedHash, h.params.time, maxTime)
	case h.params.memory < 8*values[2] || h.params.memory > maxMemory:
		return phcHash{}, fmt.Errorf("%w: m=%d, want 8×p to %d KiB", errMalformedHash, h.params.memory, maxMemory)
	}
	h.params.threads = uint8(values[2])
	// The decoder skips \r and \n even when strict: a canonical string has none.
	if strings.ContainsAny(fields[4]+fields[5], "\r\n") {
		return phcHash{}, fmt.Errorf("%w: line break in the salt or hash", errMalformedHash)
	}
	var err error
	if h.salt, err = b64.DecodeString(fields[4]); err != nil || len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen {
		return phcHash{}, fmt.Errorf("%w: salt must be %d to %d bytes of unpadded base64", errMalformedHash, minSaltLen, maxSaltLen)
	}
	if h.key, err = b64.DecodeString(fields[5]); err != nil || len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
		return phcHash{}, fmt.Errorf("%w: hash must be %d to %d bytes of unpadded base64", errMalformedHash, minKeyLen, maxKeyLen)
	}
	h.params.saltLen, h.params.keyLen = len(h.salt), len(h.key)
	return h, nil
}

// verify reports whether password hashes to h, in constant time for a given h.
func (h phcHash) verify(password string) bool {
	key := argon2.IDKey([]byte(password), h.salt, h.params.time, h.params.memory, h.params.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// dummyHash is a hash with p that no password matches in practice, verified
// for unknown users so that the time of a login does not tell they are.
func dummyHash(p hashParams) phcHash {
	return phcHash{params: p, salt: make([]byte, p.saltLen), key: make([]byte, p.keyLen)}
}
