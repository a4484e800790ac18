// Package proxy is the TLS-terminating reverse proxy that faces users in a
// Velox deployment and routes requests to pools of app and Swift nodes.
//
// It is built on httputil.ReverseProxy: bodies stream through with pooled
// buffers, so memory stays flat whatever the transfer size. See
// docs/proxy.md and configs/proxy.*.yaml for the configuration.
package proxy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

const commandUsage = `Usage:
  velox proxy [run] --config FILE      run the proxy (SIGHUP reloads FILE)
  velox proxy check --config FILE      validate FILE and exit
  velox proxy dev-cert --out DIR --hosts NAME[,NAME...]
                                       write a development CA and certificate

The config file may also be given in VELOX_PROXY_CONFIG.
`

// Command runs "velox proxy" with the given arguments.
func Command(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "run", "check":
		fs := flag.NewFlagSet("velox proxy "+sub, flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() { fmt.Fprint(stderr, commandUsage) }
		path := fs.String("config", getenv("VELOX_PROXY_CONFIG"), "config file")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *path == "" {
			fmt.Fprint(stderr, commandUsage)
			return errors.New("proxy: --config is required")
		}
		cfg, err := LoadConfig(*path)
		if err != nil {
			return err
		}
		if sub == "check" {
			fmt.Fprintf(stdout, "%s: ok (%d routes, %d pools)\n", *path, len(cfg.Routes), len(cfg.Upstreams))
			return nil
		}
		if getenv("GOGC") == "" {
			// The proxy's live heap is small, so collecting half as often
			// buys measurable request throughput for a few MiB.
			debug.SetGCPercent(200)
		}
		return run(ctx, *path, cfg, stdout, stderr)
	case "dev-cert":
		fs := flag.NewFlagSet("velox proxy dev-cert", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() { fmt.Fprint(stderr, commandUsage) }
		out := fs.String("out", "", "directory for ca.pem, ca-key.pem, cert.pem, key.pem")
		hosts := fs.String("hosts", "localhost,127.0.0.1", "comma-separated host names and IP addresses")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("proxy dev-cert: --out is required")
		}
		if err := WriteDevCert(*out, splitHosts(*hosts), time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/{ca.pem,ca-key.pem,cert.pem,key.pem}\n", *out)
		return nil
	case "help":
		fmt.Fprint(stdout, commandUsage)
		return nil
	default:
		fmt.Fprint(stderr, commandUsage)
		return fmt.Errorf("proxy: unknown subcommand %q", sub)
	}
}

// run serves until ctx ends, reloading the config file on SIGHUP.
func run(ctx context.Context, path string, cfg *Config, stdout, stderr io.Writer) error {
	log := logDefault(stderr, cfg.Log.Format)
	var access *slog.Logger
	if *cfg.Log.Access {
		access = logDefault(stdout, cfg.Log.Format)
	}
	p, err := New(cfg, log, access)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				next, err := LoadConfig(path)
				if err == nil {
					err = p.Reload(next)
				}
				if err != nil {
					log.Error("reload failed; keeping the running configuration", "err", err)
				} else {
					log.Info("reloaded", "config", path)
				}
			}
		}
	}()
	return p.Run(ctx)
}
