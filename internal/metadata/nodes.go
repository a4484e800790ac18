package metadata

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Kind says whether a node is a folder or a file. Folders sort first.
type Kind int

const (
	KindFolder Kind = 1
	KindFile   Kind = 2
)

func (k Kind) String() string {
	if k == KindFolder {
		return "folder"
	}
	return "file"
}

// Node is a file or folder. A space's root folder has no parent and an
// empty name.
type Node struct {
	ID       string
	SpaceID  string
	ParentID string
	Name     string
	// NameFold is the case-folded name, used to find case-only clashes
	// and for search.
	NameFold    string
	Kind        Kind
	Size        int64 // files: content size; folders: total size below
	MTime       time.Time
	ETag        string
	VersionID   string
	ContentType string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CreatedBy   string
	ModifiedBy  string
	TrashedAt   time.Time // set on the node the user deleted
	TrashedBy   string
	// TrashRootID is set on a deleted node and everything below it: the
	// ID of the node the user deleted.
	TrashRootID string

	// From the current version (files only).
	BlobID string
	SHA256 string
}

// Live reports whether the node is not in the trash.
func (n *Node) Live() bool { return n.TrashRootID == "" }

// IsFolder reports whether n is a folder.
func (n *Node) IsFolder() bool { return n.Kind == KindFolder }

const nodeCols = `n.id, n.space_id, n.parent_id, n.name, n.name_fold, n.kind, n.size, n.mtime, n.etag, n.version_id,
	n.content_type, n.created_at, n.updated_at, n.created_by, n.modified_by, n.trashed_at, n.trashed_by, n.trash_root_id,
	v.blob_id, v.sha256`

const nodeFrom = ` FROM nodes n LEFT JOIN versions v ON v.id = n.version_id `

func scanNode(sc interface{ Scan(...any) error }) (*Node, error) {
	var n Node
	var parent, version, trashedBy, trashRoot, blob, sha sql.NullString
	var mtime, created, updated int64
	var trashed sql.NullInt64
	if err := sc.Scan(&n.ID, &n.SpaceID, &parent, &n.Name, &n.NameFold, &n.Kind, &n.Size, &mtime, &n.ETag, &version,
		&n.ContentType, &created, &updated, &n.CreatedBy, &n.ModifiedBy, &trashed, &trashedBy, &trashRoot,
		&blob, &sha); err != nil {
		return nil, err
	}
	n.ParentID, n.VersionID, n.TrashedBy, n.TrashRootID = parent.String, version.String, trashedBy.String, trashRoot.String
	n.BlobID, n.SHA256 = blob.String, sha.String
	n.MTime, n.CreatedAt, n.UpdatedAt, n.TrashedAt = fromMicros(mtime), fromMicros(created), fromMicros(updated), nullTime(trashed)
	return &n, nil
}

func (q q) scanNodes(rows *sql.Rows, err error) ([]*Node, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// InsertNode inserts n. It returns ErrConflict if a live sibling has the
// same name.
func (q q) InsertNode(ctx context.Context, n *Node) error {
	if n.ID == "" {
		n.ID = NewID()
	}
	if n.ETag == "" {
		n.ETag = NewID()
	}
	now := q.now()
	n.CreatedAt, n.UpdatedAt = now.UTC(), now.UTC()
	if n.MTime.IsZero() {
		n.MTime = now
	}
	if n.NameFold == "" {
		n.NameFold = strings.ToLower(n.Name)
	}
	_, err := q.exec(ctx, `INSERT INTO nodes (id, space_id, parent_id, name, name_fold, kind, size, mtime, etag, version_id,
		content_type, created_at, updated_at, created_by, modified_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.SpaceID, nullString(n.ParentID), n.Name, n.NameFold, n.Kind, n.Size, micros(n.MTime), n.ETag,
		nullString(n.VersionID), n.ContentType, micros(now), micros(now), n.CreatedBy, n.ModifiedBy)
	if err != nil {
		return fmt.Errorf("insert node %q: %w", n.Name, err)
	}
	return nil
}

// NodeByID returns a node, live or trashed, or ErrNotFound.
func (q q) NodeByID(ctx context.Context, id string) (*Node, error) {
	n, err := scanNode(q.row(ctx, `SELECT `+nodeCols+nodeFrom+`WHERE n.id = ?`, id))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return n, nil
}

// LiveChild returns the live child of parentID named name, or ErrNotFound.
func (q q) LiveChild(ctx context.Context, parentID, name string) (*Node, error) {
	n, err := scanNode(q.row(ctx, `SELECT `+nodeCols+nodeFrom+`WHERE n.parent_id = ? AND n.name = ? AND n.trash_root_id IS NULL`, parentID, name))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return n, nil
}

// CaseClash returns the name of a live child of parentID, other than
// exceptID, whose name equals name except for case, or "" if there is none.
func (q q) CaseClash(ctx context.Context, parentID, name, fold, exceptID string) (string, error) {
	var other string
	err := q.row(ctx, `SELECT name FROM nodes WHERE parent_id = ? AND name_fold = ? AND name <> ? AND id <> ? AND trash_root_id IS NULL LIMIT 1`,
		parentID, fold, name, exceptID).Scan(&other)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return other, q.d.translate(err)
}

// Sort orders for listings. Folders always come first.
const (
	SortName  = "name"
	SortSize  = "size"
	SortMTime = "mtime"
)

// ListOptions select a page of a folder listing.
type ListOptions struct {
	Sort  string // SortName (default), SortSize or SortMTime
	Desc  bool
	Limit int // 0 means no limit
	// After is the last entry of the previous page; nil for the first.
	After *Cursor
}

// Cursor marks a position in a sorted listing.
type Cursor struct {
	Kind Kind
	Key  int64 // size or mtime (µs) for those sorts
	Name string
}

// CursorFor returns the cursor that follows n in a listing sorted by sort.
func CursorFor(n *Node, sort string) Cursor {
	c := Cursor{Kind: n.Kind, Name: n.Name}
	switch sort {
	case SortSize:
		c.Key = n.Size
	case SortMTime:
		c.Key = micros(n.MTime)
	}
	return c
}

// Children lists the live children of a folder, a page at a time.
// Pagination is by key set, so every page costs the same however deep into
// the folder it is.
func (q q) Children(ctx context.Context, parentID string, opt ListOptions) ([]*Node, error) {
	col := ""
	switch opt.Sort {
	case SortSize:
		col = "n.size"
	case SortMTime:
		col = "n.mtime"
	case SortName, "":
	default:
		return nil, fmt.Errorf("metadata: unknown sort %q", opt.Sort)
	}
	dir, cmp := "ASC", ">"
	if opt.Desc {
		dir, cmp = "DESC", "<"
	}
	query := `SELECT ` + nodeCols + nodeFrom + `WHERE n.parent_id = ? AND n.trash_root_id IS NULL`
	args := []any{parentID}
	if c := opt.After; c != nil {
		if col == "" {
			query += ` AND (n.kind > ? OR (n.kind = ? AND n.name ` + cmp + ` ?))`
			args = append(args, c.Kind, c.Kind, c.Name)
		} else {
			query += ` AND (n.kind > ? OR (n.kind = ? AND (` + col + ` ` + cmp + ` ? OR (` + col + ` = ? AND n.name ` + cmp + ` ?))))`
			args = append(args, c.Kind, c.Kind, c.Key, c.Key, c.Name)
		}
	}
	query += ` ORDER BY n.kind ASC, `
	if col != "" {
		query += col + ` ` + dir + `, `
	}
	query += `n.name ` + dir
	if opt.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, opt.Limit)
	}
	return q.scanNodes(q.query(ctx, query, args...))
}

// CountChildren returns the number of live children of a folder.
func (q q) CountChildren(ctx context.Context, parentID string) (int64, error) {
	var n int64
	err := q.row(ctx, `SELECT COUNT(*) FROM nodes WHERE parent_id = ? AND trash_root_id IS NULL`, parentID).Scan(&n)
	return n, err
}

// SetContent points a file at a new version.
func (q q) SetContent(ctx context.Context, id, versionID string, size int64, mtime time.Time, etag, contentType, by string) error {
	_, err := q.exec(ctx, `UPDATE nodes SET version_id = ?, size = ?, mtime = ?, etag = ?, content_type = ?, modified_by = ?, updated_at = ?
		WHERE id = ?`, versionID, size, micros(mtime), etag, contentType, by, micros(q.now()), id)
	return err
}

// SetMTime changes a node's modification time (WebDAV clients set it).
func (q q) SetMTime(ctx context.Context, id string, mtime time.Time) error {
	_, err := q.exec(ctx, `UPDATE nodes SET mtime = ?, updated_at = ? WHERE id = ?`, micros(mtime), micros(q.now()), id)
	return err
}

// SetETag replaces a node's ETag.
func (q q) SetETag(ctx context.Context, id, etag string) error {
	_, err := q.exec(ctx, `UPDATE nodes SET etag = ?, updated_at = ? WHERE id = ?`, etag, micros(q.now()), id)
	return err
}

// MoveNode gives a node a new parent and name. It is one row update
// whatever the size of the subtree. It returns ErrConflict if a live
// sibling already has the name.
func (q q) MoveNode(ctx context.Context, id, parentID, name, fold, by string) error {
	_, err := q.exec(ctx, `UPDATE nodes SET parent_id = ?, name = ?, name_fold = ?, modified_by = ?, updated_at = ? WHERE id = ?`,
		parentID, name, fold, by, micros(q.now()), id)
	return err
}

// TouchAncestors gives folderID and every folder above it a new ETag and
// adds sizeDelta to their sizes. Sync clients rely on a folder's ETag
// changing whenever anything below it changes.
func (q q) TouchAncestors(ctx context.Context, folderID string, sizeDelta int64) error {
	_, err := q.exec(ctx, `WITH RECURSIVE anc(id, parent_id) AS (
			SELECT id, parent_id FROM nodes WHERE id = ?
			UNION ALL
			SELECT n.id, n.parent_id FROM nodes n JOIN anc ON n.id = anc.parent_id
		)
		UPDATE nodes SET etag = ?, size = size + ?, updated_at = ? WHERE id IN (SELECT id FROM anc)`,
		folderID, NewID(), sizeDelta, micros(q.now()))
	return err
}

// Ancestors returns the IDs from id up to the root, id first.
func (q q) Ancestors(ctx context.Context, id string) ([]string, error) {
	rows, err := q.query(ctx, `WITH RECURSIVE anc(id, parent_id, depth) AS (
			SELECT id, parent_id, 0 FROM nodes WHERE id = ?
			UNION ALL
			SELECT n.id, n.parent_id, anc.depth + 1 FROM nodes n JOIN anc ON n.id = anc.parent_id
		)
		SELECT id FROM anc ORDER BY depth`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		ids = append(ids, s)
	}
	return ids, rows.Err()
}

// PathNodes returns the nodes from the root down to id, root first.
func (q q) PathNodes(ctx context.Context, id string) ([]*Node, error) {
	nodes, err := q.scanNodes(q.query(ctx, `WITH RECURSIVE anc(id, parent_id, depth) AS (
			SELECT id, parent_id, 0 FROM nodes WHERE id = ?
			UNION ALL
			SELECT n.id, n.parent_id, anc.depth + 1 FROM nodes n JOIN anc ON n.id = anc.parent_id
		)
		SELECT `+nodeCols+` FROM anc JOIN nodes n ON n.id = anc.id LEFT JOIN versions v ON v.id = n.version_id
		ORDER BY anc.depth DESC`, id))
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, ErrNotFound
	}
	return nodes, nil
}

// Subtree returns id and every node below it that is in the same state
// (live, or trashed under the same trash root), parents before children.
func (q q) Subtree(ctx context.Context, id string) ([]*Node, error) {
	return q.scanNodes(q.query(ctx, `WITH RECURSIVE sub(id, depth) AS (
			SELECT id, 0 FROM nodes WHERE id = ?
			UNION ALL
			SELECT n.id, sub.depth + 1 FROM nodes n JOIN sub ON n.parent_id = sub.id
			WHERE n.trash_root_id IS NULL OR n.trash_root_id = ?
		)
		SELECT `+nodeCols+` FROM sub JOIN nodes n ON n.id = sub.id LEFT JOIN versions v ON v.id = n.version_id
		ORDER BY sub.depth`, id, id))
}

// TrashSubtree moves id and every live node below it to the trash.
func (q q) TrashSubtree(ctx context.Context, id, by string) error {
	now := micros(q.now())
	if _, err := q.exec(ctx, `WITH RECURSIVE sub(id) AS (
			SELECT id FROM nodes WHERE id = ?
			UNION ALL
			SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id WHERE n.trash_root_id IS NULL
		)
		UPDATE nodes SET trash_root_id = ? WHERE id IN (SELECT id FROM sub)`, id, id); err != nil {
		return err
	}
	_, err := q.exec(ctx, `UPDATE nodes SET trashed_at = ?, trashed_by = ?, updated_at = ? WHERE id = ?`, now, by, now, id)
	return err
}

// RestoreSubtree takes id and what was deleted with it out of the trash,
// optionally under a new parent and name. It returns ErrConflict if a live
// sibling has the name.
func (q q) RestoreSubtree(ctx context.Context, id, parentID, name, fold string) error {
	if _, err := q.exec(ctx, `UPDATE nodes SET parent_id = ?, name = ?, name_fold = ?, trash_root_id = NULL, trashed_at = NULL,
		trashed_by = NULL, updated_at = ? WHERE id = ?`, parentID, name, fold, micros(q.now()), id); err != nil {
		return err
	}
	_, err := q.exec(ctx, `UPDATE nodes SET trash_root_id = NULL WHERE trash_root_id = ?`, id)
	return err
}

// Trash lists the nodes users deleted in a space, newest first.
func (q q) Trash(ctx context.Context, spaceID string, limit int) ([]*Node, error) {
	query := `SELECT ` + nodeCols + nodeFrom + `WHERE n.space_id = ? AND n.trashed_at IS NOT NULL ORDER BY n.trashed_at DESC, n.id`
	if limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, limit)
	}
	return q.scanNodes(q.query(ctx, query, spaceID))
}

// Search finds live nodes of a space whose folded name contains fold.
func (q q) Search(ctx context.Context, spaceID, fold string, limit int) ([]*Node, error) {
	pattern := "%" + escapeLike(fold) + "%"
	query := `SELECT ` + nodeCols + nodeFrom + `WHERE n.space_id = ? AND n.trash_root_id IS NULL AND n.parent_id IS NOT NULL
		AND n.name_fold LIKE ? ESCAPE '\' ORDER BY n.kind, n.name_fold, n.id`
	if limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, limit)
	}
	return q.scanNodes(q.query(ctx, query, spaceID, pattern))
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// DeleteSubtree removes id and everything below it, with their versions
// and properties, and returns the IDs of blobs no version references any
// more (their rows are deleted too; the caller deletes the contents after
// committing).
func (q q) DeleteSubtree(ctx context.Context, id string) ([]string, error) {
	const sub = `WITH RECURSIVE sub(id) AS (
			SELECT id FROM nodes WHERE id = ?
			UNION ALL
			SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id
		) `
	rows, err := q.query(ctx, sub+`SELECT DISTINCT v.blob_id FROM versions v WHERE v.node_id IN (SELECT id FROM sub)`, id)
	if err != nil {
		return nil, err
	}
	var blobs []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, err
		}
		blobs = append(blobs, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, stmt := range []string{
		`DELETE FROM dead_props WHERE node_id IN (SELECT id FROM sub)`,
		`UPDATE nodes SET version_id = NULL WHERE id IN (SELECT id FROM sub)`,
		`DELETE FROM versions WHERE node_id IN (SELECT id FROM sub)`,
		`DELETE FROM nodes WHERE id IN (SELECT id FROM sub)`,
	} {
		if _, err := q.exec(ctx, sub+stmt, id); err != nil {
			return nil, err
		}
	}
	return q.dropUnreferencedBlobs(ctx, blobs)
}
