// app.js: the application shell: sign-in, the layout (top bar, spaces
// sidebar, main view, transfer panel) and client-side routing.
//
// Routes: /login, /files/<space>/<path…>, /trash/<space>, /search/<space>?q=…

import * as api from './api.js';
import { h, icon, showError } from './ui.js';
import { Transfers } from './upload.js';
import { FolderView, folderURL, prefetchFirstPage } from './browser.js';
import { renderTrash, renderSearch, openViewer } from './views.js';
import { renderAdmin, renderSettings } from './admin.js';

const app = document.getElementById('app');
const state = { me: null, spaces: [], view: null, transfers: null, shell: null };

window.addEventListener('velox:unauthorized', () => {
  if (location.pathname !== '/login') {
    state.me = null;
    go('/login?next=' + encodeURIComponent(location.pathname + location.search), true, 'Your session has ended. Sign in again.');
  }
});
window.addEventListener('popstate', () => route());

/** go navigates within the app. hint carries an already known folder node. */
function go(url, replace, hint) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  route(hint);
}

// Links inside the app navigate without reloading the page.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute('href'));
});

async function route(hint) {
  const path = location.pathname;
  if (path === '/login') { showLogin(typeof hint === 'string' ? hint : ''); return; }
  let early = null;
  if (!state.me) {
    // On a page load, fetch the session, the spaces, the folder and its
    // first page all at once: the list paints after two round trips.
    const [, k, sid, ...segs] = path.split('/');
    if (k === 'files' && sid) {
      const folder = api.get('/spaces/' + sid + '/resolve' + api.q({ path: '/' + segs.map(decodeURIComponent).join('/') }), { noAuthRedirect: true });
      const page = folder.then((f) => (f.kind === 'folder' ? prefetchFirstPage(f.id) : null));
      early = { path, folder, page };
      folder.catch(() => {});
      page.catch(() => {});
    }
    try {
      const [me, spaces] = await Promise.all([api.get('/me', { noAuthRedirect: true }), api.get('/spaces', { noAuthRedirect: true })]);
      state.me = me.user;
      state.spaces = spaces.spaces;
      api.setCSRF(me.csrf_token);
    } catch (e) {
      if (e.status === 401) { go('/login?next=' + encodeURIComponent(path + location.search), true); return; }
      app.replaceChildren(h('div.fatal', null, h('h1', { text: 'Velox cannot start' }), h('p', { text: e.message }),
        h('button.primary', { type: 'button', onclick: () => location.reload() }, 'Try again')));
      return;
    }
  }
  ensureShell();
  const [, kind, spaceId, ...rest] = path.split('/');
  if (kind === 'settings' || kind === 'admin') {
    highlightSidebar(null, kind);
    state.view?.destroy?.();
    state.view = null;
    const el = h('section.page');
    setMain(el);
    if (kind === 'settings') {
      document.title = 'Settings · Velox';
      renderSettings(el, state.me);
    } else if (!state.me.is_admin) {
      el.replaceChildren(h('div.empty', null, h('p', { text: 'Only administrators can open the admin console.' })));
    } else {
      document.title = 'Administration · Velox';
      renderAdmin(el, spaceId, go);
    }
    return;
  }
  const space = state.spaces.find((s) => s.id === decodeURIComponent(spaceId || ''));
  if (!space || !['files', 'trash', 'search'].includes(kind)) {
    const personal = state.spaces.find((s) => s.id === state.me.personal_space_id) || state.spaces[0];
    if (!personal) { setMain(h('div.empty', null, h('p', { text: 'You have no spaces yet.' }))); return; }
    go(folderURL(personal.id, '/'), true);
    return;
  }
  highlightSidebar(space, kind);
  state.view?.destroy?.();
  state.view = null;
  if (kind === 'trash') {
    const el = h('section.page');
    setMain(el);
    document.title = 'Trash · ' + space.name + ' · Velox';
    renderTrash(el, space, () => {});
    return;
  }
  if (kind === 'search') {
    const q = new URLSearchParams(location.search).get('q') || '';
    state.shell.search.value = q;
    const el = h('section.page');
    setMain(el);
    document.title = 'Search · Velox';
    renderSearch(el, space, q, (n, reveal) => {
      if (reveal || n.kind === 'folder') {
        api.get('/nodes/' + encodeURIComponent(reveal ? n.parent_id : n.id))
          .then((f) => go(folderURL(space.id, f.path))).catch((e) => showError(e));
      } else openViewer(n);
    });
    return;
  }
  const fpath = '/' + rest.map(decodeURIComponent).join('/');
  let folder = hint && typeof hint === 'object' ? hint : null;
  let firstPage = null;
  if (!folder && early && early.path === path) {
    try { folder = await early.folder; firstPage = early.page; } catch { folder = null; }
  }
  if (!folder) {
    try {
      folder = fpath === '/' ? { id: space.root_id, path: '/', name: space.name, kind: 'folder', space_id: space.id }
        : await api.get('/spaces/' + encodeURIComponent(space.id) + '/resolve' + api.q({ path: fpath }));
    } catch (e) {
      setMain(h('div.empty', null, h('p.error', { text: 'This folder cannot be opened: ' + e.message }),
        h('a.btn', { href: folderURL(space.id, '/'), 'data-nav': '' }, 'Go to ' + space.name)));
      return;
    }
    if (location.pathname !== path) return; // the user went elsewhere meanwhile
  }
  if (folder.kind !== 'folder') {
    go(folderURL(space.id, folder.path.slice(0, folder.path.lastIndexOf('/')) || '/'), true);
    openViewer(folder);
    return;
  }
  document.title = (folder.path === '/' ? space.name : folder.name) + ' · Velox';
  const view = new FolderView({ transfers: state.transfers, spaces: state.spaces, space, navigate: go }, folder);
  state.view = view;
  setMain(view.el);
  view.reload(false, firstPage);
  view.viewport.focus({ preventScroll: true });
}

function setMain(el) {
  state.shell.main.replaceChildren(el);
  state.shell.root.classList.remove('nav-open');
}

/** ensureShell builds the signed-in layout once. */
function ensureShell() {
  if (state.shell && app.contains(state.shell.root)) return;
  const search = h('input', { type: 'search', name: 'q', placeholder: 'Search files', 'aria-label': 'Search files by name', autocomplete: 'off' });
  const searchForm = h('form.search', { role: 'search' }, icon('search'), search);
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = search.value.trim();
    if (!q) return;
    const sid = currentSpaceId() || state.me.personal_space_id;
    go('/search/' + encodeURIComponent(sid) + api.q({ q }));
  });
  const root = h('div.shell');
  const menu = h('button.icon-btn.menu-btn', { type: 'button', 'aria-label': 'Show navigation', onclick: () => root.classList.toggle('nav-open') }, icon('menu'));
  const userBtn = h('span.user', null, icon('user'), h('span.user-name', { text: state.me.display_name || state.me.username }));
  const signOut = h('button.small', { type: 'button', id: 'sign-out', onclick: logout }, 'Sign out');
  const top = h('header.topbar', null, menu,
    h('a.brand', { href: '/', 'data-nav': '' }, h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 26, height: 26 }), h('span', { text: 'Velox' })),
    searchForm, h('div.top-right', null, userBtn, signOut));
  const nav = h('nav.sidebar', { 'aria-label': 'Spaces' });
  const main = h('main.main', { id: 'main' });
  state.transfers = state.transfers || new Transfers((parentId) => {
    if (state.view && state.view.folder.id === parentId) debounceReload();
  });
  root.append(top, nav, main, state.transfers.el);
  app.replaceChildren(root);
  state.shell = { root, nav, main, search };
  buildSidebar();
  state.transfers.offerResume();
}

let reloadTimer = 0;
function debounceReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => state.view?.reload(true), 150);
}

function currentSpaceId() {
  const [, , sid] = location.pathname.split('/');
  return sid ? decodeURIComponent(sid) : '';
}

function buildSidebar() {
  const { nav } = state.shell;
  for (const s of state.spaces) if (s.id === state.me.personal_space_id) s.name = 'My files';
  const personal = state.spaces.filter((s) => s.kind === 'personal');
  const team = state.spaces.filter((s) => s.kind !== 'personal');
  const link = (s) => h('li', null, h('a.nav-item', { href: folderURL(s.id, '/'), 'data-nav': '', dataset: { space: s.id, kind: 'files' } },
    icon(s.kind === 'personal' ? 'home' : 'team'), h('span', { text: s.name }),
    s.role && s.kind !== 'personal' ? h('span.role', { text: s.role }) : null));
  nav.replaceChildren(...[
    h('ul', null, personal.map(link)),
    team.length ? h('h2.nav-title', { text: 'Team spaces' }) : null,
    team.length ? h('ul', null, team.map(link)) : null,
    h('div.nav-sep'),
    h('ul', null, h('li', null, h('a.nav-item', { href: '#', id: 'nav-trash', onclick: (e) => {
      e.preventDefault();
      go('/trash/' + encodeURIComponent(currentSpaceId() || state.me.personal_space_id));
    } }, icon('trash'), h('span', { text: 'Trash' }))),
      h('li', null, h('a.nav-item', { href: '/settings', 'data-nav': '', id: 'nav-settings', dataset: { kind: 'settings' } }, icon('user'), h('span', { text: 'Settings' }))),
      state.me.is_admin ? h('li', null, h('a.nav-item', { href: '/admin/users', 'data-nav': '', id: 'nav-admin', dataset: { kind: 'admin' } }, icon('gear'), h('span', { text: 'Administration' }))) : null)].filter(Boolean));
}

function highlightSidebar(space, kind) {
  for (const a of state.shell.nav.querySelectorAll('.nav-item')) {
    const on = (space && a.dataset.space === space.id && kind !== 'trash') || (a.id === 'nav-trash' && kind === 'trash') ||
      (!space && a.dataset.kind === kind);
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

async function logout() {
  try { await api.post('/auth/logout'); } catch (e) { if (e.status !== 401) { showError(e, 'Sign out'); return; } }
  state.me = null;
  state.shell = null;
  state.view?.destroy?.();
  state.view = null;
  go('/login', true, 'You are signed out.');
}

function showLogin(notice) {
  document.title = 'Sign in · Velox';
  const user = h('input', { type: 'text', name: 'username', id: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: false });
  const pass = h('input', { type: 'password', name: 'password', id: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p.form-error', { role: 'alert', id: 'login-error', hidden: !notice || notice === 'You are signed out.' });
  if (notice && notice !== 'You are signed out.') msg.textContent = notice;
  const info = notice === 'You are signed out.' ? h('p.form-info', { text: notice }) : null;
  const submit = h('button.primary.wide', { type: 'submit' }, 'Sign in');
  const form = h('form.login-card', { method: 'post', action: '/login', novalidate: true },
    h('div.login-brand', null, h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 40, height: 40 }), h('h1', { text: 'Sign in to Velox' })),
    info, msg,
    h('label.field', { for: 'username' }, h('span', { text: 'Username' }), user),
    h('label.field', { for: 'password' }, h('span', { text: 'Password' }), pass),
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.hidden = true;
    if (!user.value.trim() || !pass.value) {
      msg.textContent = 'Enter your username and password.';
      msg.hidden = false;
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      const res = await api.post('/auth/login', { username: user.value.trim(), password: pass.value }, { noAuthRedirect: true });
      api.setCSRF(res.csrf_token);
      state.me = res.user;
      state.spaces = (await api.get('/spaces')).spaces;
      const next = new URLSearchParams(location.search).get('next');
      go(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (err) {
      msg.textContent = err.message;
      msg.hidden = false;
      pass.value = '';
      pass.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  app.replaceChildren(h('div.login-page', null, form));
  (user.value ? pass : user).focus();
}

route().catch((e) => showError(e));
