package metadata

import (
	"context"
	"strings"
)

// ChildProps returns the dead properties of those ids that are children of
// folder parentID, keyed by node ID. A WebDAV listing needs them for a whole
// page of children; one query per page keeps a large folder cheap. IDs that
// are not children of parentID are ignored.
func (q q) ChildProps(ctx context.Context, parentID string, ids []string) (map[string][]Prop, error) {
	out := map[string][]Prop{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, parentID)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.query(ctx, `SELECT p.node_id, p.ns, p.name, p.value FROM dead_props p JOIN nodes n ON n.id = p.node_id
		WHERE n.parent_id = ? AND p.node_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY p.node_id, p.ns, p.name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var p Prop
		if err := rows.Scan(&id, &p.NS, &p.Name, &p.Value); err != nil {
			return nil, err
		}
		out[id] = append(out[id], p)
	}
	return out, rows.Err()
}
