package ldap

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/veloxhq/velox/auth"
)

// Active Directory userAccountControl flags.
const (
	uacAccountDisable = 0x0002
	uacLockout        = 0x0010
)

// Authenticate implements auth.Authenticator. It returns auth.ErrUnknownUser
// when no entry matches, auth.ErrInvalidCredentials for a wrong password,
// auth.ErrDisabled/auth.ErrLocked for accounts the directory refuses or
// marks so (only reported once the directory has judged the password, where
// the protocol lets us tell), and auth.ErrUnavailable when the directory
// cannot be reached.
func (p *Provider) Authenticate(ctx context.Context, username, password string) (*auth.Identity, error) {
	// Checked before anything is sent: a simple bind with a DN and an
	// empty password is an "unauthenticated bind" that servers accept.
	if password == "" {
		return nil, auth.ErrInvalidCredentials
	}
	if err := checkUsername(username); err != nil {
		return nil, err
	}
	e, err := p.findUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if err := p.verifyPassword(ctx, e.DN, password); err != nil {
		return nil, err
	}
	// The password is right; now the account's state may be told.
	if err := p.accountState(e); err != nil {
		return nil, err
	}
	id := p.identity(e)
	id.Groups, err = p.Groups(ctx, e.DN)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// Lookup returns the identity of username (as it would log in) with its
// groups, without a password; for refreshing one user. It returns
// auth.ErrUnknownUser if no entry matches, auth.ErrDisabled/ErrLocked if
// the entry says so.
func (p *Provider) Lookup(ctx context.Context, username string) (*auth.Identity, error) {
	if err := checkUsername(username); err != nil {
		return nil, err
	}
	e, err := p.findUser(ctx, username)
	if err != nil {
		return nil, err
	}
	id := p.identity(e)
	if id.Groups, err = p.Groups(ctx, e.DN); err != nil {
		return nil, err
	}
	return id, p.accountState(e)
}

// checkUsername rejects what cannot be a login name before it gets near
// a filter. Escaping makes filters safe; this keeps junk off the wire.
func checkUsername(u string) error {
	switch {
	case u == "":
		return fmt.Errorf("%w: empty login name", auth.ErrUnknownUser)
	case len(u) > maxUsernameLen:
		return fmt.Errorf("%w: login name longer than %d bytes", auth.ErrUnknownUser, maxUsernameLen)
	case !utf8.ValidString(u):
		return fmt.Errorf("%w: login name is not UTF-8", auth.ErrUnknownUser)
	case strings.ContainsFunc(u, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: login name contains control characters", auth.ErrUnknownUser)
	}
	return nil
}

// userAttrs are the attributes fetched for a user entry.
func (p *Provider) userAttrs() []string {
	attrs := append([]string{}, p.cfg.LoginAttributes...)
	for _, a := range []string{p.cfg.UsernameAttr, p.cfg.DisplayNameAttr, p.cfg.EmailAttr, p.cfg.IDAttr} {
		if a != "" {
			attrs = append(attrs, a)
		}
	}
	// State attributes; a server ignores the ones its schema lacks.
	return append(attrs, "userAccountControl", "lockoutTime", "pwdAccountLockedTime")
}

// userFilter matches username against any login attribute.
func (p *Provider) userFilter(username string) string {
	esc := goldap.EscapeFilter(username)
	var b strings.Builder
	b.WriteString("(&")
	b.WriteString(p.cfg.UserFilter)
	b.WriteString("(|")
	for _, a := range p.cfg.LoginAttributes {
		b.WriteString("(" + a + "=" + esc + ")")
	}
	b.WriteString("))")
	return b.String()
}

// findUser returns the single entry for username.
func (p *Provider) findUser(ctx context.Context, username string) (*goldap.Entry, error) {
	req := goldap.NewSearchRequest(p.cfg.UserBase, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, 0, false, p.userFilter(username), p.userAttrs(), nil)
	var res *goldap.SearchResult
	err := p.withConn(ctx, func(c *goldap.Conn) error {
		var err error
		res, err = p.search(c, req)
		if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
			return nil // two entries were found, dealt with below
		}
		return err
	})
	if err != nil {
		if errors.Is(err, auth.ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("ldap: search user: %w", err)
	}
	switch len(res.Entries) {
	case 0:
		return nil, auth.ErrUnknownUser
	case 1:
		return res.Entries[0], nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrAmbiguous, username)
	}
}

// adDataCode finds the sub-code in an Active Directory bind error such
// as "80090308: LdapErr: ..., comment: AcceptSecurityContext error, data
// 52e, v1db1".
var adDataCode = regexp.MustCompile(`\bdata ([0-9a-fA-F]+)\b`)

// verifyPassword binds as dn on its own connection, which is then closed:
// a connection bound as a user never goes back to the service pool.
func (p *Provider) verifyPassword(ctx context.Context, dn, password string) error {
	c, err := p.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p.binds.Add(1)
	res, err := c.SimpleBind(&goldap.SimpleBindRequest{
		Username: dn,
		Password: password,
		// Asks OpenLDAP's ppolicy overlay why a bind failed; others ignore it.
		Controls: []goldap.Control{goldap.NewControlBeheraPasswordPolicy()},
	})
	if err == nil {
		return nil
	}
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		if isConnError(err) {
			return unavailable("user bind", err)
		}
		return fmt.Errorf("ldap: user bind: %w", err)
	}
	if res != nil {
		if pp, ok := goldap.FindControl(res.Controls, goldap.ControlTypeBeheraPasswordPolicy).(*goldap.ControlBeheraPasswordPolicy); ok {
			switch pp.Error {
			case 1: // accountLocked
				return fmt.Errorf("%w: the directory reports the account locked", auth.ErrLocked)
			case 0, 2: // passwordExpired, changeAfterReset
				return ErrPasswordExpired
			}
		}
	}
	if m := adDataCode.FindStringSubmatch(err.Error()); m != nil {
		switch strings.ToLower(m[1]) {
		case "533":
			return fmt.Errorf("%w: the directory reports the account disabled", auth.ErrDisabled)
		case "775":
			return fmt.Errorf("%w: the directory reports the account locked out", auth.ErrLocked)
		case "532", "773", "701":
			return ErrPasswordExpired
		case "530", "531":
			return fmt.Errorf("%w: logon not permitted at this time or from this workstation", auth.ErrDisabled)
		}
	}
	return auth.ErrInvalidCredentials
}

// accountState reports an entry's disabled or locked flags. Active
// Directory refuses those binds anyway (data 533/775); this catches
// directories that let such binds through. AD's lockoutTime is not used:
// it stays set after the lockout has expired, until the next logon.
func (p *Provider) accountState(e *goldap.Entry) error {
	if v := e.GetAttributeValue("userAccountControl"); v != "" {
		if uac, err := strconv.ParseInt(v, 10, 64); err == nil {
			if uac&uacAccountDisable != 0 {
				return fmt.Errorf("%w: userAccountControl has ACCOUNTDISABLE", auth.ErrDisabled)
			}
			if uac&uacLockout != 0 {
				return fmt.Errorf("%w: userAccountControl has LOCKOUT", auth.ErrLocked)
			}
		}
	}
	if e.GetAttributeValue("pwdAccountLockedTime") != "" {
		return fmt.Errorf("%w: pwdAccountLockedTime is set", auth.ErrLocked)
	}
	return nil
}

// identity maps an entry's attributes; Groups are filled by the caller.
func (p *Provider) identity(e *goldap.Entry) *auth.Identity {
	id := &auth.Identity{
		Provider:    p.cfg.Name,
		Username:    e.GetAttributeValue(p.cfg.UsernameAttr),
		DisplayName: e.GetAttributeValue(p.cfg.DisplayNameAttr),
		Email:       e.GetAttributeValue(p.cfg.EmailAttr),
		ExternalID:  externalID(p.cfg.IDAttr, e.GetRawAttributeValue(p.cfg.IDAttr)),
	}
	return id
}

// externalID renders an ID attribute as text. objectGUID is 16 bytes with
// the first three fields little-endian; it is shown the way Windows does.
func externalID(attr string, raw []byte) string {
	if strings.EqualFold(attr, "objectGUID") && len(raw) == 16 {
		return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
			binary.LittleEndian.Uint32(raw[0:4]), binary.LittleEndian.Uint16(raw[4:6]),
			binary.LittleEndian.Uint16(raw[6:8]), raw[8:10], raw[10:16])
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return hex.EncodeToString(raw)
}

// sortedNames returns the set's names sorted, for stable output.
func sortedNames(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
