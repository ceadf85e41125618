// Package config loads and validates the accounts file: which customer gets which tables
// delivered to which bucket, through which IAM role, on which schedule.
//
// Nothing in this file is secret: role ARNs, bucket names and KMS key ARNs are identifiers.
// The platform's own AWS identity comes from the standard AWS credential chain, never from here.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultTables are the data platform tables every account receives unless it lists its own.
var DefaultTables = []string{"companies", "contacts", "events", "revenue", "revenue_attribution", "paid_ads"}

// Plans an account can be on. The plan picks the default schedule.
const (
	PlanPaid = "paid"
	PlanFree = "free"
)

// Shard file name extensions. The seed contract names shards .parquet.gz; Amazon Redshift's
// COPY decompresses by file extension, so an account may choose plain .parquet instead.
const (
	ExtensionParquetGz = ".parquet.gz"
	ExtensionParquet   = ".parquet"
)

// DefaultPlanTimes are the UTC times of day ("HH:MM") at which each plan's dumps run: after
// each data-modelling run.
var DefaultPlanTimes = map[string][]string{
	PlanPaid: {"04:00", "15:00"},
	PlanFree: {"04:00"},
}

// File is the whole accounts file.
type File struct {
	// Plans overrides the schedule of a plan: plan name -> UTC times of day "HH:MM".
	Plans    map[string][]string `yaml:"plans,omitempty" json:"plans,omitempty"`
	Accounts []Account           `yaml:"accounts" json:"accounts"`
}

// Account is one customer's destination. It travels inside workflow inputs (visible in the
// Temporal UI), so it must only ever hold identifiers, never credentials.
type Account struct {
	ID     string `yaml:"id" json:"id"`
	Plan   string `yaml:"plan,omitempty" json:"plan,omitempty"`
	Bucket string `yaml:"bucket" json:"bucket"`
	// RoleARN is the customer's IAM role; the exporter assumes it with ExternalId = ID.
	RoleARN string `yaml:"role_arn" json:"role_arn"`
	// Prefix is the optional sub-folder under which dumps and receipt.json are written.
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// Region of the bucket; empty means the worker's default region.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// KMSKeyARN, when set, makes every object SSE-KMS encrypted with this key.
	KMSKeyARN string         `yaml:"kms_key_arn,omitempty" json:"kms_key_arn,omitempty"`
	BigQuery  BigQuerySource `yaml:"bigquery" json:"bigquery"`
	// Tables to export. Nil (key absent) means DefaultTables; an explicitly empty list is an
	// error, not "everything".
	Tables []string `yaml:"tables,omitempty" json:"tables,omitempty"`
	// FileExtension is ".parquet.gz" (default, the documented contract) or ".parquet".
	FileExtension string `yaml:"file_extension,omitempty" json:"file_extension,omitempty"`
	// ScheduleTimes overrides the plan's UTC times of day ("HH:MM") for this account.
	ScheduleTimes []string `yaml:"schedule_times,omitempty" json:"schedule_times,omitempty"`
}

// BigQuerySource names where the account's tables live.
type BigQuerySource struct {
	Project string `yaml:"project" json:"project"`
	Dataset string `yaml:"dataset" json:"dataset"`
}

// Load reads, defaults and validates an accounts file (YAML or JSON: JSON is valid YAML).
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read accounts file: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes, defaults and validates an accounts file. Unknown keys are errors: a
// misspelt "kms_key_arn" silently ignored would deliver unencrypted data.
func Parse(data []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			// yaml.v3 reports a file without any document (empty, or only comments) as a bare EOF.
			return nil, errors.New("the accounts file is empty: list at least one account under accounts:")
		}
		return nil, fmt.Errorf("parse accounts file: %w", explainDecodeError(err))
	}
	f.applyDefaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *File) applyDefaults() {
	for i := range f.Accounts {
		f.Accounts[i].ApplyDefaults()
	}
}

// ApplyDefaults fills the optional fields of an account with their defaults. Only a nil
// Tables (key absent) gets DefaultTables: an explicit empty list is left for Validate to
// reject, so "tables: []" cannot silently mean "every table".
func (a *Account) ApplyDefaults() {
	if a.Plan == "" {
		a.Plan = PlanPaid
	}
	if a.Tables == nil {
		a.Tables = append([]string(nil), DefaultTables...)
	}
	if a.FileExtension == "" {
		a.FileExtension = ExtensionParquetGz
	}
}

// Account returns the account with the given id.
func (f *File) Account(id string) (Account, error) {
	for _, a := range f.Accounts {
		if a.ID == id {
			return a, nil
		}
	}
	ids := make([]string, 0, len(f.Accounts))
	for _, a := range f.Accounts {
		ids = append(ids, a.ID)
	}
	return Account{}, fmt.Errorf("account %q is not in the accounts file (known: %s)", id, strings.Join(ids, ", "))
}

// ScheduleTimes returns the UTC times of day at which the account's dumps run.
func (f *File) ScheduleTimes(a Account) []string {
	if len(a.ScheduleTimes) > 0 {
		return a.ScheduleTimes
	}
	if t, ok := f.Plans[a.Plan]; ok && len(t) > 0 {
		return t
	}
	return DefaultPlanTimes[a.Plan]
}

// Validate checks every account and returns all problems at once, each naming the account,
// the field and the fix.
func (f *File) Validate() error {
	var errs []error
	if len(f.Accounts) == 0 {
		errs = append(errs, errors.New("accounts: the file lists no account; list at least one account under accounts:"))
	}
	for _, plan := range sortedKeys(f.Plans) {
		if plan != PlanPaid && plan != PlanFree {
			errs = append(errs, fmt.Errorf("plans.%s: unknown plan; use %q or %q", plan, PlanPaid, PlanFree))
		}
		if err := validateTimes(f.Plans[plan]); err != nil {
			errs = append(errs, fmt.Errorf("plans.%s: %w", plan, err))
		}
	}
	seen := map[string]bool{}
	for i, a := range f.Accounts {
		if a.ID != "" && seen[a.ID] {
			errs = append(errs, fmt.Errorf("account %q: duplicate account id: each account may appear only once", a.ID))
		}
		seen[a.ID] = true
		if err := a.Validate(); err != nil {
			name := a.ID
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			errs = append(errs, fmt.Errorf("account %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Validate checks one account. The messages are written for the operator who typed the
// values in: they say what is wrong and what to put instead.
func (a Account) Validate() error {
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	add("id", ValidateAccountID(a.ID))
	if a.Plan != PlanPaid && a.Plan != PlanFree {
		add("plan", fmt.Errorf("unknown plan %q; use %q or %q", a.Plan, PlanPaid, PlanFree))
	}
	add("bucket", ValidateBucket(a.Bucket))
	add("role_arn", ValidateRoleARN(a.RoleARN))
	add("prefix", ValidatePrefix(a.Prefix))
	if a.Region != "" {
		add("region", validateRegion(a.Region))
	}
	if a.KMSKeyARN != "" {
		add("kms_key_arn", validateKMSKeyARN(a.KMSKeyARN))
	}
	add("bigquery.project", validateBigQueryProject(a.BigQuery.Project))
	add("bigquery.dataset", validateBigQueryDataset(a.BigQuery.Dataset))
	add("tables", validateTables(a.Tables))
	if a.FileExtension != ExtensionParquetGz && a.FileExtension != ExtensionParquet {
		add("file_extension", fmt.Errorf("%q is not supported; use %q (default) or %q", a.FileExtension, ExtensionParquetGz, ExtensionParquet))
	}
	add("schedule_times", validateTimes(a.ScheduleTimes))
	return errors.Join(errs...)
}

// validateTables checks an account's table list. A non-nil empty list can only come from an
// explicit "tables: []", which ApplyDefaults leaves alone: the operator meant something, and
// "every table" is the opposite of what an empty list says.
func validateTables(tables []string) error {
	if tables != nil && len(tables) == 0 {
		return fmt.Errorf("the list is empty; omit the key to export every table (%s) or name at least one", strings.Join(DefaultTables, ", "))
	}
	known := map[string]bool{}
	for _, t := range DefaultTables {
		known[t] = true
	}
	var errs []error
	seen := map[string]bool{}
	for _, t := range tables {
		switch {
		case !known[t]:
			errs = append(errs, fmt.Errorf("unknown table %q; known tables: %s", t, strings.Join(sortedCopy(DefaultTables), ", ")))
		case seen[t]:
			errs = append(errs, fmt.Errorf("table %q is listed twice", t))
		}
		seen[t] = true
	}
	return errors.Join(errs...)
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
