// Command testapp is the workload that dso's end-to-end tests rotate secrets
// into. It exists so that a test can ask a running container "which value do
// you see right now?" without the value itself ever leaving the container:
// every endpoint answers with a sha256 hex digest, never with plaintext.
//
// It is built as a static binary into a FROM scratch image (no registry is
// reachable where the tests run), so the same binary also has to be its own
// HEALTHCHECK (`testapp probe`), its own in-network HTTP client (`testapp get`)
// and a traffic generator for rotation tests (`testapp client`).
//
// Modes:
//
//	testapp [serve]      serve HTTP on TESTAPP_LISTEN (default :8080)
//	testapp probe        GET /healthz on the local server, exit 0 when 200
//	testapp get URL      GET URL, print the body, exit 0 on 2xx, 1 otherwise
//	testapp client URL   GET URL in a loop until SIGTERM, then print counts as JSON
//	                     (TESTAPP_CLIENT_INTERVAL, default 100ms; TESTAPP_CLIENT_KEEPALIVE=1)
//
// Switches that make it fail on purpose (so rollback paths can be tested):
//
//	TESTAPP_UNHEALTHY=1                    always unhealthy
//	TESTAPP_UNHEALTHY_IF_ENV=NAME:SHA256   unhealthy while env NAME hashes to SHA256
//	TESTAPP_UNHEALTHY_IF_FILE=PATH:SHA256  unhealthy while file PATH hashes to SHA256 (re-read per check)
//	TESTAPP_HEALTHY_AFTER=3s               unhealthy for the first 3s after start (with the
//	                                       image HEALTHCHECK, Docker says unhealthy after ~2s)
//	TESTAPP_EXIT_ON_START=1                exit with status 3 before serving
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run dispatches on the mode and returns the process exit status, so that
// tests can drive the command line without exiting the test binary.
func run(args []string) int {
	mode := "serve"
	if len(args) > 0 {
		mode = args[0]
		args = args[1:]
	}
	switch mode {
	case "serve":
		return serveMain(os.LookupEnv)
	case "probe":
		return probeMain(os.Getenv("TESTAPP_LISTEN"), os.Stderr)
	case "get":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: testapp get URL")
			return 2
		}
		return getMain(args[0], os.Stdout, os.Stderr)
	case "client":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: testapp client URL")
			return 2
		}
		return clientMain(args[0], os.Getenv("TESTAPP_CLIENT_INTERVAL"), os.Stdout, os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "testapp: unknown mode %q; use serve, probe, get URL or client URL\n", mode)
		return 2
	}
}
