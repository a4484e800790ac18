// ui.js: small DOM helpers, formatting, icons, toasts and dialogs. Text is
// only ever set with textContent, never parsed as HTML.

const SVGNS = 'http://www.w3.org/2000/svg';
const spriteURL = document.querySelector('meta[name="velox-icons"]').content;

/**
 * h creates an element: h('button.primary', {type: 'button', onclick}, 'Save').
 * Strings among the children become text nodes; attributes starting with
 * "on" become listeners; null children are skipped.
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      else if (k in el && k !== 'list' && k !== 'form') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** icon returns an <svg> that uses a symbol of the sprite. */
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(SVGNS, 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVGNS, 'use');
  use.setAttribute('href', spriteURL + '#' + name);
  svg.append(use);
  return svg;
}

/** iconFor picks an icon by node kind, MIME type and extension. */
export function iconFor(node) {
  if (node.kind === 'folder') return 'folder';
  const t = node.content_type || '';
  const ext = (node.name.match(/\.([^.]+)$/) || [])[1]?.toLowerCase() || '';
  if (t.startsWith('image/')) return 'image';
  if (t === 'application/pdf' || ext === 'pdf') return 'pdf';
  if (t.startsWith('video/') || t.startsWith('audio/')) return 'media';
  if (/^(zip|gz|tgz|bz2|xz|7z|rar|tar|zst)$/.test(ext)) return 'archive';
  if (/^(xlsx?|ods|csv|tsv)$/.test(ext)) return 'sheet';
  if (/^(docx?|odt|rtf|pptx?|odp)$/.test(ext)) return 'doc';
  if (/^(js|ts|go|py|rb|rs|c|h|cpp|java|sh|json|ya?ml|toml|html|css|xml|sql)$/.test(ext)) return 'code';
  if (t.startsWith('text/') || /^(txt|md|log)$/.test(ext)) return 'text';
  return 'file';
}

/** viewerKind says how the in-browser viewer shows a file, or '' if it cannot. */
export function viewerKind(node) {
  const t = node.content_type || '';
  const ext = (node.name.match(/\.([^.]+)$/) || [])[1]?.toLowerCase() || '';
  if (/^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml)$/.test(t)) return 'image';
  if (t === 'application/pdf' || ext === 'pdf') return 'pdf';
  if (t.startsWith('text/') || /^(txt|md|log|json|csv|ya?ml|toml|go|js|py|sh|xml|ini|conf)$/.test(ext) || t === 'application/json') return 'text';
  return '';
}

const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
/** size formats a byte count: 1.5 MB. */
export function size(n) {
  if (n === undefined || n === null) return '';
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (i === 0 ? v : v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[i];
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
/** when formats a timestamp: a time for today, a date otherwise. */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return 'Today ' + timeFmt.format(d);
  return dateFmt.format(d);
}

/** duration formats seconds as "3 s", "4 min", "1 h 5 min". */
export function duration(s) {
  if (!Number.isFinite(s) || s < 0) return '';
  if (s < 60) return Math.max(1, Math.round(s)) + ' s';
  if (s < 3600) return Math.round(s / 60) + ' min';
  return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
}

/** toast shows a short message; kind is 'info', 'ok' or 'error'. Errors stay until dismissed. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const close = h('button.icon-btn', { type: 'button', 'aria-label': 'Dismiss' }, icon('close'));
  const t = h('div.toast.' + kind, { role: kind === 'error' ? 'alert' : 'status' }, h('span.msg', { text: message }), close);
  close.addEventListener('click', () => t.remove());
  box.append(t);
  if (kind !== 'error') setTimeout(() => t.remove(), 4000);
  else setTimeout(() => t.remove(), 15000);
  return t;
}

/** showError reports any thrown error readably. */
export function showError(e, prefix) {
  if (e && e.name === 'AbortError') return;
  const msg = (e && e.message) || 'Something went wrong.';
  toast(prefix ? prefix + ': ' + msg : msg, 'error');
}

/**
 * dialog opens a modal <dialog> with a title, body nodes and buttons, and
 * resolves with the value of the button pressed (undefined for Escape).
 * buttons: [{label, value, primary, danger}]
 */
export function dialog(title, body, buttons, opts = {}) {
  return new Promise((resolve) => {
    const d = h('dialog.modal' + (opts.wide ? '.wide' : ''), { 'aria-labelledby': 'dlg-title' });
    const form = h('form', { method: 'dialog' });
    const footer = h('div.dialog-actions');
    for (const b of buttons) {
      footer.append(h('button' + (b.primary ? '.primary' : '') + (b.danger ? '.danger' : ''),
        { type: b.primary ? 'submit' : 'button', value: b.value, onclick: b.primary ? null : () => finish(b.value) }, b.label));
    }
    form.append(h('h2', { id: 'dlg-title', text: title }), h('div.dialog-body', null, body), footer);
    d.append(form);
    let done = false;
    function finish(v) {
      if (done) return;
      done = true;
      const val = opts.collect ? opts.collect(v) : v;
      d.close();
      d.remove();
      resolve(val);
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const primary = buttons.find((b) => b.primary);
      if (opts.validate && !opts.validate()) return;
      finish(primary ? primary.value : undefined);
    });
    d.addEventListener('cancel', (e) => { e.preventDefault(); finish(undefined); });
    document.body.append(d);
    d.showModal();
    const f = d.querySelector('[autofocus]') || d.querySelector('input') || footer.querySelector('.primary');
    if (f) f.focus();
  });
}

/** prompt asks for one line of text; resolves with it or undefined. */
export async function prompt(title, label, value = '', okLabel = 'OK') {
  const input = h('input', { type: 'text', value, required: true, autocomplete: 'off', spellcheck: false, name: 'value' });
  const body = h('label.field', null, h('span', { text: label }), input);
  const v = await dialog(title, body, [{ label: 'Cancel', value: 'cancel' }, { label: okLabel, value: 'ok', primary: true }],
    { validate: () => input.value.trim() !== '' });
  return v === 'ok' ? input.value.trim() : undefined;
}

/** confirm asks a yes/no question. */
export async function confirm(title, message, okLabel = 'OK', danger = false) {
  const v = await dialog(title, h('p', { text: message }), [{ label: 'Cancel', value: 'cancel' },
    { label: okLabel, value: 'ok', primary: true, danger }]);
  return v === 'ok';
}
