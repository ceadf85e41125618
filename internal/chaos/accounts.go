package chaos

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"cloud.google.com/go/bigquery"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
)

// account is one customer of the campaign: its configuration and its tables' contents.
type account struct {
	acc config.Account

	mu sync.Mutex // guards source: a dump's rerun may change it while the dump runs
	// source is what the tables hold now.
	source map[string]sourceTable
	// seeded is each table's row count when seeded: SampleRows(table, seeded) are its rows,
	// of which the first source[table].rows remain.
	seeded map[string]int
}

// plan describes one campaign account. The accounts differ in every way a receipt consumer
// could confuse them: prefix (one writes at the bucket root), extension, encryption, tables
// and row counts (so each table's content is distinct per account).
type plan struct {
	id     string
	prefix string
	kms    bool
	ext    string
	tables map[string]int // table -> rows
}

// plans are the campaign's accounts, in order; Config.Accounts takes the first n.
var plans = []plan{
	{id: "alpha", prefix: "chaos/alpha", kms: true, tables: map[string]int{"companies": 1500, "events": 4000}},
	{id: "bravo", prefix: "chaos/bravo", ext: config.ExtensionParquet, tables: map[string]int{"contacts": 2600, "revenue": 0, "paid_ads": 1800}},
	{id: "charlie", prefix: "", kms: true, tables: map[string]int{"events": 3100, "revenue_attribution": 2200}},
	{id: "delta", prefix: "chaos/delta/deep", tables: map[string]int{"companies": 1100, "contacts": 1900, "revenue": 900}},
	{id: "echo", prefix: "chaos/echo", kms: true, ext: config.ExtensionParquet, tables: map[string]int{"paid_ads": 2300, "revenue_attribution": 1400, "events": 2000}},
	{id: "foxtrot", prefix: "chaos/foxtrot", tables: map[string]int{"companies": 2100, "revenue": 1200}},
}

// newAccount builds the account of plan i, its row counts multiplied by scale: its
// configuration for the workflow and what its tables will hold.
func newAccount(i int, scale float64) *account {
	p := plans[i]
	acc := config.Account{
		ID:       "chaos-" + p.id,
		Bucket:   devstack.CustomerBucket,
		RoleARN:  "arn:aws:iam::000000000000:role/dreamdata-data-platform",
		Prefix:   p.prefix,
		BigQuery: config.BigQuerySource{Project: devstack.Project, Dataset: "chaos_" + p.id},
	}
	if p.kms {
		acc.KMSKeyARN = devstack.KMSKeyID
	}
	acc.FileExtension = p.ext
	for _, t := range config.DefaultTables { // the account's order is the default tables' order
		if _, ok := p.tables[t]; ok {
			acc.Tables = append(acc.Tables, t)
		}
	}
	acc.ApplyDefaults()
	a := &account{acc: acc, source: map[string]sourceTable{}, seeded: map[string]int{}}
	for t, n := range p.tables {
		n = int(float64(n) * scale)
		schema := devstack.SampleSchemas[t]
		a.source[t] = sourceTable{schema: schema, rows: n, checksum: devstack.Checksum(schema, devstack.SampleRows(t, n))}
		a.seeded[t] = n
	}
	return a
}

// seed creates the account's dataset and tables in the emulator.
func (a *account) seed(ctx context.Context, bq *bigquery.Client) error {
	if err := bq.Dataset(a.acc.BigQuery.Dataset).Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
		return fmt.Errorf("create dataset %s: %w", a.acc.BigQuery.Dataset, err)
	}
	for _, t := range a.acc.Tables {
		src := a.source[t]
		if err := devstack.CreateTable(ctx, bq, a.acc.BigQuery.Dataset, t, src.schema, devstack.SampleRows(t, src.rows)); err != nil {
			return fmt.Errorf("account %s: %w", a.acc.ID, err)
		}
	}
	return nil
}

// sequentialKeys are the tables whose key column SampleRows numbers by row ("eve_00000042"),
// so the rows from a given one on can be deleted by key.
var sequentialKeys = map[string]string{"events": "event_id", "revenue": "deal_id", "revenue_attribution": "deal_id", "paid_ads": "ad_id"}

// shrink deletes the last rows of the account's numbered tables between two of its dumps, as
// a modelling run between dumps changes the data: the next dump must carry the new content,
// never the previous dump's (stale) rows.
func (a *account) shrink(ctx context.Context, bq *bigquery.Client) error {
	for _, t := range a.acc.Tables {
		if _, _, err := a.shrinkTable(ctx, bq, t); err != nil {
			return err
		}
	}
	return nil
}

// shrinkTable deletes the last rows of one numbered table (a table keeps at least half its
// seeded rows) and returns what it holds now; ok is false when the table was left alone.
func (a *account) shrinkTable(ctx context.Context, bq *bigquery.Client, t string) (now sourceTable, ok bool, err error) {
	a.mu.Lock()
	src, seeded := a.source[t], a.seeded[t]
	a.mu.Unlock()
	key, numbered := sequentialKeys[t]
	keep := src.rows - max(1, seeded/15)
	if !numbered || src.rows == 0 || keep < seeded/2 {
		return src, false, nil
	}
	q := fmt.Sprintf("DELETE FROM `%s.%s` WHERE `%s` >= '%s_%08d'", a.acc.BigQuery.Dataset, t, key, t[:3], keep)
	job, err := bq.Query(q).Run(ctx)
	if err != nil {
		return src, false, fmt.Errorf("shrink %s.%s: %w", a.acc.BigQuery.Dataset, t, err)
	}
	st, err := job.Wait(ctx)
	if err == nil {
		err = st.Err()
	}
	if err != nil {
		return src, false, fmt.Errorf("shrink %s.%s: %w", a.acc.BigQuery.Dataset, t, err)
	}
	src.rows = keep
	src.checksum = devstack.Checksum(src.schema, devstack.SampleRows(t, seeded)[:keep])
	a.mu.Lock()
	a.source[t] = src
	a.mu.Unlock()
	return src, true, nil
}

// current is a copy of what the tables hold now.
func (a *account) current() map[string]sourceTable {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.source)
}

// totalRows is how many rows one dump of the account carries.
func (a *account) totalRows() int {
	n := 0
	for _, s := range a.source {
		n += s.rows
	}
	return n
}
