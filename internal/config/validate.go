package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

var (
	// 2-128 characters: STS refuses an ExternalId shorter than 2, and the id is also part of
	// workflow and schedule ids and the RoleSessionName.
	accountIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{1,127}$`)
	bucketPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	// IAM role ARN: partition, empty region, 12-digit account, role path and name.
	roleARNPattern = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/([\x21-\x7E]+/)?[A-Za-z0-9+=,.@_-]{1,64}$`)
	regionPattern  = regexp.MustCompile(`^` + regionExpr + `$`)
	timeOfDay      = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

	// The forms S3 accepts for an SSE-KMS key: key id, key ARN, alias name, alias ARN.
	kmsKeyIDPattern  = regexp.MustCompile(`^` + kmsKeyIDExpr + `$`)
	kmsAliasPattern  = regexp.MustCompile(`^` + kmsAliasExpr + `$`)
	kmsARNPattern    = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:kms:` + regionExpr + `:[0-9]{12}:(key/` + kmsKeyIDExpr + `|` + kmsAliasExpr + `)$`)
	projectIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	// The domain of a legacy domain-scoped project id, example.com in example.com:my-project.
	projectDomainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
	datasetPattern       = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

const (
	regionExpr = `[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+`
	// A KMS key id is a UUID or, for a multi-region key, mrk- and 32 hex digits.
	kmsKeyIDExpr = `([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})`
	// An alias name is at most 256 characters with its alias/. AWS-managed aliases are valid
	// SSE-KMS keys (alias/aws/s3), so aws/ is not excluded.
	kmsAliasExpr = `alias/[A-Za-z0-9/_-]{1,250}`
)

// maxDatasetID is BigQuery's limit on a dataset id.
const maxDatasetID = 1024

// ValidateAccountID checks an account id. It becomes the STS ExternalId, part of workflow
// and schedule ids, and the RoleSessionName, so it is restricted to characters all three allow.
func ValidateAccountID(id string) error {
	if id == "" {
		return errors.New("missing: every account needs its data platform account id (it is the ExternalId in the customer's trust policy)")
	}
	if len(id) < 2 {
		return fmt.Errorf("%q is too short: STS requires the ExternalId (the account id) to have at least 2 characters; use the full data platform account id", id)
	}
	if !accountIDPattern.MatchString(id) {
		return fmt.Errorf("%q is not a valid account id: use 2-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// ValidateBucket checks an S3 bucket name against AWS's naming rules and catches the most
// common mistake, an ARN or URL pasted instead of the name.
func ValidateBucket(b string) error {
	switch {
	case b == "":
		return errors.New("missing: give the name of the customer's S3 bucket")
	case strings.HasPrefix(b, "arn:"):
		name := b[strings.LastIndex(b, ":")+1:]
		if i := strings.Index(name, "/"); i >= 0 {
			name = name[:i]
		}
		return fmt.Errorf("%q is a bucket ARN, not a bucket name: use the name alone, e.g. %q", b, name)
	case strings.HasPrefix(b, "s3://"), strings.HasPrefix(b, "https://"), strings.HasPrefix(b, "http://"):
		return fmt.Errorf("%q is a URL, not a bucket name: use the bucket name alone, without scheme or path", b)
	case strings.Contains(b, "/"):
		return fmt.Errorf("%q contains '/': a bucket name has no path; put the sub-folder in prefix instead", b)
	case b != strings.ToLower(b):
		return fmt.Errorf("%q has upper-case letters: S3 bucket names are lower case", b)
	case !bucketPattern.MatchString(b):
		return fmt.Errorf("%q is not a valid S3 bucket name: 3-63 characters of lower-case letters, digits, '.' and '-', starting and ending with a letter or digit", b)
	case strings.Contains(b, ".."):
		return fmt.Errorf("%q is not a valid S3 bucket name: it contains '..'", b)
	case net.ParseIP(b) != nil:
		return fmt.Errorf("%q is not a valid S3 bucket name: it is formatted as an IP address", b)
	case strings.HasPrefix(b, "xn--"), strings.HasPrefix(b, "sthree-"),
		strings.HasSuffix(b, "-s3alias"), strings.HasSuffix(b, "--ol-s3"), strings.HasSuffix(b, "--x-s3"):
		return fmt.Errorf("%q uses a prefix or suffix S3 reserves: it cannot be a bucket name", b)
	}
	return nil
}

// ValidateRoleARN checks the customer's role ARN.
func ValidateRoleARN(arn string) error {
	switch {
	case arn == "":
		return errors.New("missing: give the ARN of the role the customer created, e.g. arn:aws:iam::123456789012:role/dreamdata-data-platform")
	case !strings.HasPrefix(arn, "arn:"):
		return fmt.Errorf("%q is not an ARN: give the full role ARN, e.g. arn:aws:iam::123456789012:role/%s", arn, arn)
	case strings.Contains(arn, ":user/"):
		return fmt.Errorf("%q is an IAM user ARN: the customer must create a role and give its ARN (arn:aws:iam::<account>:role/<name>)", arn)
	case strings.HasPrefix(arn, "arn:aws:sts::"):
		return fmt.Errorf("%q is an assumed-role session ARN: give the role's own ARN, arn:aws:iam::<account>:role/<name>", arn)
	case !roleARNPattern.MatchString(arn):
		return fmt.Errorf("%q is not a valid IAM role ARN: expected arn:aws:iam::<12-digit account>:role/<name>", arn)
	}
	return nil
}

// maxPrefix leaves room under S3's 1024-byte key limit for the dump folder and file names.
const maxPrefix = 512

// prefixSafeChars are the characters a prefix may use besides ASCII letters, digits and the
// '/' separator: AWS's "safe characters" for object keys.
const prefixSafeChars = "!-_.*'()"

// ValidatePrefix checks the optional sub-folder. It is joined with '/' to the dump folder, so
// it must not start or end with '/', and '..' or empty segments would make keys that some
// S3 tools resolve differently from others. Its characters are limited to AWS's safe set:
// anything else ('#', ' ', '?', '%', '+', non-ASCII, ...) arrives URL-encoded in S3 event
// notifications and breaks Snowflake and Athena stage URLs, so the customer's loaders fail.
func ValidatePrefix(p string) error {
	if p == "" {
		return nil
	}
	switch {
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q starts with '/': write the sub-folder without a leading slash, e.g. %q", p, strings.Trim(p, "/"))
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("%q ends with '/': write the sub-folder without a trailing slash, e.g. %q", p, strings.Trim(p, "/"))
	case strings.Contains(p, "//"):
		return fmt.Errorf("%q has an empty path segment ('//'): separate folders with a single '/'", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("%q contains a %q segment: give a plain sub-folder path", p, seg)
		}
	}
	if bad := unsafePrefixChars(p); bad != "" {
		msg := fmt.Sprintf("%q contains %s: use only letters, digits, '/' between folders and the characters %s "+
			"(AWS's safe characters for object keys; others arrive URL-encoded in S3 event notifications and break Snowflake and Athena stage URLs)",
			p, bad, prefixSafeChars)
		if s := safePrefix(p); s != "" && ValidatePrefix(s) == nil {
			msg += fmt.Sprintf(", e.g. %q", s)
		}
		return errors.New(msg)
	}
	if len(p) > maxPrefix {
		return fmt.Errorf("%d characters is too long: keep the prefix to at most %d", len(p), maxPrefix)
	}
	return nil
}

func isPrefixSafe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' ||
		strings.ContainsRune(prefixSafeChars, r)
}

// unsafePrefixChars lists the distinct characters of p outside the safe set, quoted so that a
// space or control character is visible; "" when there is none.
func unsafePrefixChars(p string) string {
	var bad []string
	seen := map[rune]bool{}
	for _, r := range p {
		if !isPrefixSafe(r) && !seen[r] {
			seen[r] = true
			bad = append(bad, strconv.QuoteRune(r))
		}
	}
	return strings.Join(bad, ", ")
}

// safePrefix suggests a fix: each run of unsafe characters becomes one '-'.
func safePrefix(p string) string {
	var b strings.Builder
	dash := false
	for _, r := range p {
		if isPrefixSafe(r) {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return b.String()
}

func validateRegion(r string) error {
	if !regionPattern.MatchString(r) {
		return fmt.Errorf("%q is not an AWS region name such as eu-west-1", r)
	}
	return nil
}

// kmsForms is how the error messages spell the accepted kms_key_arn forms.
const kmsForms = "a key ARN arn:aws:kms:<region>:<12-digit account>:key/<key id> (preferred), " +
	"a key id (1234abcd-12ab-34cd-56ef-1234567890ab, or mrk-<32 hex digits> for a multi-region key), " +
	"an alias name alias/<name>, or an alias ARN arn:aws:kms:<region>:<account>:alias/<name>"

// validateKMSKeyARN accepts the four forms S3 takes for SSE-KMS: key ARN, key id, alias name
// and alias ARN. Only ARNs work for a key in another account, so the docs ask customers for
// ARNs. A bare key name such as "demo-key" is none of these and is rejected: S3 would fail
// every upload with it.
func validateKMSKeyARN(k string) error {
	switch {
	case kmsARNPattern.MatchString(k), kmsKeyIDPattern.MatchString(k), kmsAliasPattern.MatchString(k):
		return nil
	case strings.HasPrefix(k, "arn:"):
		return fmt.Errorf("%q is not a valid KMS key ARN: use %s", k, kmsForms)
	case strings.HasPrefix(k, "alias/"):
		return fmt.Errorf("%q is not a valid KMS alias: the name after alias/ may only use letters, digits, '/', '_' and '-'", k)
	}
	return fmt.Errorf("%q is not a KMS key: use %s", k, kmsForms)
}

// validateBigQueryProject checks a project id against BigQuery's rules: 6-30 lower-case
// letters, digits and hyphens, starting with a letter and not ending with a hyphen, optionally
// scoped by a domain as legacy projects are (example.com:my-project). The messages catch the
// usual slips: the display name, the project number, or project.dataset in one field.
func validateBigQueryProject(p string) error {
	if p == "" {
		return errors.New("missing: name the BigQuery project that holds the account's dataset")
	}
	id := p
	if domain, rest, scoped := strings.Cut(p, ":"); scoped {
		if !projectDomainPattern.MatchString(domain) {
			return fmt.Errorf("%q is not a BigQuery project id: before ':' only a domain is allowed, as in example.com:my-project", p)
		}
		id = rest
	}
	switch {
	case id != strings.ToLower(id) || strings.Contains(id, " "):
		return fmt.Errorf("%q is not a BigQuery project id: ids are lower case without spaces; give the project ID from the Cloud console, not the project name", p)
	case isDigits(id):
		return fmt.Errorf("%q looks like a project number: give the project id (lower-case letters, digits and '-')", p)
	case strings.Contains(id, "."):
		i := strings.LastIndex(p, ".")
		return fmt.Errorf("%q looks like project.dataset: put %q in bigquery.project and %q in bigquery.dataset", p, p[:i], p[i+1:])
	case !projectIDPattern.MatchString(id):
		return fmt.Errorf("%q is not a BigQuery project id: use 6-30 lower-case letters, digits and '-', starting with a letter and not ending with '-'", p)
	}
	return nil
}

// validateBigQueryDataset checks a dataset id: up to 1024 letters, digits and underscores.
func validateBigQueryDataset(d string) error {
	switch {
	case d == "":
		return errors.New("missing: name the BigQuery dataset that holds the account's tables")
	case strings.Contains(d, "."):
		i := strings.LastIndex(d, ".")
		return fmt.Errorf("%q looks like project.dataset: put %q in bigquery.project and %q in bigquery.dataset", d, d[:i], d[i+1:])
	case strings.Contains(d, "-"):
		return fmt.Errorf("%q is not a BigQuery dataset id: dataset ids have no '-'; BigQuery would have named it with '_', e.g. %q", d, strings.ReplaceAll(d, "-", "_"))
	case len(d) > maxDatasetID:
		return fmt.Errorf("dataset id is %d characters: BigQuery allows at most %d", len(d), maxDatasetID)
	case !datasetPattern.MatchString(d):
		return fmt.Errorf("%q is not a BigQuery dataset id: use only letters, digits and '_'", d)
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// validateTimes checks a list of UTC times of day. A time listed twice would be one schedule
// entry that looks like two, so it is reported rather than collapsed.
func validateTimes(times []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, t := range times {
		if err := validateTimeOfDay(t); err != nil {
			errs = append(errs, err)
		} else if seen[t] {
			errs = append(errs, fmt.Errorf("%q is listed twice: list each time of day once", t))
		}
		seen[t] = true
	}
	return errors.Join(errs...)
}

func validateTimeOfDay(t string) error {
	if !timeOfDay.MatchString(t) {
		return fmt.Errorf("%q is not a UTC time of day in HH:MM form, e.g. 04:00", t)
	}
	return nil
}
