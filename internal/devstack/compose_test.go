package devstack

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestComposeFileIsValid checks docker-compose.yml the way Docker would read it. No Docker
// engine runs here; `config` only parses, interpolates and validates. .ci/run installs
// Debian's docker-compose so this runs in CI.
func TestComposeFileIsValid(t *testing.T) {
	file, err := filepath.Abs(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		cmd = exec.Command("docker", "compose", "-f", file, "config")
	case func() bool { _, err := exec.LookPath("docker-compose"); return err == nil }():
		cmd = exec.Command("docker-compose", "-f", file, "config")
	default:
		t.Skip("neither `docker compose` nor docker-compose is installed (.ci/run installs it)")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	for _, svc := range []string{"postgresql:", "temporal:", "temporal-ui:", "worker:", "schedules-sync:", "minio:", "bigquery-emulator:"} {
		if !strings.Contains(string(out), svc) {
			t.Errorf("compose config lacks service %s", svc)
		}
	}
}
