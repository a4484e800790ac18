package files_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type env struct {
	svc   *files.Service
	db    *metadata.DB
	blobs storage.Store
	alice *files.User
	bob   *files.User
	root  string // alice's root folder
	space string
}

// eachDB runs fn against SQLite and against a real PostgreSQL server.
func eachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, newEnv(t, "sqlite", filepath.Join(t.TempDir(), "meta.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, newEnv(t, "postgres", testenv.Postgres(t)))
	})
}

func newEnv(t testing.TB, driver, dsn string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := metadata.Open(ctx, driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, blobs: blobs, svc: files.New(db, blobs, slog.New(slog.DiscardHandler))}
	for _, name := range []string{"alice", "bob"} {
		u := &metadata.User{Username: name}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if name == "alice" {
			e.alice = u
		} else {
			e.bob = u
		}
	}
	sp, err := e.svc.PersonalSpace(ctx, e.alice)
	if err != nil {
		t.Fatal(err)
	}
	e.root, e.space = sp.RootID, sp.ID
	return e
}

func (e *env) upload(t *testing.T, parent, name, content string) *files.Node {
	t.Helper()
	n, err := e.svc.Upload(context.Background(), e.alice, files.UploadRequest{
		ParentID: parent, Name: name, Body: strings.NewReader(content), Size: int64(len(content)), Conflict: files.ConflictReplace})
	if err != nil {
		t.Fatalf("upload %q: %v", name, err)
	}
	return n
}

func (e *env) read(t *testing.T, id string) string {
	t.Helper()
	_, obj, err := e.svc.Open(context.Background(), e.alice, id)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) mkdir(t *testing.T, parent, name string) *files.Node {
	t.Helper()
	n, err := e.svc.Mkdir(context.Background(), e.alice, parent, name)
	if err != nil {
		t.Fatalf("mkdir %q: %v", name, err)
	}
	return n
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := files.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func (e *env) blobCount(t *testing.T) int {
	t.Helper()
	n := 0
	if err := e.blobs.(storage.Lister).List(context.Background(), func(storage.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUploadDownloadAndVersions(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		n := e.upload(t, e.root, "report.txt", "first")
		if n.Size != 5 || n.SHA256 != "a7937b64b8caa58f03721bb6bacf5c78cb235febe0e70b1b84cd99541461a08e" {
			t.Fatalf("size %d sha %s", n.Size, n.SHA256)
		}
		if n.ContentType != "text/plain; charset=utf-8" {
			t.Errorf("content type %q", n.ContentType)
		}
		n2 := e.upload(t, e.root, "report.txt", "second, longer")
		if n2.ID != n.ID {
			t.Fatalf("overwrite created a new node %s, want the same %s", n2.ID, n.ID)
		}
		if n2.ETag == n.ETag {
			t.Fatal("ETag did not change on overwrite")
		}
		if got := e.read(t, n.ID); got != "second, longer" {
			t.Fatalf("read %q", got)
		}
		vs, err := e.svc.Versions(ctx, e.alice, n.ID)
		if err != nil || len(vs) != 2 {
			t.Fatalf("versions = %d, %v; want 2", len(vs), err)
		}
		_, _, obj, err := e.svc.OpenVersion(ctx, e.alice, n.ID, vs[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := io.ReadAll(obj)
		obj.Close()
		if string(old) != "first" {
			t.Fatalf("old version reads %q", old)
		}
		r, err := e.svc.RestoreVersion(ctx, e.alice, n.ID, vs[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.read(t, r.ID); got != "first" || r.Size != 5 {
			t.Fatalf("after restore: %q size %d", got, r.Size)
		}
		if vs, _ := e.svc.Versions(ctx, e.alice, n.ID); len(vs) != 3 {
			t.Fatalf("restore should add a version: have %d", len(vs))
		}
		// Zero-byte files are files too.
		z := e.upload(t, e.root, "empty", "")
		if z.Size != 0 || e.read(t, z.ID) != "" {
			t.Fatalf("empty file: size %d", z.Size)
		}
	})
}

func TestConflictPolicies(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.upload(t, e.root, "a.txt", "x")
		up := func(name, policy string) (*files.Node, error) {
			return e.svc.Upload(ctx, e.alice, files.UploadRequest{ParentID: e.root, Name: name,
				Body: strings.NewReader("y"), Size: 1, Conflict: policy})
		}
		_, err := up("a.txt", files.ConflictFail)
		wantCode(t, err, files.CodeConflict)
		n, err := up("a.txt", files.ConflictRename)
		if err != nil || n.Name != "a (2).txt" {
			t.Fatalf("keep both: %v, name %v", err, n)
		}
		_, err = up("A.TXT", files.ConflictFail)
		wantCode(t, err, files.CodeConflict)
		if !strings.Contains(err.Error(), "only in letter case") {
			t.Errorf("case clash message = %q", err)
		}
		e.mkdir(t, e.root, "dir")
		_, err = up("dir", files.ConflictReplace)
		wantCode(t, err, files.CodeConflict)
		_, err = e.svc.Upload(ctx, e.alice, files.UploadRequest{ParentID: e.root, Name: "a.txt",
			Body: strings.NewReader("z"), Size: 1, Conflict: files.ConflictReplace, IfMatch: "stale"})
		wantCode(t, err, files.CodePreconditionFailed)
		_, err = e.svc.Upload(ctx, e.alice, files.UploadRequest{ParentID: e.root, Name: "a.txt",
			Body: strings.NewReader("z"), Size: 1, IfNoneMatch: "*"})
		wantCode(t, err, files.CodePreconditionFailed)
	})
}

func TestBadNames(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, name := range []string{"", ".", "..", "a/b", "a\\b", "nul\x00byte", strings.Repeat("x", 256),
			"\xff\xfe", "tab\there"} {
			_, err := e.svc.Mkdir(ctx, e.alice, e.root, name)
			wantCode(t, err, files.CodeInvalidName)
			_, err = e.svc.Upload(ctx, e.alice, files.UploadRequest{ParentID: e.root, Name: name, Body: strings.NewReader("x"), Size: 1})
			wantCode(t, err, files.CodeInvalidName)
		}
		if c := e.blobCount(t); c != 0 {
			t.Fatalf("rejected uploads left %d blobs", c)
		}
		// NFD input is stored as NFC: one name, whichever form is typed.
		n := e.mkdir(t, e.root, "Cafe\u0301")
		if n.Name != "Caf\u00e9" {
			t.Fatalf("name %q not NFC", n.Name)
		}
		_, err := e.svc.Mkdir(ctx, e.alice, e.root, "Caf\u00e9")
		wantCode(t, err, files.CodeConflict)
		for _, p := range []string{"../x", "a/../../b", "/./a", "a\\..\\b"} {
			_, err := e.svc.Resolve(ctx, e.alice, e.space, p)
			wantCode(t, err, files.CodeInvalidName)
		}
	})
}

func TestMoveCopyTrash(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		docs := e.mkdir(t, e.root, "docs")
		sub := e.mkdir(t, docs.ID, "sub")
		f := e.upload(t, sub.ID, "f.txt", "hello")
		other := e.mkdir(t, e.root, "other")

		// Into its own subtree.
		_, err := e.svc.Move(ctx, e.alice, docs.ID, files.MoveRequest{ParentID: sub.ID})
		wantCode(t, err, files.CodeConflict)
		_, err = e.svc.Move(ctx, e.alice, docs.ID, files.MoveRequest{ParentID: docs.ID})
		wantCode(t, err, files.CodeConflict)

		// Rename onto an existing name: conflict unless overwrite.
		e.upload(t, e.root, "taken.txt", "old")
		g := e.upload(t, e.root, "g.txt", "new")
		_, err = e.svc.Move(ctx, e.alice, g.ID, files.MoveRequest{Name: "taken.txt"})
		wantCode(t, err, files.CodeConflict)
		moved, err := e.svc.Move(ctx, e.alice, g.ID, files.MoveRequest{Name: "taken.txt", Overwrite: true})
		if err != nil || moved.Name != "taken.txt" {
			t.Fatalf("overwrite move: %v", err)
		}
		trash, _ := e.svc.Trash(ctx, e.alice, e.space)
		if len(trash) != 1 || trash[0].Name != "taken.txt" {
			t.Fatalf("the overwritten file should be in the trash, trash = %v", names(trash))
		}

		// A rename that changes only letter case is allowed.
		caseOnly := e.upload(t, e.root, "readme.md", "r")
		if n, err := e.svc.Move(ctx, e.alice, caseOnly.ID, files.MoveRequest{Name: "README.md"}); err != nil || n.Name != "README.md" {
			t.Fatalf("case-only rename: %v", err)
		}

		// Move a folder: its contents follow.
		if _, err := e.svc.Move(ctx, e.alice, docs.ID, files.MoveRequest{ParentID: other.ID, Name: "papers"}); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Resolve(ctx, e.alice, e.space, "/other/papers/sub/f.txt")
		if err != nil || got.ID != f.ID {
			t.Fatalf("resolve after move: %v", err)
		}
		if p, _ := e.svc.Path(ctx, e.alice, f.ID); p != "/other/papers/sub/f.txt" {
			t.Fatalf("path = %q", p)
		}

		// Copy the folder: new IDs, same bytes, no new blobs.
		before := e.blobCount(t)
		cp, err := e.svc.Copy(ctx, e.alice, docs.ID, files.MoveRequest{ParentID: e.root})
		if err != nil {
			t.Fatal(err)
		}
		cf, err := e.svc.Resolve(ctx, e.alice, e.space, "/papers/sub/f.txt")
		if err != nil || cf.ID == f.ID || e.read(t, cf.ID) != "hello" {
			t.Fatalf("copied file: %v", err)
		}
		if cp.Size != 5 {
			t.Errorf("copied folder size %d, want 5", cp.Size)
		}
		if after := e.blobCount(t); after != before {
			t.Fatalf("copy wrote blobs: %d -> %d", before, after)
		}

		// Delete to trash; a trashed file cannot be read.
		if err := e.svc.Delete(ctx, e.alice, cp.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.svc.Open(ctx, e.alice, cf.ID)
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Resolve(ctx, e.alice, e.space, "/papers")
		wantCode(t, err, files.CodeNotFound)

		// Restore when the name was taken meanwhile: a clear conflict.
		e.mkdir(t, e.root, "papers")
		_, err = e.svc.Restore(ctx, e.alice, cp.ID, files.RestoreRequest{})
		wantCode(t, err, files.CodeConflict)
		r, err := e.svc.Restore(ctx, e.alice, cp.ID, files.RestoreRequest{Name: "papers-restored"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.svc.Resolve(ctx, e.alice, e.space, "/papers-restored/sub/f.txt"); err != nil || e.read(t, got.ID) != "hello" {
			t.Fatalf("restored contents: %v", err)
		}

		// Restoring a file whose folder is in the trash is a conflict.
		inner, _ := e.svc.Resolve(ctx, e.alice, e.space, "/papers-restored/sub/f.txt")
		if err := e.svc.Delete(ctx, e.alice, inner.ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Delete(ctx, e.alice, r.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Restore(ctx, e.alice, inner.ID, files.RestoreRequest{})
		wantCode(t, err, files.CodeConflict)

		// Purge removes the rows and, when no copy shares them, the bytes.
		blobsBefore := e.blobCount(t)
		if err := e.svc.Purge(ctx, e.alice, r.ID); err != nil {
			t.Fatal(err)
		}
		if e.blobCount(t) != blobsBefore {
			t.Fatal("purging a copy deleted bytes the original still uses")
		}
		if e.read(t, f.ID) != "hello" {
			t.Fatal("original unreadable after purging its copy")
		}
		if _, err := e.svc.EmptyTrash(ctx, e.alice, e.space); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Delete(ctx, e.alice, other.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.EmptyTrash(ctx, e.alice, e.space); err != nil {
			t.Fatal(err)
		}
		// Only the live taken.txt and README.md keep their bytes.
		if c := e.blobCount(t); c != 2 {
			t.Fatalf("%d blobs left after the trash was emptied, want 2", c)
		}
	})
}

func names(ns []*files.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestETagsAndSizesPropagate(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.mkdir(t, e.root, "a")
		b := e.mkdir(t, a.ID, "b")
		sibling := e.mkdir(t, e.root, "sibling")
		get := func(id string) *files.Node {
			n, err := e.svc.Get(ctx, e.alice, id)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		rootBefore, aBefore, sibBefore := get(e.root).ETag, get(a.ID).ETag, get(sibling.ID).ETag
		e.upload(t, b.ID, "deep.bin", "12345678")
		if get(e.root).ETag == rootBefore || get(a.ID).ETag == aBefore {
			t.Fatal("an upload deep below did not change the ETags above it")
		}
		if get(sibling.ID).ETag != sibBefore {
			t.Fatal("an unrelated folder's ETag changed")
		}
		if get(e.root).Size != 8 || get(a.ID).Size != 8 || get(b.ID).Size != 8 {
			t.Fatalf("sizes root=%d a=%d b=%d, want 8", get(e.root).Size, get(a.ID).Size, get(b.ID).Size)
		}
		if _, err := e.svc.Move(ctx, e.alice, b.ID, files.MoveRequest{ParentID: sibling.ID}); err != nil {
			t.Fatal(err)
		}
		if get(a.ID).Size != 0 || get(sibling.ID).Size != 8 || get(e.root).Size != 8 {
			t.Fatal("sizes wrong after move")
		}
	})
}

func TestListingPagination(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		dir := e.mkdir(t, e.root, "many")
		const n = 2500
		// Insert rows directly: this test is about listing, not uploads.
		err := e.db.WithTx(ctx, func(tx *metadata.Tx) error {
			for i := 0; i < n; i++ {
				kind := metadata.KindFile
				if i%10 == 0 {
					kind = metadata.KindFolder
				}
				name := fmt.Sprintf("item-%05d", (i*7919)%n)
				if err := tx.InsertNode(ctx, &metadata.Node{SpaceID: e.space, ParentID: dir.ID, Name: name, NameFold: name,
					Kind: kind, Size: int64(i % 97)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			sort string
			desc bool
		}{{metadata.SortName, false}, {metadata.SortName, true}, {metadata.SortSize, false}, {metadata.SortSize, true}, {metadata.SortMTime, true}} {
			var all []*files.Node
			opt := metadata.ListOptions{Sort: tc.sort, Desc: tc.desc, Limit: 1000}
			pages := 0
			for {
				p, err := e.svc.List(ctx, e.alice, dir.ID, opt)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				all = append(all, p.Items...)
				if p.Next == nil {
					break
				}
				opt.After = p.Next
			}
			if len(all) != n || pages != 3 {
				t.Fatalf("%s desc=%v: %d items in %d pages, want %d in 3", tc.sort, tc.desc, len(all), pages, n)
			}
			less := func(i, j int) bool {
				a, b := all[i], all[j]
				if a.Kind != b.Kind {
					return a.Kind < b.Kind
				}
				var ka, kb int64
				switch tc.sort {
				case metadata.SortSize:
					ka, kb = a.Size, b.Size
				case metadata.SortMTime:
					ka, kb = a.MTime.UnixMicro(), b.MTime.UnixMicro()
				}
				if ka != kb {
					return (ka < kb) != tc.desc
				}
				return (a.Name < b.Name) != tc.desc
			}
			if !sort.SliceIsSorted(all, less) {
				t.Fatalf("%s desc=%v: pages are not in order", tc.sort, tc.desc)
			}
			if all[0].Kind != metadata.KindFolder {
				t.Fatal("folders must come first")
			}
			seen := map[string]bool{}
			for _, it := range all {
				if seen[it.ID] {
					t.Fatalf("%s: %s listed twice", tc.sort, it.Name)
				}
				seen[it.ID] = true
			}
		}
		res, err := e.svc.Search(ctx, e.alice, e.space, "ITEM-0042", 0)
		if err != nil || len(res) != 10 {
			t.Fatalf("search: %d results, %v; want 10 (item-00420..item-00429)", len(res), err)
		}
		res, _ = e.svc.Search(ctx, e.alice, e.space, "%", 0)
		if len(res) != 0 {
			t.Fatalf("search for %% matched %d names; LIKE wildcards must be literal", len(res))
		}
	})
}

func TestOtherUsersSeeNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		dir := e.mkdir(t, e.root, "private")
		f := e.upload(t, dir.ID, "secret.txt", "s3cret")
		bob := e.bob
		_, err := e.svc.Get(ctx, bob, f.ID)
		wantCode(t, err, files.CodeNotFound)
		_, _, err = e.svc.Open(ctx, bob, f.ID)
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.List(ctx, bob, dir.ID, metadata.ListOptions{})
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Upload(ctx, bob, files.UploadRequest{ParentID: dir.ID, Name: "x", Body: strings.NewReader("x"), Size: 1})
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Upload(ctx, bob, files.UploadRequest{NodeID: f.ID, Body: strings.NewReader("x"), Size: 1})
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Mkdir(ctx, bob, dir.ID, "x")
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Move(ctx, bob, f.ID, files.MoveRequest{Name: "y"})
		wantCode(t, err, files.CodeNotFound)
		bobSpace, _ := e.svc.PersonalSpace(ctx, bob)
		_, err = e.svc.Move(ctx, bob, f.ID, files.MoveRequest{ParentID: bobSpace.RootID})
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Copy(ctx, bob, f.ID, files.MoveRequest{ParentID: bobSpace.RootID})
		wantCode(t, err, files.CodeNotFound)
		// Nor may alice copy into bob's space.
		_, err = e.svc.Copy(ctx, e.alice, f.ID, files.MoveRequest{ParentID: bobSpace.RootID})
		wantCode(t, err, files.CodeNotFound)
		wantCode(t, e.svc.Delete(ctx, bob, f.ID, ""), files.CodeNotFound)
		_, err = e.svc.Versions(ctx, bob, f.ID)
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Search(ctx, bob, e.space, "secret", 0)
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Trash(ctx, bob, e.space)
		wantCode(t, err, files.CodeNotFound)
		_, err = e.svc.Changes(ctx, bob, e.space, 0, 10, 0)
		wantCode(t, err, files.CodeNotFound)
		if err := e.svc.Delete(ctx, e.alice, f.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Restore(ctx, bob, f.ID, files.RestoreRequest{})
		wantCode(t, err, files.CodeNotFound)
		wantCode(t, e.svc.Purge(ctx, bob, f.ID), files.CodeNotFound)
		if e.read(t, mustRestore(t, e, f.ID)) != "s3cret" {
			t.Fatal("alice's file changed")
		}
	})
}

func mustRestore(t *testing.T, e *env, id string) string {
	t.Helper()
	n, err := e.svc.Restore(context.Background(), e.alice, id, files.RestoreRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return n.ID
}

// failingReader delivers some bytes, then fails like a dropped connection.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

func TestInterruptedUploadLeavesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		orig := e.upload(t, e.root, "keep.txt", "original")
		for _, tc := range []struct {
			name string
			req  files.UploadRequest
		}{
			{"new file, unknown size", files.UploadRequest{ParentID: e.root, Name: "cut.bin", Body: &failingReader{n: 300 << 10}, Size: -1}},
			{"new file, short body", files.UploadRequest{ParentID: e.root, Name: "cut.bin", Body: bytes.NewReader(make([]byte, 100)), Size: 1000}},
			{"overwrite", files.UploadRequest{NodeID: orig.ID, Body: &failingReader{n: 1 << 20}, Size: 2 << 20}},
		} {
			_, err := e.svc.Upload(ctx, e.alice, tc.req)
			wantCode(t, err, files.CodeIncomplete)
		}
		if _, err := e.svc.Resolve(ctx, e.alice, e.space, "/cut.bin"); files.ErrorCode(err) != files.CodeNotFound {
			t.Fatalf("an interrupted upload is visible: %v", err)
		}
		if got := e.read(t, orig.ID); got != "original" {
			t.Fatalf("interrupted overwrite changed the file to %q", got)
		}
		if vs, _ := e.svc.Versions(ctx, e.alice, orig.ID); len(vs) != 1 {
			t.Fatalf("interrupted overwrite added a version (%d)", len(vs))
		}
		if c := e.blobCount(t); c != 1 {
			t.Fatalf("%d blobs stored, want only the original's", c)
		}
		// A declared checksum that does not match is refused too.
		_, err := e.svc.Upload(ctx, e.alice, files.UploadRequest{ParentID: e.root, Name: "sum.txt",
			Body: strings.NewReader("abc"), Size: 3, SHA256: strings.Repeat("0", 64)})
		wantCode(t, err, files.CodeInvalidRequest)
		if c := e.blobCount(t); c != 1 {
			t.Fatalf("checksum mismatch left a blob (%d)", c)
		}
	})
}

func TestConcurrentUploadsOfOnePath(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const writers = 8
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := strings.Repeat(fmt.Sprint(i), 64<<10)
				_, errs[i] = e.svc.Upload(ctx, e.alice, files.UploadRequest{ParentID: e.root, Name: "race.txt",
					Body: strings.NewReader(body), Size: int64(len(body)), Conflict: files.ConflictFail})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case files.ErrorCode(err) != files.CodeConflict:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d uploads won, want exactly 1", ok)
		}
		n, err := e.svc.Resolve(ctx, e.alice, e.space, "/race.txt")
		if err != nil {
			t.Fatal(err)
		}
		content := e.read(t, n.ID)
		if len(content) != 64<<10 || strings.Count(content, content[:1]) != len(content) {
			t.Fatal("the winner's content is mixed with a loser's")
		}
		if c := e.blobCount(t); c != 1 {
			t.Fatalf("losers left %d blobs", c-1)
		}

		// With If-Match on the same ETag, one replaces and the rest get 412.
		etag := n.ETag
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.svc.Upload(ctx, e.alice, files.UploadRequest{NodeID: n.ID, Body: strings.NewReader("v2"), Size: 2, IfMatch: etag})
			}()
		}
		wg.Wait()
		ok = 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case files.ErrorCode(err) != files.CodePreconditionFailed:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d conditional uploads won, want 1", ok)
		}
	})
}

func TestChangesLongPoll(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		cur, err := e.svc.LatestCursor(ctx, e.alice, e.space)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan files.ChangeSet, 1)
		go func() {
			cs, err := e.svc.Changes(ctx, e.alice, e.space, cur, 100, 20*time.Second)
			if err != nil {
				t.Error(err)
			}
			done <- cs
		}()
		time.Sleep(50 * time.Millisecond)
		f := e.upload(t, e.root, "new.txt", "x")
		select {
		case cs := <-done:
			if len(cs.Changes) != 1 || cs.Changes[0].NodeID != f.ID || cs.Changes[0].Op != metadata.OpCreate || cs.Cursor <= cur {
				t.Fatalf("changes = %+v", cs)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("long poll did not wake up on a change")
		}
	})
}

func TestOpenMissingBlobIsAnError(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		f := e.upload(t, e.root, "f", "data")
		if err := e.blobs.Delete(context.Background(), f.BlobID); err != nil {
			t.Fatal(err)
		}
		_, _, err := e.svc.Open(context.Background(), e.alice, f.ID)
		if err == nil || !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestGarbageCollection(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		keep := e.upload(t, e.root, "keep.txt", "referenced")
		// An orphan, as a crash between storing a blob and committing its
		// row leaves behind.
		if err := e.blobs.Put(ctx, "orphanblob0000000000000000", strings.NewReader("lost"), 4); err != nil {
			t.Fatal(err)
		}
		st, err := e.svc.CollectGarbage(ctx, time.Hour)
		if err != nil || st.Deleted != 0 || st.Young != 1 {
			t.Fatalf("with a grace period the young orphan must stay: %+v %v", st, err)
		}
		st, err = e.svc.CollectGarbage(ctx, -time.Second)
		if err != nil || st.Deleted != 1 || st.Bytes != 4 || st.Scanned != 2 {
			t.Fatalf("gc = %+v, %v", st, err)
		}
		if e.read(t, keep.ID) != "referenced" {
			t.Fatal("gc deleted a referenced blob")
		}
		if _, err := e.blobs.Stat(ctx, "orphanblob0000000000000000"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatal("orphan still there")
		}
	})
}

func TestLeases(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ok, err := e.db.AcquireLease(ctx, "job", "node-a", time.Minute)
		if err != nil || !ok {
			t.Fatalf("first acquire: %v %v", ok, err)
		}
		if ok, _ := e.db.AcquireLease(ctx, "job", "node-b", time.Minute); ok {
			t.Fatal("node-b took a live lease")
		}
		if ok, _ := e.db.AcquireLease(ctx, "job", "node-a", time.Minute); !ok {
			t.Fatal("holder could not renew")
		}
		e.db.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
		if ok, _ := e.db.AcquireLease(ctx, "job", "node-b", time.Minute); !ok {
			t.Fatal("node-b could not take an expired lease")
		}
	})
}
