// Command bqseed seeds the BigQuery emulator of docker-compose.yml's local profile with the
// demo account's six sample tables (devstack.SampleSizes rows of devstack.SampleRows), the
// same data `make demo` exports. It is idempotent: when every table already holds its rows it
// does nothing; otherwise it recreates the dataset.
//
//	bqseed --endpoint http://bigquery-emulator:9050 [--dataset acme_platform]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
)

func main() {
	endpoint := flag.String("endpoint", envOr("BIGQUERY_ENDPOINT", "http://127.0.0.1:9050"), "the emulator's REST endpoint (env BIGQUERY_ENDPOINT)")
	dataset := flag.String("dataset", devstack.SampleDataset, "dataset to create in project "+devstack.Project)
	wait := flag.Duration("wait", 2*time.Minute, "how long to wait for the emulator to answer")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := seed(ctx, *endpoint, *dataset, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "bqseed:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func seed(ctx context.Context, endpoint, dataset string, wait time.Duration) error {
	st := &devstack.Stack{BigQueryEndpoint: endpoint}
	bq, err := st.BigQueryClient(ctx)
	if err != nil {
		return err
	}
	defer bq.Close()

	exists, err := datasetExists(ctx, bq, dataset, wait)
	if err != nil {
		return err
	}
	if exists {
		if seeded(ctx, st, dataset) {
			fmt.Printf("bqseed: %s.%s already holds the sample tables\n", devstack.Project, dataset)
			return nil
		}
		fmt.Printf("bqseed: %s.%s is incomplete: recreating it\n", devstack.Project, dataset)
		if err := bq.Dataset(dataset).DeleteWithContents(ctx); err != nil {
			return fmt.Errorf("delete dataset %s: %w", dataset, err)
		}
	}
	t0 := time.Now()
	if err := st.SeedSample(ctx, dataset, devstack.SampleSizes); err != nil {
		return err
	}
	if !seeded(ctx, st, dataset) {
		return fmt.Errorf("%s.%s does not hold the sample rows after seeding", devstack.Project, dataset)
	}
	fmt.Printf("bqseed: seeded %s.%s in %s\n", devstack.Project, dataset, time.Since(t0).Round(time.Millisecond))
	return nil
}

// datasetExists asks the emulator for the dataset, retrying while the emulator does not
// answer yet.
func datasetExists(ctx context.Context, bq *bigquery.Client, dataset string, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	for {
		// The client retries a refused connection until its context ends: bound each try.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := bq.Dataset(dataset).Metadata(actx)
		cancel()
		var gerr *googleapi.Error
		switch {
		case err == nil:
			return true, nil
		case errors.As(err, &gerr) && gerr.Code == http.StatusNotFound:
			return false, nil
		case time.Now().After(deadline):
			return false, fmt.Errorf("the BigQuery emulator did not answer within %s: %w", wait, err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// seeded reports whether every sample table holds exactly its sample row count.
func seeded(ctx context.Context, st *devstack.Stack, dataset string) bool {
	tables := make([]string, 0, len(devstack.SampleSizes))
	for t := range devstack.SampleSizes {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		n, err := st.CountRows(ctx, dataset, t)
		if err != nil || n != int64(devstack.SampleSizes[t]) {
			fmt.Printf("bqseed: %s: %d rows (want %d) %v\n", t, n, devstack.SampleSizes[t], err)
			return false
		}
	}
	return true
}
