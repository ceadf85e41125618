package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/dreamdata/destination-aws-s3/internal/accesscheck"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/policy"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
)

const validateHelp = `starter validate ACCOUNT --accounts FILE [--json]

Checks, from the platform's own AWS identity, that the account's role and bucket are set up
so dumps can be delivered, and says how to fix what is not:

  1. trust policy requires sts:ExternalId [advisory]: assumes the role WITHOUT an ExternalId;
     this must be denied. If it is granted, the trust policy lacks the sts:ExternalId
     condition that protects the customer from the confused-deputy problem: WARN.
  2. assume the role with ExternalId = the account id [required].
  3. write a test object [required]: puts <prefix>/_destination_check/<UTC timestamp>.txt,
     a few bytes of text, exactly as dumps are written (ACL bucket-owner-full-control, SSE-KMS
     with the account's key when it has one). It is harmless and outside every dump folder;
     it is never read, listed or deleted (the role does not allow it).

Exit status 0 when the required checks pass (warnings included), 1 when one fails, 2 on a
usage error. No credentials are ever printed.

The platform identity comes from the standard AWS credential chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance role), as for the worker; the endpoint
flags below default to the worker's environment variables.`

func (a *app) validate(ctx context.Context, args []string) error {
	c := a.newCommand("validate", validateHelp, false)
	accounts := c.fs.String("accounts", settings.Env("ACCOUNTS_FILE", ""), "accounts file, YAML or JSON (env ACCOUNTS_FILE)")
	asJSON := c.fs.Bool("json", false, "print the report as JSON")
	s3s := registerS3Flags(c)
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	_, acc, err := loadAccount(*accounts, account)
	if err != nil {
		return err
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load the platform's AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// STS needs a region; the bucket's own (or us-east-1) serves as well as any.
		cfg.Region = acc.Region
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
	}
	s3s.SessionNamePrefix = "dreamdata-validate"
	rep := accesscheck.Run(ctx, s3dest.New(cfg, *s3s), acc, a.now())
	if *asJSON {
		err = rep.WriteJSON(a.out)
	} else {
		err = rep.WriteText(a.out)
	}
	if err != nil {
		return err
	}
	if !rep.OK {
		return exitError{1}
	}
	return nil
}

// registerS3Flags adds the worker's S3/STS endpoint flags, with the same environment defaults.
func registerS3Flags(c *command) *s3dest.Settings {
	s := &s3dest.Settings{}
	s.BindFlags(c.fs, &c.env)
	return s
}

const policyHelp = `starter policy ACCOUNT --accounts FILE [--exporter-role-arn ARN] [--json]
starter policy ACCOUNT --bucket NAME [--prefix P] [--kms-key-arn ARN] [--role-arn ARN]

Prints, ready to paste into the customer's AWS account:
  1. the role's trust policy: only the platform's exporter role may assume it, and only
     with sts:ExternalId = the account id (the confused-deputy guard);
  2. the role's permissions policy: s3:PutObject and s3:PutObjectAcl on the bucket's objects,
     scoped to <bucket>/<prefix>/* when the account has a prefix (the exporter writes nothing
     outside it), and nothing else: it never lists, reads or deletes;
  3. with a KMS key, the KMS policy: kms:GenerateDataKey and kms:Decrypt on that key;
and an AWS CLI recipe that creates the role and attaches the policies.

Take the account from the accounts file, or, while onboarding a customer who has no role
yet (the accounts file needs a role ARN), describe it with --bucket and friends.
docs/customer-setup.md walks the customer through the same steps.`

func (a *app) policy(_ context.Context, args []string) error {
	c := a.newCommand("policy", policyHelp, false)
	accounts := c.fs.String("accounts", "", "accounts file to take the account from")
	exporter := c.fs.String("exporter-role-arn", settings.Env("EXPORTER_ROLE_ARN", policy.DefaultExporterRoleARN), "the platform's exporter role, the trust policy's Principal (env EXPORTER_ROLE_ARN)")
	bucket := c.fs.String("bucket", "", "without --accounts: the customer's bucket name")
	prefix := c.fs.String("prefix", "", "without --accounts: the optional sub-folder")
	kms := c.fs.String("kms-key-arn", "", "without --accounts: the bucket's KMS key ARN, if SSE-KMS")
	roleARN := c.fs.String("role-arn", "", "without --accounts: the customer's role ARN, if it exists already")
	asJSON := c.fs.Bool("json", false, "print the policies and notes as one JSON object")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	var acc config.Account
	switch {
	case *accounts != "" && (*bucket != "" || *prefix != "" || *kms != "" || *roleARN != ""):
		return usagef("policy: give either --accounts or --bucket/--prefix/--kms-key-arn/--role-arn, not both")
	case *accounts != "":
		if _, acc, err = loadAccount(*accounts, account); err != nil {
			return err
		}
	case *bucket != "":
		acc = config.Account{ID: account, Bucket: *bucket, Prefix: *prefix, KMSKeyARN: *kms, RoleARN: *roleARN}
		if *roleARN != "" {
			if err := config.ValidateRoleARN(*roleARN); err != nil {
				return usagef("policy: --role-arn: %v", err)
			}
		}
	default:
		return usagef("policy: give --accounts FILE (or, for a customer not in it yet, --bucket NAME)")
	}
	set, err := policy.Generate(acc, *exporter)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(a.out, set)
	}
	return writePolicyText(a.out, acc, set)
}

func writePolicyText(w io.Writer, acc config.Account, s policy.Set) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# IAM setup for Dreamdata account %s\n", s.AccountID)
	fmt.Fprintf(&b, "#   bucket %s", acc.Bucket)
	if acc.Prefix != "" {
		fmt.Fprintf(&b, ", prefix %s/", acc.Prefix)
	}
	if acc.KMSKeyARN != "" {
		fmt.Fprintf(&b, ", SSE-KMS key %s", acc.KMSKeyARN)
	}
	role := s.RoleName
	if s.RolePath != "/" {
		role = s.RolePath + s.RoleName
	}
	fmt.Fprintf(&b, "\n#   role %s, assumed by %s with ExternalId %q\n\n", role, s.ExporterRoleARN, s.AccountID)
	fmt.Fprintf(&b, "## 1. Trust policy (IAM > Roles > %s > Trust relationships)\n%s\n\n", s.RoleName, s.Trust.Indent())
	fmt.Fprintf(&b, "## 2. Permissions policy (IAM > Roles > %s > Add permissions > Create inline policy)\n%s\n\n", s.RoleName, s.Permissions.Indent())
	if s.KMS != nil {
		fmt.Fprintf(&b, "## 3. KMS policy (the bucket is encrypted with a KMS key; attach it to the same role)\n%s\n\n", s.KMS.Indent())
	}
	b.WriteString("## Notes\n")
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("- we never delete: add a lifecycle rule that expires old dumps (e.g. after 7 days) and aborts incomplete multipart uploads (docs/customer-setup.md)\n\n")
	fmt.Fprintf(&b, "## AWS CLI recipe\n%s", s.Recipe())
	_, err := io.WriteString(w, b.String())
	return err
}
