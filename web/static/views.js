// views.js: the dialogs and secondary views: file viewer, versions panel,
// folder picker for move and copy, trash and search results.

import * as api from './api.js';
import { h, icon, iconFor, viewerKind, size, when, dialog, confirm, toast, showError } from './ui.js';

const TEXT_PREVIEW_BYTES = 512 * 1024;

/** download starts a browser download of url. */
export function download(url) {
  const a = h('a', { href: url, download: '', hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

/** openViewer shows an image, PDF or text file in an overlay. */
export async function openViewer(node) {
  const kind = viewerKind(node);
  const url = api.contentURL(node.id, true);
  let body;
  if (kind === 'image') {
    body = h('img.viewer-img', { src: url, alt: node.name });
  } else if (kind === 'pdf') {
    // The server sends inline content with a sandbox CSP; an <iframe>
    // keeps it in its own browsing context.
    body = h('iframe.viewer-frame', { src: url, title: node.name });
  } else if (kind === 'text') {
    body = h('pre.viewer-text', { text: 'Loading…' });
    fetch(url, { headers: { Range: 'bytes=0-' + (TEXT_PREVIEW_BYTES - 1) }, credentials: 'same-origin' })
      .then(async (res) => {
        if (!res.ok && res.status !== 206) throw new api.ApiError(res.status, '', api.genericMessage(res.status));
        let t = await res.text();
        if (node.size > TEXT_PREVIEW_BYTES) t += '\n\n… (the first ' + size(TEXT_PREVIEW_BYTES) + ' are shown; download the file for the rest)';
        body.textContent = t;
      })
      .catch((e) => { body.textContent = 'The file cannot be shown: ' + e.message; });
  } else {
    body = h('p.viewer-none', { text: 'This kind of file cannot be shown in the browser. Download it to open it.' });
  }
  const overlay = h('div.viewer', { role: 'dialog', 'aria-modal': 'true', 'aria-label': node.name, tabindex: '-1' });
  const close = () => { overlay.remove(); document.removeEventListener('keydown', onKey, true); prev?.focus(); };
  const onKey = (e) => { if (e.key === 'Escape') { e.stopPropagation(); close(); } };
  const prev = document.activeElement;
  overlay.append(
    h('div.viewer-bar', null,
      h('span.viewer-name', null, icon(iconFor(node)), h('span', { text: node.name })),
      h('span.viewer-meta', { text: size(node.size) + ' · ' + when(node.mtime) }),
      h('button.icon-btn', { type: 'button', title: 'Download', 'aria-label': 'Download', onclick: () => download(api.contentURL(node.id)) }, icon('download')),
      h('button.icon-btn.viewer-close', { type: 'button', title: 'Close', 'aria-label': 'Close viewer', onclick: close }, icon('close'))),
    h('div.viewer-body', null, body));
  overlay.addEventListener('click', (e) => { if (e.target === overlay || e.target.classList.contains('viewer-body')) close(); });
  document.addEventListener('keydown', onKey, true);
  document.body.append(overlay);
  overlay.focus();
}

/** openVersions lists a file's versions with download and restore. onChange runs after a restore. */
export async function openVersions(node, onChange) {
  let items;
  try {
    items = (await api.get('/nodes/' + encodeURIComponent(node.id) + '/versions')).items;
  } catch (e) { showError(e, 'Versions'); return; }
  const list = h('ul.versions');
  const render = () => {
    list.replaceChildren(...items.map((v, i) => h('li.version' + (v.current ? '.current' : ''), null,
      h('div.v-main', null,
        h('strong', { text: when(v.created_at) }),
        v.current ? h('span.badge', { text: 'Current' }) : null,
        h('span.v-meta', { text: size(v.size) + (v.created_by_name ? ' · ' + v.created_by_name : '') + ' · #' + (items.length - i) })),
      h('div.v-actions', null,
        h('a.btn.small', { href: '/api/v1/nodes/' + encodeURIComponent(node.id) + '/versions/' + encodeURIComponent(v.id) + '/content', download: '' }, icon('download'), 'Download'),
        v.current ? null : h('button.small', { type: 'button', onclick: async () => {
          try {
            await api.post('/nodes/' + encodeURIComponent(node.id) + '/versions/' + encodeURIComponent(v.id) + '/restore');
            items = (await api.get('/nodes/' + encodeURIComponent(node.id) + '/versions')).items;
            render();
            toast('Restored the version of ' + when(v.created_at) + '.', 'ok');
            onChange();
          } catch (e) { showError(e, 'Restore'); }
        } }, icon('restore'), 'Restore')))));
  };
  render();
  await dialog('Versions of “' + node.name + '”', [items.length ? list : h('p', { text: 'No versions.' })],
    [{ label: 'Close', value: 'close', primary: true }], { wide: true });
}

/**
 * pickFolder lets the user choose a destination folder, starting at
 * startId. Resolves with {id, name} or undefined. exclude: ids that cannot
 * be chosen (the items being moved).
 */
export function pickFolder(title, okLabel, spaces, startId, exclude) {
  let cur = null;
  const crumbs = h('nav.picker-path', { 'aria-label': 'Location' });
  const list = h('ul.picker-list', { role: 'listbox', 'aria-label': 'Folders' });
  const spaceSel = h('select', { 'aria-label': 'Space' }, spaces.map((s) => h('option', { value: s.root_id, text: s.name })));
  const load = async (id) => {
    list.replaceChildren(h('li.muted', { text: 'Loading…' }));
    try {
      const [node, kids] = await Promise.all([api.get('/nodes/' + encodeURIComponent(id)),
        api.get('/nodes/' + encodeURIComponent(id) + '/children?limit=1000&sort=name')]);
      cur = node;
      const sp = spaces.find((s) => s.id === node.space_id);
      if (sp) spaceSel.value = sp.root_id;
      crumbs.replaceChildren(h('span', { text: (sp ? sp.name : '') + (node.path === '/' ? '' : node.path) }));
      const folders = kids.items.filter((n) => n.kind === 'folder');
      const rows = [];
      if (node.parent_id) rows.push(h('li', null, h('button.picker-item', { type: 'button', onclick: () => load(node.parent_id) }, icon('restore'), '.. (up)')));
      for (const f of folders) {
        const disabled = exclude.has(f.id);
        rows.push(h('li', null, h('button.picker-item', { type: 'button', disabled, onclick: () => load(f.id) }, icon('folder'), h('span', { text: f.name }))));
      }
      if (!folders.length) rows.push(h('li.muted', { text: 'No folders here.' }));
      list.replaceChildren(...rows);
    } catch (e) { list.replaceChildren(h('li.error', { text: e.message })); }
  };
  spaceSel.addEventListener('change', () => load(spaceSel.value));
  load(startId);
  return dialog(title, [spaceSel, crumbs, list], [{ label: 'Cancel', value: 'cancel' }, { label: okLabel, value: 'ok', primary: true }],
    { wide: true, collect: (v) => (v === 'ok' && cur ? { id: cur.id, name: cur.path === '/' ? 'the top folder' : cur.name } : undefined) });
}

/** renderTrash fills el with the trash of a space. */
export async function renderTrash(el, space, onChange) {
  el.replaceChildren(h('p.muted.pad', { text: 'Loading…' }));
  let items;
  try {
    items = (await api.get('/spaces/' + encodeURIComponent(space.id) + '/trash')).items;
  } catch (e) { el.replaceChildren(h('p.error.pad', { text: e.message })); return; }
  const empty = h('button.danger', { type: 'button', disabled: !items.length, onclick: async () => {
    if (!(await confirm('Empty trash?', 'Everything in the trash of “' + space.name + '” will be deleted for good.', 'Empty trash', true))) return;
    try { await api.del('/spaces/' + encodeURIComponent(space.id) + '/trash'); toast('Trash emptied.', 'ok'); renderTrash(el, space, onChange); } catch (e) { showError(e); }
  } }, icon('trash'), 'Empty trash');
  const head = h('div.view-head', null, h('h1', null, 'Trash', h('span.muted', { text: ' · ' + space.name })), empty);
  if (!items.length) {
    el.replaceChildren(head, h('div.empty', null, icon('trash', 'icon big'), h('p', { text: 'Trash is empty.' }),
      h('p.muted', { text: 'Deleted files and folders stay here until you delete them for good.' })));
    return;
  }
  const table = h('table.simple');
  table.append(h('thead', null, h('tr', null, h('th', { text: 'Name' }), h('th.c-size', { text: 'Size' }), h('th', { text: 'Deleted' }), h('th', null, h('span.sr-only', { text: 'Actions' })))));
  const tb = h('tbody');
  for (const n of items) {
    tb.append(h('tr', { dataset: { id: n.id, name: n.name } },
      h('td', null, h('span.cell-name', null, icon(iconFor(n)), h('span.name', { text: n.name }))),
      h('td.c-size', { text: n.kind === 'folder' ? '' : size(n.size) }),
      h('td', { text: when(n.trashed_at) }),
      h('td.actions', null,
        h('button.small', { type: 'button', 'aria-label': 'Restore ' + n.name, onclick: async () => {
          try { await api.post('/trash/' + encodeURIComponent(n.id) + '/restore'); toast('Restored “' + n.name + '”.', 'ok'); renderTrash(el, space, onChange); onChange(); } catch (e) { showError(e, 'Restore'); }
        } }, icon('restore'), 'Restore'),
        h('button.small.danger', { type: 'button', 'aria-label': 'Delete ' + n.name + ' forever', onclick: async () => {
          if (!(await confirm('Delete forever?', '“' + n.name + '” will be deleted for good. This cannot be undone.', 'Delete forever', true))) return;
          try { await api.del('/trash/' + encodeURIComponent(n.id)); renderTrash(el, space, onChange); } catch (e) { showError(e, 'Delete'); }
        } }, 'Delete forever'))));
  }
  table.append(tb);
  el.replaceChildren(head, h('div.table-wrap', null, table));
}

/** renderSearch fills el with the search results for q in a space. open(node) opens a result. */
export async function renderSearch(el, space, query, open) {
  el.replaceChildren(h('p.muted.pad', { text: 'Searching…' }));
  let items;
  try {
    items = (await api.get('/spaces/' + encodeURIComponent(space.id) + '/search' + api.q({ q: query }))).items;
  } catch (e) { el.replaceChildren(h('p.error.pad', { text: e.message })); return; }
  const head = h('div.view-head', null, h('h1', null, 'Search results', h('span.muted', { text: ' · “' + query + '” in ' + space.name })));
  if (!items.length) {
    el.replaceChildren(head, h('div.empty', null, icon('search', 'icon big'), h('p', { text: 'No files or folders match “' + query + '”.' })));
    return;
  }
  const table = h('table.simple');
  table.append(h('thead', null, h('tr', null, h('th', { text: 'Name' }), h('th.c-size', { text: 'Size' }), h('th', { text: 'Modified' }), h('th', null, h('span.sr-only', { text: 'Location' })))));
  const tb = h('tbody');
  for (const n of items) {
    tb.append(h('tr', { dataset: { id: n.id, name: n.name } },
      h('td', null, h('a.cell-name', { href: '#', onclick: (e) => { e.preventDefault(); open(n, false); } }, icon(iconFor(n)), h('span.name', { text: n.name }))),
      h('td.c-size', { text: n.kind === 'folder' ? '' : size(n.size) }),
      h('td', { text: when(n.mtime) }),
      h('td.actions', null, h('button.small', { type: 'button', onclick: () => open(n, true) }, 'Show in folder'))));
  }
  table.append(tb);
  el.replaceChildren(head, h('div.table-wrap', null, table));
}
