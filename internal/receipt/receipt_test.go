package receipt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// schemaDoc is the part of docs/receipt.schema.json this test enforces.
type schemaDoc struct {
	Required   []string `json:"required"`
	Properties struct {
		Timestamp struct {
			Pattern string `json:"pattern"`
		} `json:"timestamp"`
		Tables struct {
			AdditionalProperties struct {
				Required   []string `json:"required"`
				Properties struct {
					Folder struct {
						Pattern string `json:"pattern"`
					} `json:"folder"`
				} `json:"properties"`
			} `json:"additionalProperties"`
		} `json:"tables"`
	} `json:"properties"`
}

func sample() Receipt {
	at := time.Date(2023, 3, 14, 4, 3, 7, 963883000, time.UTC)
	return Receipt{
		Timestamp: Timestamp(at), AccountID: "acme", SnapshotTime: Timestamp(at),
		Tables: map[string]Table{
			"companies": {Folder: "exports/2023-03-14T04:03/companies", TotalFileCount: 1, RowCount: 3,
				Files: []File{{Key: "exports/2023-03-14T04:03/companies/companies_000000000000.parquet.gz", Rows: 3, Bytes: 100}}},
			"events": {Folder: "exports/2023-03-14T04:03/events", TotalFileCount: 2, RowCount: 0},
		},
	}
}

func TestMarshalMatchesContract(t *testing.T) {
	data, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["timestamp"] != "2023-03-14T04:03:07.963883Z" {
		t.Errorf("timestamp = %v", generic["timestamp"])
	}
	tables := generic["tables"].(map[string]any)
	c := tables["companies"].(map[string]any)
	if c["folder"] != "exports/2023-03-14T04:03/companies" || c["total_file_count"] != float64(1) {
		t.Errorf("companies = %v", c)
	}
	checkAgainstSchemaFile(t, generic)
}

// checkAgainstSchemaFile applies the JSON Schema's required fields and patterns.
func checkAgainstSchemaFile(t *testing.T, doc map[string]any) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "receipt.schema.json"))
	if err != nil {
		t.Fatalf("the receipt JSON Schema ships in docs/: %v", err)
	}
	var s schemaDoc
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.Required {
		if _, ok := doc[k]; !ok {
			t.Errorf("missing required %q", k)
		}
	}
	if !regexp.MustCompile(s.Properties.Timestamp.Pattern).MatchString(doc["timestamp"].(string)) {
		t.Errorf("timestamp %v does not match %s", doc["timestamp"], s.Properties.Timestamp.Pattern)
	}
	folder := regexp.MustCompile(s.Properties.Tables.AdditionalProperties.Properties.Folder.Pattern)
	for name, v := range doc["tables"].(map[string]any) {
		tbl := v.(map[string]any)
		for _, k := range s.Properties.Tables.AdditionalProperties.Required {
			if _, ok := tbl[k]; !ok {
				t.Errorf("table %s misses %q", name, k)
			}
		}
		if !folder.MatchString(tbl["folder"].(string)) {
			t.Errorf("table %s folder %v does not match %s", name, tbl["folder"], folder)
		}
	}
}

func TestCheckRejectsIncompleteReceipts(t *testing.T) {
	r := sample()
	r.Tables["events"] = Table{Folder: "x", TotalFileCount: 0}
	if _, err := r.Marshal(); err == nil {
		t.Error("a table with no file must be rejected")
	}
	r = sample()
	r.Tables = nil
	if _, err := r.Marshal(); err == nil {
		t.Error("a receipt with no table must be rejected")
	}
	r = sample()
	r.Tables["companies"] = Table{Folder: "x", TotalFileCount: 2, Files: []File{{Key: "a"}}}
	if _, err := r.Marshal(); err == nil {
		t.Error("file list and count disagreeing must be rejected")
	}
}
