package loadtest

import (
	"fmt"
	"strconv"
	"strings"

	"cloud.google.com/go/bigquery"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/loadtest/readserver"
)

// Account names of the load test: account i is "lt-%03d" with dataset "lt_%03d" and prefix
// "loadtest/lt-%03d".
const (
	accountPrefix = "lt-"
	datasetPrefix = "lt_"
	folderPrefix  = "loadtest/"
)

// emptyEvery makes the revenue table of every emptyEvery-th account empty, so the peak also
// carries empty tables (one schema-only shard, a session without streams).
const emptyEvery = 20

// TableRows is how many rows table t of account i holds: base, plus up to a fifth of base more,
// different for each account (SampleRows' content depends on the count, so each account's
// table differs from every other's), and 0 for the revenue table of every 20th account.
func TableRows(base, i int, table string) int {
	if base <= 0 {
		return 0
	}
	if table == "revenue" && i%emptyEvery == emptyEvery-1 {
		return 0
	}
	ti := 0
	for k, t := range config.DefaultTables {
		if t == table {
			ti = k
		}
	}
	spread := max(base/5, 1)
	return base + (i*53+ti*17)%spread
}

// newAccount is account i of the load test, exporting every default table. Every other
// account writes with SSE-KMS, as a real fleet mixes both.
func newAccount(i int) config.Account {
	acc := config.Account{
		ID:       fmt.Sprintf("%s%03d", accountPrefix, i),
		Bucket:   devstack.CustomerBucket,
		RoleARN:  "arn:aws:iam::000000000000:role/dreamdata-data-platform",
		Prefix:   fmt.Sprintf("%s%s%03d", folderPrefix, accountPrefix, i),
		BigQuery: config.BigQuerySource{Project: devstack.Project, Dataset: fmt.Sprintf("%s%03d", datasetPrefix, i)},
	}
	if i%2 == 1 {
		acc.KMSKeyARN = devstack.KMSKeyID
	}
	acc.ApplyDefaults()
	return acc
}

// accountOfDataset is the account index of a load test dataset, ok false for any other.
func accountOfDataset(dataset string, accounts int) (int, bool) {
	s, ok := strings.CutPrefix(dataset, datasetPrefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= accounts || fmt.Sprintf("%03d", i) != s {
		return 0, false
	}
	return i, true
}

// lookup serves the load test's tables: the sample schemas, with TableRows rows of
// devstack.SampleRows.
func lookup(accounts, base int) func(project, dataset, table string) (readserver.Table, bool) {
	return func(project, dataset, table string) (readserver.Table, bool) {
		i, ok := accountOfDataset(dataset, accounts)
		schema, known := devstack.SampleSchemas[table]
		if project != devstack.Project || !ok || !known {
			return readserver.Table{}, false
		}
		n := TableRows(base, i, table)
		return readserver.Table{Schema: schema, Rows: n, Generate: func() [][]bigquery.Value { return devstack.SampleRows(table, n) }}, true
	}
}
