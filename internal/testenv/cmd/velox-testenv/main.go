// Command velox-testenv starts a real component for the integration tests
// by hand and keeps it running until interrupted, printing the environment
// variables that point the tests at it:
//
//	go run ./internal/testenv/cmd/velox-testenv swift      (or postgres)
//	# paste the printed export lines into another shell, then
//	VELOX_REQUIRE_INTEGRATION=1 go test ./internal/storage/swift/
//
// Sharing one instance this way saves each test binary from starting its
// own.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/veloxhq/velox/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "velox-testenv:", err)
		os.Exit(1)
	}
}

const usage = "usage: velox-testenv swift|postgres"

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "swift":
		return runSwift(ctx, stdout)
	case "postgres":
		return runPostgres(ctx, stdout)
	default:
		return fmt.Errorf("unknown component %q; %s", args[0], usage)
	}
}

func runSwift(ctx context.Context, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "velox-swift-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := testenv.StartSwift(ctx, dir)
	if err != nil {
		return err
	}
	defer c.Stop()
	env := c.Env()
	fmt.Fprintf(stdout, "export %s=%s\n", testenv.EnvSwiftAuthURL, env.AuthURL)
	fmt.Fprintf(stdout, "export %s=%s\n", testenv.EnvSwiftUser, env.User)
	fmt.Fprintf(stdout, "export %s=%s\n", testenv.EnvSwiftKey, env.Key)
	fmt.Fprintf(stdout, "# storage URL %s; logs in %s/logs; Ctrl-C stops the cluster\n", env.StorageURL, env.Dir)
	<-ctx.Done()
	return nil
}

func runPostgres(ctx context.Context, stdout io.Writer) error {
	dsn, stop, err := testenv.StartPostgres()
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "export VELOX_TEST_POSTGRES_DSN=%s\n", dsn)
	fmt.Fprintln(stdout, "# Ctrl-C stops the server and deletes its data")
	<-ctx.Done()
	return nil
}
