package swift

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	ncw "github.com/ncw/swift/v2"

	"github.com/veloxhq/velox/internal/storage"
)

var _ storage.Sweeper = (*Store)(nil)

// Sweep implements storage.Sweeper. It walks the segment containers and
// deletes segments older than olderThan that the manifest of their key does
// not list: those of uploads that died before writing their manifest, and
// of blobs that were overwritten. Segment names start with their key, and
// listings are sorted, so each manifest is fetched once.
func (s *Store) Sweep(ctx context.Context, olderThan time.Time) error {
	var containers []string
	err := s.list(ctx, "", s.prefix+"-segments-", func(e listEntry) error {
		if s.isSegmentContainer(e.Name) {
			containers = append(containers, e.Name)
		}
		return nil
	})
	if err != nil {
		return translate("sweep", "containers", err)
	}
	for _, c := range containers {
		if err := s.sweepContainer(ctx, c, olderThan); err != nil {
			return translate("sweep", c, err)
		}
	}
	return nil
}

func (s *Store) isSegmentContainer(name string) bool {
	p := s.prefix + "-segments-"
	return strings.HasPrefix(name, p) && s.isShardContainer(s.prefix+"-"+name[len(p):])
}

func (s *Store) sweepContainer(ctx context.Context, container string, olderThan time.Time) error {
	var (
		key     string
		old     []string // old segments of key
		garbage []string
	)
	flush := func() error {
		if len(old) == 0 {
			return nil
		}
		used, err := s.manifestSegments(ctx, key)
		if err != nil {
			return err
		}
		for _, name := range old {
			if !used["/"+container+"/"+name] {
				garbage = append(garbage, name)
			}
		}
		old = old[:0]
		return nil
	}
	err := s.list(ctx, container, "", func(e listEntry) error {
		k, _, ok := strings.Cut(e.Name, "/")
		if !ok || k == "parts" || !storage.ValidKey(k) {
			return nil // parts belong to upload sessions; the rest is not ours
		}
		if k != key {
			if err := flush(); err != nil {
				return err
			}
			key = k
		}
		mtime, err := time.Parse("2006-01-02T15:04:05.999999999", e.LastModified)
		if err == nil && mtime.Before(olderThan) {
			old = append(old, e.Name)
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	return s.forEach(ctx, len(garbage), func(i int) error {
		err := s.deleteObject(ctx, container, garbage[i], false)
		if isStatus(err, http.StatusNotFound) {
			return nil
		}
		return err
	})
}

// manifestSegments returns the segment paths (/container/object) listed by
// the manifest stored under key, and by its sub-manifests if it is a
// manifest of manifests (which are listed too), or none if key is missing
// or not a Static Large Object.
func (s *Store) manifestSegments(ctx context.Context, key string) (map[string]bool, error) {
	used := map[string]bool{}
	err := s.addManifestSegments(ctx, s.container(key), key, used, 0)
	return used, err
}

// maxManifestDepth is Swift's default max_slo_recursion_depth.
const maxManifestDepth = 10

func (s *Store) addManifestSegments(ctx context.Context, container, name string, used map[string]bool, depth int) error {
	entries, _, err := s.getManifest(ctx, container, name)
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := "/" + strings.TrimPrefix(e.Name, "/")
		used[path] = true
		if !e.SubSLO {
			continue
		}
		c, o, ok := strings.Cut(path[1:], "/")
		if !ok || depth+1 >= maxManifestDepth {
			return fmt.Errorf("manifest of %s: bad sub-manifest %q", name, e.Name)
		}
		if err := s.addManifestSegments(ctx, c, o, used, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// manifestEntry is one entry of a stored Static Large Object manifest, as
// ?multipart-manifest=get returns it.
type manifestEntry struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	Hash   string `json:"hash"`
	SubSLO bool   `json:"sub_slo"`
	Range  string `json:"range"`
}

// getManifest returns the manifest stored under container/name, or no
// entries (and isSLO false) when the object is missing or not a Static
// Large Object.
func (s *Store) getManifest(ctx context.Context, container, name string) (entries []manifestEntry, isSLO bool, err error) {
	err = s.retry(ctx, func() error {
		entries, isSLO = nil, false
		resp, h, err := s.call(ctx, ncw.RequestOpts{
			Container: container, ObjectName: name, Operation: "GET",
			Parameters: url.Values{"multipart-manifest": {"get"}},
		})
		if isStatus(err, http.StatusNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if !strings.EqualFold(h["X-Static-Large-Object"], "true") {
			return nil
		}
		// Swift caps a manifest at 8 MiB (max_manifest_size).
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&entries); err != nil {
			return fmt.Errorf("manifest of %s: %w", name, err)
		}
		if len(entries) == 0 {
			// Never true of a real manifest; refuse to guess.
			return fmt.Errorf("manifest of %s lists no segments", name)
		}
		isSLO = true
		return nil
	})
	return entries, isSLO, err
}
