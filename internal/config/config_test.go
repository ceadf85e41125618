package config

import (
	"strings"
	"testing"
)

const validAccount = `
accounts:
  - id: acme-42
    plan: paid
    bucket: acme-data
    role_arn: arn:aws:iam::123456789012:role/dreamdata-data-platform
    prefix: dreamdata/exports
    region: eu-west-1
    kms_key_arn: arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    bigquery: {project: platform, dataset: acme}
`

func TestParseAppliesDefaults(t *testing.T) {
	f, err := Parse([]byte(validAccount))
	if err != nil {
		t.Fatal(err)
	}
	a := f.Accounts[0]
	if strings.Join(a.Tables, ",") != strings.Join(DefaultTables, ",") {
		t.Errorf("tables = %v, want the defaults", a.Tables)
	}
	if a.FileExtension != ExtensionParquetGz {
		t.Errorf("file extension = %q", a.FileExtension)
	}
	if got := f.ScheduleTimes(a); strings.Join(got, ",") != "04:00,15:00" {
		t.Errorf("paid schedule = %v", got)
	}
	a.Plan = PlanFree
	if got := f.ScheduleTimes(a); strings.Join(got, ",") != "04:00" {
		t.Errorf("free schedule = %v", got)
	}
	if _, err := f.Account("nope"); err == nil || !strings.Contains(err.Error(), "acme-42") {
		t.Errorf("unknown account error should list the known ones: %v", err)
	}
}

func TestPlanOverride(t *testing.T) {
	f, err := Parse([]byte("plans: {free: ['06:30']}\n" + validAccount))
	if err != nil {
		t.Fatal(err)
	}
	a := f.Accounts[0]
	a.Plan = PlanFree
	if got := f.ScheduleTimes(a); strings.Join(got, ",") != "06:30" {
		t.Errorf("free schedule = %v", got)
	}
}

func TestValidationMessages(t *testing.T) {
	base := func() Account {
		a := Account{ID: "acme", Bucket: "acme-data", RoleARN: "arn:aws:iam::123456789012:role/r",
			BigQuery: BigQuerySource{Project: "p", Dataset: "d"}}
		a.ApplyDefaults()
		return a
	}
	cases := map[string]struct {
		mutate func(*Account)
		want   []string // every fragment must appear in the error
	}{
		"bucket ARN":         {func(a *Account) { a.Bucket = "arn:aws:s3:::acme-data" }, []string{"bucket:", "bucket ARN", `"acme-data"`}},
		"bucket URL":         {func(a *Account) { a.Bucket = "s3://acme-data/x" }, []string{"bucket:", "URL"}},
		"bucket upper":       {func(a *Account) { a.Bucket = "Acme-Data" }, []string{"lower case"}},
		"bucket too short":   {func(a *Account) { a.Bucket = "ab" }, []string{"not a valid S3 bucket name"}},
		"bucket IP":          {func(a *Account) { a.Bucket = "192.168.1.1" }, []string{"IP address"}},
		"bucket with path":   {func(a *Account) { a.Bucket = "acme/data" }, []string{"prefix"}},
		"role name only":     {func(a *Account) { a.RoleARN = "dreamdata-data-platform" }, []string{"role_arn:", "not an ARN", "role/dreamdata-data-platform"}},
		"role is a user":     {func(a *Account) { a.RoleARN = "arn:aws:iam::123456789012:user/bob" }, []string{"IAM user ARN"}},
		"role short account": {func(a *Account) { a.RoleARN = "arn:aws:iam::1234:role/r" }, []string{"not a valid IAM role ARN"}},
		"role sts session":   {func(a *Account) { a.RoleARN = "arn:aws:sts::123456789012:assumed-role/r/s" }, []string{"session ARN"}},
		"empty id":           {func(a *Account) { a.ID = "" }, []string{"id:", "ExternalId"}},
		"bad id":             {func(a *Account) { a.ID = "acme corp" }, []string{"not a valid account id"}},
		"unknown table":      {func(a *Account) { a.Tables = []string{"companies", "orders"} }, []string{`unknown table "orders"`, "paid_ads"}},
		"duplicate table":    {func(a *Account) { a.Tables = []string{"events", "events"} }, []string{"listed twice"}},
		"prefix dotdot":      {func(a *Account) { a.Prefix = "a/../b" }, []string{"prefix:", `".."`}},
		"prefix leading":     {func(a *Account) { a.Prefix = "/exports" }, []string{"leading slash", `"exports"`}},
		"prefix trailing":    {func(a *Account) { a.Prefix = "exports/" }, []string{"trailing slash"}},
		"prefix empty seg":   {func(a *Account) { a.Prefix = "a//b" }, []string{"empty path segment"}},
		"bad region":         {func(a *Account) { a.Region = "Europe" }, []string{"region:"}},
		"bad kms":            {func(a *Account) { a.KMSKeyARN = "arn:aws:kms:key" }, []string{"kms_key_arn:"}},
		"missing dataset":    {func(a *Account) { a.BigQuery.Dataset = "" }, []string{"bigquery.dataset"}},
		"bad extension":      {func(a *Account) { a.FileExtension = ".csv" }, []string{"file_extension"}},
		"bad plan":           {func(a *Account) { a.Plan = "gold" }, []string{"plan:"}},
		"bad schedule time":  {func(a *Account) { a.ScheduleTimes = []string{"4am"} }, []string{"HH:MM"}},
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("base account should be valid: %v", err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := base()
			tc.mutate(&a)
			err := a.Validate()
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidKMSForms(t *testing.T) {
	for _, k := range []string{
		"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:eu-west-1:123456789012:alias/exports",
		"1234abcd-12ab-34cd-56ef-1234567890ab",
		"alias/exports",
	} {
		if err := validateKMSKeyARN(k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

func TestFileLevelErrors(t *testing.T) {
	dup := validAccount + `
  - id: acme-42
    bucket: other
    role_arn: arn:aws:iam::123456789012:role/r
    bigquery: {project: p, dataset: d}
`
	_, err := Parse([]byte(dup))
	if err == nil || !strings.Contains(err.Error(), "duplicate account id") {
		t.Errorf("duplicate account: %v", err)
	}
	_, err = Parse([]byte("accounts:\n  - id: a\n    bucket_name: x\n"))
	if err == nil || !strings.Contains(err.Error(), "bucket_name") {
		t.Errorf("unknown field should be named: %v", err)
	}
	_, err = Parse([]byte("accounts: []\n"))
	if err == nil || !strings.Contains(err.Error(), "no account") {
		t.Errorf("empty file: %v", err)
	}
	// Several problems are reported together, each with its account.
	_, err = Parse([]byte("accounts:\n  - id: a\n    bucket: arn:aws:s3:::b\n    role_arn: r\n    bigquery: {project: p, dataset: d}\n"))
	if err == nil || !strings.Contains(err.Error(), "account a: bucket:") || !strings.Contains(err.Error(), "role_arn:") {
		t.Errorf("combined errors: %v", err)
	}
}
