// upload.js: the transfer manager. Small files go up in one request with
// XMLHttpRequest (for progress events); large files use the resumable
// upload-session API in chunks, retried with backoff, and remembered in
// localStorage so that a reload can resume them.

import * as api from './api.js';
import { h, icon, size, duration, dialog, showError, toast } from './ui.js';

/** Files at least this large use resumable upload sessions. */
export const CHUNK_THRESHOLD = 16 * 1024 * 1024;
const PARALLEL_FILES = 3;
const PARALLEL_CHUNKS = 3;
const MAX_ATTEMPTS = 12;
const STORE_KEY = 'velox.uploads';

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** backoff is the wait before retry n (1-based): 0.5 s doubling, capped at 15 s, with jitter. */
function backoff(n) { return Math.min(15000, 500 * 2 ** (n - 1)) * (0.75 + Math.random() / 2); }

/** retryable says whether an error is worth retrying (network, server busy, 5xx). */
function retryable(e) {
  return e && (e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500);
}

// Saved sessions: { "<name>|<size>|<lastModified>|<parentId>": {id, parent_id, name, size} }.
function loadSaved() {
  try { return JSON.parse(localStorage.getItem(STORE_KEY)) || {}; } catch { return {}; }
}
function saveSaved(m) { localStorage.setItem(STORE_KEY, JSON.stringify(m)); }
function fileKey(file) { return file.name + '|' + file.size + '|' + file.lastModified; }

let nextID = 1;

export class Transfers {
  /** onUploaded(parentId) is called whenever a file lands, to refresh listings. */
  constructor(onUploaded) {
    this.onUploaded = onUploaded;
    this.items = [];
    this.running = 0;
    this.policy = null; // conflict answer applied to all, or null to ask
    this.asking = Promise.resolve();
    this.el = h('section.transfers', { 'aria-label': 'Transfers', hidden: true });
    this.head = h('div.transfers-head');
    this.overallBar = h('progress.overall', { max: 100, value: 0, 'aria-label': 'Overall progress' });
    this.list = h('ul.transfer-list');
    this.resumeBox = h('div.resume', { hidden: true });
    this.collapsed = false;
    const toggle = h('button.icon-btn', { type: 'button', 'aria-label': 'Collapse transfers', onclick: () => {
      this.collapsed = !this.collapsed;
      this.el.classList.toggle('collapsed', this.collapsed);
    } }, icon('chevron'));
    const clear = h('button.link', { type: 'button', onclick: () => this.clearFinished() }, 'Clear');
    this.title = h('strong.transfers-title', { text: 'Uploads' });
    this.stats = h('span.transfers-stats');
    this.head.append(this.title, this.stats, clear, toggle);
    this.el.append(this.head, this.overallBar, this.resumeBox, this.list);
    this.tick = setInterval(() => this.sample(), 500);
  }

  /**
   * add queues files for upload. entries: [{file, dir}] where dir is the
   * folder path relative to the target ('' for the target itself).
   * target: {spaceId, folderId, folderPath}.
   */
  async add(entries, target) {
    if (!entries.length) return;
    this.el.hidden = false;
    // Create the folder structure first (mkdir -p per distinct folder).
    const dirs = [...new Set(entries.map((e) => e.dir).filter(Boolean))].sort();
    const ids = { '': target.folderId };
    for (const d of dirs) {
      const full = (target.folderPath === '/' ? '' : target.folderPath) + '/' + d;
      try {
        const n = await api.post('/spaces/' + encodeURIComponent(target.spaceId) + '/folders', { path: full });
        ids[d] = n.id;
      } catch (e) {
        showError(e, 'Could not create folder “' + d + '”');
        ids[d] = null;
      }
    }
    if (dirs.length) this.onUploaded(target.folderId);
    for (const e of entries) {
      const parentId = ids[e.dir];
      if (!parentId || !e.file) continue; // e.file is null for an empty folder
      this.push(e.file, parentId);
    }
    this.pump();
  }

  push(file, parentId) {
    const t = { id: nextID++, file, name: file.name, size: file.size, parentId, loaded: 0, state: 'queued',
      error: '', speed: 0, lastLoaded: 0, conflict: 'fail', aborts: new Set(), sessionId: null };
    t.row = this.row(t);
    this.items.push(t);
    this.list.append(t.row.li);
    this.render(t);
    return t;
  }

  row(t) {
    const bar = h('progress', { max: 100, value: 0, 'aria-label': 'Progress of ' + t.name });
    const status = h('span.t-status');
    const pct = h('span.t-pct', { text: '0%' });
    const cancel = h('button.icon-btn', { type: 'button', 'aria-label': 'Cancel upload of ' + t.name, title: 'Cancel', onclick: () => this.cancel(t) }, icon('close'));
    const retry = h('button.icon-btn', { type: 'button', 'aria-label': 'Retry upload of ' + t.name, title: 'Retry', hidden: true, onclick: () => this.retry(t) }, icon('retry'));
    const li = h('li.transfer', { dataset: { name: t.name } },
      h('div.t-line', null, h('span.t-name', { text: t.name, title: t.name }), pct, retry, cancel),
      bar, status);
    return { li, bar, status, pct, cancel, retry };
  }

  render(t) {
    const pct = t.size ? Math.floor((t.loaded / t.size) * 100) : (t.state === 'done' ? 100 : 0);
    const r = t.row;
    r.bar.value = t.state === 'done' ? 100 : Math.min(pct, 99.9);
    r.pct.textContent = t.state === 'done' ? '100%' : Math.min(pct, 99) + '%';
    r.li.dataset.state = t.state;
    let s = '';
    switch (t.state) {
      case 'queued': s = 'Waiting · ' + size(t.size); break;
      case 'uploading': {
        s = size(t.loaded) + ' of ' + size(t.size);
        if (t.speed > 0) s += ' · ' + size(t.speed) + '/s · ' + duration((t.size - t.loaded) / t.speed) + ' left';
        if (t.note) s += ' · ' + t.note;
        break;
      }
      case 'done': s = 'Uploaded · ' + size(t.size); break;
      case 'skipped': s = 'Skipped: a file with this name exists'; break;
      case 'cancelled': s = 'Cancelled'; break;
      case 'error': s = t.error; break;
    }
    r.status.textContent = s;
    r.retry.hidden = !(t.state === 'error' || t.state === 'cancelled');
    r.cancel.hidden = !(t.state === 'queued' || t.state === 'uploading');
    this.renderOverall();
  }

  renderOverall() {
    const active = this.items.filter((t) => t.state !== 'skipped' && t.state !== 'cancelled');
    const total = active.reduce((a, t) => a + t.size, 0);
    const loaded = active.reduce((a, t) => a + (t.state === 'done' ? t.size : t.loaded), 0);
    const done = active.filter((t) => t.state === 'done').length;
    const failed = active.filter((t) => t.state === 'error').length;
    const pct = total ? Math.floor((loaded / total) * 100) : (active.length && done === active.length ? 100 : 0);
    this.overallBar.value = pct;
    this.overallBar.dataset.pct = String(pct);
    const speed = active.filter((t) => t.state === 'uploading').reduce((a, t) => a + t.speed, 0);
    const busy = active.some((t) => t.state === 'uploading' || t.state === 'queued');
    this.title.textContent = busy ? 'Uploading ' + (done + 1 > active.length ? active.length : done + 1) + ' of ' + active.length
      : done + ' of ' + active.length + ' uploaded';
    let stats = pct + '%';
    if (busy && speed > 0) stats += ' · ' + size(speed) + '/s · ' + duration((total - loaded) / speed) + ' left';
    if (failed) stats += ' · ' + failed + ' failed';
    this.stats.textContent = stats;
  }

  /** sample updates the speed estimates (bytes per second, smoothed). */
  sample() {
    for (const t of this.items) {
      if (t.state !== 'uploading') continue;
      const inst = (t.loaded - t.lastLoaded) * 2;
      t.lastLoaded = t.loaded;
      t.speed = t.speed ? t.speed * 0.7 + inst * 0.3 : inst;
      this.render(t);
    }
  }

  pump() {
    while (this.running < PARALLEL_FILES) {
      const t = this.items.find((x) => x.state === 'queued');
      if (!t) break;
      this.running++;
      t.state = 'uploading';
      this.render(t);
      this.run(t).finally(() => { this.running--; this.pump(); });
    }
  }

  async run(t) {
    try {
      const node = t.size >= CHUNK_THRESHOLD ? await this.chunked(t) : await this.simple(t);
      if (t.state !== 'uploading') return;
      if (node === 'skipped') { t.state = 'skipped'; this.render(t); return; }
      t.state = 'done';
      t.loaded = t.size;
      this.render(t);
      this.onUploaded(t.parentId);
    } catch (e) {
      if (t.state === 'cancelled') return;
      if (e && e.name === 'AbortError') { t.state = 'cancelled'; this.render(t); return; }
      t.state = 'error';
      t.error = (e && e.message) || 'The upload failed.';
      this.render(t);
      showError(e, 'Upload of “' + t.name + '” failed');
    }
  }

  /** ask resolves the conflict policy for t: 'replace', 'rename' or 'skip'. Questions are asked one at a time. */
  ask(t) {
    const p = this.asking.then(async () => {
      if (this.policy) return this.policy;
      const all = h('input', { type: 'checkbox', name: 'all' });
      const body = [h('p', null, 'A file named “', h('strong', { text: t.name }), '” already exists in this folder.'),
        h('label.check', null, all, ' Apply to all conflicts in this upload')];
      const v = await dialog('Replace or keep both?', body, [
        { label: 'Skip', value: 'skip' }, { label: 'Keep both', value: 'rename' }, { label: 'Replace', value: 'replace', primary: true }]);
      const choice = v || 'skip';
      if (all.checked) this.policy = choice;
      return choice;
    });
    this.asking = p.catch(() => {});
    return p;
  }

  /** simple uploads the whole file in one POST. */
  async simple(t) {
    for (;;) {
      const path = '/nodes/' + encodeURIComponent(t.parentId) + '/files' +
        api.q({ name: t.name, conflict: t.conflict, mtime: Math.floor(t.file.lastModified / 1000) });
      const x = api.send('POST', path, t.file, (n) => { t.loaded = n; });
      t.aborts.add(x.abort);
      try {
        return await x.promise;
      } catch (e) {
        if (e.status === 409 && e.code === 'conflict' && t.conflict === 'fail') {
          t.loaded = 0;
          const c = await this.ask(t);
          if (c === 'skip') return 'skipped';
          t.conflict = c;
          continue;
        }
        throw e;
      } finally {
        t.aborts.delete(x.abort);
      }
    }
  }

  /** chunked uploads through a resumable upload session. */
  async chunked(t) {
    const saved = loadSaved();
    const key = fileKey(t.file) + '|' + t.parentId;
    let sess = null;
    if (saved[key]) {
      try {
        sess = await api.get('/uploads/' + encodeURIComponent(saved[key].id));
        t.note = 'resuming';
      } catch (e) {
        if (retryable(e)) throw e;
        delete saved[key];
        saveSaved(saved);
      }
    }
    while (!sess) {
      try {
        sess = await api.post('/uploads', { parent_id: t.parentId, name: t.name, size: t.size, conflict: t.conflict,
          mtime: new Date(t.file.lastModified).toISOString() });
      } catch (e) {
        if (e.status === 404 && e.code === 'not_found' && /endpoint/i.test(e.message)) return this.simple(t); // no session API
        if (e.status === 409 && e.code === 'conflict' && t.conflict === 'fail') {
          const c = await this.ask(t);
          if (c === 'skip') return 'skipped';
          t.conflict = c;
          continue;
        }
        throw e;
      }
      const m = loadSaved();
      m[key] = { id: sess.id, parent_id: t.parentId, name: t.name, size: t.size };
      saveSaved(m);
    }
    t.sessionId = sess.id;
    const cs = sess.chunk_size;
    const count = sess.chunks || Math.ceil(t.size / cs);
    const have = new Set(sess.received || []);
    const chunkLen = (i) => Math.min(cs, t.size - i * cs);
    let base = 0;
    for (const i of have) base += chunkLen(i);
    const inflight = new Map(); // index -> bytes sent so far
    const update = () => { let s = base; for (const v of inflight.values()) s += v; t.loaded = s; };
    update();
    const todo = [];
    for (let i = 0; i < count; i++) if (!have.has(i)) todo.push(i);

    const worker = async () => {
      while (todo.length) {
        if (t.state !== 'uploading') throw new DOMException('Aborted', 'AbortError');
        const i = todo.shift();
        const blob = t.file.slice(i * cs, i * cs + chunkLen(i));
        for (let attempt = 1; ; attempt++) {
          const x = api.send('PUT', '/uploads/' + encodeURIComponent(sess.id) + '/chunks/' + i, blob, (n) => { inflight.set(i, n); update(); });
          t.aborts.add(x.abort);
          try {
            await x.promise;
            t.note = '';
            break;
          } catch (e) {
            inflight.delete(i);
            update();
            if (e.name === 'AbortError' || !retryable(e) || attempt >= MAX_ATTEMPTS) throw e;
            t.note = 'connection lost, retrying (' + attempt + ')';
            this.render(t);
            await sleep(backoff(attempt));
            if (t.state !== 'uploading') throw new DOMException('Aborted', 'AbortError');
          } finally {
            t.aborts.delete(x.abort);
          }
        }
        inflight.delete(i);
        base += chunkLen(i);
        update();
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CHUNKS, Math.max(1, todo.length)) }, worker));
    let node;
    for (let attempt = 1; ; attempt++) {
      try {
        node = await api.post('/uploads/' + encodeURIComponent(sess.id) + '/finish');
        break;
      } catch (e) {
        if (!retryable(e) || attempt >= 5) throw e;
        await sleep(backoff(attempt));
      }
    }
    const m = loadSaved();
    delete m[key];
    saveSaved(m);
    return node;
  }

  cancel(t) {
    if (t.state !== 'queued' && t.state !== 'uploading') return;
    t.state = 'cancelled';
    for (const a of t.aborts) a();
    if (t.sessionId) {
      api.del('/uploads/' + encodeURIComponent(t.sessionId)).catch(() => {});
      const m = loadSaved();
      delete m[fileKey(t.file) + '|' + t.parentId];
      saveSaved(m);
      t.sessionId = null;
    }
    this.render(t);
  }

  retry(t) {
    t.state = 'queued';
    t.loaded = 0;
    t.error = '';
    t.note = '';
    t.conflict = 'fail';
    this.render(t);
    this.pump();
  }

  clearFinished() {
    this.items = this.items.filter((t) => {
      const keep = t.state === 'queued' || t.state === 'uploading' || t.state === 'error';
      if (!keep) t.row.li.remove();
      return keep;
    });
    this.renderOverall();
    if (!this.items.length && this.resumeBox.hidden) this.el.hidden = true;
  }

  /**
   * offerResume asks the server for the user's open upload sessions and,
   * for those this browser started, offers to resume them: the browser
   * cannot read a file again without the user choosing it, so the user
   * selects the same files and each is matched by name, size and date.
   */
  async offerResume() {
    const saved = loadSaved();
    if (!Object.keys(saved).length) return;
    let open;
    try {
      open = (await api.get('/uploads')).items || [];
    } catch { return; } // no session API, or offline: nothing to offer
    const live = new Set(open.map((s) => s.id));
    for (const [k, v] of Object.entries(saved)) if (!live.has(v.id)) delete saved[k];
    saveSaved(saved);
    const pending = Object.entries(saved);
    if (!pending.length) return;
    const input = h('input', { type: 'file', multiple: true, hidden: true, 'aria-label': 'Select files to resume' });
    input.addEventListener('change', () => {
      const m = loadSaved();
      let matched = 0;
      for (const f of input.files) {
        const hit = Object.entries(m).find(([k]) => k.startsWith(fileKey(f) + '|'));
        if (!hit) continue;
        matched++;
        this.push(f, hit[1].parent_id);
      }
      if (!matched) toast('None of the selected files matches an unfinished upload (same name, size and date).', 'error');
      else this.resumeBox.hidden = true;
      this.pump();
    });
    const names = pending.map(([, v]) => v.name).join(', ');
    this.resumeBox.replaceChildren(
      h('p', null, pending.length === 1 ? 'An upload was interrupted: ' : pending.length + ' uploads were interrupted: ', h('strong', { text: names }), '.'),
      h('button.primary.small', { type: 'button', onclick: () => input.click() }, 'Select the same files to resume'),
      h('button.link', { type: 'button', onclick: async () => {
        for (const [, v] of pending) api.del('/uploads/' + encodeURIComponent(v.id)).catch(() => {});
        saveSaved({});
        this.resumeBox.hidden = true;
        if (!this.items.length) this.el.hidden = true;
      } }, 'Discard'),
      input);
    this.resumeBox.hidden = false;
    this.el.hidden = false;
  }
}

/**
 * entriesFromDrop reads a drop's items into [{file, dir}], walking dropped
 * folders with the File and Directory Entries API so that the structure is
 * kept. Empty folders are returned as {dir} entries without a file.
 */
export async function entriesFromDrop(dt) {
  const out = [];
  const roots = [];
  for (const item of dt.items || []) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    if (entry) roots.push(entry);
    else { const f = item.getAsFile(); if (f) out.push({ file: f, dir: '' }); }
  }
  if (!roots.length && !out.length) for (const f of dt.files || []) out.push({ file: f, dir: '' });
  const walk = async (entry, dir) => {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ file, dir });
      return;
    }
    if (!entry.isDirectory) return;
    const sub = dir ? dir + '/' + entry.name : entry.name;
    const reader = entry.createReader();
    let any = false;
    // readEntries returns at most ~100 entries per call: read until empty.
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      any = true;
      for (const e of batch) await walk(e, sub);
    }
    if (!any) out.push({ file: null, dir: sub });
  };
  for (const r of roots) await walk(r, '');
  return out;
}

/** entriesFromInput reads an <input type=file> (webkitdirectory or not) into [{file, dir}]. */
export function entriesFromInput(input) {
  return [...input.files].map((f) => {
    const rel = f.webkitRelativePath || '';
    const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    return { file: f, dir };
  });
}
