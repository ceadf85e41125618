package devstack

import (
	"context"
	"fmt"
	"math/big"
	"math/rand"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/option"
)

// SampleDataset is the demo account's dataset.
const SampleDataset = "acme_platform"

// SampleSizes are the demo's row counts: thousands of rows, a few tables bigger than others.
var SampleSizes = map[string]int{
	"companies": 2000, "contacts": 5000, "events": 12000,
	"revenue": 1500, "revenue_attribution": 4000, "paid_ads": 3000,
}

func nullable(name string, t bigquery.FieldType) *bigquery.FieldSchema {
	return &bigquery.FieldSchema{Name: name, Type: t}
}

func required(name string, t bigquery.FieldType) *bigquery.FieldSchema {
	return &bigquery.FieldSchema{Name: name, Type: t, Required: true}
}

// SampleSchemas are realistic schemas of the six data platform tables, covering INT64,
// FLOAT64, NUMERIC, BOOL, STRING, BYTES, DATE and TIMESTAMP.
var SampleSchemas = map[string]bigquery.Schema{
	"companies": {
		required("company_id", bigquery.StringFieldType), nullable("domain", bigquery.StringFieldType),
		nullable("name", bigquery.StringFieldType), nullable("industry", bigquery.StringFieldType),
		nullable("employees", bigquery.IntegerFieldType), nullable("annual_revenue", bigquery.NumericFieldType),
		nullable("fit_score", bigquery.FloatFieldType), nullable("is_customer", bigquery.BooleanFieldType),
		nullable("first_seen_date", bigquery.DateFieldType), nullable("created_at", bigquery.TimestampFieldType),
	},
	"contacts": {
		required("contact_id", bigquery.StringFieldType), nullable("company_id", bigquery.StringFieldType),
		nullable("email", bigquery.StringFieldType), nullable("first_name", bigquery.StringFieldType),
		nullable("last_name", bigquery.StringFieldType), nullable("title", bigquery.StringFieldType),
		nullable("lifecycle_stage", bigquery.StringFieldType), nullable("engagement_score", bigquery.FloatFieldType),
		nullable("last_activity_date", bigquery.DateFieldType), nullable("created_at", bigquery.TimestampFieldType),
	},
	"events": {
		required("event_id", bigquery.StringFieldType), nullable("contact_id", bigquery.StringFieldType),
		nullable("company_id", bigquery.StringFieldType), nullable("event_type", bigquery.StringFieldType),
		nullable("source", bigquery.StringFieldType), nullable("url", bigquery.StringFieldType),
		nullable("event_timestamp", bigquery.TimestampFieldType), nullable("event_date", bigquery.DateFieldType),
		nullable("value", bigquery.NumericFieldType), nullable("session_seq", bigquery.IntegerFieldType),
	},
	"revenue": {
		required("deal_id", bigquery.StringFieldType), nullable("company_id", bigquery.StringFieldType),
		nullable("amount", bigquery.NumericFieldType), nullable("currency", bigquery.StringFieldType),
		nullable("stage", bigquery.StringFieldType), nullable("is_won", bigquery.BooleanFieldType),
		nullable("close_date", bigquery.DateFieldType), nullable("created_at", bigquery.TimestampFieldType),
	},
	"revenue_attribution": {
		required("deal_id", bigquery.StringFieldType), nullable("touchpoint_id", bigquery.StringFieldType),
		nullable("model", bigquery.StringFieldType), nullable("channel", bigquery.StringFieldType),
		nullable("weight", bigquery.FloatFieldType), nullable("attributed_amount", bigquery.NumericFieldType),
		nullable("touch_timestamp", bigquery.TimestampFieldType),
	},
	"paid_ads": {
		required("ad_id", bigquery.StringFieldType), nullable("campaign", bigquery.StringFieldType),
		nullable("platform", bigquery.StringFieldType), nullable("date", bigquery.DateFieldType),
		nullable("impressions", bigquery.IntegerFieldType), nullable("clicks", bigquery.IntegerFieldType),
		nullable("cost", bigquery.NumericFieldType), nullable("ctr", bigquery.FloatFieldType),
		nullable("creative_hash", bigquery.BytesFieldType),
	},
}

var (
	firstNames = []string{"Ada", "Søren", "Zoë", "Björk", "Łukasz", "José", "François", "Ngozi", "美咲", "Олег", "Aoife", "Müller"}
	lastNames  = []string{"Lovelace", "Kierkegaard", "Ørsted", "Núñez", "García", "O'Brien", "Smith", "山田", "Іваненко", "Schäfer"}
	industries = []string{"Software", "Fintech", "Retail", "Health care", "Manufacturing", "Media & Entertainment"}
	stages     = []string{"lead", "mql", "sql", "opportunity", "customer"}
	eventTypes = []string{"page_view", "form_submit", "email_open", "ad_click", "meeting_booked"}
	sources    = []string{"google", "linkedin", "direct", "newsletter", "g2"}
	models     = []string{"first_touch", "last_touch", "linear", "u_shaped", "data_driven"}
	platforms  = []string{"google_ads", "linkedin_ads", "meta_ads", "bing_ads"}
	currencies = []string{"USD", "EUR", "DKK", "GBP"}
)

// sampleEpoch anchors generated times, so every run generates the same rows.
var sampleEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// SampleRows generates the deterministic rows of a sample table, in BigQuery's Go types.
// Roughly one value in eleven is NULL in nullable columns.
func SampleRows(table string, n int) [][]bigquery.Value {
	schema := SampleSchemas[table]
	rng := rand.New(rand.NewSource(int64(len(table))*7919 + int64(n)))
	rows := make([][]bigquery.Value, n)
	for i := range rows {
		row := make([]bigquery.Value, len(schema))
		for c, f := range schema {
			if !f.Required && rng.Intn(11) == 0 {
				row[c] = nil
				continue
			}
			row[c] = sampleValue(rng, table, f, i)
		}
		rows[i] = row
	}
	return rows
}

func pick(rng *rand.Rand, s []string) string { return s[rng.Intn(len(s))] }

func sampleValue(rng *rand.Rand, table string, f *bigquery.FieldSchema, i int) bigquery.Value {
	switch f.Type {
	case bigquery.StringFieldType:
		switch f.Name {
		case "company_id":
			return fmt.Sprintf("cmp_%06d", rng.Intn(2000))
		case "contact_id":
			return fmt.Sprintf("ctc_%07d", rng.Intn(5000))
		case "email":
			return fmt.Sprintf("%s.%d@example.com", pick(rng, firstNames), i)
		case "first_name":
			return pick(rng, firstNames)
		case "last_name", "name":
			return pick(rng, lastNames) + " " + pick(rng, industries)
		case "industry":
			return pick(rng, industries)
		case "lifecycle_stage", "stage":
			return pick(rng, stages)
		case "event_type":
			return pick(rng, eventTypes)
		case "source", "channel":
			return pick(rng, sources)
		case "model":
			return pick(rng, models)
		case "platform":
			return pick(rng, platforms)
		case "currency":
			return pick(rng, currencies)
		case "url":
			return fmt.Sprintf("https://example.com/blog/%d?utm_source=%s", rng.Intn(500), pick(rng, sources))
		case "domain":
			return fmt.Sprintf("company-%d.example", rng.Intn(2000))
		}
		if f.Required { // the table's key
			return fmt.Sprintf("%s_%08d", table[:3], i)
		}
		return fmt.Sprintf("%s %d ✓", f.Name, rng.Intn(1000))
	case bigquery.IntegerFieldType:
		return rng.Int63n(1_000_000) - 1000
	case bigquery.FloatFieldType:
		return float64(rng.Intn(1_000_000)) / 1024
	case bigquery.NumericFieldType:
		// Up to 12 integer digits and exactly 9 decimals: NUMERIC's full scale.
		n := new(big.Int).Rand(rng, big.NewInt(1_000_000_000_000_000_000))
		if rng.Intn(5) == 0 {
			n.Neg(n)
		}
		return new(big.Rat).SetFrac(n, big.NewInt(1_000_000_000))
	case bigquery.BooleanFieldType:
		return rng.Intn(2) == 0
	case bigquery.DateFieldType:
		return civil.DateOf(sampleEpoch.AddDate(0, 0, rng.Intn(1500)-700))
	case bigquery.TimestampFieldType:
		return sampleEpoch.Add(time.Duration(rng.Int63n(int64(600*24*time.Hour))) / time.Microsecond * time.Microsecond)
	case bigquery.BytesFieldType:
		b := make([]byte, 16)
		rng.Read(b)
		return b
	}
	panic("sample: unsupported type " + f.Type)
}

// BigQueryClient connects to the stack's emulator through the REST API.
func (s *Stack) BigQueryClient(ctx context.Context) (*bigquery.Client, error) {
	return bigquery.NewClient(ctx, Project, option.WithEndpoint(s.BigQueryEndpoint), option.WithoutAuthentication())
}

// CreateTable creates a table through the API and inserts rows with the inserter (the
// emulator's YAML loader would drop REPEATED modes).
func CreateTable(ctx context.Context, bq *bigquery.Client, dataset, table string, schema bigquery.Schema, rows [][]bigquery.Value) error {
	t := bq.Dataset(dataset).Table(table)
	if err := t.Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	ins := t.Inserter()
	const batch = 1000
	for start := 0; start < len(rows); start += batch {
		end := min(start+batch, len(rows))
		savers := make([]*bigquery.ValuesSaver, 0, end-start)
		for i := start; i < end; i++ {
			savers = append(savers, &bigquery.ValuesSaver{Schema: schema, InsertID: fmt.Sprintf("%s-%d", table, i), Row: rows[i]})
		}
		if err := ins.Put(ctx, savers); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	return fixInsertedBytes(ctx, bq, dataset, table, schema)
}

// fixInsertedBytes works around the emulator's insertAll, which stores the base64 text of a
// BYTES value instead of the bytes (real BigQuery decodes it): one DML pass decodes it, so the
// table holds what the client inserted.
func fixInsertedBytes(ctx context.Context, bq *bigquery.Client, dataset, table string, schema bigquery.Schema) error {
	for _, f := range schema {
		if f.Type != bigquery.BytesFieldType || f.Repeated {
			continue
		}
		q := fmt.Sprintf("UPDATE `%s.%s` SET `%s` = FROM_BASE64(SAFE_CONVERT_BYTES_TO_STRING(`%s`)) WHERE `%s` IS NOT NULL",
			dataset, table, f.Name, f.Name, f.Name)
		job, err := bq.Query(q).Run(ctx)
		if err != nil {
			return fmt.Errorf("decode BYTES column %s.%s: %w", table, f.Name, err)
		}
		st, err := job.Wait(ctx)
		if err == nil {
			err = st.Err()
		}
		if err != nil {
			return fmt.Errorf("decode BYTES column %s.%s: %w", table, f.Name, err)
		}
	}
	return nil
}

// SeedSample creates the sample dataset with the six tables at the given sizes.
func (s *Stack) SeedSample(ctx context.Context, dataset string, sizes map[string]int) error {
	bq, err := s.BigQueryClient(ctx)
	if err != nil {
		return err
	}
	defer bq.Close()
	if err := bq.Dataset(dataset).Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
		return fmt.Errorf("create dataset %s: %w", dataset, err)
	}
	for table, n := range sizes {
		if err := CreateTable(ctx, bq, dataset, table, SampleSchemas[table], SampleRows(table, n)); err != nil {
			return err
		}
	}
	return nil
}

// CountRows asks BigQuery (the emulator) how many rows a table has.
func (s *Stack) CountRows(ctx context.Context, dataset, table string) (int64, error) {
	bq, err := s.BigQueryClient(ctx)
	if err != nil {
		return 0, err
	}
	defer bq.Close()
	it, err := bq.Query(fmt.Sprintf("SELECT COUNT(*) FROM `%s.%s`", dataset, table)).Read(ctx)
	if err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", table, err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", table, err)
	}
	n, ok := row[0].(int64)
	if !ok {
		return 0, fmt.Errorf("count rows of %s: unexpected %T", table, row[0])
	}
	return n, nil
}
