package metadata

import "context"

// Prop is a WebDAV dead property: an XML name and its raw inner XML.
type Prop struct {
	NS    string
	Name  string
	Value string
}

// Props returns a node's dead properties.
func (q q) Props(ctx context.Context, nodeID string) ([]Prop, error) {
	rows, err := q.query(ctx, `SELECT ns, name, value FROM dead_props WHERE node_id = ? ORDER BY ns, name`, nodeID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Prop
	for rows.Next() {
		var p Prop
		if err := rows.Scan(&p.NS, &p.Name, &p.Value); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SetProp sets or replaces a dead property.
func (q q) SetProp(ctx context.Context, nodeID string, p Prop) error {
	_, err := q.exec(ctx, `INSERT INTO dead_props (node_id, ns, name, value) VALUES (?, ?, ?, ?)
		ON CONFLICT (node_id, ns, name) DO UPDATE SET value = excluded.value`, nodeID, p.NS, p.Name, p.Value)
	return err
}

// RemoveProp deletes a dead property; removing a missing one is not an error.
func (q q) RemoveProp(ctx context.Context, nodeID, ns, name string) error {
	_, err := q.exec(ctx, `DELETE FROM dead_props WHERE node_id = ? AND ns = ? AND name = ?`, nodeID, ns, name)
	return err
}
