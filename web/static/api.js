// api.js: the REST client. Every call returns parsed JSON or throws an
// ApiError whose message is the server's human-readable "message".

let csrf = '';

/** setCSRF remembers the session's token for state-changing requests. */
export function setCSRF(token) { csrf = token || ''; }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** errorFrom turns a failed response into an ApiError with a readable message. */
async function errorFrom(res) {
  let code = 'http_' + res.status, message = '';
  try {
    const body = await res.json();
    if (body && body.error) { code = body.error.code || code; message = body.error.message || ''; }
  } catch { /* not JSON: fall through to a generic message */ }
  if (!message) message = genericMessage(res.status);
  return new ApiError(res.status, code, message);
}

export function genericMessage(status) {
  if (status === 0) return 'The server cannot be reached. Check your connection and try again.';
  if (status === 401) return 'Your session has ended. Sign in again.';
  if (status === 403) return 'You do not have permission to do that.';
  if (status === 404) return 'It no longer exists.';
  if (status === 413) return 'The file is larger than this server accepts.';
  if (status === 429) return 'Too many requests; wait a moment and try again.';
  if (status >= 500) return 'The server had a problem (' + status + '). Try again in a moment.';
  return 'The request failed (' + status + ').';
}

/** request performs an API call. body may be an object (sent as JSON). */
export async function request(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer)) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api/v1' + path, { method, headers, body: payload, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', genericMessage(0));
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !opts.noAuthRedirect) window.dispatchEvent(new CustomEvent('velox:unauthorized'));
    throw err;
  }
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

export const get = (p, o) => request('GET', p, undefined, o);
export const post = (p, b, o) => request('POST', p, b, o);
export const patch = (p, b, o) => request('PATCH', p, b, o);
export const put = (p, b, o) => request('PUT', p, b, o);
export const del = (p, o) => request('DELETE', p, undefined, o);

/** q builds a query string from an object, skipping empty values. */
export function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  const str = s.toString();
  return str ? '?' + str : '';
}

/**
 * send uploads a body with XMLHttpRequest, for its upload progress events.
 * It returns { promise, abort }. onProgress(loadedBytes) is called as bytes leave.
 */
export function send(method, path, body, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open(method, '/api/v1' + path);
    xhr.setRequestHeader('Accept', 'application/json');
    if (csrf) xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* empty or not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
      const e = data && data.error;
      if (xhr.status === 401) window.dispatchEvent(new CustomEvent('velox:unauthorized'));
      reject(new ApiError(xhr.status, (e && e.code) || 'http_' + xhr.status, (e && e.message) || genericMessage(xhr.status)));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', genericMessage(0)));
    xhr.onabort = () => reject(new DOMException('Aborted', 'AbortError'));
    xhr.send(body);
  });
  return { promise, abort: () => xhr.abort() };
}

/** contentURL is a file's download address; inline asks to display it. */
export function contentURL(id, inline) {
  return '/api/v1/nodes/' + encodeURIComponent(id) + '/content' + (inline ? '?inline=1' : '');
}
