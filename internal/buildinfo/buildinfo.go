// Package buildinfo says which build of the worker or starter is running: its version,
// the commit it was built from and the Go toolchain, for --version, the startup log and the
// s3export_build_info metric.
//
// The Makefile stamps version and revision with the linker, since it builds with
// -buildvcs=false:
//
//	go build -ldflags "-X github.com/dreamdata/destination-aws-s3/internal/buildinfo.version=v1.4.0 \
//	  -X github.com/dreamdata/destination-aws-s3/internal/buildinfo.revision=$(git rev-parse HEAD)" ./worker
//
// Without them the module version (`go install ...@v1.4.0`) and the VCS stamp of a plain
// `go build` in a checkout are used, else "devel" and "unknown".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X (see the package comment). Empty means: ask debug.ReadBuildInfo.
var (
	version  string
	revision string
)

// Info describes one build.
type Info struct {
	Version   string // v1.4.0, a git describe, or "devel"
	Revision  string // the commit, or "unknown"
	Modified  bool   // built from a work tree with uncommitted changes (VCS stamp only)
	GoVersion string // go1.26.8
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, revision, bi)
}

func resolve(ldVersion, ldRevision string, bi *debug.BuildInfo) Info {
	info := Info{Version: ldVersion, Revision: ldRevision, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Revision == "" {
					info.Revision = s.Value
				}
			case "vcs.modified":
				info.Modified = ldRevision == "" && s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Revision == "" {
		info.Revision = "unknown"
	}
	return info
}

// String is the --version line, e.g. "worker v1.4.0 (revision 4f40225..., go1.26.8)".
func (i Info) String(program string) string {
	rev := i.Revision
	if i.Modified {
		rev += "-dirty"
	}
	return fmt.Sprintf("%s %s (revision %s, %s)", program, i.Version, rev, i.GoVersion)
}
