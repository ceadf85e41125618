package devstack

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// docker-compose.yml is checked here without a Docker engine: once the way Docker reads it
// (`docker compose config`, or Debian's docker-compose 1.29 that .ci/run installs), and once
// for its structure, by the rules an operator relies on (see docs/deploy-compose.md).

const (
	composeDir     = "compose" // support files, relative to this package
	exampleEnv     = "compose/example.env"
	productionEnv  = "compose/production.env.example"
	localProfile   = "local"
	searchAttrsJob = "temporal-namespace"
)

// composeService is the part of a service the rules look at. Fields whose shape the rules
// check (depends_on, environment, ports) stay generic so a wrong shape is reported, not
// rejected by the decoder.
type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Profiles    []string          `yaml:"profiles"`
	Restart     *string           `yaml:"restart"`
	Healthcheck *composeHealth    `yaml:"healthcheck"`
	DependsOn   any               `yaml:"depends_on"`
	Environment any               `yaml:"environment"`
	Ports       []any             `yaml:"ports"`
	Volumes     []any             `yaml:"volumes"`
	Secrets     []any             `yaml:"secrets"`
	Entrypoint  any               `yaml:"entrypoint"`
	Command     any               `yaml:"command"`
	Extra       map[string]any    `yaml:",inline"`
	deps        map[string]string // parsed DependsOn: service -> condition
}

type composeHealth struct {
	Test    any  `yaml:"test"`
	Disable bool `yaml:"disable"`
}

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// composeCommand finds Compose v2 (`docker compose`) or else the standalone docker-compose.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err == nil && exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Skip("neither `docker compose` nor docker-compose is installed (.ci/run installs Debian's docker-compose)")
	return nil
}

// runCompose runs `compose --env-file ENV -f docker-compose.yml ARGS...` in an environment
// stripped of everything but what the binary needs, so variables of the developer's shell
// cannot stand in for the env file.
func runCompose(t *testing.T, envFile string, args ...string) ([]byte, error) {
	t.Helper()
	root := repoRoot(t)
	bin := composeCommand(t)
	full := append(append(bin[1:], "--env-file", envFile, "-f", filepath.Join(root, "docker-compose.yml"),
		"--project-directory", root), args...)
	cmd := exec.Command(bin[0], full...)
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// TestComposeConfig reads docker-compose.yml the way Docker does: with the committed example
// env file it must pass `config`; with the production template, whose secrets are blank, it
// must stop on the first required secret.
func TestComposeConfig(t *testing.T) {
	example := filepath.Join(repoRoot(t), "internal", "devstack", exampleEnv)
	out, err := runCompose(t, example, "--profile", localProfile, "config")
	if err != nil {
		t.Fatalf("compose config with %s: %v\n%s", exampleEnv, err, out)
	}
	var cfg composeFile
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("compose config printed no YAML: %v\n%s", err, out)
	}
	for _, svc := range []string{"postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui",
		"worker", "schedules-sync", "minio", "minio-setup", "bigquery-emulator", "bigquery-seed", "local-dump"} {
		if cfg.Services[svc] == nil {
			t.Errorf("compose config (profile %s) lacks service %s", localProfile, svc)
		}
	}
	// Interpolation reached the services: the secret is there, the placeholder is not.
	if env := envMap(t, "postgresql", cfg.Services["postgresql"]); env["POSTGRES_PASSWORD"] == "" || strings.Contains(env["POSTGRES_PASSWORD"], "${") {
		t.Errorf("postgresql's POSTGRES_PASSWORD was not interpolated from %s: %q", exampleEnv, env["POSTGRES_PASSWORD"])
	}

	production := filepath.Join(repoRoot(t), "internal", "devstack", productionEnv)
	out, err = runCompose(t, production, "config")
	if err == nil {
		t.Fatalf("compose config passed with %s, whose POSTGRES_PASSWORD is blank: a missing secret must stop compose", productionEnv)
	}
	if !strings.Contains(string(out), "POSTGRES_PASSWORD") {
		t.Errorf("compose config without POSTGRES_PASSWORD failed without naming it:\n%s", out)
	}
}

func loadCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg composeFile
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(cfg.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	for name, s := range cfg.Services {
		s.deps = map[string]string{}
		switch d := s.DependsOn.(type) {
		case nil:
		case map[string]any:
			for dep, v := range d {
				m, _ := v.(map[string]any)
				cond, _ := m["condition"].(string)
				s.deps[dep] = cond
			}
		default:
			t.Errorf("%s: depends_on must be a map with a condition per service, not %T", name, s.DependsOn)
		}
	}
	return cfg, string(raw)
}

func sortedNames(cfg composeFile) []string {
	names := make([]string, 0, len(cfg.Services))
	for n := range cfg.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// oneShot: a job that runs to completion (restart "no"); everything else runs for good.
func (s *composeService) oneShot() bool { return s.Restart != nil && *s.Restart == "no" }

func (s *composeService) local() bool {
	for _, p := range s.Profiles {
		if p == localProfile {
			return true
		}
	}
	return false
}

// script is the service's entrypoint and command as one text.
func (s *composeService) script() string {
	var b strings.Builder
	for _, v := range []any{s.Entrypoint, s.Command} {
		switch x := v.(type) {
		case string:
			b.WriteString(x + "\n")
		case []any:
			for _, e := range x {
				fmt.Fprintf(&b, "%v\n", e)
			}
		}
	}
	return b.String()
}

func envMap(t *testing.T, name string, s *composeService) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v == nil {
				env[k] = ""
				continue
			}
			env[k] = fmt.Sprint(v)
		}
	default:
		t.Errorf("%s: environment must be a map (KEY: value), not %T", name, s.Environment)
	}
	return env
}

var (
	// A pinned tag: at least major.minor (16.10, 1.29.1-tctl-1.18.4-cli-1.5.0), or MinIO's
	// RELEASE.<date>.
	pinnedTag = regexp.MustCompile(`^(\d+\.\d+[\w.-]*|RELEASE\.\d{4}-\d{2}-\d{2}T[\w-]+)$`)
	// A secret's value comes from the env file: required (${VAR:?message}), or explicitly
	// empty (${VAR:-}) where empty means "use the credential chain".
	secretRef     = regexp.MustCompile(`^\$\{[A-Z][A-Z0-9_]*(:\?[^}]+|:-)\}$`)
	secretKey     = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|_PWD$|SECRET|TOKEN|PRIVATE_KEY)`)
	secretDefault = regexp.MustCompile(`\$\{([A-Z0-9_]*(?:PASSWORD|PASSWD|_PWD|SECRET|TOKEN)[A-Z0-9_]*):?-([^}]+)\}`)
)

// TestComposeStructure checks docker-compose.yml against the rules of a deployment an
// operator can rely on.
func TestComposeStructure(t *testing.T) {
	cfg, raw := loadCompose(t)
	root := repoRoot(t)

	for _, name := range sortedNames(cfg) {
		s := cfg.Services[name]

		// Images: built here, or pulled at a pinned version; never latest, never auto-setup.
		switch {
		case strings.Contains(s.Image, "auto-setup"):
			t.Errorf("%s: image %s: temporalio/auto-setup is deprecated; use temporalio/server with the schema job", name, s.Image)
		case s.Build != nil:
			if strings.HasSuffix(s.Image, ":latest") {
				t.Errorf("%s: built image tagged latest: %s", name, s.Image)
			}
		case s.Image == "":
			t.Errorf("%s: neither image nor build", name)
		default:
			ref := s.Image
			if i := strings.LastIndex(ref, "@sha256:"); i >= 0 {
				ref = ref[:i]
			}
			tag := ""
			if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
				tag = ref[i+1:]
			}
			if strings.Contains(s.Image, "${") || !pinnedTag.MatchString(tag) {
				t.Errorf("%s: image %q is not pinned to a version (major.minor at least; no latest, no variables)", name, s.Image)
			}
		}
		if s.Build != nil {
			checkBuild(t, root, name, s.Build)
		}

		// Restart policy and health: one-shots exit; every long-running service restarts
		// and says when it is healthy.
		switch {
		case s.Restart == nil:
			t.Errorf("%s: no restart policy (unless-stopped for services, \"no\" for one-shot jobs)", name)
		case s.oneShot():
		case *s.Restart != "unless-stopped" && *s.Restart != "always":
			t.Errorf("%s: restart %q: a long-running service restarts unless-stopped", name, *s.Restart)
		}
		if !s.oneShot() {
			if s.Healthcheck == nil || s.Healthcheck.Disable || s.Healthcheck.Test == nil {
				t.Errorf("%s: a long-running service needs a healthcheck", name)
			}
		}

		// Dependencies wait for the right state: a service to be healthy, a job to succeed.
		deps := make([]string, 0, len(s.deps))
		for d := range s.deps {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, dep := range deps {
			cond := s.deps[dep]
			target := cfg.Services[dep]
			if target == nil {
				t.Errorf("%s depends on %s, which does not exist", name, dep)
				continue
			}
			want := "service_healthy"
			if target.oneShot() {
				want = "service_completed_successfully"
			}
			if cond != want {
				t.Errorf("%s depends on %s with condition %q, want %s", name, dep, cond, want)
			}
			if target.local() && !s.local() {
				t.Errorf("%s (every profile) depends on %s (profile %s): it would not start in production", name, dep, localProfile)
			}
		}

		// Published ports are reachable from this host only.
		for _, p := range s.Ports {
			switch v := p.(type) {
			case string:
				if !strings.HasPrefix(v, "127.0.0.1:") {
					t.Errorf("%s: port %q is not bound to 127.0.0.1", name, v)
				}
			case map[string]any:
				if v["host_ip"] != "127.0.0.1" {
					t.Errorf("%s: port %v is not bound to 127.0.0.1", name, v)
				}
			default:
				t.Errorf("%s: port %v: write it as \"127.0.0.1:HOST:CONTAINER\"", name, p)
			}
		}

		// No literal secrets: they come from the env file or from Docker secrets.
		for k, v := range envMap(t, name, s) {
			if secretKey.MatchString(k) && !secretRef.MatchString(v) {
				t.Errorf("%s: %s=%q: a secret must be ${%s:?message} (or ${%s:-} where empty means the credential chain), set in the env file", name, k, v, k, k)
			}
			if strings.Contains(v, "POSTGRES_PASSWORD") && !strings.HasPrefix(v, "${POSTGRES_PASSWORD:?") {
				t.Errorf("%s: %s=%q: the PostgreSQL password is required: ${POSTGRES_PASSWORD:?message}", name, k, v)
			}
		}

		// Jobs fail loudly: nothing swallows a failing command.
		script := s.script()
		for _, swallow := range []string{"|| true", "||true", "|| :", "|| exit 0"} {
			if strings.Contains(script, swallow) {
				t.Errorf("%s: its command swallows failures with %q", name, swallow)
			}
		}
		if strings.Contains(script, "\n") && strings.Contains(script, "/bin/sh") && !strings.Contains(script, "set -eu") {
			t.Errorf("%s: a shell script must start with `set -eu`", name)
		}
	}

	for _, m := range secretDefault.FindAllStringSubmatch(raw, -1) {
		t.Errorf("docker-compose.yml gives secret %s the literal default %q: secrets come from the env file", m[1], m[2])
	}
	for k, v := range readEnvFile(t, filepath.Join(root, "internal", "devstack", exampleEnv)) {
		if secretKey.MatchString(k) && v != "" && strings.Contains(raw, v) {
			t.Errorf("docker-compose.yml contains the example secret %s=%s", k, v)
		}
	}
	for name, sec := range cfg.Secrets {
		if sec.File == "" {
			t.Errorf("secret %s has no file", name)
		}
	}

	checkTemporal(t, cfg)
	checkWorker(t, cfg)
	checkLocalProfile(t, cfg)
}

func checkBuild(t *testing.T, root, name string, build any) {
	t.Helper()
	ctx, dockerfile := "", "Dockerfile"
	switch b := build.(type) {
	case string:
		ctx = b
	case map[string]any:
		ctx, _ = b["context"].(string)
		if d, ok := b["dockerfile"].(string); ok {
			dockerfile = d
		}
	}
	df := filepath.Join(root, ctx, dockerfile)
	if _, err := os.Stat(df); err != nil {
		t.Errorf("%s: build: %v", name, err)
	}
}

// checkTemporal: the plain server on PostgreSQL, its schema set up by a job, the namespace
// and search attributes by another, which fails loudly.
func checkTemporal(t *testing.T, cfg composeFile) {
	t.Helper()
	srv := cfg.Services["temporal"]
	if srv == nil {
		t.Fatal("no temporal service")
	}
	if !strings.HasPrefix(srv.Image, "temporalio/server:") {
		t.Errorf("temporal: image %s, want temporalio/server", srv.Image)
	}
	env := envMap(t, "temporal", srv)
	if env["DB"] != "postgres12" || env["POSTGRES_SEEDS"] == "" {
		t.Errorf("temporal: DB=%q POSTGRES_SEEDS=%q: the server persists in PostgreSQL (DB=postgres12)", env["DB"], env["POSTGRES_SEEDS"])
	}
	var schemaJob string
	for dep, cond := range srv.deps {
		if cond == "service_completed_successfully" && strings.Contains(cfg.Services[dep].script(), "temporal-sql-tool") {
			schemaJob = dep
		}
	}
	if schemaJob == "" {
		t.Fatal("temporal does not wait for a schema job that runs temporal-sql-tool")
	}
	job := cfg.Services[schemaJob]
	if !strings.HasPrefix(job.Image, "temporalio/admin-tools:") {
		t.Errorf("%s: image %s, want temporalio/admin-tools", schemaJob, job.Image)
	}
	script := job.script()
	for _, want := range []string{"create-database", "setup-schema", "update-schema", "temporal_visibility",
		"/etc/temporal/schema/postgresql/v12", "visibility"} {
		if !strings.Contains(script, want) {
			t.Errorf("%s: its script lacks %q", schemaJob, want)
		}
	}

	sa := cfg.Services[searchAttrsJob]
	if sa == nil {
		t.Fatalf("no %s job", searchAttrsJob)
	}
	script = sa.script()
	for _, want := range []string{"set -eu", "operator namespace create", "operator namespace describe",
		"operator search-attribute create", "--type Keyword", "AccountId", "DumpFolder", "ExportState", "exit 1"} {
		if !strings.Contains(script, want) {
			t.Errorf("%s: its script lacks %q", searchAttrsJob, want)
		}
	}
	if !sa.oneShot() {
		t.Errorf("%s: a one-shot job (restart \"no\"): a restart policy would hide its failure", searchAttrsJob)
	}
	if sa.deps["temporal"] != "service_healthy" {
		t.Errorf("%s: must wait for temporal to be healthy", searchAttrsJob)
	}
	for _, svc := range []string{"worker", "schedules-sync"} {
		if s := cfg.Services[svc]; s == nil || s.deps[searchAttrsJob] != "service_completed_successfully" {
			t.Errorf("%s must wait for %s to succeed (the workflow sets the search attributes)", svc, searchAttrsJob)
		}
	}
}

// checkWorker: a named staging volume where the worker stages shards, its metrics port, the
// schedules sync reading the operator's accounts file.
func checkWorker(t *testing.T, cfg composeFile) {
	t.Helper()
	w := cfg.Services["worker"]
	if w == nil {
		t.Fatal("no worker service")
	}
	env := envMap(t, "worker", w)
	staging := env["EXPORT_TEMP_DIR"]
	if staging == "" {
		t.Error("worker: EXPORT_TEMP_DIR is not set")
	}
	named := false
	for _, v := range w.Volumes {
		s, ok := v.(string)
		if !ok {
			continue
		}
		parts := strings.Split(s, ":")
		if len(parts) >= 2 && parts[1] == staging && !strings.ContainsAny(parts[0], "./") {
			named = true
			if _, ok := cfg.Volumes[parts[0]]; !ok {
				t.Errorf("worker: staging volume %s is not declared under volumes", parts[0])
			}
		}
	}
	if !named {
		t.Errorf("worker: no named volume mounted on EXPORT_TEMP_DIR %q", staging)
	}
	metricsPort := strings.TrimPrefix(env["METRICS_ADDR"], ":")
	if metricsPort == "" {
		t.Fatal("worker: METRICS_ADDR is not set")
	}
	published := false
	for _, p := range w.Ports {
		if s, ok := p.(string); ok && strings.HasSuffix(s, ":"+metricsPort) {
			published = true
		}
	}
	if !published {
		t.Errorf("worker: metrics port %s is not published", metricsPort)
	}
	if w.Healthcheck == nil || !strings.Contains(fmt.Sprint(w.Healthcheck.Test), "127.0.0.1:"+metricsPort+"/") {
		t.Errorf("worker: the healthcheck must probe the metrics endpoint on port %s", metricsPort)
	}

	sync := cfg.Services["schedules-sync"]
	if sync == nil {
		t.Fatal("no schedules-sync job")
	}
	if !sync.oneShot() || !strings.Contains(sync.script(), "schedules") || !strings.Contains(sync.script(), "--accounts") {
		t.Errorf("schedules-sync: a one-shot `starter schedules sync --accounts FILE`, got %q", sync.script())
	}
	if !strings.Contains(fmt.Sprint(sync.Volumes), "${ACCOUNTS_FILE") {
		t.Errorf("schedules-sync: the accounts file must be mounted from ${ACCOUNTS_FILE...}, got %v", sync.Volumes)
	}
	accounts := readEnvFile(t, filepath.Join(repoRoot(t), "internal", "devstack", exampleEnv))["ACCOUNTS_FILE"]
	if _, err := os.Stat(filepath.Join(repoRoot(t), accounts)); accounts == "" || err != nil {
		t.Errorf("%s: ACCOUNTS_FILE=%q does not name a file of the repository", exampleEnv, accounts)
	}
}

// checkLocalProfile: MinIO and its setup, the emulator and its seed job, and a dump at the
// end, all in profile local; nothing else is.
func checkLocalProfile(t *testing.T, cfg composeFile) {
	t.Helper()
	for _, svc := range []string{"minio", "minio-setup", "bigquery-emulator", "bigquery-seed", "local-dump"} {
		s := cfg.Services[svc]
		if s == nil || !s.local() {
			t.Errorf("service %s must exist in profile %s", svc, localProfile)
		}
	}
	for _, svc := range []string{"postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "worker", "schedules-sync"} {
		if s := cfg.Services[svc]; s == nil || len(s.Profiles) > 0 {
			t.Errorf("service %s must run in every profile (no profiles:)", svc)
		}
	}
	if s := cfg.Services["minio-setup"]; s != nil && s.deps["minio"] != "service_healthy" {
		t.Error("minio-setup must wait for minio to be healthy")
	}
	if s := cfg.Services["bigquery-seed"]; s != nil && s.deps["bigquery-emulator"] != "service_healthy" {
		t.Error("bigquery-seed must wait for bigquery-emulator to be healthy")
	}
	if s := cfg.Services["minio"]; s != nil && !strings.Contains(s.script()+fmt.Sprint(s.Environment), KMSKeyID) {
		t.Errorf("minio: the KMS key %s the local accounts name is not configured", KMSKeyID)
	}
	dump := cfg.Services["local-dump"]
	if dump == nil {
		return
	}
	for dep, cond := range map[string]string{"worker": "service_healthy", "schedules-sync": "service_completed_successfully",
		"minio-setup": "service_completed_successfully", "bigquery-seed": "service_completed_successfully"} {
		if dump.deps[dep] != cond {
			t.Errorf("local-dump must wait for %s (%s)", dep, cond)
		}
	}
	if !strings.Contains(dump.script(), "run") || !strings.Contains(dump.script(), "--wait") {
		t.Errorf("local-dump: `starter run ACCOUNT --wait`, got %q", dump.script())
	}
}

// readEnvFile reads KEY=VALUE lines (comments and blank lines skipped).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not KEY=VALUE", path, line)
			continue
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// TestComposeSupportFiles: the files the compose file and its env files name exist.
func TestComposeSupportFiles(t *testing.T) {
	cfg, _ := loadCompose(t)
	root := repoRoot(t)
	for name, sec := range cfg.Secrets {
		file := sec.File
		if i := strings.Index(file, ":-"); strings.HasPrefix(file, "${") && i > 0 {
			file = strings.TrimSuffix(file[i+2:], "}") // the default
		}
		if _, err := os.Stat(filepath.Join(root, file)); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}
	for _, f := range []string{exampleEnv, productionEnv} {
		env := readEnvFile(t, filepath.Join(root, "internal", "devstack", f))
		if _, ok := env["POSTGRES_PASSWORD"]; !ok {
			t.Errorf("%s does not mention POSTGRES_PASSWORD", f)
		}
	}
	if _, err := os.Stat(filepath.Join(composeDir, "bqseed.Dockerfile")); err != nil {
		t.Error(err)
	}
}
