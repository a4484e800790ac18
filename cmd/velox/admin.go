package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage/encrypt"
)

const adminUsage = `Usage: velox admin [flags] <command>

Commands:
  user add NAME [--admin] [--password-stdin]   create a local user (prints a generated password unless --password-stdin)
  user list                                    list users
  user disable NAME                            disable a user and sign them out everywhere
  user enable NAME                             enable a user
  user passwd NAME [--password-stdin]          set a new password (generated unless --password-stdin)
  gc [--grace 24h]                             remove stored blobs no metadata references, older than grace
  keys rotate [--batch 500]                    re-wrap every data key under the active master key (resumable)
  encrypt-existing                             encrypt blobs stored before encryption was enabled (online, resumable)

Flags (same as velox serve): --config, --data, --db-driver, --db-dsn
`

func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("velox admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	load := configFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	known := len(rest) > 0 && (rest[0] == "gc" || rest[0] == "encrypt-existing" ||
		(rest[0] == "user" && len(rest) >= 2) || (len(rest) >= 2 && rest[0] == "keys" && rest[1] == "rotate"))
	if !known {
		fs.Usage()
		return errors.New("admin: missing or unknown command")
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	switch rest[0] {
	case "gc":
		return adminGC(ctx, a, rest[1:], stdout)
	case "keys":
		return adminRotate(ctx, a, rest[2:], stdout)
	case "encrypt-existing":
		return adminEncryptExisting(ctx, a, stdout)
	}
	return adminUser(ctx, a.db, rest[1], rest[2:], os.Stdin, stdout)
}

func adminGC(ctx context.Context, a *app, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("velox admin gc", flag.ContinueOnError)
	grace := fs.Duration("grace", a.cfg.GC.Grace, "only remove unreferenced blobs older than this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *grace < time.Minute {
		return errors.New("gc: --grace must be at least 1m, or uploads in flight could lose their bytes")
	}
	st, err := files.New(a.db, a.blobs, nil).CollectGarbage(ctx, *grace)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scanned %d blobs; removed %d unreferenced (%d bytes); kept %d younger than %s\n",
		st.Scanned, st.Deleted, st.Bytes, st.Young, *grace)
	return nil
}

func adminUser(ctx context.Context, db *metadata.DB, cmd string, args []string, stdin io.Reader, stdout io.Writer) error {
	sub := flag.NewFlagSet("velox admin user "+cmd, flag.ContinueOnError)
	admin := sub.Bool("admin", false, "grant admin rights")
	fromStdin := sub.Bool("password-stdin", false, "read the password from standard input")
	// Allow flags after the name: "user add bob --admin".
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := sub.Parse(args); err != nil {
		return err
	}
	if name == "" && sub.NArg() > 0 {
		name = sub.Arg(0)
	}
	password := func() (string, bool, error) {
		if !*fromStdin {
			return randomPassword(), true, nil
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", false, err
		}
		p := strings.TrimRight(line, "\r\n")
		if p == "" {
			return "", false, errors.New("the password read from standard input is empty")
		}
		return p, false, nil
	}
	needName := func() (*metadata.User, error) {
		if name == "" {
			return nil, fmt.Errorf("user %s: a username is required", cmd)
		}
		u, err := db.UserByName(ctx, name)
		if errors.Is(err, metadata.ErrNotFound) {
			return nil, fmt.Errorf("no user named %q", name)
		}
		return u, err
	}
	switch cmd {
	case "add":
		if name == "" {
			return errors.New("user add: a username is required")
		}
		if strings.ContainsAny(name, ":/\\\x00") || strings.TrimSpace(name) != name || len(name) > 64 {
			return fmt.Errorf("user add: %q is not a valid username (no ':', '/', '\\', surrounding spaces; at most 64 bytes)", name)
		}
		p, generated, err := password()
		if err != nil {
			return err
		}
		hash, err := local.HashPassword(p)
		if err != nil {
			return err
		}
		err = db.CreateUser(ctx, &metadata.User{Username: name, PasswordHash: hash, IsAdmin: *admin})
		if errors.Is(err, metadata.ErrConflict) {
			return fmt.Errorf("a user named %q already exists", name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created user %s\n", name)
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", p)
		}
	case "list":
		users, err := db.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tPROVIDER\tADMIN\tDISABLED\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\n", u.Username, u.Provider, u.IsAdmin, u.Disabled, u.CreatedAt.Format("2006-01-02"))
		}
		return tw.Flush()
	case "disable", "enable":
		u, err := needName()
		if err != nil {
			return err
		}
		if err := db.SetDisabled(ctx, u.ID, cmd == "disable", metadata.DisabledByAdmin); err != nil {
			return err
		}
		if cmd == "disable" {
			if err := db.DeleteUserSessions(ctx, u.ID); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "%sd user %s\n", cmd, u.Username)
	case "passwd":
		u, err := needName()
		if err != nil {
			return err
		}
		if u.Provider != local.Name {
			return fmt.Errorf("%s signs in through %s; change the password there", u.Username, u.Provider)
		}
		p, generated, err := password()
		if err != nil {
			return err
		}
		hash, err := local.HashPassword(p)
		if err != nil {
			return err
		}
		if err := db.SetPassword(ctx, u.ID, hash); err != nil {
			return err
		}
		// A new password signs out every browser that used the old one.
		if err := db.DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed\n", u.Username)
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", p)
		}
	default:
		return fmt.Errorf("unknown command \"user %s\"\n%s", cmd, adminUsage)
	}
	return nil
}

func adminRotate(ctx context.Context, a *app, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("velox admin keys rotate", flag.ContinueOnError)
	batch := fs.Int("batch", 500, "data keys re-wrapped per batch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if a.ring == nil {
		return errors.New("keys rotate: encryption is not enabled")
	}
	fmt.Fprintf(stdout, "re-wrapping data keys under master key %s\n", a.ring.ActiveID())
	st, err := encrypt.Rotate(ctx, a.db, a.ring, *batch, func(st encrypt.RotateStats) {
		fmt.Fprintf(stdout, "  %d re-wrapped, %d already current\n", st.Rewrapped, st.Current)
	})
	if err != nil {
		return fmt.Errorf("keys rotate: %w (run it again to resume)", err)
	}
	fmt.Fprintf(stdout, "done: %d re-wrapped, %d already current, %d changed meanwhile; master keys other than %s can now be removed\n",
		st.Rewrapped, st.Current, st.Skipped, a.ring.ActiveID())
	return nil
}

func adminEncryptExisting(ctx context.Context, a *app, stdout io.Writer) error {
	if a.ring == nil {
		return errors.New("encrypt-existing: encryption is not enabled")
	}
	st, err := encrypt.EncryptExisting(ctx, a.blobs, func(st encrypt.MigrateStats) {
		fmt.Fprintf(stdout, "  %d encrypted (%d bytes), %d already encrypted\n", st.Encrypted, st.Bytes, st.AlreadyEncrypted)
	})
	if err != nil {
		return fmt.Errorf("encrypt-existing: %w (run it again to resume)", err)
	}
	fmt.Fprintf(stdout, "done: %d blobs encrypted (%d bytes), %d already encrypted\n", st.Encrypted, st.Bytes, st.AlreadyEncrypted)
	return nil
}
