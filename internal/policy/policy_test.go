package policy

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/dreamdata/destination-aws-s3/internal/config"
)

func acct() config.Account {
	return config.Account{ID: "acme", Bucket: "acme-data", RoleARN: "arn:aws:iam::123456789012:role/dreamdata-data-platform"}
}

// roundTrip checks a document is valid JSON whose generic shape is what IAM expects.
func roundTrip(t *testing.T, text string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, text)
	}
	if m["Version"] != Version {
		t.Errorf("Version = %v", m["Version"])
	}
	return m
}

func TestTrustPolicy(t *testing.T) {
	s, err := Generate(acct(), "")
	if err != nil {
		t.Fatal(err)
	}
	m := roundTrip(t, s.Trust.Indent())
	st := m["Statement"].([]any)[0].(map[string]any)
	if got := st["Principal"].(map[string]any)["AWS"]; got != DefaultExporterRoleARN {
		t.Errorf("principal %v", got)
	}
	if got := st["Condition"].(map[string]any)["StringEquals"].(map[string]any)["sts:ExternalId"]; got != "acme" {
		t.Errorf("ExternalId condition %v, want the account id", got)
	}
	if !reflect.DeepEqual(st["Action"], []any{"sts:AssumeRole"}) || st["Effect"] != "Allow" {
		t.Errorf("statement %v", st)
	}

	other, err := Generate(acct(), "arn:aws:iam::111111111111:role/exporter")
	if err != nil {
		t.Fatal(err)
	}
	if other.Trust.Statement[0].Principal["AWS"] != "arn:aws:iam::111111111111:role/exporter" {
		t.Errorf("--exporter-role-arn not honoured: %v", other.Trust.Statement[0].Principal)
	}
}

func TestPermissionsScope(t *testing.T) {
	cases := map[string]struct {
		prefix, roleARN, want string
	}{
		"whole bucket":    {"", "arn:aws:iam::123456789012:role/r", "arn:aws:s3:::acme-data/*"},
		"prefix":          {"exports/dreamdata", "arn:aws:iam::123456789012:role/r", "arn:aws:s3:::acme-data/exports/dreamdata/*"},
		"china partition": {"p", "arn:aws-cn:iam::123456789012:role/r", "arn:aws-cn:s3:::acme-data/p/*"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := acct()
			a.Prefix, a.RoleARN = tc.prefix, tc.roleARN
			s, err := Generate(a, "")
			if err != nil {
				t.Fatal(err)
			}
			m := roundTrip(t, s.Permissions.Indent())
			st := m["Statement"].([]any)[0].(map[string]any)
			if !reflect.DeepEqual(st["Resource"], []any{tc.want}) {
				t.Errorf("resource %v, want %s", st["Resource"], tc.want)
			}
			if got := AccountResource(a); got != tc.want {
				t.Errorf("AccountResource (named by error messages) = %s, the policy grants %s", got, tc.want)
			}
			if !reflect.DeepEqual(st["Action"], []any{"s3:PutObject", "s3:PutObjectAcl"}) {
				t.Errorf("actions %v: exactly PutObject and PutObjectAcl", st["Action"])
			}
			if s.KMS != nil {
				t.Error("no KMS policy without a key")
			}
			if tc.prefix != "" && !strings.Contains(strings.Join(s.Notes, "\n"), "scoped to the prefix") {
				t.Errorf("notes should explain the prefix scope: %v", s.Notes)
			}
		})
	}
}

func TestKMSPolicy(t *testing.T) {
	a := acct()
	a.KMSKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	s, err := Generate(a, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.KMS == nil {
		t.Fatal("no KMS policy")
	}
	st := roundTrip(t, s.KMS.Indent())["Statement"].([]any)[0].(map[string]any)
	if !reflect.DeepEqual(st["Action"], []any{"kms:GenerateDataKey", "kms:Decrypt"}) || !reflect.DeepEqual(st["Resource"], []any{a.KMSKeyARN}) {
		t.Errorf("kms statement %v", st)
	}
	for _, k := range []string{"arn:aws:kms:eu-west-1:123456789012:alias/data", "1234abcd-12ab-34cd-56ef-1234567890ab"} {
		a.KMSKeyARN = k
		s, err := Generate(a, "")
		if err != nil {
			t.Fatal(err)
		}
		if s.KMS.Statement[0].Resource[0] != "<KMS_KEY_ARN>" || !strings.Contains(strings.Join(s.Notes, "\n"), "describe-key") {
			t.Errorf("%s: IAM needs the key ARN; got %v, notes %v", k, s.KMS.Statement[0].Resource, s.Notes)
		}
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	for name, mut := range map[string]func(*config.Account, *string){
		"bucket ARN":       func(a *config.Account, _ *string) { a.Bucket = "arn:aws:s3:::acme-data" },
		"bad prefix":       func(a *config.Account, _ *string) { a.Prefix = "/x/" },
		"exporter is user": func(_ *config.Account, e *string) { *e = "arn:aws:iam::485801740390:user/x" },
		"no account id":    func(a *config.Account, _ *string) { a.ID = "" },
	} {
		a, e := acct(), ""
		mut(&a, &e)
		if _, err := Generate(a, e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

var heredoc = regexp.MustCompile(`(?s)cat > ([a-z-]+\.json) <<'EOF'\n(.*?)\nEOF\n`)

func TestRecipe(t *testing.T) {
	a := acct()
	a.RoleARN = "arn:aws:iam::123456789012:role/data/dreamdata-export"
	a.KMSKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/k-1"
	s, err := Generate(a, "")
	if err != nil {
		t.Fatal(err)
	}
	r := s.Recipe()
	docs := heredoc.FindAllStringSubmatch(r, -1)
	if len(docs) != 3 {
		t.Fatalf("want 3 policy files in the recipe, got %d:\n%s", len(docs), r)
	}
	for _, d := range docs {
		roundTrip(t, d[2])
		if !strings.Contains(r, "file://"+d[1]) {
			t.Errorf("%s is written but never used", d[1])
		}
	}
	for _, want := range []string{
		"aws iam create-role --role-name dreamdata-export --path /data/",
		"--assume-role-policy-document file://trust-policy.json",
		"aws iam put-role-policy --role-name dreamdata-export --policy-name dreamdata-s3-put",
		"--policy-name dreamdata-kms",
		"aws iam get-role --role-name dreamdata-export --query Role.Arn",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("recipe lacks %q:\n%s", want, r)
		}
	}
	noRole := acct()
	noRole.RoleARN = ""
	s, err = Generate(noRole, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Recipe(), "--role-name "+DefaultRoleName) || strings.Contains(s.Recipe(), "--path") {
		t.Errorf("without a role ARN the recipe should create %s at the root path:\n%s", DefaultRoleName, s.Recipe())
	}
}

func TestSetJSON(t *testing.T) {
	s, err := Generate(acct(), "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Set
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("round trip: %v\n%+v\n%+v", err, back, s)
	}
}
