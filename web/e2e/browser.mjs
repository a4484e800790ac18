// End-to-end scenarios of the Velox browser UI, run by e2e_test.go against
// a fresh "velox serve". Each scenario prints one line
//   RESULT {"test": name, "ok": bool, "error": "...", "ms": n, "metrics": {...}}
// and saves at least one screenshot into $VELOX_TEST_ARTIFACTS.

import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';

const BASE = process.env.VELOX_URL;
const PASSWORD = process.env.VELOX_PASSWORD;
const ART = process.env.VELOX_TEST_ARTIFACTS;
const SCRATCH = process.env.SCRATCH;
const ONLY = (process.env.TEST_BROWSER_ONLY || '').split(',').filter(Boolean);
const AUTH = 'Basic ' + Buffer.from('admin:' + PASSWORD).toString('base64');

// --- API helpers (HTTP Basic: no session, no CSRF token) ---

async function api(method, p, body, headers = {}) {
  const init = { method, headers: { Authorization: AUTH, ...headers } };
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array) init.body = body;
    else { init.body = JSON.stringify(body); init.headers['Content-Type'] = 'application/json'; }
  }
  const res = await fetch(BASE + '/api/v1' + p, init);
  const text = await res.text();
  let data = text;
  try { data = JSON.parse(text); } catch { /* raw content */ }
  if (!res.ok) { const e = new Error(method + ' ' + p + ': ' + res.status + ' ' + text); e.status = res.status; throw e; }
  return data;
}
async function content(id) {
  const res = await fetch(BASE + '/api/v1/nodes/' + id + '/content', { headers: { Authorization: AUTH } });
  if (!res.ok) throw new Error('download ' + id + ': ' + res.status);
  return Buffer.from(await res.arrayBuffer());
}
const me = (await api('GET', '/me')).user;
const SPACE = me.personal_space_id;
const ROOT = (await api('GET', '/spaces/' + SPACE)).root_id;
const resolve = (p) => api('GET', '/spaces/' + SPACE + '/resolve?path=' + encodeURIComponent(p));
const mkdir = (parent, name) => api('POST', '/nodes/' + parent + '/children', { name });
const put = (parent, name, data, conflict = 'fail') =>
  api('POST', '/nodes/' + parent + '/files?name=' + encodeURIComponent(name) + '&conflict=' + conflict, data);
const folderURL = (...segs) => BASE + '/files/' + SPACE + '/' + segs.map(encodeURIComponent).join('/');
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

// --- harness ---

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});

async function shot(page, name) {
  await page.screenshot({ path: path.join(ART, (process.env.SHOT_PREFIX || '') + name + '.png') });
}

/** signIn starts a session for the browser context through the API (the sign-in form has its own scenario). */
async function signIn(context) {
  const res = await context.request.post(BASE + '/api/v1/auth/login', { data: { username: 'admin', password: PASSWORD } });
  if (!res.ok()) throw new Error('login: ' + res.status());
}

const row = (page, name) => page.locator('#file-list .row', { has: page.locator('.name', { hasText: name }) });
const exactRow = (page, name) => page.locator('#file-list .row').filter({ has: page.getByText(name, { exact: true }) });

async function scenario(name, fn, opts = {}) {
  if (ONLY.length && !ONLY.includes(name)) return;
  const t0 = performance.now();
  const context = await browser.newContext({ viewport: opts.viewport || { width: 1280, height: 800 }, colorScheme: opts.colorScheme || 'light', acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const problems = [];
  page.on('console', (msg) => { if (msg.type() === 'error' || msg.type() === 'warning') console.error('[' + name + '] console ' + msg.type() + ': ' + msg.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('dialog', (d) => { problems.push('unexpected JavaScript dialog: ' + d.message()); d.dismiss().catch(() => {}); });
  const metrics = {};
  const out = { test: name, ok: false, ms: 0, metrics };
  try {
    if (!opts.noLogin) await signIn(context);
    const r = await fn(page, metrics, context);
    if (r && r.skipped) out.skipped = r.skipped;
    if (problems.length) throw new Error(problems.join('; '));
    out.ok = true;
  } catch (e) {
    out.error = String(e && e.stack || e).split('\n').slice(0, 6).join('\n');
    await shot(page, name + '-failed').catch(() => {});
  } finally {
    out.ms = performance.now() - t0;
    await context.close().catch(() => {});
  }
  console.log('RESULT ' + JSON.stringify(out));
}

function assert(cond, msg) { if (!cond) throw new Error(msg); }

/** waitDone waits until the transfer row of name reaches state done (or fails). */
async function waitDone(page, name, timeout = 60000) {
  const li = page.locator('.transfer[data-name="' + name.replace(/"/g, '\\"') + '"]').last();
  await li.waitFor();
  await page.waitForFunction((el) => ['done', 'error', 'skipped'].includes(el.dataset.state), await li.elementHandle(), { timeout });
  const state = await li.getAttribute('data-state');
  assert(state === 'done', 'upload of ' + name + ' ended in state ' + state + ': ' + await li.locator('.t-status').textContent());
  const v = await li.locator('progress').evaluate((p) => p.value);
  assert(v === 100, 'progress bar of ' + name + ' is ' + v + ', want 100');
  return li;
}

// --- scenarios ---

await scenario('sign-in', async (page) => {
  await page.goto(BASE + '/');
  await page.waitForURL(/\/login/);
  await page.fill('#username', 'admin');
  await page.fill('#password', 'not-the-password');
  await page.click('button[type=submit]');
  const err = page.locator('#login-error');
  await err.waitFor({ state: 'visible' });
  const text = await err.textContent();
  assert(text === 'Wrong username or password.', 'wrong-password message: ' + JSON.stringify(text));
  await shot(page, 'sign-in-wrong-password');
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  await page.locator('#file-list').waitFor();
  assert(new URL(page.url()).pathname.startsWith('/files/'), 'after sign-in at ' + page.url());
  await shot(page, 'signed-in');
  await page.click('#sign-out');
  await page.waitForURL(/\/login/);
  await page.getByText('You are signed out.').waitFor();
  const st = await page.request.get(BASE + '/api/v1/me');
  assert(st.status() === 401, 'after sign-out /me answers ' + st.status());
}, { noLogin: true });

await scenario('security-headers', async (page) => {
  const res = await page.request.get(BASE + '/', { headers: { 'Accept-Encoding': 'gzip' } });
  const h = res.headers();
  assert(h['content-security-policy'].includes("script-src 'self'") && !h['content-security-policy'].includes('unsafe-inline'), 'CSP: ' + h['content-security-policy']);
  assert(h['x-content-type-options'] === 'nosniff', 'nosniff missing');
  assert(h['cache-control'] === 'no-cache', 'page Cache-Control: ' + h['cache-control']);
  const html = await res.text();
  const js = html.match(/\/static\/app\.[0-9a-f]{12}\.js/);
  assert(js, 'no hashed app.js in the page');
  const a = await fetch(BASE + js[0], { headers: { 'Accept-Encoding': 'gzip' } });
  assert(a.headers.get('cache-control').includes('immutable'), 'asset Cache-Control: ' + a.headers.get('cache-control'));
  assert(a.headers.get('content-encoding') === 'gzip', 'asset not gzip-encoded');
  await page.goto(BASE + '/');
  await page.locator('#file-list').waitFor();
  // No inline script or style anywhere in the served page.
  assert(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html) && !/style=/.test(html), 'inline script or style in the page');
  await shot(page, 'home');
});

await scenario('create-folder-and-upload', async (page, m) => {
  await mkdir(ROOT, 'T-upload');
  await page.goto(folderURL('T-upload'));
  await page.getByText('This folder is empty.').waitFor();
  await page.click('#new-folder-btn');
  await page.fill('dialog input', 'Reports');
  await page.keyboard.press('Enter');
  await exactRow(page, 'Reports').waitFor();
  const big = crypto.randomBytes(6 * 1024 * 1024);
  // Record every value the overall progress bar takes.
  await page.evaluate(() => {
    window.__progress = [];
    setInterval(() => { const p = document.querySelector('progress.overall'); if (p) window.__progress.push(p.value); }, 20);
  });
  await page.setInputFiles('#file-input', [
    { name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, world\n') },
    { name: 'big.bin', mimeType: 'application/octet-stream', buffer: big }]);
  await waitDone(page, 'hello.txt');
  await waitDone(page, 'big.bin');
  await page.waitForFunction(() => document.querySelector('progress.overall').value === 100);
  const seen = await page.evaluate(() => window.__progress);
  m.progress_samples = seen.length;
  assert(seen.at(-1) === 100 || (await page.locator('progress.overall').evaluate((p) => p.value)) === 100, 'overall bar did not reach 100');
  await exactRow(page, 'big.bin').waitFor();
  await shot(page, 'upload-done');
  const n = await resolve('/T-upload/big.bin');
  assert(n.size === big.length && n.sha256 === sha(big), 'stored big.bin differs: ' + n.size + ' ' + n.sha256);
  assert((await resolve('/T-upload/Reports')).kind === 'folder', 'Reports is not a folder');
});

await scenario('folder-upload-drag-and-drop', async (page) => {
  await mkdir(ROOT, 'T-drop');
  await page.goto(folderURL('T-drop'));
  await page.getByText('This folder is empty.').waitFor();
  // A loose file in a real DataTransfer, and a folder tree through the
  // File and Directory Entries API (which a page cannot build with real
  // directories, so the entries are synthesized).
  await page.evaluate(() => {
    const view = document.querySelector('.folder-view');
    const dt = new DataTransfer();
    dt.items.add(new File(['loose file\n'], 'loose.txt', { type: 'text/plain' }));
    view.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));

    const fileEntry = (name, text) => ({ isFile: true, isDirectory: false, name, file: (ok) => ok(new File([text], name, { type: 'text/plain' })) });
    const dirEntry = (name, children) => ({
      isFile: false, isDirectory: true, name,
      createReader() { let read = false; return { readEntries(ok) { ok(read ? [] : (read = true, children)); } }; },
    });
    const tree = dirEntry('Album', [fileEntry('a.txt', 'A'), dirEntry('sub', [fileEntry('c.txt', 'C'), dirEntry('deeper', [fileEntry('d.txt', 'D')])]), dirEntry('empty', [])]);
    const ev = new DragEvent('drop', { bubbles: true, cancelable: true });
    Object.defineProperty(ev, 'dataTransfer', { value: { types: ['Files'], files: [], items: [{ kind: 'file', webkitGetAsEntry: () => tree, getAsFile: () => null }] } });
    view.dispatchEvent(ev);
  });
  await waitDone(page, 'loose.txt');
  await waitDone(page, 'd.txt');
  await waitDone(page, 'c.txt');
  await waitDone(page, 'a.txt');
  await exactRow(page, 'Album').waitFor();
  await exactRow(page, 'loose.txt').waitFor();
  for (const p of ['/T-drop/Album/a.txt', '/T-drop/Album/sub/c.txt', '/T-drop/Album/sub/deeper/d.txt']) {
    const n = await resolve(p);
    assert(n.kind === 'file' && n.size === 1, p + ' wrong: ' + JSON.stringify(n));
  }
  assert((await resolve('/T-drop/Album/empty')).kind === 'folder', 'empty folder not created');
  await shot(page, 'folder-drop');

  // The "Upload folder" button (a webkitdirectory input).
  const dir = path.join(SCRATCH, 'Docs');
  fs.mkdirSync(path.join(dir, 'inner'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'x.md'), '# x\n');
  fs.writeFileSync(path.join(dir, 'inner', 'y.md'), '# y\n');
  await page.setInputFiles('#folder-input', dir);
  await waitDone(page, 'y.md');
  await waitDone(page, 'x.md');
  assert((await resolve('/T-drop/Docs/inner/y.md')).size === 4, 'Docs/inner/y.md missing');
});

await scenario('xss-filename-is-text', async (page) => {
  const evil = '<img src=x onerror=alert(1)>';
  const f = await mkdir(ROOT, 'T-xss');
  await put(f.id, evil, 'gotcha');
  await page.goto(folderURL('T-xss'));
  const name = page.locator('#file-list .row .name').first();
  await name.waitFor();
  assert((await name.textContent()) === evil, 'name shown as ' + JSON.stringify(await name.textContent()));
  assert((await page.locator('#file-list img').count()) === 0, 'an <img> element appeared in the list');
  await page.waitForTimeout(300);
  await shot(page, 'xss-filename');
});

await scenario('rename-inline', async (page) => {
  const f = await mkdir(ROOT, 'T-rename');
  await put(f.id, 'draft.txt', 'text');
  await page.goto(folderURL('T-rename'));
  await exactRow(page, 'draft.txt').locator('.c-size').click();
  await page.keyboard.press('F2');
  const input = page.locator('#file-list input.rename');
  await input.waitFor();
  await shot(page, 'rename-inline');
  await input.fill('final.txt');
  await input.press('Enter');
  await exactRow(page, 'final.txt').waitFor();
  assert((await exactRow(page, 'draft.txt').count()) === 0, 'old name still listed');
  assert((await resolve('/T-rename/final.txt')).kind === 'file', 'not renamed on the server');
});

await scenario('move-drag-and-drop', async (page) => {
  const f = await mkdir(ROOT, 'T-move');
  await mkdir(f.id, 'Target');
  await put(f.id, 'm.txt', 'move me');
  await page.goto(folderURL('T-move'));
  await exactRow(page, 'm.txt').dragTo(exactRow(page, 'Target'));
  await exactRow(page, 'm.txt').waitFor({ state: 'detached' });
  assert((await resolve('/T-move/Target/m.txt')).kind === 'file', 'm.txt not in Target');
  // And back, by dropping onto the breadcrumb of the parent folder.
  await exactRow(page, 'Target').locator('.name').click();
  await exactRow(page, 'm.txt').waitFor();
  await exactRow(page, 'm.txt').dragTo(page.locator('.crumbs a', { hasText: 'T-move' }));
  await exactRow(page, 'm.txt').waitFor({ state: 'detached' });
  assert((await resolve('/T-move/m.txt')).kind === 'file', 'm.txt not back in T-move');
  await shot(page, 'move-drag-drop');
});

await scenario('copy-with-folder-picker', async (page) => {
  const f = await mkdir(ROOT, 'T-copy');
  await mkdir(f.id, 'Dest');
  await put(f.id, 'c.txt', 'copy me');
  await page.goto(folderURL('T-copy'));
  await exactRow(page, 'c.txt').locator('.c-size').click();
  await page.click('#act-copy');
  await page.locator('dialog .picker-item', { hasText: 'Dest' }).click();
  await page.locator('dialog .picker-path', { hasText: 'Dest' }).waitFor();
  await shot(page, 'folder-picker');
  await page.click('dialog button.primary');
  await page.locator('.toast.ok', { hasText: 'Copied' }).waitFor();
  assert((await resolve('/T-copy/Dest/c.txt')).kind === 'file', 'copy missing');
  assert((await resolve('/T-copy/c.txt')).kind === 'file', 'original missing');
});

await scenario('delete-and-restore', async (page) => {
  const f = await mkdir(ROOT, 'T-trash');
  await put(f.id, 'gone.txt', 'bye');
  await page.goto(folderURL('T-trash'));
  await exactRow(page, 'gone.txt').locator('.c-size').click();
  await page.keyboard.press('Delete');
  await exactRow(page, 'gone.txt').waitFor({ state: 'detached' });
  await page.click('#nav-trash');
  const tr = page.locator('tr[data-name="gone.txt"]');
  await tr.waitFor();
  await shot(page, 'trash');
  await tr.getByRole('button', { name: 'Restore gone.txt' }).click();
  await page.locator('.toast.ok', { hasText: 'Restored' }).waitFor();
  assert((await resolve('/T-trash/gone.txt')).kind === 'file', 'not restored');
});

await scenario('download-bytes', async (page) => {
  const f = await mkdir(ROOT, 'T-dl');
  const data = crypto.randomBytes(300 * 1024);
  await put(f.id, 'data.bin', data);
  await page.goto(folderURL('T-dl'));
  await exactRow(page, 'data.bin').locator('.c-size').click();
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#act-download')]);
  const got = fs.readFileSync(await dl.path());
  assert(dl.suggestedFilename() === 'data.bin', 'suggested name ' + dl.suggestedFilename());
  assert(Buffer.compare(got, data) === 0, 'downloaded bytes differ (' + got.length + ' vs ' + data.length + ')');
  await shot(page, 'download');
});

/** makePNG encodes a small w×h RGB gradient as a PNG. */
function makePNG(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([x * 100, y * 100, 200], y * (w * 3 + 1) + 1 + x * 3);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** makePDF writes a one-page PDF showing text. */
function makePDF(text) {
  const stream = 'BT /F1 24 Tf 40 100 Td (' + text + ') Tj ET';
  const objs = ['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    '<< /Length ' + stream.length + ' >>\nstream\n' + stream + '\nendstream', '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'];
  let out = '%PDF-1.4\n';
  const offs = objs.map((o, i) => { const at = out.length; out += (i + 1) + ' 0 obj\n' + o + '\nendobj\n'; return at; });
  const xref = out.length;
  out += 'xref\n0 6\n0000000000 65535 f \n' + offs.map((o) => String(o).padStart(10, '0') + ' 00000 n \n').join('');
  out += 'trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n' + xref + '\n%%EOF\n';
  return Buffer.from(out, 'latin1');
}

/** unzip reads a zip archive into {name: Buffer} (stored and deflated entries). */
function unzip(buf) {
  const out = {};
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert(eocd >= 0, 'not a zip archive');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    assert(buf.readUInt32LE(p) === 0x02014b50, 'bad central directory');
    const method = buf.readUInt16LE(p + 10), csize = buf.readUInt32LE(p + 20);
    const nlen = buf.readUInt16LE(p + 28), xlen = buf.readUInt16LE(p + 30), clen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nlen);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + csize);
    out[name] = method === 8 ? zlib.inflateRawSync(data) : Buffer.from(data);
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

await scenario('zip-download', async (page) => {
  const f = await mkdir(ROOT, 'T-zip');
  const sub = await mkdir(f.id, 'Album');
  const pic = crypto.randomBytes(100 * 1024);
  await put(sub.id, 'pic.jpg', pic);
  await put(sub.id, 'readme.txt', 'read me\n'.repeat(1000));
  await put(f.id, 'top.txt', 'top');
  await page.goto(folderURL('T-zip'));
  await exactRow(page, 'Album').locator('.c-size').click();
  let [dl] = await Promise.all([page.waitForEvent('download'), page.click('#act-download')]);
  assert(dl.suggestedFilename() === 'Album.zip', 'folder zip named ' + dl.suggestedFilename());
  let z = unzip(fs.readFileSync(await dl.path()));
  assert(Buffer.compare(z['Album/pic.jpg'], pic) === 0, 'pic.jpg differs in the zip: ' + Object.keys(z));
  assert(z['Album/readme.txt'].toString() === 'read me\n'.repeat(1000), 'readme.txt differs in the zip');
  // A selection of a folder and a file.
  await exactRow(page, 'top.txt').locator('.c-size').click({ modifiers: ['Control'] });
  await page.locator('.sel-count', { hasText: '2 selected' }).waitFor();
  [dl] = await Promise.all([page.waitForEvent('download'), page.click('#act-download')]);
  z = unzip(fs.readFileSync(await dl.path()));
  assert(dl.suggestedFilename() === 'T-zip.zip', 'selection zip named ' + dl.suggestedFilename());
  assert(Object.keys(z).sort().join(' ') === 'Album/ Album/pic.jpg Album/readme.txt top.txt', 'selection zip holds ' + Object.keys(z).sort().join(' '));
  await shot(page, 'zip-selection');
});

await scenario('replace-and-restore-version', async (page) => {
  const f = await mkdir(ROOT, 'T-ver');
  await put(f.id, 'v.txt', 'one');
  await page.goto(folderURL('T-ver'));
  await exactRow(page, 'v.txt').waitFor();
  await page.setInputFiles('#file-input', [{ name: 'v.txt', mimeType: 'text/plain', buffer: Buffer.from('two!') }]);
  const dlg = page.locator('dialog', { hasText: 'already exists' });
  await dlg.waitFor();
  await shot(page, 'conflict-dialog');
  await dlg.getByRole('button', { name: 'Replace' }).click();
  await waitDone(page, 'v.txt');
  const n = await resolve('/T-ver/v.txt');
  assert((await content(n.id)).toString() === 'two!', 'not replaced');
  await page.waitForTimeout(300);
  await exactRow(page, 'v.txt').locator('.c-size').click();
  await page.click('#act-versions');
  const versions = page.locator('dialog .version');
  await versions.nth(1).waitFor();
  assert((await versions.count()) === 2, 'versions listed: ' + await versions.count());
  await shot(page, 'versions');
  await page.locator('dialog .version:not(.current)').getByRole('button', { name: 'Restore' }).click();
  await page.locator('.toast.ok', { hasText: 'Restored the version' }).waitFor();
  assert((await content(n.id)).toString() === 'one', 'old version not restored');
  // Keep both: a third upload of the same name gets a new name.
  await page.keyboard.press('Escape');
  await page.setInputFiles('#file-input', [{ name: 'v.txt', mimeType: 'text/plain', buffer: Buffer.from('three') }]);
  await page.locator('dialog', { hasText: 'already exists' }).getByRole('button', { name: 'Keep both' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#file-list .row').length === 2);
});

await scenario('keyboard-and-selection', async (page) => {
  const f = await mkdir(ROOT, 'T-keys');
  await mkdir(f.id, 'sub');
  for (const n of ['a', 'b', 'c', 'd']) await put(f.id, n + '.txt', n);
  await page.goto(folderURL('T-keys'));
  await exactRow(page, 'd.txt').waitFor();
  await page.focus('#file-list');
  await page.keyboard.press('ArrowDown'); // focus lands on the first row, then moves
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Shift+ArrowDown');
  await page.locator('.sel-count', { hasText: '2 selected' }).waitFor();
  await exactRow(page, 'd.txt').click({ modifiers: ['Control'], position: { x: 600, y: 10 } });
  await page.locator('.sel-count', { hasText: '3 selected' }).waitFor();
  await exactRow(page, 'a.txt').click({ position: { x: 600, y: 10 } });
  await exactRow(page, 'c.txt').click({ modifiers: ['Shift'], position: { x: 600, y: 10 } });
  await page.locator('.sel-count', { hasText: '3 selected' }).waitFor();
  await page.keyboard.press('Control+a');
  await page.locator('.sel-count', { hasText: '5 selected' }).waitFor();
  await shot(page, 'multi-select');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Home');
  await page.keyboard.press('Enter'); // opens "sub"
  await page.waitForURL(/\/T-keys\/sub$/);
  await page.getByText('This folder is empty.').waitFor();
  await page.keyboard.press('Backspace');
  await page.waitForURL(/\/T-keys$/);
});

await scenario('readable-errors', async (page) => {
  const f = await mkdir(ROOT, 'T-err');
  await mkdir(f.id, 'dup');
  await page.goto(folderURL('T-err'));
  await exactRow(page, 'dup').waitFor();
  await page.click('#new-folder-btn');
  await page.fill('dialog input', 'dup');
  await page.keyboard.press('Enter');
  const t = page.locator('.toast.error').last();
  await t.waitFor();
  const msg = await t.textContent();
  assert(!msg.includes('{') && msg.length > 15, 'conflict message: ' + msg);
  await shot(page, 'error-toast');
  // A server failure without a JSON body still reads as a sentence.
  await page.route('**/api/v1/nodes/*/children', (r) => (r.request().method() === 'POST' ? r.fulfill({ status: 502, body: '<html>bad gateway</html>' }) : r.continue()));
  await page.click('#new-folder-btn');
  await page.fill('dialog input', 'other');
  await page.keyboard.press('Enter');
  await page.locator('.toast.error', { hasText: 'The server had a problem (502)' }).waitFor();
});

await scenario('viewer-and-search', async (page) => {
  const f = await mkdir(ROOT, 'T-view');
  await put(f.id, 'notes.txt', 'Meeting notes\nline two\n');
  const png = makePNG(2, 2);
  await put(f.id, 'pixel.png', png);
  await page.goto(folderURL('T-view'));
  await exactRow(page, 'notes.txt').locator('.name').click();
  await page.locator('.viewer-text', { hasText: 'Meeting notes' }).waitFor();
  await shot(page, 'viewer-text');
  await page.keyboard.press('Escape');
  // The list shows a server-made thumbnail for the image.
  await page.waitForFunction(() => [...document.querySelectorAll('#file-list img.thumb')].some((i) => i.complete && i.naturalWidth === 2));
  await exactRow(page, 'pixel.png').locator('.name').click();
  await page.waitForFunction(() => document.querySelector('.viewer-img')?.naturalWidth === 2);
  await page.keyboard.press('Escape');
  // A PDF opens in a frame with the browser's viewer.
  const pdf = makePDF('Hello PDF');
  await put(f.id, 'hello.pdf', pdf);
  await page.reload();
  const [res] = await Promise.all([
    page.waitForResponse((r) => /\/content\?inline=1$/.test(r.url())),
    exactRow(page, 'hello.pdf').locator('.name').click()]);
  assert(res.status() === 200 && res.headers()['content-type'] === 'application/pdf', 'PDF response: ' + res.status() + ' ' + res.headers()['content-type']);
  await page.locator('iframe.viewer-frame').waitFor();
  await page.waitForTimeout(800);
  await shot(page, 'viewer-pdf');
  await page.keyboard.press('Escape');
  await page.fill('.search input', 'notes');
  await page.keyboard.press('Enter');
  await page.locator('tr[data-name="notes.txt"]').waitFor();
  await shot(page, 'search');
});

await scenario('chunked-upload-resume', async (page, m) => {
  const probe = await fetch(BASE + '/api/v1/uploads', { headers: { Authorization: AUTH } });
  if (probe.status === 404) return { skipped: 'the server has no upload-session API (GET /api/v1/uploads answers 404)' };
  await mkdir(ROOT, 'T-chunk');
  const file = path.join(SCRATCH, 'large.bin');
  const data = crypto.randomBytes(40 * 1024 * 1024);
  fs.writeFileSync(file, data);
  await page.goto(folderURL('T-chunk'));
  await page.getByText('This folder is empty.').waitFor();
  // Drop the connection for the first chunk requests: the client retries with backoff.
  let dropped = 0, puts = 0;
  await page.route('**/api/v1/uploads/*/chunks/*', (r) => {
    puts++;
    if (dropped < 3) { dropped++; return r.abort('connectionreset'); }
    return r.continue();
  });
  await page.setInputFiles('#file-input', file);
  // Mid-transfer: per-file and overall progress with speed and time left.
  await page.waitForFunction(() => /left/.test(document.querySelector('.transfer[data-name="large.bin"] .t-status')?.textContent || ''), null, { timeout: 60000 }).catch(() => {});
  await shot(page, 'uploading');
  await waitDone(page, 'large.bin', 120000);
  m.chunk_puts_with_drops = puts;
  let n = await resolve('/T-chunk/large.bin');
  assert(n.sha256 === sha(data), 'large.bin hash differs after retries');
  await page.unroute('**/api/v1/uploads/*/chunks/*');

  // Reload in the middle of an upload, then resume by choosing the file
  // again. Until the reload, chunks from index 2 on are held (never
  // answered); the reload cancels them.
  let hold = true, after = 0;
  await page.route('**/api/v1/uploads/*/chunks/*', async (r) => {
    const i = Number(r.request().url().split('/').pop());
    if (hold && i >= 2) return;
    if (!hold) after++;
    return r.continue();
  });
  let stored = 0;
  const twoStored = new Promise((ok) => page.on('response', (res) => {
    if (/\/chunks\/\d+$/.test(res.url()) && res.status() === 200 && ++stored === 2) ok();
  }));
  fs.writeFileSync(file.replace('large', 'resume'), data);
  await page.setInputFiles('#file-input', file.replace('large', 'resume'));
  await twoStored; // chunks 0 and 1 are on the server
  await page.reload();
  hold = false;
  const box = page.locator('.resume');
  await box.waitFor();
  await shot(page, 'resume-offer');
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), box.getByRole('button', { name: /Select the same files/ }).click()]);
  await chooser.setFiles(file.replace('large', 'resume'));
  await waitDone(page, 'resume.bin', 120000);
  const sess = (await api('GET', '/uploads')).items || [];
  n = await resolve('/T-chunk/resume.bin');
  assert(n.sha256 === sha(data), 'resume.bin hash differs');
  m.chunks_sent_after_reload = after;
  assert(after > 0 && after < 5, 'chunks sent after the reload: ' + after + ' (of 5)');
  assert(sess.every((s) => s.name !== 'resume.bin'), 'upload session left open');
  await shot(page, 'resumed');
});

await scenario('first-paint-1000', async (page, m) => {
  const f = await mkdir(ROOT, 'T-perf');
  const names = Array.from({ length: 1000 }, (_, i) => 'file-' + String(i).padStart(4, '0') + '.txt');
  // One multipart request per 250 files (the upload endpoint takes many parts).
  for (let i = 0; i < names.length; i += 250) {
    const form = new FormData();
    for (const n of names.slice(i, i + 250)) form.append('file', new Blob(['x']), n);
    const res = await fetch(BASE + '/api/v1/nodes/' + f.id + '/files', { method: 'POST', headers: { Authorization: AUTH }, body: form });
    assert(res.ok, 'multipart upload: ' + res.status + ' ' + await res.text());
  }
  const runs = [];
  for (let i = 0; i < 5; i++) {
    await page.goto(folderURL('T-perf'));
    await page.waitForFunction(() => performance.getEntriesByName('velox:list-painted').length > 0);
    runs.push(await page.evaluate(() => performance.getEntriesByName('velox:list-painted')[0].startTime));
  }
  // Where the time goes, for the last load.
  const t = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const end = (re) => Math.max(0, ...res.filter((r) => re.test(r.name)).map((r) => r.responseEnd));
    const dur = (re) => Math.max(0, ...res.filter((r) => re.test(r.name)).map((r) => r.duration));
    return { html: nav.responseEnd, dcl: nav.domContentLoadedEventEnd, modules: end(/\/static\/.*\.js$/),
      resolve_end: end(/\/resolve/), children_end: end(/\/children/), children_request: dur(/\/children/) };
  });
  for (const [k, v] of Object.entries(t)) m['last_load_' + k + '_ms'] = v;
  runs.sort((a, b) => a - b);
  m.first_paint_ms_median = runs[2];
  m.first_paint_ms_min = runs[0];
  await shot(page, 'thousand-files');
  // Scroll to the end: later pages load, and only the rows in view exist in the DOM.
  for (let k = 0; k < 40; k++) {
    const last = await page.evaluate(() => {
      const v = document.getElementById('file-list');
      v.scrollTop = v.scrollHeight;
      return [...v.querySelectorAll('.row .name')].map((e) => e.textContent).includes('file-0999.txt');
    });
    if (last) break;
    await page.waitForTimeout(100);
  }
  await exactRow(page, 'file-0999.txt').waitFor();
  // Scroll smoothness: scroll back to the top 200 px per frame and time the frames.
  const frames = await page.evaluate(() => new Promise((done) => {
    const v = document.getElementById('file-list');
    const times = [];
    let last = performance.now();
    const step = () => {
      const now = performance.now();
      times.push(now - last);
      last = now;
      if (v.scrollTop <= 0) { done(times.slice(1).sort((a, b) => a - b)); return; }
      v.scrollTop -= 200;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }));
  m.scroll_frames = frames.length;
  m.scroll_frame_p50_ms = frames[Math.floor(frames.length * 0.5)];
  m.scroll_frame_p95_ms = frames[Math.floor(frames.length * 0.95)];
  const rows = await page.locator('#file-list .row').count();
  m.rows_in_dom = rows;
  assert(rows < 120, 'rows in DOM: ' + rows + ' (list not virtualized)');
  assert(runs[2] < 1500, 'first paint ' + runs[2] + ' ms'); // generous: shared CI machines are noisy
});

/** hasAdminAPI reports whether the server offers the identity/admin API. */
async function hasAdminAPI() {
  const r = await fetch(BASE + '/api/v1/admin/users', { headers: { Authorization: AUTH } });
  return r.status !== 404;
}

await scenario('admin-team-space', async (page) => {
  if (!(await hasAdminAPI())) return { skipped: 'the server has no admin API (GET /api/v1/admin/users answers 404)' };
  const carol = (await api('POST', '/admin/users', { username: 'carol', password: 'carol-password-1', display_name: 'Carol' }));
  const carolID = carol.id || carol.user?.id;
  const group = await api('POST', '/admin/groups', { name: 'Design' });
  await api('PUT', '/admin/groups/' + (group.id || group.group?.id) + '/members/' + carolID);
  await page.goto(BASE + '/admin/users');
  await page.locator('tr[data-key="carol"]').waitFor();
  await shot(page, 'admin-users');
  await page.click('.tabs >> text=Team spaces');
  await page.click('#create-space');
  await page.fill('dialog input', 'Design Team');
  await page.keyboard.press('Enter');
  const manage = page.locator('dialog', { hasText: 'Team space “Design Team”' });
  await manage.locator('input[name=group]').fill('Design');
  await manage.locator('#link-group').click();
  await manage.locator('tr', { hasText: 'Design' }).locator('select').waitFor();
  await shot(page, 'admin-team-space');
  await manage.getByRole('button', { name: 'Done' }).click();
  await page.locator('tr[data-key="Design Team"]', { hasText: 'Design (editor)' }).waitFor();
  await page.click('.tabs >> text=Audit log');
  await page.locator('table.simple tbody tr').first().waitFor();
  await shot(page, 'admin-audit');

  // Carol, a member of the group, sees the space and can upload into it.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const p2 = await ctx.newPage();
    await p2.goto(BASE + '/login');
    await p2.fill('#username', 'carol');
    await p2.fill('#password', 'carol-password-1');
    await p2.click('button[type=submit]');
    const link = p2.locator('.sidebar .nav-item', { hasText: 'Design Team' });
    await link.waitFor();
    await link.click();
    await p2.getByText('This folder is empty.').waitFor();
    await p2.setInputFiles('#file-input', [{ name: 'brief.txt', mimeType: 'text/plain', buffer: Buffer.from('team brief') }]);
    await waitDone(p2, 'brief.txt');
    await exactRow(p2, 'brief.txt').waitFor();
    await p2.waitForTimeout(300); // let the progress bars finish their transition
    await shot(p2, 'member-sees-team-space');
  } finally { await ctx.close(); }

  // A disabled account gets a clear message at sign-in.
  await api('PATCH', '/admin/users/' + carolID, { disabled: true });
  const ctx3 = await browser.newContext();
  try {
    const p3 = await ctx3.newPage();
    await p3.goto(BASE + '/login');
    await p3.fill('#username', 'carol');
    await p3.fill('#password', 'carol-password-1');
    await p3.click('button[type=submit]');
    await p3.locator('#login-error', { hasText: 'disabled' }).waitFor();
    await shot(p3, 'sign-in-disabled');
  } finally { await ctx3.close(); }
});

await scenario('sign-in-too-many-attempts', async (page) => {
  if (!(await hasAdminAPI())) return { skipped: 'the server has no admin API to create a throwaway user' };
  await api('POST', '/admin/users', { username: 'dave', password: 'dave-password-1' });
  await page.goto(BASE + '/login');
  const err = page.locator('#login-error');
  for (let i = 0; i < 8; i++) {
    await page.fill('#username', 'dave');
    await page.fill('#password', 'wrong-' + i);
    await page.click('button[type=submit]');
    await page.locator('button[type=submit]:not([disabled])').waitFor();
    await err.waitFor({ state: 'visible' });
    if (/too many/i.test(await err.textContent())) break;
  }
  const text = await err.textContent();
  assert(/Too many failed sign-in attempts/.test(text), 'after repeated failures the message is ' + JSON.stringify(text));
  await shot(page, 'sign-in-too-many-attempts');
}, { noLogin: true });

await scenario('app-password-with-curl', async (page) => {
  if (!(await hasAdminAPI())) return { skipped: 'the server has no app-password API' };
  await page.goto(BASE + '/settings');
  await page.fill('input[name=name]', 'curl script');
  await page.click('#create-app-password');
  const secretEl = page.locator('#new-app-password');
  await secretEl.waitFor();
  const secret = await secretEl.inputValue();
  assert(secret.length >= 16, 'app password too short: ' + secret);
  await shot(page, 'app-password-created');
  await page.locator('dialog').getByRole('button', { name: 'Done' }).click();
  await page.locator('tr[data-key="curl script"]').waitFor();
  const curl = () => execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-u', 'admin:' + secret, BASE + '/api/v1/me']).toString();
  assert(curl() === '200', 'curl with the app password: ' + curl());
  await page.locator('tr[data-key="curl script"]').getByRole('button', { name: 'Revoke' }).click();
  await page.locator('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.locator('tr[data-key="curl script"]').waitFor({ state: 'detached' });
  // Revocation takes effect at once (allow for a short-lived login cache).
  let code = '';
  for (let i = 0; i < 30 && (code = curl()) !== '401'; i++) await page.waitForTimeout(200);
  assert(code === '401', 'curl after revoking: ' + code);
  await shot(page, 'settings');
});

await scenario('phone-dark', async (page) => {
  await page.goto(folderURL('T-upload'));
  await exactRow(page, 'big.bin').waitFor();
  await shot(page, 'phone-dark');
  await page.click('.menu-btn');
  await page.waitForTimeout(300);
  await shot(page, 'phone-dark-nav');
}, { viewport: { width: 390, height: 844 }, colorScheme: 'dark' });

await browser.close();
