// browser.js: the folder view: breadcrumbs, toolbar, and a virtualized,
// keyset-paginated file list with multi-select, keyboard navigation,
// inline rename and drag-and-drop (moving items, and uploading files and
// folders from the desktop).

import * as api from './api.js';
import { h, icon, iconFor, viewerKind, size, when, prompt, toast, showError } from './ui.js';
import { entriesFromDrop, entriesFromInput } from './upload.js';
import { openViewer, openVersions, pickFolder, download } from './views.js';

const ROW = 44; // row height in px; must match .row in style.css
const OVERSCAN = 12; // rows rendered beyond the visible ones
const FIRST_PAGE = 200; // small first page: paints fast
const PAGE = 1000; // later pages, fetched as the user scrolls
const DRAG_TYPE = 'application/x-velox-nodes';

/** folderURL is the address of a folder in the UI. */
export function folderURL(spaceId, path) {
  const segs = (path || '/').split('/').filter(Boolean).map(encodeURIComponent);
  return '/files/' + encodeURIComponent(spaceId) + (segs.length ? '/' + segs.join('/') : '');
}

const THUMB_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif']);

/** thumbOrIcon is a server-made thumbnail for images, the type icon otherwise (and if the thumbnail fails). */
function thumbOrIcon(node) {
  if (node.kind !== 'file' || !THUMB_TYPES.has(node.content_type) || node.size > 40 * 1024 * 1024) return icon(iconFor(node));
  const img = h('img.thumb', { src: '/api/v1/nodes/' + encodeURIComponent(node.id) + '/thumbnail' + api.q({ size: 64, v: node.etag }),
    alt: '', loading: 'lazy', decoding: 'async', width: 28, height: 28, draggable: false });
  img.addEventListener('error', () => img.replaceWith(icon(iconFor(node))), { once: true });
  return img;
}

export function joinPath(dir, name) { return (dir === '/' ? '' : dir) + '/' + name; }

let painted = false; // the first list paint since page load has been marked

function savedSort() {
  try { return JSON.parse(localStorage.getItem('velox.sort')) || {}; } catch { return {}; }
}

/**
 * prefetchFirstPage starts loading a folder's first page before the view
 * exists (the page load fetches it alongside the session check).
 */
export function prefetchFirstPage(folderId) {
  const { sort = 'name', order = 'asc' } = savedSort();
  return api.get('/nodes/' + encodeURIComponent(folderId) + '/children' + api.q({ sort, order, limit: FIRST_PAGE }));
}

export class FolderView {
  /**
   * ctx: {transfers, spaces, navigate(url, hint), space}
   * folder: the folder node, with path.
   */
  constructor(ctx, folder) {
    this.ctx = ctx;
    this.folder = folder;
    this.space = ctx.space;
    this.items = [];
    this.next = null;
    this.loading = null;
    this.sel = new Set();
    this.anchor = -1;
    this.focus = -1;
    this.renaming = null;
    this.rowEls = new Map(); // node id -> row element currently in the DOM
    this.gen = 0; // bumps on every reload; stale page responses are dropped
    const saved = savedSort();
    this.sort = saved.sort || 'name';
    this.order = saved.order || 'asc';
    this.el = this.build();
  }

  canWrite() { return this.space.role !== 'viewer'; }

  build() {
    const f = this.folder;
    this.crumbs = h('nav.crumbs', { 'aria-label': 'Breadcrumbs' });
    const parts = f.path.split('/').filter(Boolean);
    const crumbList = h('ol');
    const addCrumb = (label, path, last) => {
      const a = h('a.crumb', { href: folderURL(this.space.id, path), 'aria-current': last ? 'page' : null, text: label });
      a.addEventListener('click', (e) => { e.preventDefault(); this.ctx.navigate(folderURL(this.space.id, path)); });
      this.dropTarget(a, async () => (await api.get('/spaces/' + encodeURIComponent(this.space.id) + '/resolve' + api.q({ path }))), path);
      crumbList.append(h('li', null, a));
    };
    addCrumb(this.space.name, '/', parts.length === 0);
    parts.forEach((p, i) => addCrumb(p, '/' + parts.slice(0, i + 1).join('/'), i === parts.length - 1));
    this.crumbs.append(crumbList);

    const fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'aria-label': 'Choose files to upload', id: 'file-input' });
    const dirInput = h('input', { type: 'file', multiple: true, hidden: true, webkitdirectory: true, 'aria-label': 'Choose a folder to upload', id: 'folder-input' });
    fileInput.addEventListener('change', () => { this.upload(entriesFromInput(fileInput)); fileInput.value = ''; });
    dirInput.addEventListener('change', () => { this.upload(entriesFromInput(dirInput)); dirInput.value = ''; });
    const w = this.canWrite();
    // The selection actions keep their place when nothing is selected
    // (visibility, not display), so that selecting never shifts the list.
    this.actions = h('div.sel-actions.invisible');
    this.selCount = h('span.sel-count');
    const toolbar = h('div.toolbar', null,
      h('div.main-actions', null,
        h('button.primary', { type: 'button', disabled: !w, onclick: () => fileInput.click(), id: 'upload-btn' }, icon('upload'), h('span', { text: 'Upload' })),
        h('button', { type: 'button', disabled: !w, onclick: () => dirInput.click(), id: 'upload-folder-btn' }, icon('upload'), h('span', { text: 'Upload folder' })),
        h('button', { type: 'button', disabled: !w, onclick: () => this.newFolder(), id: 'new-folder-btn' }, icon('plus-folder'), h('span', { text: 'New folder' })),
        fileInput, dirInput),
      this.actions);
    this.actions.append(this.selCount,
      this.btn('download', 'Download', () => this.downloadSelection(), 'act-download'),
      this.btn('rename', 'Rename', () => this.startRename(), 'act-rename', true),
      this.btn('move', 'Move', () => this.moveCopy(false), 'act-move', true),
      this.btn('copy', 'Copy', () => this.moveCopy(true), 'act-copy', true),
      this.btn('history', 'Versions', () => this.versions(), 'act-versions'),
      this.btn('trash', 'Delete', () => this.trashSelection(), 'act-delete', true));

    const col = (key, label, cls) => {
      if (!key) return h('div.col.' + cls, { role: 'columnheader', text: label });
      const active = this.sort === key;
      const b = h('button.sort', { type: 'button', onclick: () => this.setSort(key) }, label,
        active ? h('span.arrow', { 'aria-hidden': 'true', text: this.order === 'asc' ? '▲' : '▼' }) : null);
      return h('div.col.' + cls, { role: 'columnheader', 'aria-sort': active ? (this.order === 'asc' ? 'ascending' : 'descending') : 'none' }, b);
    };
    this.header = h('div.list-head', { role: 'row' },
      col('name', 'Name', 'c-name'), col('size', 'Size', 'c-size'), col('mtime', 'Modified', 'c-mtime'), col('', 'Modified by', 'c-by'));
    this.spacer = h('div.spacer');
    this.viewport = h('div.viewport', { role: 'listbox', 'aria-multiselectable': 'true', 'aria-label': 'Files in ' + (f.path === '/' ? this.space.name : f.name), tabindex: '0', id: 'file-list' }, this.spacer);
    this.emptyEl = h('div.empty', { hidden: true });
    this.viewport.addEventListener('scroll', () => this.schedule());
    this.viewport.addEventListener('keydown', (e) => this.onKey(e));
    this.viewport.addEventListener('focus', () => { if (this.focus < 0 && this.items.length) this.setFocus(0, false); });
    window.addEventListener('resize', this.onResize = () => this.schedule());
    const root = h('section.folder-view', { 'aria-label': 'Folder' }, h('div.view-top', null, this.crumbs, toolbar),
      h('div.list', null, this.header, this.viewport, this.emptyEl));
    this.setupDesktopDrop(root);
    return root;
  }

  btn(ic, label, fn, id, write) {
    return h('button.small', { type: 'button', onclick: fn, id, disabled: write && !this.canWrite(), title: label }, icon(ic), h('span', { text: label }));
  }

  destroy() { window.removeEventListener('resize', this.onResize); this.gen++; }

  setSort(key) {
    if (this.sort === key) this.order = this.order === 'asc' ? 'desc' : 'asc';
    else { this.sort = key; this.order = key === 'name' ? 'asc' : 'desc'; }
    localStorage.setItem('velox.sort', JSON.stringify({ sort: this.sort, order: this.order }));
    const fresh = this.build();
    this.el.replaceWith(fresh);
    this.el = fresh;
    this.rowEls.clear();
    this.reload();
  }

  /** reload fetches the listing again from the start, keeping selection and scroll where possible. */
  async reload(keep, prefetched) {
    const gen = ++this.gen;
    const want = keep ? Math.min(PAGE, Math.max(FIRST_PAGE, this.items.length)) : FIRST_PAGE;
    const scroll = this.viewport.scrollTop;
    try {
      const page = await (prefetched || this.fetchPage(null, want));
      if (gen !== this.gen) return;
      const focusID = this.items[this.focus]?.id;
      this.items = page.items;
      this.next = page.next_cursor;
      const ids = new Set(this.items.map((n) => n.id));
      for (const id of [...this.sel]) if (!ids.has(id)) this.sel.delete(id);
      this.focus = focusID ? this.items.findIndex((n) => n.id === focusID) : -1;
      for (const el of this.rowEls.values()) el.remove();
      this.rowEls.clear();
      if (keep) this.viewport.scrollTop = scroll;
      this.render();
      this.updateActions();
      if (!painted) {
        painted = true;
        // Mark once the rows are on screen: after the next frame is painted.
        requestAnimationFrame(() => setTimeout(() => performance.mark('velox:list-painted'), 0));
      }
    } catch (e) {
      if (gen !== this.gen) return;
      this.emptyEl.hidden = false;
      this.emptyEl.replaceChildren(h('p.error', { text: 'This folder cannot be shown: ' + e.message }));
    }
  }

  fetchPage(cursor, limit) {
    return api.get('/nodes/' + encodeURIComponent(this.folder.id) + '/children' +
      api.q({ sort: this.sort, order: this.order, limit, cursor }));
  }

  /** more loads the next page when the user scrolls near the end of what is loaded. */
  more() {
    if (!this.next || this.loading) return;
    const gen = this.gen;
    this.loading = this.fetchPage(this.next, PAGE).then((page) => {
      if (gen !== this.gen) return;
      this.items.push(...page.items);
      this.next = page.next_cursor;
      this.render();
    }).catch((e) => showError(e, 'Loading the folder')).finally(() => { this.loading = null; });
  }

  schedule() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => { this.raf = 0; this.render(); });
  }

  /** render draws the rows in view (plus overscan), reusing rows already drawn. */
  render() {
    const n = this.items.length;
    this.spacer.style.height = (n + (this.next ? 1 : 0)) * ROW + 'px';
    this.emptyEl.hidden = n > 0 || !!this.next;
    if (!n && !this.next) {
      this.emptyEl.replaceChildren(icon('folder', 'icon big'), h('p', { text: 'This folder is empty.' }),
        h('p.muted', { text: this.canWrite() ? 'Drop files or folders here, or use Upload.' : 'You have read-only access here.' }));
    }
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((top + height) / ROW) + OVERSCAN);
    const keep = new Set();
    for (let i = first; i <= last; i++) {
      const node = this.items[i];
      keep.add(node.id);
      let el = this.rowEls.get(node.id);
      if (!el || el.dataset.index !== String(i) || (this.renaming === node.id) !== el.classList.contains('renaming')) {
        el?.remove();
        el = this.row(node, i);
        this.rowEls.set(node.id, el);
        this.spacer.append(el);
      }
      this.paintState(el, node, i);
    }
    for (const [id, el] of this.rowEls) if (!keep.has(id)) { el.remove(); this.rowEls.delete(id); }
    if (this.next && last >= n - OVERSCAN * 2) this.more();
  }

  paintState(el, node, i) {
    const selected = this.sel.has(node.id);
    el.classList.toggle('selected', selected);
    el.classList.toggle('focused', i === this.focus);
    el.setAttribute('aria-selected', selected ? 'true' : 'false');
  }

  row(node, i) {
    const folder = node.kind === 'folder';
    const el = h('div.row', { role: 'option', id: 'row-' + node.id, dataset: { index: String(i), id: node.id, kind: node.kind }, draggable: this.canWrite() ? 'true' : null });
    el.style.transform = 'translateY(' + i * ROW + 'px)';
    let nameEl;
    if (this.renaming === node.id) {
      el.classList.add('renaming');
      nameEl = this.renameInput(node);
    } else {
      nameEl = h('a.name', { href: folder ? folderURL(this.space.id, joinPath(this.folder.path, node.name)) : api.contentURL(node.id), text: node.name, tabindex: '-1', draggable: 'false' });
      nameEl.addEventListener('click', (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey) { e.preventDefault(); return; } // selection click, handled by the row
        e.preventDefault();
        e.stopPropagation();
        this.open(node);
      });
    }
    el.append(
      h('span.c-name', null, thumbOrIcon(node), nameEl),
      h('span.c-size', { text: folder ? '—' : size(node.size) }),
      h('span.c-mtime', { text: when(node.mtime) }),
      h('span.c-by', { text: node.modified_by_name || '' }));
    el.addEventListener('click', (e) => this.click(e, i));
    el.addEventListener('dblclick', () => this.open(node));
    el.addEventListener('dragstart', (e) => this.dragStart(e, node, i));
    if (folder) this.dropTarget(el, async () => ({ ...node, path: joinPath(this.folder.path, node.name) }), null, node.id);
    return el;
  }

  // --- selection and keyboard ---

  click(e, i) {
    const id = this.items[i].id;
    if (e.shiftKey && this.anchor >= 0) {
      const [a, b] = this.anchor < i ? [this.anchor, i] : [i, this.anchor];
      if (!(e.ctrlKey || e.metaKey)) this.sel.clear();
      for (let k = a; k <= b; k++) this.sel.add(this.items[k].id);
    } else if (e.ctrlKey || e.metaKey) {
      if (this.sel.has(id)) this.sel.delete(id); else this.sel.add(id);
      this.anchor = i;
    } else {
      this.sel.clear();
      this.sel.add(id);
      this.anchor = i;
    }
    this.focus = i;
    this.viewport.focus({ preventScroll: true });
    this.selectionChanged();
  }

  setFocus(i, extend, toggleOnly) {
    if (!this.items.length) return;
    i = Math.max(0, Math.min(this.items.length - 1, i));
    this.focus = i;
    if (extend && this.anchor >= 0) {
      this.sel.clear();
      const [a, b] = this.anchor < i ? [this.anchor, i] : [i, this.anchor];
      for (let k = a; k <= b; k++) this.sel.add(this.items[k].id);
    } else if (!toggleOnly) {
      this.sel.clear();
      this.sel.add(this.items[i].id);
      this.anchor = i;
    }
    // Keep the focused row in view.
    const top = i * ROW, vp = this.viewport;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + ROW > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + ROW - vp.clientHeight;
    this.selectionChanged();
  }

  selectAll() {
    for (const n of this.items) this.sel.add(n.id);
    this.selectionChanged();
  }

  selectionChanged() {
    for (const [id, el] of this.rowEls) this.paintState(el, this.items[Number(el.dataset.index)] || { id }, Number(el.dataset.index));
    const f = this.items[this.focus];
    if (f) this.viewport.setAttribute('aria-activedescendant', 'row-' + f.id);
    this.updateActions();
  }

  selected() { return this.items.filter((n) => this.sel.has(n.id)); }

  updateActions() {
    const s = this.selected();
    this.actions.classList.toggle('invisible', s.length === 0);
    this.actions.setAttribute('aria-hidden', s.length === 0 ? 'true' : 'false');
    this.selCount.textContent = s.length === 1 ? '1 selected' : s.length + ' selected';
    const one = s.length === 1;
    const w = this.canWrite();
    this.actions.querySelector('#act-rename').disabled = !one || !w;
    this.actions.querySelector('#act-versions').disabled = !(one && s[0].kind === 'file');
  }

  onKey(e) {
    if (this.renaming) return;
    const mod = e.ctrlKey || e.metaKey;
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW) - 1);
    switch (e.key) {
      case 'ArrowDown': this.setFocus(this.focus + 1, e.shiftKey, mod); break;
      case 'ArrowUp':
        if (e.altKey) { this.up(); break; }
        this.setFocus(this.focus - 1, e.shiftKey, mod); break;
      case 'PageDown': this.setFocus(this.focus + page, e.shiftKey, mod); break;
      case 'PageUp': this.setFocus(this.focus - page, e.shiftKey, mod); break;
      case 'Home': this.setFocus(0, e.shiftKey, mod); break;
      case 'End': this.setFocus(this.items.length - 1, e.shiftKey, mod); break;
      case ' ':
        if (this.focus >= 0) {
          const id = this.items[this.focus].id;
          if (mod && this.sel.has(id)) this.sel.delete(id); else this.sel.add(id);
          this.selectionChanged();
        }
        break;
      case 'Enter': if (this.items[this.focus]) this.open(this.items[this.focus]); break;
      case 'Delete': if (this.sel.size && this.canWrite()) this.trashSelection(); break;
      case 'F2': if (this.canWrite()) this.startRename(); break;
      case 'Backspace': this.up(); break;
      case 'Escape': this.sel.clear(); this.selectionChanged(); break;
      case 'a': case 'A':
        if (!mod) return;
        this.selectAll();
        break;
      default: return;
    }
    e.preventDefault();
  }

  up() {
    if (this.folder.path === '/') return;
    this.ctx.navigate(folderURL(this.space.id, this.folder.path.slice(0, this.folder.path.lastIndexOf('/')) || '/'));
  }

  // --- actions ---

  open(node) {
    if (node.kind === 'folder') {
      this.ctx.navigate(folderURL(this.space.id, joinPath(this.folder.path, node.name)), { ...node, path: joinPath(this.folder.path, node.name) });
    } else if (viewerKind(node)) {
      openViewer(node);
    } else {
      download(api.contentURL(node.id));
    }
  }

  async newFolder() {
    const name = await prompt('New folder', 'Folder name', 'New folder', 'Create');
    if (!name) return;
    try {
      const n = await api.post('/nodes/' + encodeURIComponent(this.folder.id) + '/children', { name });
      toast('Created folder “' + n.name + '”.', 'ok');
      this.sel = new Set([n.id]);
      await this.reload(true);
      const i = this.items.findIndex((x) => x.id === n.id);
      if (i >= 0) this.setFocus(i, false);
    } catch (e) { showError(e, 'New folder'); }
  }

  startRename() {
    const s = this.selected();
    const node = s.length === 1 ? s[0] : this.items[this.focus];
    if (!node) return;
    this.renaming = node.id;
    const i = this.items.indexOf(node);
    this.setFocus(i, false);
    this.render();
  }

  renameInput(node) {
    const input = h('input.rename', { type: 'text', value: node.name, 'aria-label': 'New name for ' + node.name, spellcheck: false, autocomplete: 'off' });
    let done = false;
    const finish = async (commit) => {
      if (done) return;
      done = true;
      const name = input.value.trim();
      this.renaming = null;
      if (!commit || !name || name === node.name) { this.render(); this.viewport.focus(); return; }
      try {
        const n = await api.patch('/nodes/' + encodeURIComponent(node.id), { name });
        toast('Renamed to “' + n.name + '”.', 'ok');
        await this.reload(true);
      } catch (e) { showError(e, 'Rename'); this.render(); }
      this.viewport.focus();
    };
    input.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      if (e.key === 'Escape') { e.preventDefault(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
    input.addEventListener('click', (e) => e.stopPropagation());
    // Focus and select the name without its extension, once in the DOM.
    requestAnimationFrame(() => {
      input.focus();
      const dot = node.kind === 'file' ? node.name.lastIndexOf('.') : -1;
      input.setSelectionRange(0, dot > 0 ? dot : node.name.length);
    });
    return input;
  }

  async trashSelection() {
    const s = this.selected();
    if (!s.length) return;
    const failed = [];
    for (const n of s) {
      try { await api.del('/nodes/' + encodeURIComponent(n.id)); } catch (e) { failed.push(n.name + ': ' + e.message); }
    }
    const ok = s.length - failed.length;
    if (ok) toast(ok === 1 ? 'Moved “' + s[0].name + '” to the trash.' : 'Moved ' + ok + ' items to the trash.', 'ok');
    if (failed.length) toast('Could not delete ' + failed.join('; '), 'error');
    this.sel.clear();
    this.reload(true);
  }

  async moveCopy(copy) {
    const s = this.selected();
    if (!s.length) return;
    const dest = await pickFolder(copy ? 'Copy ' + s.length + ' item(s) to…' : 'Move ' + s.length + ' item(s) to…', copy ? 'Copy here' : 'Move here',
      this.ctx.spaces, this.folder.id, new Set(s.map((n) => n.id)));
    if (dest) this.transfer(s, dest, copy);
  }

  /** transfer moves or copies nodes into the folder dest ({id, name}). */
  async transfer(nodes, dest, copy) {
    const failed = [];
    for (const n of nodes) {
      try {
        if (copy) await api.post('/nodes/' + encodeURIComponent(n.id) + '/copy', { parent_id: dest.id });
        else await api.patch('/nodes/' + encodeURIComponent(n.id), { parent_id: dest.id });
      } catch (e) { failed.push('“' + n.name + '”: ' + e.message); }
    }
    const ok = nodes.length - failed.length;
    if (ok) toast((copy ? 'Copied ' : 'Moved ') + (ok === 1 ? '“' + nodes[0].name + '”' : ok + ' items') + ' to “' + dest.name + '”.', 'ok');
    if (failed.length) toast('Could not ' + (copy ? 'copy ' : 'move ') + failed.join('; '), 'error');
    if (!copy) this.sel.clear();
    this.reload(true);
  }

  downloadSelection() {
    const s = this.selected();
    if (s.length === 1 && s[0].kind === 'file') { download(api.contentURL(s[0].id)); return; }
    if (s.length === 1) { download('/api/v1/nodes/' + encodeURIComponent(s[0].id) + '/zip'); return; }
    download('/api/v1/zip' + api.q({ ids: s.map((n) => n.id).join(','), name: this.folder.path === '/' ? this.space.name : this.folder.name }));
  }

  versions() {
    const s = this.selected();
    if (s.length === 1 && s[0].kind === 'file') openVersions(s[0], () => this.reload(true));
  }

  upload(entries) {
    if (!this.canWrite()) { toast('You have read-only access to “' + this.space.name + '”.', 'error'); return; }
    this.ctx.transfers.add(entries, { spaceId: this.space.id, folderId: this.folder.id, folderPath: this.folder.path });
  }

  // --- drag and drop ---

  dragStart(e, node, i) {
    if (this.renaming) { e.preventDefault(); return; }
    if (!this.sel.has(node.id)) { this.sel.clear(); this.sel.add(node.id); this.anchor = i; this.focus = i; this.selectionChanged(); }
    const ids = this.selected().map((n) => n.id);
    e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(ids));
    e.dataTransfer.setData('text/plain', this.selected().map((n) => n.name).join('\n'));
    e.dataTransfer.effectAllowed = 'copyMove';
  }

  /**
   * dropTarget makes el accept dragged rows (move, or copy with Ctrl/Alt)
   * and files from the desktop. resolve() returns the folder node.
   */
  dropTarget(el, resolve, path, id) {
    el.addEventListener('dragover', (e) => {
      const types = e.dataTransfer ? [...e.dataTransfer.types] : [];
      const internal = types.includes(DRAG_TYPE);
      if (!internal && !types.includes('Files')) return;
      if (id && this.sel.has(id) && internal) return; // not onto itself
      e.preventDefault();
      e.stopPropagation();
      e.dataTransfer.dropEffect = internal ? (e.ctrlKey || e.altKey ? 'copy' : 'move') : 'copy';
      el.classList.add('drop-target');
    });
    el.addEventListener('dragleave', () => el.classList.remove('drop-target'));
    el.addEventListener('drop', async (e) => {
      el.classList.remove('drop-target');
      const raw = e.dataTransfer.getData(DRAG_TYPE);
      const files = !raw && [...e.dataTransfer.types].includes('Files');
      if (!raw && !files) return;
      e.preventDefault();
      e.stopPropagation();
      this.el.classList.remove('dropping');
      try {
        if (files) {
          const entries = await entriesFromDrop(e.dataTransfer);
          const target = await resolve();
          this.ctx.transfers.add(entries, { spaceId: this.space.id, folderId: target.id, folderPath: target.path });
          return;
        }
        const ids = JSON.parse(raw);
        const nodes = this.items.filter((n) => ids.includes(n.id));
        const target = await resolve();
        if (target.id === this.folder.id) return;
        this.transfer(nodes, { id: target.id, name: target.path === '/' ? this.space.name : target.name }, e.ctrlKey || e.altKey);
      } catch (err) { showError(err); }
    });
  }

  /** setupDesktopDrop accepts files and folders dropped anywhere on the view. */
  setupDesktopDrop(root) {
    let depth = 0;
    root.addEventListener('dragenter', (e) => {
      if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
      depth++;
      root.classList.add('dropping');
    });
    root.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; root.classList.remove('dropping'); } });
    root.addEventListener('dragover', (e) => {
      if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    root.addEventListener('drop', async (e) => {
      depth = 0;
      root.classList.remove('dropping');
      if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
      e.preventDefault();
      try { this.upload(await entriesFromDrop(e.dataTransfer)); } catch (err) { showError(err, 'Reading the dropped files'); }
    });
  }
}
