package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolvePrefersLinkerStampsThenBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}

	got := resolve("", "", bi)
	if got.Version != "devel" || got.Revision != "abc123" || !got.Modified || got.GoVersion != "go1.26.8" {
		t.Errorf("from build info: %+v", got)
	}
	if s := got.String("worker"); s != "worker devel (revision abc123-dirty, go1.26.8)" {
		t.Errorf("String: %q", s)
	}

	got = resolve("v1.4.0", "def456", bi)
	if got.Version != "v1.4.0" || got.Revision != "def456" || got.Modified {
		t.Errorf("linker stamps must win: %+v", got)
	}

	bi.Main.Version = "v1.3.0"
	if got := resolve("", "", bi); got.Version != "v1.3.0" {
		t.Errorf("module version: %+v", got)
	}

	got = resolve("", "", nil)
	if got.Version != "devel" || got.Revision != "unknown" || !strings.HasPrefix(got.GoVersion, "go") {
		t.Errorf("no build info: %+v", got)
	}
	if g := Get(); g.Version == "" || g.Revision == "" {
		t.Errorf("Get: %+v", g)
	}
}
