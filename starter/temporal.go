package main

import (
	"flag"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/dreamdata/destination-aws-s3/internal/temporalconn"
)

// dialTemporal connects with the SDK's standard environment configuration (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE,
// TEMPORAL_CONFIG_FILE: see docs/deploy-temporal.md); --temporal-address and
// --temporal-namespace, when given on the command line, override it.
func dialTemporal(fs *flag.FlagSet) (client.Client, error) {
	var o temporalconn.Overrides
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "temporal-address":
			o.Address = f.Value.String()
		case "temporal-namespace":
			o.Namespace = f.Value.String()
		}
	})
	opts, err := temporalconn.Options(o)
	if err != nil {
		return nil, err
	}
	opts.Logger = quietLogger{}
	cl, err := client.Dial(opts)
	if err != nil {
		addr, ns := opts.HostPort, opts.Namespace
		if addr == "" {
			addr = temporalconn.DefaultAddress
		}
		if ns == "" {
			ns = client.DefaultNamespace
		}
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w; set --temporal-address or TEMPORAL_ADDRESS, and for TLS or an API key the TEMPORAL_* variables of docs/deploy-temporal.md", addr, ns, err)
	}
	return cl, nil
}
