package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLocalStackAccounts: the local stack's accounts file names its SSE-KMS key with a key id,
// so it passes the same validation as production, and a bare key name such as MinIO's
// "demo-key" is rejected.
func TestLocalStackAccounts(t *testing.T) {
	const compose = "../../testdata/compose-accounts.yaml"
	f, err := Load(compose)
	if err != nil {
		t.Fatalf("Load(%s): %v", compose, err)
	}
	for _, a := range f.Accounts {
		if a.KMSKeyARN == "" {
			t.Errorf("account %s: the local stack's account should exercise SSE-KMS", a.ID)
		}
	}

	a := Account{ID: "acme-demo", Bucket: "customer-bucket", RoleARN: "arn:aws:iam::000000000000:role/dreamdata-data-platform",
		Prefix: "dreamdata", KMSKeyARN: "demo-key", BigQuery: BigQuerySource{Project: "demo-project", Dataset: "acme_platform"}}
	a.ApplyDefaults()
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), `kms_key_arn: "demo-key" is not a KMS key`) {
		t.Errorf("a bare key name must be rejected: %v", err)
	}
	for _, k := range []string{"demo-key", "no-such-key", "demo key", "-demo"} {
		if err := validateKMSKeyARN(k); err == nil {
			t.Errorf("%s: accepted", k)
		}
	}
}

// TestWorkflowInputTables: accounts also travel as JSON in workflow inputs. Without the key
// they default; an explicit [] is rejected like in YAML.
func TestWorkflowInputTables(t *testing.T) {
	const acc = `{"id":"acme","bucket":"acme-data","role_arn":"arn:aws:iam::123456789012:role/r","bigquery":{"project":"platform","dataset":"d"}`
	var a Account
	if err := json.Unmarshal([]byte(acc+"}"), &a); err != nil {
		t.Fatal(err)
	}
	a.ApplyDefaults()
	if err := a.Validate(); err != nil || len(a.Tables) != len(DefaultTables) {
		t.Errorf("absent tables: %v, %v", a.Tables, err)
	}
	var b Account
	if err := json.Unmarshal([]byte(acc+`,"tables":[]}`), &b); err != nil {
		t.Fatal(err)
	}
	b.ApplyDefaults()
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), "tables: the list is empty") {
		t.Errorf("explicit empty tables: %v", err)
	}
}
