package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// keyScope is one level of the accounts file: the struct yaml.v3 decodes it into, how the
// messages name it, and the keys it allows.
type keyScope struct {
	typeName string // as yaml.v3 prints it: "config.Account"
	where    string // "in an account"
	keys     []string
}

// keyScopes are the levels of the accounts file, outermost first.
var keyScopes = []keyScope{
	newKeyScope(File{}, "at the top level of the file"),
	newKeyScope(Account{}, "in an account"),
	newKeyScope(BigQuerySource{}, "in an account's bigquery section"),
}

func newKeyScope(v any, where string) keyScope {
	t := reflect.TypeOf(v)
	s := keyScope{typeName: t.String(), where: where}
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			s.keys = append(s.keys, name)
		}
	}
	return s
}

// unknownFieldLine matches yaml.v3's KnownFields error for one key.
var unknownFieldLine = regexp.MustCompile(`^(line \d+): field (.+) not found in type (\S+)$`)

// explainDecodeError rewrites yaml.v3's per-line decode errors for the operator: an unknown
// key gets the closest known key as a suggestion. All lines are kept, so every problem shows
// at once; other errors (syntax, wrong types) pass through unchanged.
func explainDecodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	errs := make([]error, 0, len(te.Errors))
	for _, line := range te.Errors {
		errs = append(errs, errors.New(explainDecodeLine(line)))
	}
	return errors.Join(errs...)
}

func explainDecodeLine(line string) string {
	m := unknownFieldLine.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	pos, key, typeName := m[1], m[2], m[3]
	for _, s := range keyScopes {
		if s.typeName == typeName {
			return fmt.Sprintf("%s: %s", pos, s.unknownKey(key))
		}
	}
	return line
}

// unknownKey explains a key this scope does not have: a misspelling of one of its own keys,
// the key of another level (a slip of indentation), both, or else it lists the scope's keys.
func (s keyScope) unknownKey(key string) string {
	msg := fmt.Sprintf("unknown key %q %s", key, s.where)
	elsewhere := ""
	for _, other := range keyScopes {
		if other.typeName != s.typeName && contains(other.keys, key) {
			elsewhere = fmt.Sprintf("%q is a key %s: check the indentation", key, other.where)
			break
		}
	}
	k := closestKey(key, s.keys)
	switch {
	case k != "" && elsewhere != "":
		return fmt.Sprintf("%s; did you mean %q? (%s)", msg, k, elsewhere)
	case k != "":
		return fmt.Sprintf("%s; did you mean %q?", msg, k)
	case elsewhere != "":
		return fmt.Sprintf("%s; %s", msg, elsewhere)
	}
	return fmt.Sprintf("%s; the keys are: %s", msg, strings.Join(s.keys, ", "))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// closestKey returns the known key that key most likely misspells, or "". A key within a
// third of its length in edits is a typo (kms_key_rn, rolearn, table); failing that, a key
// that contains or is contained in a known one is a longer or shorter name for it
// (bucket_name, kms_key, project_id). Known keys under 3 characters ("id") are too short to
// match that way.
func closestKey(key string, known []string) string {
	norm := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	best, bestDist := "", -1
	for _, k := range known {
		if d := editDistance(norm, k); bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" && bestDist <= max(1, len(best)/3) {
		return best
	}
	best = ""
	for _, k := range known {
		if len(k) >= 3 && len(norm) >= 3 && (strings.Contains(norm, k) || strings.Contains(k, norm)) && len(k) > len(best) {
			best = k
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b, byte-wise (keys are
// ASCII): insertions, deletions, substitutions and swaps of neighbours ("plna" for "plan")
// each cost one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
