// Package policy generates the IAM documents a customer pastes into AWS so the exporter can
// deliver dumps: the role's trust policy, its permissions policy and, for SSE-KMS buckets, its
// KMS policy, plus an AWS CLI recipe that creates the role with them.
//
// The documents grant exactly what the exporter uses (the customer contract): sts:AssumeRole
// guarded by sts:ExternalId, s3:PutObject and s3:PutObjectAcl on object keys, and
// kms:GenerateDataKey and kms:Decrypt on the bucket's key. Nothing to list, read or delete.
package policy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dreamdata/destination-aws-s3/internal/config"
)

// DefaultExporterRoleARN is the platform's exporter role, the principal that assumes
// customers' roles (as the customer guide names it).
const DefaultExporterRoleARN = "arn:aws:iam::485801740390:role/dreamdata_destination_s3"

// DefaultRoleName is the role name the customer guide suggests, used in the recipe when the
// account has no role ARN yet.
const DefaultRoleName = "dreamdata-data-platform"

// Version is the IAM policy language version every document uses.
const Version = "2012-10-17"

// Document is an IAM policy document. Field order follows AWS's own examples.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal,omitempty"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource,omitempty"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// Indent renders a document as indented JSON, ready to paste into the IAM console.
func (d Document) Indent() string {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil { // a Document of strings always marshals
		panic(err)
	}
	return string(b)
}

// Set is everything one account's customer needs.
type Set struct {
	AccountID       string `json:"account_id"`
	ExporterRoleARN string `json:"exporter_role_arn"`
	// RoleName and RolePath are the customer's role, from the account's role ARN.
	RoleName string `json:"role_name"`
	RolePath string `json:"role_path"`
	// Resource is the object ARN pattern the permissions policy grants.
	Resource    string    `json:"resource"`
	Trust       Document  `json:"trust_policy"`
	Permissions Document  `json:"permissions_policy"`
	KMS         *Document `json:"kms_policy,omitempty"`
	// Notes explain choices and flag what the customer must fill in or check.
	Notes []string `json:"notes,omitempty"`
}

// Generate builds the policy set of an account. exporterRoleARN empty means
// DefaultExporterRoleARN.
func Generate(acc config.Account, exporterRoleARN string) (Set, error) {
	if exporterRoleARN == "" {
		exporterRoleARN = DefaultExporterRoleARN
	}
	if err := config.ValidateRoleARN(exporterRoleARN); err != nil {
		return Set{}, fmt.Errorf("exporter role: %w", err)
	}
	if err := config.ValidateAccountID(acc.ID); err != nil {
		return Set{}, fmt.Errorf("account id: %w", err)
	}
	if err := config.ValidateBucket(acc.Bucket); err != nil {
		return Set{}, fmt.Errorf("account %s: bucket: %w", acc.ID, err)
	}
	if err := config.ValidatePrefix(acc.Prefix); err != nil {
		return Set{}, fmt.Errorf("account %s: prefix: %w", acc.ID, err)
	}
	s := Set{AccountID: acc.ID, ExporterRoleARN: exporterRoleARN, RoleName: DefaultRoleName, RolePath: "/"}
	if acc.RoleARN != "" && config.ValidateRoleARN(acc.RoleARN) == nil {
		s.RolePath, s.RoleName = rolePathAndName(acc.RoleARN)
	} else {
		s.Notes = append(s.Notes, fmt.Sprintf("the account has no valid role_arn yet: the recipe creates role %q; give us its ARN afterwards", DefaultRoleName))
	}
	s.Trust = TrustPolicy(exporterRoleARN, acc.ID)
	s.Resource = AccountResource(acc)
	s.Permissions = PermissionsPolicy(s.Resource)
	if acc.Prefix != "" {
		s.Notes = append(s.Notes, fmt.Sprintf("the permissions are scoped to the prefix %q: the exporter writes only under %s/ (dumps and receipt.json), so it needs nothing elsewhere in the bucket", acc.Prefix, acc.Prefix))
	} else {
		s.Notes = append(s.Notes, "the permissions cover every key of the bucket because the account has no prefix; set a prefix to confine the exporter to a sub-folder")
	}
	s.Notes = append(s.Notes, "no bucket-level ARN and no s3:ListBucket, s3:GetObject or s3:DeleteObject: the exporter never lists, reads or deletes anything")
	if acc.KMSKeyARN != "" {
		key, note := kmsResource(acc.KMSKeyARN)
		d := KMSPolicy(key)
		s.KMS = &d
		if note != "" {
			s.Notes = append(s.Notes, note)
		}
		s.Notes = append(s.Notes, "the KMS key's own key policy must also let the role use the key (the default key policy delegates to IAM, which this policy then satisfies)")
	}
	return s, nil
}

// TrustPolicy lets only the exporter role assume the customer's role, and only with the
// account id as ExternalId (the confused-deputy guard: another customer of the platform
// cannot point us at this role).
func TrustPolicy(exporterRoleARN, externalID string) Document {
	return Document{Version: Version, Statement: []Statement{{
		Sid:       "DreamdataStsPolicy",
		Effect:    "Allow",
		Principal: map[string]string{"AWS": exporterRoleARN},
		Action:    []string{"sts:AssumeRole"},
		Condition: map[string]map[string]string{"StringEquals": {"sts:ExternalId": externalID}},
	}}}
}

// AccountResource is the object ARN pattern the permissions policy of acc grants: the keys
// under its prefix (every key of the bucket when it has none), in the partition of its role.
// Error messages and checks name this ARN, so they never disagree with `starter policy`.
func AccountResource(acc config.Account) string {
	partition := "aws"
	if acc.RoleARN != "" && config.ValidateRoleARN(acc.RoleARN) == nil {
		partition = strings.SplitN(acc.RoleARN, ":", 3)[1]
	}
	return ObjectResource(partition, acc.Bucket, acc.Prefix)
}

// ObjectResource is the ARN pattern of the keys the exporter writes: every key of the bucket,
// or every key under the prefix.
func ObjectResource(partition, bucket, prefix string) string {
	if prefix == "" {
		return fmt.Sprintf("arn:%s:s3:::%s/*", partition, bucket)
	}
	return fmt.Sprintf("arn:%s:s3:::%s/%s/*", partition, bucket, prefix)
}

// PermissionsPolicy grants writing objects (and their ACL) on resource and nothing else.
func PermissionsPolicy(resource string) Document {
	return Document{Version: Version, Statement: []Statement{{
		Sid:      "DreamdataDataPlatform",
		Effect:   "Allow",
		Action:   []string{"s3:PutObject", "s3:PutObjectAcl"},
		Resource: []string{resource},
	}}}
}

// KMSPolicy grants what SSE-KMS uploads need on the bucket's key: GenerateDataKey to encrypt
// and Decrypt, which S3 calls to complete multipart uploads.
func KMSPolicy(keyARN string) Document {
	return Document{Version: Version, Statement: []Statement{{
		Sid:      "KMSEncryption",
		Effect:   "Allow",
		Action:   []string{"kms:GenerateDataKey", "kms:Decrypt"},
		Resource: []string{keyARN},
	}}}
}

// kmsResource returns the Resource to grant for the account's key setting, with a note when
// the setting cannot be used as is.
func kmsResource(k string) (string, string) {
	switch {
	case strings.HasPrefix(k, "arn:") && strings.Contains(k, ":alias/"):
		return "<KMS_KEY_ARN>", fmt.Sprintf("kms_key_arn %q is an alias: IAM grants on the key itself, so replace <KMS_KEY_ARN> with the key's ARN (aws kms describe-key --key-id %s --query KeyMetadata.Arn)", k, k)
	case strings.HasPrefix(k, "arn:"):
		return k, ""
	default:
		return "<KMS_KEY_ARN>", fmt.Sprintf("kms_key_arn %q is a bare key id: replace <KMS_KEY_ARN> with the key's full ARN (aws kms describe-key --key-id %s --query KeyMetadata.Arn), and prefer the ARN in the account settings", k, k)
	}
}

// rolePathAndName splits arn:aws:iam::123456789012:role/some/path/name into "/some/path/"
// and "name".
func rolePathAndName(arn string) (string, string) {
	res := arn[strings.Index(arn, ":role/")+len(":role/"):]
	i := strings.LastIndex(res, "/")
	if i < 0 {
		return "/", res
	}
	return "/" + res[:i+1], res[i+1:]
}

// Recipe is a shell script, for the customer's AWS CLI, that creates the role and attaches
// the policies. Policies travel in quoted here-documents, so nothing in them is expanded.
func (s Set) Recipe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Run with credentials of the AWS account that owns the bucket (IAM admin rights).\n")
	fmt.Fprintf(&b, "cat > trust-policy.json <<'EOF'\n%s\nEOF\n", s.Trust.Indent())
	fmt.Fprintf(&b, "cat > permissions-policy.json <<'EOF'\n%s\nEOF\n", s.Permissions.Indent())
	if s.KMS != nil {
		fmt.Fprintf(&b, "cat > kms-policy.json <<'EOF'\n%s\nEOF\n", s.KMS.Indent())
	}
	fmt.Fprintf(&b, "aws iam create-role --role-name %s", s.RoleName)
	if s.RolePath != "/" {
		fmt.Fprintf(&b, " --path %s", s.RolePath)
	}
	fmt.Fprintf(&b, " \\\n  --description 'Dreamdata data platform export to S3 (account %s)' \\\n  --assume-role-policy-document file://trust-policy.json\n", s.AccountID)
	fmt.Fprintf(&b, "# (role exists already? aws iam update-assume-role-policy --role-name %s --policy-document file://trust-policy.json)\n", s.RoleName)
	fmt.Fprintf(&b, "aws iam put-role-policy --role-name %s --policy-name dreamdata-s3-put \\\n  --policy-document file://permissions-policy.json\n", s.RoleName)
	if s.KMS != nil {
		fmt.Fprintf(&b, "aws iam put-role-policy --role-name %s --policy-name dreamdata-kms \\\n  --policy-document file://kms-policy.json\n", s.RoleName)
	}
	fmt.Fprintf(&b, "# The role ARN to give Dreamdata:\naws iam get-role --role-name %s --query Role.Arn --output text\n", s.RoleName)
	return b.String()
}
