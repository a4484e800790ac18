// admin.js: the admin console (users, groups, team spaces, directory,
// audit log) and the user's own settings (password, app passwords,
// sessions). Both talk to the identity API; where the server does not
// offer an endpoint the page says so instead of failing silently.

import * as api from './api.js';
import { h, icon, size, when, dialog, prompt, confirm, toast, showError } from './ui.js';

const enc = encodeURIComponent;

/** table renders rows of objects: cols = [{label, cell(row) -> node|string, cls}]. */
function table(cols, rows, empty) {
  if (!rows.length) return h('p.muted.pad', { text: empty });
  return h('div.table-wrap', null, h('table.simple', null,
    h('thead', null, h('tr', null, cols.map((c) => h('th' + (c.cls ? '.' + c.cls : ''), null, c.label)))),
    h('tbody', null, rows.map((r) => h('tr', { dataset: { key: r.username || r.name || r.id || '' } },
      cols.map((c) => { const v = c.cell(r); return h('td' + (c.cls ? '.' + c.cls : ''), null, v === null || v === undefined ? '' : v); }))))));
}

/** section wraps a titled block with optional header actions. */
function section(title, actions, ...body) {
  return h('section.card', null, h('div.card-head', null, h('h2', { text: title }), actions || null), ...body);
}

/** missing explains a 404 "No such endpoint" from an older server; other errors are shown as they are. */
function failure(e) {
  if (e.status === 404 && /endpoint/i.test(e.message)) return h('p.muted.pad', { text: 'This server does not offer this yet.' });
  return h('p.error.pad', { text: e.message });
}

async function load(el, fn) {
  el.replaceChildren(h('p.muted.pad', { text: 'Loading…' }));
  try { await fn(); } catch (e) { el.replaceChildren(failure(e)); }
}

function quotaText(q) {
  if (q === null || q === undefined) return 'Default';
  if (q === 0) return 'Unlimited';
  return size(q);
}

/** askQuota asks for a quota in GB: '' = default (null), 0 = unlimited. Resolves undefined on cancel. */
async function askQuota(title, current, allowDefault) {
  const v = await prompt(title, 'Quota in GB (0 = unlimited' + (allowDefault ? ', "default" = the default quota' : '') + ')',
    current === null || current === undefined ? (allowDefault ? 'default' : '0') : String(current / 1e9));
  if (v === undefined) return undefined;
  if (allowDefault && v.toLowerCase() === 'default') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) { toast('Enter a number of GB, e.g. 50.', 'error'); return undefined; }
  return Math.round(n * 1e9);
}

const TABS = [['users', 'Users'], ['groups', 'Groups'], ['spaces', 'Team spaces'], ['directory', 'Directory'], ['audit', 'Audit log']];

/** renderAdmin shows the admin console's tab in el. */
export function renderAdmin(el, tab, go) {
  tab = TABS.some(([k]) => k === tab) ? tab : 'users';
  const body = h('div.admin-body');
  const nav = h('nav.tabs', { 'aria-label': 'Admin sections' }, TABS.map(([k, label]) =>
    h('a.tab' + (k === tab ? '.active' : ''), { href: '/admin/' + k, 'data-nav': '', 'aria-current': k === tab ? 'page' : null, text: label })));
  el.replaceChildren(h('div.view-head', null, h('h1', { text: 'Administration' })), nav, body);
  ({ users, groups, spaces, directory, audit })[tab](body, go);
}

// --- users ---

async function users(el) {
  await load(el, async () => {
    const list = (await api.get('/admin/users')).users;
    const refresh = () => users(el);
    const act = (label, fn, danger) => h('button.small' + (danger ? '.danger' : ''), { type: 'button', onclick: async () => {
      try { if (await fn() !== false) refresh(); } catch (e) { showError(e, label); }
    } }, label);
    const create = h('button.primary.small', { type: 'button', id: 'create-user', onclick: async () => { if (await createUser()) refresh(); } }, icon('user'), 'New user');
    el.replaceChildren(section('Users', create, table([
      { label: 'User', cell: (u) => h('div.stack', null, h('strong', { text: u.username }), h('span.muted', { text: [u.display_name, u.email].filter(Boolean).join(' · ') })) },
      { label: 'Source', cell: (u) => u.provider || 'local' },
      { label: 'Role', cell: (u) => (u.is_admin ? h('span.badge', { text: 'Admin' }) : 'User') },
      {
        label: 'Status',
        cell: (u) => (u.disabled
          ? h('span.badge.off', {
            text: u.disabled_by === 'directory' ? 'Disabled by the directory' : 'Disabled',
            title: u.disabled_by === 'directory'
              ? 'The directory disabled, locked or removed this user; the account works again once the directory lists it as active.'
              : 'Disabled by an administrator.',
          })
          : 'Active'),
      },
      { label: 'Quota', cell: (u) => quotaText(u.quota_bytes) },
      { label: 'Actions', cls: 'actions', cell: (u) => h('div.row-actions', null,
        act(u.disabled ? 'Enable' : 'Disable', () => api.patch('/admin/users/' + enc(u.id), { disabled: !u.disabled }), !u.disabled),
        (u.provider || 'local') === 'local' ? act('Reset password', async () => {
          const pw = await prompt('Reset password of ' + u.username, 'New password (at least 10 characters)', '', 'Reset');
          if (!pw) return false;
          await api.post('/admin/users/' + enc(u.id) + '/password', { password: pw });
          toast('Password reset; ' + u.username + ' was signed out everywhere.', 'ok');
        }) : null,
        act('Sign out everywhere', async () => {
          await api.post('/admin/users/' + enc(u.id) + '/sign-out');
          toast(u.username + ' is signed out everywhere.', 'ok');
          return false;
        }),
        act('Quota', async () => {
          const q = await askQuota('Quota of ' + u.username, u.quota_bytes, true);
          if (q === undefined) return false;
          await api.patch('/admin/users/' + enc(u.id), { quota_bytes: q });
        }),
        act(u.is_admin ? 'Revoke admin' : 'Make admin', () => api.patch('/admin/users/' + enc(u.id), { is_admin: !u.is_admin }))) },
    ], list, 'No users.')));
  });
}

async function createUser() {
  const f = {
    username: h('input', { type: 'text', required: true, autocomplete: 'off', name: 'username' }),
    display_name: h('input', { type: 'text', autocomplete: 'off', name: 'display_name' }),
    email: h('input', { type: 'text', autocomplete: 'off', name: 'email' }),
    password: h('input', { type: 'password', required: true, autocomplete: 'new-password', name: 'password' }),
  };
  const admin = h('input', { type: 'checkbox', name: 'is_admin' });
  const body = [h('label.field', null, h('span', { text: 'Username' }), f.username), h('label.field', null, h('span', { text: 'Display name' }), f.display_name),
    h('label.field', null, h('span', { text: 'Email' }), f.email), h('label.field', null, h('span', { text: 'Password (at least 10 characters)' }), f.password),
    h('label.check', null, admin, ' Administrator')];
  const v = await dialog('New local user', body, [{ label: 'Cancel', value: 'cancel' }, { label: 'Create', value: 'ok', primary: true }],
    { validate: () => f.username.value.trim() && f.password.value });
  if (v !== 'ok') return false;
  try {
    await api.post('/admin/users', { username: f.username.value.trim(), display_name: f.display_name.value.trim(), email: f.email.value.trim(),
      password: f.password.value, is_admin: admin.checked });
    toast('Created user ' + f.username.value.trim() + '.', 'ok');
    return true;
  } catch (e) { showError(e, 'New user'); return false; }
}

// --- groups ---

async function groups(el) {
  await load(el, async () => {
    const list = (await api.get('/admin/groups')).groups;
    const create = h('button.primary.small', { type: 'button', id: 'create-group', onclick: async () => {
      const name = await prompt('New local group', 'Group name', '', 'Create');
      if (!name) return;
      try { await api.post('/admin/groups', { name }); toast('Created group ' + name + '.', 'ok'); groups(el); } catch (e) { showError(e, 'New group'); }
    } }, icon('team'), 'New group');
    el.replaceChildren(section('Groups', create, table([
      { label: 'Group', cell: (g) => h('strong', { text: g.name }) },
      { label: 'Source', cell: (g) => g.provider || 'local' },
      { label: 'Members', cell: (g) => String(g.members ?? '') },
      { label: 'Actions', cls: 'actions', cell: (g) => h('div.row-actions', null,
        h('button.small', { type: 'button', onclick: () => members(g).then(() => groups(el)) }, 'Members'),
        (g.provider || 'local') === 'local' ? h('button.small.danger', { type: 'button', onclick: async () => {
          if (!(await confirm('Delete group?', 'The group “' + g.name + '” and its links to team spaces will be deleted.', 'Delete', true))) return;
          try { await api.del('/admin/groups/' + enc(g.id)); groups(el); } catch (e) { showError(e, 'Delete group'); }
        } }, 'Delete') : null) },
    ], list, 'No groups yet. Directory groups appear after their members sign in or a sync runs.')));
  });
}

async function members(g) {
  const box = h('div');
  const local = (g.provider || 'local') === 'local';
  const render = async () => {
    try {
      const [detail, all] = await Promise.all([api.get('/admin/groups/' + enc(g.id)), local ? api.get('/admin/users') : Promise.resolve({ users: [] })]);
      const inGroup = new Set((detail.member_list || []).map((u) => u.id));
      const sel = h('select', { 'aria-label': 'User to add' }, all.users.filter((u) => !inGroup.has(u.id)).map((u) => h('option', { value: u.id, text: u.username })));
      box.replaceChildren(
        table([{ label: 'Member', cell: (u) => u.username }, { label: '', cls: 'actions', cell: (u) => (local ? h('button.small', { type: 'button', onclick: async () => {
          try { await api.del('/admin/groups/' + enc(g.id) + '/members/' + enc(u.id)); render(); } catch (e) { showError(e); }
        } }, 'Remove') : null) }], detail.member_list || [], 'No members.'),
        local && sel.options.length ? h('div.inline-form', null, sel, h('button.small', { type: 'button', id: 'add-member', onclick: async () => {
          try { await api.put('/admin/groups/' + enc(g.id) + '/members/' + enc(sel.value)); render(); } catch (e) { showError(e); }
        } }, 'Add member')) : null);
    } catch (e) { box.replaceChildren(failure(e)); }
  };
  await render();
  await dialog('Members of ' + g.name, [box], [{ label: 'Done', value: 'ok', primary: true }], { wide: true });
}

// --- team spaces ---

async function spaces(el) {
  await load(el, async () => {
    let list = (await api.get('/admin/spaces')).spaces;
    // The list has no group links; the details do (a few spaces: fetch them together).
    if (list.length <= 50 && list.some((s) => !s.links)) {
      list = await Promise.all(list.map((s) => api.get('/admin/spaces/' + enc(s.id)).catch(() => s)));
    }
    const create = h('button.primary.small', { type: 'button', id: 'create-space', onclick: async () => {
      const name = await prompt('New team space', 'Name', '', 'Create');
      if (!name) return;
      try {
        const sp = await api.post('/admin/spaces', { name });
        toast('Created team space ' + name + '.', 'ok');
        await manageSpace(sp);
        spaces(el);
      } catch (e) { showError(e, 'New team space'); }
    } }, icon('team'), 'New team space');
    el.replaceChildren(section('Team spaces', create, table([
      { label: 'Space', cell: (s) => h('strong', { text: s.name }) },
      { label: 'Used', cell: (s) => size(s.used_bytes) },
      { label: 'Quota', cell: (s) => (s.quota_bytes ? size(s.quota_bytes) : 'Unlimited') },
      { label: 'Groups', cell: (s) => (s.links || []).map((l) => l.group_name + ' (' + l.role + ')').join(', ') },
      { label: 'Actions', cls: 'actions', cell: (s) => h('button.small', { type: 'button', onclick: () => manageSpace(s).then(() => spaces(el)) }, 'Manage') },
    ], list, 'No team spaces yet.')));
  });
}

async function manageSpace(sp) {
  const box = h('div');
  const render = async () => {
    try {
      const [detail, gl] = await Promise.all([api.get('/admin/spaces/' + enc(sp.id)), api.get('/admin/groups')]);
      const roleSel = (value) => h('select', { 'aria-label': 'Role' }, ['viewer', 'editor', 'manager'].map((r) => h('option', { value: r, text: r, selected: r === value })));
      const rows = (detail.links || []).map((l) => {
        const s = roleSel(l.role);
        s.addEventListener('change', async () => {
          try { await api.put('/admin/spaces/' + enc(sp.id) + '/links/' + enc(l.group_id), { role: s.value }); toast('Role changed.', 'ok'); } catch (e) { showError(e); }
        });
        return { ...l, sel: s };
      });
      const group = h('input', { type: 'text', list: 'group-names', name: 'group', placeholder: 'Group name', 'aria-label': 'Group name', autocomplete: 'off' });
      const provider = h('select', { 'aria-label': 'Group source', name: 'provider' }, [...new Set(['local', ...gl.groups.map((g) => g.provider || 'local')])].map((p) => h('option', { value: p, text: p })));
      const role = roleSel('editor');
      const datalist = h('datalist', { id: 'group-names' }, gl.groups.map((g) => h('option', { value: g.name })));
      const quota = h('button.small', { type: 'button', onclick: async () => {
        const q = await askQuota('Quota of ' + detail.name, detail.quota_bytes, false);
        if (q === undefined) return;
        try { await api.patch('/admin/spaces/' + enc(sp.id), { quota_bytes: q }); toast('Quota set.', 'ok'); render(); } catch (e) { showError(e); }
      } }, 'Quota: ' + (detail.quota_bytes ? size(detail.quota_bytes) : 'unlimited'));
      box.replaceChildren(
        h('p', null, quota, ' ', h('span.muted', { text: size(detail.used_bytes) + ' used' })),
        table([{ label: 'Group', cell: (l) => l.group_name + (l.provider && l.provider !== 'local' ? ' (' + l.provider + ')' : '') },
          { label: 'Role', cell: (l) => l.sel },
          { label: '', cls: 'actions', cell: (l) => h('button.small.danger', { type: 'button', onclick: async () => {
            try { await api.del('/admin/spaces/' + enc(sp.id) + '/links/' + enc(l.group_id)); render(); } catch (e) { showError(e); }
          } }, 'Remove') }], rows, 'No groups linked: nobody but administrators can open this space.'),
        h('form.inline-form', { onsubmit: async (e) => {
          e.preventDefault();
          if (!group.value.trim()) return;
          try {
            await api.post('/admin/spaces/' + enc(sp.id) + '/links', { provider: provider.value, group: group.value.trim(), role: role.value });
            toast('Linked ' + group.value.trim() + ' as ' + role.value + '.', 'ok');
            render();
          } catch (err) { showError(err, 'Link group'); }
        } }, provider, group, datalist, role, h('button.small', { type: 'submit', id: 'link-group' }, 'Link group')));
    } catch (e) { box.replaceChildren(failure(e)); }
  };
  await render();
  await dialog('Team space “' + sp.name + '”', [box], [{ label: 'Done', value: 'ok', primary: true }], { wide: true });
}

// --- directory ---

async function directory(el) {
  await load(el, async () => {
    const st = await api.get('/admin/directory');
    const result = h('p.result', { role: 'status' });
    const last = st.last_sync;
    const facts = [['Directory', st.configured ? 'Connected to ' + (st.provider || 'directory') : 'Not configured (local accounts only)']];
    if (last) {
      facts.push(['Last sync', when(last.started) + (last.error ? ' — failed: ' + last.error : '')],
        ['Users listed', String(last.listed)], ['Accounts updated', String(last.updated)], ['Accounts disabled', String(last.disabled)]);
      if (last.skipped) facts.push(['Not disabled', last.skipped]);
    }
    const run = (label, path, ok) => h('button.small', { type: 'button', disabled: !st.configured, onclick: async (e) => {
      e.currentTarget.disabled = true;
      result.className = 'result';
      result.textContent = label + '…';
      try { const r = await api.post(path); result.textContent = ok(r); result.classList.add('ok'); } catch (err) { result.textContent = err.message; result.classList.add('error'); }
      e.currentTarget.disabled = false;
    } }, label);
    el.replaceChildren(section('Directory', h('div.row-actions', null,
      run('Test connection', '/admin/directory/test', (r) => 'Connection works (' + r.duration_ms + ' ms).'),
      run('Sync now', '/admin/directory/sync', (r) => 'Synced: ' + r.listed + ' users listed, ' + r.updated + ' updated, ' + r.disabled + ' disabled.')),
    h('dl.facts', null, facts.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])), result));
  });
}

// --- audit ---

async function audit(el) {
  const actor = h('input', { type: 'text', name: 'actor', placeholder: 'Actor', 'aria-label': 'Actor' });
  const action = h('input', { type: 'text', name: 'action', placeholder: 'Action, e.g. login', 'aria-label': 'Action' });
  const since = h('input', { type: 'date', name: 'since', 'aria-label': 'Since' });
  const until = h('input', { type: 'date', name: 'until', 'aria-label': 'Until' });
  const out = h('div');
  let cursor = null;
  let rows = [];
  const more = h('button.small', { type: 'button', hidden: true, onclick: () => fetchPage(false) }, 'Load more');
  const fetchPage = async (fresh) => {
    if (fresh) { cursor = null; rows = []; }
    try {
      const r = await api.get('/admin/audit' + api.q({ actor: actor.value.trim(), action: action.value.trim(),
        since: since.value ? new Date(since.value).toISOString() : '', until: until.value ? new Date(new Date(until.value).getTime() + 864e5).toISOString() : '',
        cursor, limit: 100 }));
      rows = rows.concat(r.events || []);
      cursor = r.next_cursor || null;
      more.hidden = !cursor;
      out.replaceChildren(table([
        { label: 'Time', cell: (e) => when(e.at) },
        { label: 'Actor', cell: (e) => e.actor },
        { label: 'Action', cell: (e) => e.action },
        { label: 'Target', cell: (e) => e.target || '' },
        { label: 'IP', cell: (e) => e.ip || '' },
        { label: 'Outcome', cell: (e) => h('span' + (e.outcome === 'ok' || e.outcome === 'success' ? '' : '.error'), { text: e.outcome }) },
        { label: 'Details', cell: (e) => (e.details && Object.keys(e.details).length ? h('code.details', { text: JSON.stringify(e.details) }) : '') },
      ], rows, 'No events match.'));
    } catch (e) { out.replaceChildren(failure(e)); }
  };
  const form = h('form.filters', { onsubmit: (e) => { e.preventDefault(); fetchPage(true); } }, actor, action, since, until, h('button.small', { type: 'submit' }, 'Filter'));
  el.replaceChildren(section('Audit log', null, form, out, more));
  fetchPage(true);
}

// --- the user's settings ---

/** renderSettings shows the signed-in user's password, app passwords and sessions. */
export function renderSettings(el, me) {
  const pwBox = h('div'), appBox = h('div'), sessBox = h('div');
  el.replaceChildren(h('div.view-head', null, h('h1', { text: 'Settings' })),
    (me.provider || 'local') === 'local' ? section('Password', null, pwBox) : null, section('App passwords', null, appBox), section('Signed-in browsers', null, sessBox));
  if ((me.provider || 'local') === 'local') passwordForm(pwBox);
  appPasswords(appBox);
  sessions(sessBox);
}

function passwordForm(el) {
  const old = h('input', { type: 'password', autocomplete: 'current-password', name: 'old_password' });
  const pw = h('input', { type: 'password', autocomplete: 'new-password', name: 'new_password' });
  const form = h('form.narrow', { onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api.post('/me/password', { old_password: old.value, new_password: pw.value });
      old.value = pw.value = '';
      toast('Password changed; your other sessions were signed out.', 'ok');
    } catch (err) { showError(err, 'Password'); }
  } }, h('label.field', null, h('span', { text: 'Current password' }), old), h('label.field', null, h('span', { text: 'New password (at least 10 characters)' }), pw),
  h('button.small', { type: 'submit' }, 'Change password'));
  el.replaceChildren(form);
}

async function appPasswords(el) {
  await load(el, async () => {
    const list = (await api.get('/me/app-passwords')).app_passwords;
    const name = h('input', { type: 'text', name: 'name', placeholder: 'e.g. Laptop sync client', 'aria-label': 'App password name', autocomplete: 'off' });
    const form = h('form.inline-form', { onsubmit: async (e) => {
      e.preventDefault();
      if (!name.value.trim()) return;
      try {
        const r = await api.post('/me/app-passwords', { name: name.value.trim() });
        const secret = h('input.secret', { type: 'text', value: r.password, readOnly: true, id: 'new-app-password', 'aria-label': 'The new app password' });
        const copy = h('button.small', { type: 'button', onclick: async () => {
          try { await navigator.clipboard.writeText(r.password); toast('Copied.', 'ok'); } catch { secret.select(); }
        } }, icon('copy'), 'Copy');
        await dialog('App password created', [h('p', { text: 'Use this password in place of your own in “' + r.name + '”. It is shown only now.' }), h('div.inline-form', null, secret, copy)],
          [{ label: 'Done', value: 'ok', primary: true }]);
        appPasswords(el);
      } catch (err) { showError(err, 'App password'); }
    } }, name, h('button.small.primary', { type: 'submit', id: 'create-app-password' }, 'Create'));
    el.replaceChildren(h('p.muted', { text: 'Sync clients, WebDAV and scripts sign in with an app password, which you can revoke on its own.' }),
      table([
        { label: 'Name', cell: (p) => h('strong', { text: p.name }) },
        { label: 'Created', cell: (p) => when(p.created_at) },
        { label: 'Last used', cell: (p) => (p.last_used_at ? when(p.last_used_at) : 'Never') },
        { label: '', cls: 'actions', cell: (p) => h('button.small.danger', { type: 'button', onclick: async () => {
          if (!(await confirm('Revoke app password?', 'Clients using “' + p.name + '” will be signed out.', 'Revoke', true))) return;
          try { await api.del('/me/app-passwords/' + enc(p.id)); appPasswords(el); } catch (e) { showError(e); }
        } }, 'Revoke') },
      ], list, 'No app passwords.'), form);
  });
}

async function sessions(el) {
  await load(el, async () => {
    const list = (await api.get('/me/sessions')).sessions;
    el.replaceChildren(table([
      { label: 'Browser', cell: (s) => h('div.stack', null, h('span', { text: s.user_agent || 'Unknown' }), s.current ? h('span.badge', { text: 'This browser' }) : null) },
      { label: 'IP', cell: (s) => s.ip || '' },
      { label: 'Signed in', cell: (s) => when(s.created_at) },
      { label: 'Last seen', cell: (s) => when(s.last_seen_at) },
      { label: '', cls: 'actions', cell: (s) => (s.current ? null : h('button.small', { type: 'button', onclick: async () => {
        try { await api.del('/me/sessions/' + enc(s.id)); sessions(el); } catch (e) { showError(e); }
      } }, 'Sign out')) },
    ], list, 'No sessions.'));
  });
}
