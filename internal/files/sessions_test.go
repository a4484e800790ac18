package files_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/storage/storagetest"
)

func TestResumableUploadSessions(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const chunk = 1 << 20
		data := storagetest.Random(3*chunk + 12345)
		sum := sha256.Sum256(data)
		sess, err := e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: "big.bin",
			Size: int64(len(data)), ChunkSize: chunk, SHA256: hex.EncodeToString(sum[:])})
		if err != nil {
			t.Fatal(err)
		}
		part := func(i int) []byte { return data[i*chunk : min(len(data), (i+1)*chunk)] }
		put := func(svc *files.Service, i int, b []byte) error {
			return svc.PutChunk(ctx, e.alice, sess.ID, i, bytes.NewReader(b), int64(len(b)))
		}
		// Out of order, and chunk 2 sent twice (a retry) with the first try
		// cut short.
		if err := put(e.svc, 3, part(3)); err != nil {
			t.Fatal(err)
		}
		if err := put(e.svc, 0, part(0)); err != nil {
			t.Fatal(err)
		}
		err = e.svc.PutChunk(ctx, e.alice, sess.ID, 2, bytes.NewReader(part(2)[:1000]), -1)
		wantCode(t, err, files.CodeIncomplete)
		// Wrong declared size is refused before reading.
		err = e.svc.PutChunk(ctx, e.alice, sess.ID, 2, bytes.NewReader(part(2)), 10)
		wantCode(t, err, files.CodeInvalidRequest)
		wantCode(t, e.svc.PutChunk(ctx, e.alice, sess.ID, 4, bytes.NewReader(nil), 0), files.CodeInvalidRequest)
		if err := put(e.svc, 2, part(2)); err != nil {
			t.Fatal(err)
		}
		// Finishing early names what is missing.
		_, err = e.svc.FinishUpload(ctx, e.alice, sess.ID)
		wantCode(t, err, files.CodeIncomplete)

		// Another user cannot see or touch the session.
		_, err = e.svc.UploadSession(ctx, e.bob, sess.ID)
		wantCode(t, err, files.CodeNotFound)
		wantCode(t, e.svc.PutChunk(ctx, e.bob, sess.ID, 1, bytes.NewReader(part(1)), chunk), files.CodeNotFound)

		// The session survives a restart: a new service on the same
		// database and storage carries on.
		svc2 := files.New(e.db, e.blobs, slog.New(slog.DiscardHandler))
		st, err := svc2.UploadSession(ctx, e.alice, sess.ID)
		if err != nil || len(st.Received) != 3 || st.Chunks != 4 || st.Bytes != 2*chunk+12345 {
			t.Fatalf("status after restart: %+v %v", st, err)
		}
		if st, got, err := svc2.UploadProgress(ctx, e.alice, sess.ID); err != nil || got != 3 || st.Chunks != 4 {
			t.Fatalf("progress after restart: %d of %d chunks, %v", got, st.Chunks, err)
		}
		_, _, err = svc2.UploadProgress(ctx, e.bob, sess.ID)
		wantCode(t, err, files.CodeNotFound)
		if err := put(svc2, 1, part(1)); err != nil {
			t.Fatal(err)
		}
		n, err := svc2.FinishUpload(ctx, e.alice, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n.Size != int64(len(data)) || n.SHA256 != hex.EncodeToString(sum[:]) || e.read(t, n.ID) != string(data) {
			t.Fatalf("finished file: size %d sha %s", n.Size, n.SHA256)
		}
		_, err = svc2.UploadSession(ctx, e.alice, sess.ID)
		wantCode(t, err, files.CodeNotFound)
		if c := e.blobCount(t); c != 1 {
			t.Fatalf("%d blobs after finishing, want 1", c)
		}
	})
}

func TestUploadSessionFailures(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		data := storagetest.Random(1<<20 + 5)
		start := func(name, sha string) string {
			sess, err := e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: name,
				Size: int64(len(data)), ChunkSize: 1 << 20, SHA256: sha})
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range [][]byte{data[:1<<20], data[1<<20:]} {
				if err := e.svc.PutChunk(ctx, e.alice, sess.ID, i, bytes.NewReader(b), int64(len(b))); err != nil {
					t.Fatal(err)
				}
			}
			return sess.ID
		}
		// A wrong declared checksum: refused, nothing saved, no blob left.
		id := start("bad.bin", hex.EncodeToString(make([]byte, 32)))
		_, err := e.svc.FinishUpload(ctx, e.alice, id)
		wantCode(t, err, files.CodeInvalidRequest)
		if _, err := e.svc.Resolve(ctx, e.alice, e.space, "/bad.bin"); files.ErrorCode(err) != files.CodeNotFound {
			t.Fatalf("a file with a bad checksum became visible: %v", err)
		}
		if c := e.blobCount(t); c != 0 {
			t.Fatalf("%d blobs left after a checksum failure", c)
		}
		// Abort deletes the chunks.
		id = start("aborted.bin", "")
		if err := e.svc.AbortUpload(ctx, e.alice, id); err != nil {
			t.Fatal(err)
		}
		if c := e.blobCount(t); c != 0 {
			t.Fatalf("%d blobs left after abort", c)
		}
		// Expiry removes abandoned sessions and their chunks.
		id = start("abandoned.bin", "")
		e.svc.UploadTTL = time.Hour
		e.db.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
		n, err := e.svc.ExpireUploads(ctx)
		if err != nil || n != 1 {
			t.Fatalf("expired %d, %v", n, err)
		}
		e.db.Now = time.Now
		_, err = e.svc.UploadSession(ctx, e.alice, id)
		wantCode(t, err, files.CodeNotFound)
		if c := e.blobCount(t); c != 0 {
			t.Fatalf("%d blobs left after expiry", c)
		}
		// Conflicts and bad requests are caught when the session starts.
		e.upload(t, e.root, "taken.txt", "x")
		_, err = e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: "taken.txt", Size: 5})
		wantCode(t, err, files.CodeConflict)
		_, err = e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: "x", Size: 10 << 30, ChunkSize: 1 << 20})
		wantCode(t, err, files.CodeInvalidRequest) // more than storage.MaxParts chunks
		_, err = e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: "x", Size: 5 << 20, ChunkSize: 1000})
		wantCode(t, err, files.CodeInvalidRequest)
		_, err = e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: "../x", Size: 1})
		wantCode(t, err, files.CodeInvalidName)
		// A 10 GiB file gets a chunk size that keeps it at 1000 parts.
		big, err := e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: "huge.iso", Size: 10 << 30})
		if err != nil || big.ChunkSize < (10<<30)/1000 || big.ChunkSize%(1<<20) != 0 {
			t.Fatalf("chunk size %d, %v", big.ChunkSize, err)
		}
		// Empty files work too: one empty chunk.
		empty, err := e.svc.CreateUploadSession(ctx, e.alice, files.SessionRequest{ParentID: e.root, Name: "empty", Size: 0})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.PutChunk(ctx, e.alice, empty.ID, 0, bytes.NewReader(nil), 0); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.FinishUpload(ctx, e.alice, empty.ID); err != nil || n.Size != 0 {
			t.Fatalf("empty: %v", err)
		}
		var fe *files.Error
		if !errors.As(err, &fe) && err != nil {
			t.Fatal(err)
		}
	})
}
