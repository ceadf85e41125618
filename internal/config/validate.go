package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
)

var (
	accountIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	bucketPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	// IAM role ARN: partition, empty region, 12-digit account, role path and name.
	roleARNPattern  = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/([\x21-\x7E]+/)?[A-Za-z0-9+=,.@_-]{1,64}$`)
	regionPattern   = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$`)
	kmsARNPattern   = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)$`)
	kmsKeyIDPattern = regexp.MustCompile(`^(alias/)?[A-Za-z0-9/_-]{1,256}$`)
	timeOfDay       = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// ValidateAccountID checks an account id. It becomes the STS ExternalId, part of workflow
// and schedule ids, and the RoleSessionName, so it is restricted to characters all three allow.
func ValidateAccountID(id string) error {
	if id == "" {
		return errors.New("missing: every account needs its data platform account id (it is the ExternalId in the customer's trust policy)")
	}
	if !accountIDPattern.MatchString(id) {
		return fmt.Errorf("%q is not a valid account id: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
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

// ValidatePrefix checks the optional sub-folder. It is joined with '/' to the dump folder, so
// it must not start or end with '/', and '..' or empty segments would make keys that some
// S3 tools resolve differently from others.
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
		return fmt.Errorf("%q has an empty path segment ('//')", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("%q contains a %q segment: give a plain sub-folder path", p, seg)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%q contains a control character or backslash", p)
		}
	}
	if len(p) > 512 {
		return errors.New("prefix is longer than 512 bytes")
	}
	return nil
}

func validateRegion(r string) error {
	if !regionPattern.MatchString(r) {
		return fmt.Errorf("%q is not an AWS region name such as eu-west-1", r)
	}
	return nil
}

// validateKMSKeyARN accepts a key or alias ARN, or a bare key id or alias name. S3 accepts
// all four; only ARNs work for a key in another account, so the docs ask customers for ARNs.
func validateKMSKeyARN(k string) error {
	if strings.HasPrefix(k, "arn:") {
		if !kmsARNPattern.MatchString(k) {
			return fmt.Errorf("%q is not a KMS key ARN: expected arn:aws:kms:<region>:<account>:key/<key-id> (or alias/<name>)", k)
		}
		return nil
	}
	if !kmsKeyIDPattern.MatchString(k) {
		return fmt.Errorf("%q is neither a KMS key ARN nor a key id: use arn:aws:kms:<region>:<account>:key/<key-id>", k)
	}
	return nil
}

func validateTimeOfDay(t string) error {
	if !timeOfDay.MatchString(t) {
		return fmt.Errorf("%q is not a UTC time of day in HH:MM form, e.g. 04:00", t)
	}
	return nil
}
