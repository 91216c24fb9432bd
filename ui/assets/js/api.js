// Talking to the serving binary's API: the bearer token (kept for this
// tab only), problem+json errors as ApiError, and the live feed read as a
// stream. Every request goes to the page's own origin.
const TOKEN = 'sentinel.token';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN, value);
  else sessionStorage.removeItem(TOKEN);
}

// Hooks the app sets: called on 401 (the session ended) and on every
// network failure or success (the connectivity badge).
export const hooks = { unauthorized: () => {}, reachable: () => {} };

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function request(method, path, { params, json, form, raw } = {}) {
  const headers = { Accept: 'application/json' };
  const tok = token();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let r;
  try {
    r = await fetch(path + query(params), { method, headers, body, credentials: 'omit' });
  } catch (e) {
    hooks.reachable(false);
    throw new ApiError(0, { title: 'offline', detail: String(e.message || e) });
  }
  hooks.reachable(true);
  if (r.status === 401 && path !== '/api/v1/login') hooks.unauthorized();
  if (!r.ok) {
    let problem = null;
    try {
      problem = await r.json();
    } catch (_) {
      problem = { title: r.statusText };
    }
    throw new ApiError(r.status, problem);
  }
  if (raw) return r;
  if (r.status === 204) return null;
  const type = r.headers.get('content-type') || '';
  return type.includes('json') ? r.json() : r.text();
}

export const get = (path, params) => request('GET', path, { params });
export const post = (path, json) => request('POST', path, { json: json ?? {} });
export const patch = (path, json) => request('PATCH', path, { json });
export const upload = (path, form) => request('POST', path, { form });

// An image the API serves behind the token, as a blob: URL for <img>.
export async function blobUrl(path) {
  const r = await request('GET', path, { raw: true });
  return URL.createObjectURL(await r.blob());
}

// Follows a Server-Sent Events stream (the live feed) with the token in
// the header, which EventSource cannot send. Calls onEvent(type, data)
// for each event; returns a function that stops it. Reconnects after a
// drop, waiting a little longer each time (up to 30 s).
export function follow(path, params, onEvent, onState = () => {}) {
  let stopped = false;
  let controller;
  let wait = 1000;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { Accept: 'text/event-stream' };
        const tok = token();
        if (tok) headers.Authorization = `Bearer ${tok}`;
        const r = await fetch(path + query(params), { headers, signal: controller.signal });
        if (r.status === 401) {
          hooks.unauthorized();
          return;
        }
        if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
        onState(true);
        wait = 1000;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let type = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (data.length) {
              let parsed = data.join('\n');
              try {
                parsed = JSON.parse(parsed);
              } catch (_) { /* plain text */ }
              onEvent(type, parsed);
            }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState(false);
      if (stopped) return;
      await new Promise((res) => setTimeout(res, wait));
      wait = Math.min(wait * 2, 30000);
    }
  }
  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
