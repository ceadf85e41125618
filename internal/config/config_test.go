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
			BigQuery: BigQuerySource{Project: "platform", Dataset: "d"}}
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

		// STS refuses an ExternalId shorter than 2 characters.
		"one-character id": {func(a *Account) { a.ID = "a" }, []string{"id:", `"a" is too short`, "ExternalId", "at least 2"}},

		// Prefix characters outside AWS's safe set break S3 event notifications and stage URLs.
		"prefix hash":      {func(a *Account) { a.Prefix = "exports#1" }, []string{"prefix:", `'#'`, "safe characters", "!-_.*'()", `e.g. "exports-1"`}},
		"prefix space":     {func(a *Account) { a.Prefix = "dream data/exports" }, []string{"prefix:", `' '`, `e.g. "dream-data/exports"`}},
		"prefix question":  {func(a *Account) { a.Prefix = "exports?v=1" }, []string{"prefix:", `'?'`, `'='`}},
		"prefix percent":   {func(a *Account) { a.Prefix = "exports%20x" }, []string{"prefix:", `'%'`}},
		"prefix plus":      {func(a *Account) { a.Prefix = "a+b" }, []string{"prefix:", `'+'`, `e.g. "a-b"`}},
		"prefix non-ASCII": {func(a *Account) { a.Prefix = "exports/données" }, []string{"prefix:", `'é'`}},
		"prefix colon":     {func(a *Account) { a.Prefix = "s3:exports" }, []string{"prefix:", `':'`}},
		"prefix tab":       {func(a *Account) { a.Prefix = "exports\t1" }, []string{"prefix:", `'\t'`}},

		// BigQuery project ids: 6-30 of [a-z0-9-], starting with a letter, not ending with '-'.
		"project too short":       {func(a *Account) { a.BigQuery.Project = "p" }, []string{"bigquery.project:", "6-30"}},
		"project too long":        {func(a *Account) { a.BigQuery.Project = strings.Repeat("a", 31) }, []string{"bigquery.project:", "6-30"}},
		"project starts digit":    {func(a *Account) { a.BigQuery.Project = "1platform" }, []string{"bigquery.project:", "starting with a letter"}},
		"project ends hyphen":     {func(a *Account) { a.BigQuery.Project = "platform-" }, []string{"bigquery.project:", "not ending with '-'"}},
		"project underscore":      {func(a *Account) { a.BigQuery.Project = "data_platform" }, []string{"bigquery.project:", "not a BigQuery project id"}},
		"project display name":    {func(a *Account) { a.BigQuery.Project = "Data Platform" }, []string{"bigquery.project:", "not the project name"}},
		"project number":          {func(a *Account) { a.BigQuery.Project = "123456789012" }, []string{"bigquery.project:", "project number"}},
		"project.dataset":         {func(a *Account) { a.BigQuery.Project = "platform.acme" }, []string{"bigquery.project:", `put "platform" in bigquery.project and "acme" in bigquery.dataset`}},
		"project bad domain":      {func(a *Account) { a.BigQuery.Project = "example:platform" }, []string{"bigquery.project:", "example.com:my-project"}},
		"project domain short id": {func(a *Account) { a.BigQuery.Project = "example.com:p" }, []string{"bigquery.project:", "6-30"}},

		// BigQuery dataset ids: letters, digits and underscores, at most 1024.
		"dataset hyphen":   {func(a *Account) { a.BigQuery.Dataset = "acme-platform" }, []string{"bigquery.dataset:", "no '-'", `"acme_platform"`}},
		"dataset dotted":   {func(a *Account) { a.BigQuery.Dataset = "platform.acme" }, []string{"bigquery.dataset:", `put "platform" in bigquery.project and "acme" in bigquery.dataset`}},
		"dataset space":    {func(a *Account) { a.BigQuery.Dataset = "acme data" }, []string{"bigquery.dataset:", "letters, digits and '_'"}},
		"dataset too long": {func(a *Account) { a.BigQuery.Dataset = strings.Repeat("d", 1025) }, []string{"bigquery.dataset:", "at most 1024"}},

		"duplicate schedule time": {func(a *Account) { a.ScheduleTimes = []string{"04:00", "15:00", "04:00"} }, []string{"schedule_times:", `"04:00" is listed twice`}},

		// An explicit empty list must not silently mean "every table".
		"empty tables": {func(a *Account) { a.Tables = []string{} }, []string{"tables:", "the list is empty", "omit the key to export every table", "name at least one"}},

		// kms_key_arn: only the forms S3 accepts (key id, key ARN, alias name, alias ARN).
		"kms bare name":           {func(a *Account) { a.KMSKeyARN = "demo-key" }, []string{"kms_key_arn:", `"demo-key" is not a KMS key`, "arn:aws:kms:<region>", "alias/<name>"}},
		"kms key ARN bad key id":  {func(a *Account) { a.KMSKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/k" }, []string{"kms_key_arn:", "not a valid KMS key ARN", "1234abcd-12ab-34cd-56ef-1234567890ab"}},
		"kms key ARN no region":   {func(a *Account) { a.KMSKeyARN = "arn:aws:kms::123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }, []string{"kms_key_arn:", "not a valid KMS key ARN"}},
		"kms key ARN short acct":  {func(a *Account) { a.KMSKeyARN = "arn:aws:kms:eu-west-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab" }, []string{"kms_key_arn:", "12-digit account"}},
		"kms key ARN other svc":   {func(a *Account) { a.KMSKeyARN = "arn:aws:s3:::acme-data" }, []string{"kms_key_arn:", "not a valid KMS key ARN"}},
		"kms key id not uuid":     {func(a *Account) { a.KMSKeyARN = "1234abcd-12ab-34cd" }, []string{"kms_key_arn:", "not a KMS key"}},
		"kms mrk short":           {func(a *Account) { a.KMSKeyARN = "mrk-1234" }, []string{"kms_key_arn:", "mrk-<32 hex digits>"}},
		"kms alias bad character": {func(a *Account) { a.KMSKeyARN = "alias/my key" }, []string{"kms_key_arn:", "not a valid KMS alias"}},
		"kms key/ without ARN":    {func(a *Account) { a.KMSKeyARN = "key/1234abcd-12ab-34cd-56ef-1234567890ab" }, []string{"kms_key_arn:", "not a KMS key"}},
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
		"arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
		"arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:eu-west-1:123456789012:alias/exports",
		"arn:aws:kms:eu-west-1:123456789012:alias/team/exports_2",
		"1234abcd-12ab-34cd-56ef-1234567890ab",
		"mrk-1234abcd12ab34cd56ef1234567890ab",
		"alias/exports",
		"alias/aws/s3", // the AWS-managed key: valid for SSE-KMS
	} {
		if err := validateKMSKeyARN(k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

// TestValidIDsStillPass guards the values the local stack, the e2e tests and the docs use.
func TestValidIDsStillPass(t *testing.T) {
	for _, p := range []string{"demo-project", "platform", "my-project-123", "a23456", strings.Repeat("a", 30), "example.com:my-project", "google.com:data-platform"} {
		if err := validateBigQueryProject(p); err != nil {
			t.Errorf("project %s: %v", p, err)
		}
	}
	for _, d := range []string{"demo", "d", "e2e_platform", "acme_platform", "Acme_Platform_2", strings.Repeat("d", 1024)} {
		if err := validateBigQueryDataset(d); err != nil {
			t.Errorf("dataset %s: %v", d, err)
		}
	}
	for _, p := range []string{"dreamdata", "exports/dreamdata", "exports/cli-ops", "a.b_c-d/E!*'()/9"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("prefix %s: %v", p, err)
		}
	}
	for _, id := range []string{"ab", "acme-42", "cli-ops", "acme.corp_1", strings.Repeat("a", 128)} {
		if err := ValidateAccountID(id); err != nil {
			t.Errorf("id %s: %v", id, err)
		}
	}
}

func TestFileLevelErrors(t *testing.T) {
	dup := validAccount + `
  - id: acme-42
    bucket: other
    role_arn: arn:aws:iam::123456789012:role/r
    bigquery: {project: platform, dataset: d}
`
	_, err := Parse([]byte(dup))
	if err == nil || !strings.Contains(err.Error(), "duplicate account id") {
		t.Errorf("duplicate account: %v", err)
	}
	_, err = Parse([]byte("accounts:\n  - id: ab\n    bucket_name: x\n"))
	if err == nil || !strings.Contains(err.Error(), "bucket_name") {
		t.Errorf("unknown field should be named: %v", err)
	}
	_, err = Parse([]byte("accounts: []\n"))
	if err == nil || !strings.Contains(err.Error(), "no account") {
		t.Errorf("empty file: %v", err)
	}
	// Several problems are reported together, each with its account.
	_, err = Parse([]byte("accounts:\n  - id: ab\n    bucket: arn:aws:s3:::b\n    role_arn: r\n    bigquery: {project: platform, dataset: d}\n"))
	if err == nil || !strings.Contains(err.Error(), "account ab: bucket:") || !strings.Contains(err.Error(), "role_arn:") {
		t.Errorf("combined errors: %v", err)
	}
}

// TestParseRejects covers what only shows in the file itself: its emptiness, misspelt keys
// (with a suggestion), explicit empty lists and duplicate plan times.
func TestParseRejects(t *testing.T) {
	cases := map[string]struct {
		yaml string
		want []string // every fragment must appear in the error
	}{
		"empty file":      {"", []string{"the accounts file is empty: list at least one account under accounts:"}},
		"only whitespace": {"\n  \n", []string{"the accounts file is empty"}},
		"only comments":   {"# accounts for production\n# (none yet)\n", []string{"the accounts file is empty"}},
		"misspelt account key": {strings.Replace(validAccount, "kms_key_arn:", "kms_key_rn:", 1),
			[]string{`line 9: unknown key "kms_key_rn" in an account; did you mean "kms_key_arn"?`}},
		"camel-case key": {strings.Replace(validAccount, "role_arn:", "roleArn:", 1),
			[]string{`unknown key "roleArn" in an account; did you mean "role_arn"?`}},
		"longer key name": {strings.Replace(validAccount, "bucket:", "bucket_name:", 1),
			[]string{`unknown key "bucket_name" in an account; did you mean "bucket"?`}},
		"misspelt bigquery key": {strings.Replace(validAccount, "project:", "projet:", 1),
			[]string{`unknown key "projet" in an account's bigquery section; did you mean "project"?`}},
		"misspelt top-level key": {strings.Replace(validAccount, "accounts:", "acounts:", 1),
			[]string{`line 2: unknown key "acounts" at the top level of the file; did you mean "accounts"?`}},
		"key at the wrong level": {validAccount + "    project: platform\n",
			[]string{`unknown key "project" in an account; "project" is a key in an account's bigquery section: check the indentation`}},
		"plan at the top level": {"plan: {free: ['06:30']}\n" + validAccount,
			[]string{`line 1: unknown key "plan" at the top level of the file; did you mean "plans"? ("plan" is a key in an account: check the indentation)`}},
		"unrelated key": {validAccount + "    colour: blue\n",
			[]string{`unknown key "colour" in an account; the keys are: id, plan, bucket, role_arn`}},
		"every unknown key at once": {strings.Replace(strings.Replace(validAccount, "region:", "regoin:", 1), "plan:", "plna:", 1),
			[]string{`did you mean "region"?`, `did you mean "plan"?`}},
		"explicit empty tables": {validAccount + "    tables: []\n",
			[]string{"account acme-42: tables: the list is empty; omit the key to export every table (companies,", "or name at least one"}},
		"duplicate plan time": {"plans: {paid: ['04:00', '15:00', '04:00']}\n" + validAccount,
			[]string{`plans.paid: "04:00" is listed twice`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
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

// TestTablesDefaultOnlyWhenAbsent: a nil list (key absent, or an account built in Go or
// decoded from JSON without the key) gets the default tables; yaml.v3 decodes "tables: []"
// into a non-nil empty slice, which stays empty for Validate to reject.
func TestTablesDefaultOnlyWhenAbsent(t *testing.T) {
	var a Account
	a.ApplyDefaults()
	if strings.Join(a.Tables, ",") != strings.Join(DefaultTables, ",") {
		t.Errorf("nil tables = %v, want the defaults", a.Tables)
	}
	f, err := Parse([]byte(validAccount + "    tables:\n"))
	if err != nil {
		t.Fatalf("a null tables key means absent: %v", err)
	}
	if len(f.Accounts[0].Tables) != len(DefaultTables) {
		t.Errorf("null tables = %v, want the defaults", f.Accounts[0].Tables)
	}
	b := Account{Tables: []string{}}
	b.ApplyDefaults()
	if b.Tables == nil || len(b.Tables) != 0 {
		t.Errorf("explicit empty tables were defaulted: %v", b.Tables)
	}
}
