package layout

import (
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	at := time.Date(2023, 1, 2, 15, 4, 59, 999, time.FixedZone("CET", 3600))
	dump := DumpFolder(at)
	if dump != "2023-01-02T14:04" {
		t.Fatalf("dump folder %q: must be UTC to the minute", dump)
	}
	cases := map[string]struct{ got, want string }{
		"shard root":      {ShardKey("", dump, "companies", 0, ".parquet.gz"), "2023-01-02T14:04/companies/companies_000000000000.parquet.gz"},
		"shard prefix":    {ShardKey("a/b", dump, "paid_ads", 12, ".parquet"), "a/b/2023-01-02T14:04/paid_ads/paid_ads_000000000012.parquet"},
		"folder":          {TableFolder("x", dump, "events"), "x/2023-01-02T14:04/events"},
		"receipt root":    {ReceiptKey(""), "receipt.json"},
		"receipt prefix":  {ReceiptKey("x/y"), "x/y/receipt.json"},
		"dump receipt":    {DumpReceiptKey("", dump), "2023-01-02T14:04/receipt.json"},
		"dump receipt px": {DumpReceiptKey("p", dump), "p/2023-01-02T14:04/receipt.json"},
	}
	for name, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q want %q", name, c.got, c.want)
		}
	}
}
