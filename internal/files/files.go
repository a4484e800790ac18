// Package files is the domain service of Velox: the file tree, its
// contents, versions and trash, and who may do what with them. Every
// operation checks the caller's access to the space first; an ID alone
// never grants access. Contents are written to the blob store fully before
// the metadata that makes them visible is committed, so a failed or
// interrupted upload never leaves a half-written file.
package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
)

// User is an authenticated caller.
type User = metadata.User

// Node is a file or folder.
type Node = metadata.Node

// Role is what a user may do in a space.
type Role int

const (
	RoleNone Role = iota
	RoleViewer
	RoleEditor
	RoleManager
)

func (r Role) String() string {
	return [...]string{"none", "viewer", "editor", "manager"}[r]
}

// CanWrite reports whether the role may change files.
func (r Role) CanWrite() bool { return r >= RoleEditor }

// Service implements file operations on top of the metadata and blob
// stores.
type Service struct {
	DB     *metadata.DB
	Blobs  storage.Store
	Logger *slog.Logger

	// Access decides a user's role in a space that is not their own
	// personal space (team spaces, shares). New sets it to GroupAccess;
	// nil means no access.
	Access func(ctx context.Context, u *User, s *metadata.Space) (Role, error)
	// Quota, if set, returns an error (code CodeQuotaExceeded) when a
	// space cannot take delta more bytes. New sets it to SpaceQuota.
	Quota func(ctx context.Context, spaceID string, delta int64) error
	// DefaultQuota is the quota of personal spaces whose owner has no
	// override, in bytes; 0 means unlimited (used by SpaceQuota).
	DefaultQuota int64

	// UploadTTL is how long an unfinished resumable upload lives
	// (DefaultUploadTTL if zero).
	UploadTTL time.Duration

	changes notifier
	pending sync.Map // *metadata.Tx → *[]string: spaces to notify after commit
}

// New returns a Service.
func New(db *metadata.DB, blobs storage.Store, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Service{DB: db, Blobs: blobs, Logger: logger}
	s.Access, s.Quota = s.GroupAccess, s.SpaceQuota
	return s
}

// SpaceView is a space with the caller's role in it.
type SpaceView struct {
	*metadata.Space
	Role Role
}

// Spaces lists the spaces the user can see.
func (s *Service) Spaces(ctx context.Context, u *User) ([]SpaceView, error) {
	spaces, err := s.DB.SpacesOwnedBy(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]SpaceView, 0, len(spaces))
	for _, sp := range spaces {
		out = append(out, SpaceView{Space: sp, Role: RoleManager})
	}
	team, err := s.teamSpaces(ctx, u)
	if err != nil {
		return nil, err
	}
	return append(out, team...), nil
}

// Space returns a space the user can see, with their role.
func (s *Service) Space(ctx context.Context, u *User, spaceID string) (SpaceView, error) {
	sp, err := s.DB.SpaceByID(ctx, spaceID)
	if errors.Is(err, metadata.ErrNotFound) {
		return SpaceView{}, errorf(CodeNotFound, "No such space.")
	}
	if err != nil {
		return SpaceView{}, err
	}
	role, err := s.role(ctx, u, sp)
	if err != nil {
		return SpaceView{}, err
	}
	if role == RoleNone {
		// Not 403: a space the user cannot see does not exist for them.
		return SpaceView{}, errorf(CodeNotFound, "No such space.")
	}
	return SpaceView{Space: sp, Role: role}, nil
}

// PersonalSpace returns the user's own space.
func (s *Service) PersonalSpace(ctx context.Context, u *User) (SpaceView, error) {
	sp, err := s.DB.PersonalSpace(ctx, u.ID)
	if err != nil {
		return SpaceView{}, fmt.Errorf("personal space of %s: %w", u.Username, err)
	}
	return SpaceView{Space: sp, Role: RoleManager}, nil
}

func (s *Service) role(ctx context.Context, u *User, sp *metadata.Space) (Role, error) {
	if u == nil || u.Disabled {
		return RoleNone, nil
	}
	if sp.Kind == metadata.SpacePersonal && sp.OwnerID == u.ID {
		return RoleManager, nil
	}
	if s.Access != nil {
		return s.Access(ctx, u, sp)
	}
	return RoleNone, nil
}

// node loads a live node and checks the user may see it (want == RoleViewer)
// or change it (RoleEditor).
func (s *Service) node(ctx context.Context, u *User, id string, want Role) (*Node, SpaceView, error) {
	n, err := s.DB.NodeByID(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, SpaceView{}, errNotFound
	}
	if err != nil {
		return nil, SpaceView{}, err
	}
	sv, err := s.Space(ctx, u, n.SpaceID)
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			return nil, SpaceView{}, errNotFound
		}
		return nil, SpaceView{}, err
	}
	if !n.Live() {
		return nil, SpaceView{}, errNotFound
	}
	if sv.Role < want {
		return nil, SpaceView{}, errorf(CodeForbidden, "You have read-only access to %q.", sv.Name)
	}
	return n, sv, nil
}

// Get returns a live node the user can see.
func (s *Service) Get(ctx context.Context, u *User, id string) (*Node, error) {
	n, _, err := s.node(ctx, u, id, RoleViewer)
	return n, err
}

// GetWithRole returns a live node and the user's role in its space.
func (s *Service) GetWithRole(ctx context.Context, u *User, id string) (*Node, Role, error) {
	n, sv, err := s.node(ctx, u, id, RoleViewer)
	return n, sv.Role, err
}

// Resolve finds the live node at path in a space.
func (s *Service) Resolve(ctx context.Context, u *User, spaceID, path string) (*Node, error) {
	sv, err := s.Space(ctx, u, spaceID)
	if err != nil {
		return nil, err
	}
	names, err := SplitPath(path)
	if err != nil {
		return nil, err
	}
	return s.walk(ctx, sv.RootID, names)
}

func (s *Service) walk(ctx context.Context, rootID string, names []string) (*Node, error) {
	n, err := s.DB.NodeByID(ctx, rootID)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if !n.IsFolder() {
			return nil, errNotFound
		}
		n, err = s.DB.LiveChild(ctx, n.ID, name)
		if errors.Is(err, metadata.ErrNotFound) {
			return nil, errNotFound
		}
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Path returns the path of a node within its space, "/" for the root.
func (s *Service) Path(ctx context.Context, u *User, id string) (string, error) {
	if _, _, err := s.node(ctx, u, id, RoleViewer); err != nil {
		return "", err
	}
	nodes, err := s.DB.PathNodes(ctx, id)
	if err != nil {
		return "", err
	}
	p := ""
	for _, n := range nodes[1:] {
		p += "/" + n.Name
	}
	if p == "" {
		p = "/"
	}
	return p, nil
}

// Breadcrumbs returns the folders from the space root down to id.
func (s *Service) Breadcrumbs(ctx context.Context, u *User, id string) ([]*Node, error) {
	if _, _, err := s.node(ctx, u, id, RoleViewer); err != nil {
		return nil, err
	}
	return s.DB.PathNodes(ctx, id)
}

// Page is one page of a folder listing.
type Page struct {
	Items []*Node
	// Next is the cursor of the next page, nil on the last page.
	Next *metadata.Cursor
}

// MaxPageSize bounds a listing page unless the caller asks for everything.
const MaxPageSize = 1000

// List returns a page of a folder's children. limit <= 0 means the whole
// folder.
func (s *Service) List(ctx context.Context, u *User, folderID string, opt metadata.ListOptions) (Page, error) {
	n, _, err := s.node(ctx, u, folderID, RoleViewer)
	if err != nil {
		return Page{}, err
	}
	if !n.IsFolder() {
		return Page{}, errorf(CodeInvalidRequest, "%q is a file, not a folder.", n.Name)
	}
	want := opt.Limit
	if want > 0 {
		opt.Limit = want + 1 // one more tells whether there is a next page
	}
	items, err := s.DB.Children(ctx, n.ID, opt)
	if err != nil {
		return Page{}, errorf(CodeInvalidRequest, "%v", err)
	}
	var page Page
	if want > 0 && len(items) > want {
		items = items[:want]
		c := metadata.CursorFor(items[len(items)-1], opt.Sort)
		page.Next = &c
	}
	page.Items = items
	return page, nil
}

// Search finds live files and folders whose name contains query.
func (s *Service) Search(ctx context.Context, u *User, spaceID, query string, limit int) ([]*Node, error) {
	if _, err := s.Space(ctx, u, spaceID); err != nil {
		return nil, err
	}
	if query == "" {
		return nil, errorf(CodeInvalidRequest, "The search text is empty.")
	}
	if limit <= 0 || limit > MaxPageSize {
		limit = 200
	}
	return s.DB.Search(ctx, spaceID, FoldName(query), limit)
}

// notifier wakes long-polling change readers of a space on this node.
// Other app nodes' writers are seen by the readers' periodic re-check.
type notifier struct {
	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

func (n *notifier) wait(spaceID string) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waiters == nil {
		n.waiters = map[string][]chan struct{}{}
	}
	ch := make(chan struct{})
	n.waiters[spaceID] = append(n.waiters[spaceID], ch)
	return ch
}

func (n *notifier) notify(spaceID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ch := range n.waiters[spaceID] {
		close(ch)
	}
	delete(n.waiters, spaceID)
}

// ChangeSet is what Changes returns.
type ChangeSet struct {
	Changes []*metadata.Change
	Cursor  int64
	More    bool
}

// Changes returns the journal entries of a space after cursor. If there
// are none and wait > 0, it waits up to wait for one (long-poll).
func (s *Service) Changes(ctx context.Context, u *User, spaceID string, cursor int64, limit int, wait time.Duration) (ChangeSet, error) {
	if _, err := s.Space(ctx, u, spaceID); err != nil {
		return ChangeSet{}, err
	}
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	deadline := time.Now().Add(wait)
	for {
		ch := s.changes.wait(spaceID)
		list, err := s.DB.ChangesSince(ctx, spaceID, cursor, limit+1)
		if err != nil {
			return ChangeSet{}, err
		}
		if len(list) > 0 || time.Now().After(deadline) {
			cs := ChangeSet{Cursor: cursor}
			if len(list) > limit {
				list, cs.More = list[:limit], true
			}
			if len(list) > 0 {
				cs.Cursor = list[len(list)-1].Seq
			}
			cs.Changes = list
			return cs, nil
		}
		timer := time.NewTimer(min(time.Until(deadline), 2*time.Second))
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ChangeSet{}, ctx.Err()
		}
		timer.Stop()
	}
}

// LatestCursor returns the current end of a space's journal.
func (s *Service) LatestCursor(ctx context.Context, u *User, spaceID string) (int64, error) {
	if _, err := s.Space(ctx, u, spaceID); err != nil {
		return 0, err
	}
	return s.DB.LatestChange(ctx, spaceID)
}

// tx runs fn in a transaction and maps metadata conflicts to a user error.
//
// Long-polling change readers of the spaces the transaction changed are
// woken only after it commits, so that they find the change at once.
func (s *Service) tx(ctx context.Context, fn func(tx *metadata.Tx) error) error {
	var changed []string
	err := s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		changed = changed[:0] // a retried attempt starts afresh
		s.pending.Store(tx, &changed)
		defer s.pending.Delete(tx)
		return fn(tx)
	})
	if err == nil {
		for _, space := range changed {
			s.changes.notify(space)
		}
	}
	if errors.Is(err, metadata.ErrConflict) && ErrorCode(err) == "" {
		return &Error{Code: CodeConflict, Message: "Another item with that name was created at the same time.", Err: err}
	}
	return err
}
