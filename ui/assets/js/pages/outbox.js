// Connectivity on the node: what is saved here and not yet confirmed by
// a hub (the outbox), the last sync with each peer and hub, and "sync
// now". This module also keeps the header's connectivity badge current
// on every node page: a poller started once, when the module loads,
// that asks the node every 15 s while an officer or admin is signed in.
import { h, clear, flash, fmtTime, fmtAgo, shortId } from '../dom.js';
import { t } from '../i18n.js';
import * as api from '../api.js';

const POLL_MS = 15000;
// A sync this recent counts as being in touch.
const FRESH_MS = 5 * 60 * 1000;
// Outbox rows shown (the count says how many there are).
const SHOWN = 200;

// `GET /api/v1/sync`, or null when this node does not have it.
async function syncState() {
  try {
    return await api.get('/api/v1/sync');
  } catch (e) {
    if (e.status === 404 || e.status === 405) return null;
    throw e;
  }
}

function newest(links, pick) {
  return links.reduce((m, l) => Math.max(m, Number(l[pick]) || 0), 0);
}

// What the badge says, from the sync state (when the node has one) and
// the outbox.
export function connectivity(sync, outbox, now = Date.now()) {
  const links = (sync && sync.links) || [];
  const hubs = links.filter((l) => l.role === 'hub');
  const waiting = sync && sync.outbox ? Number(sync.outbox.entries) || 0 : (outbox ? outbox.awaiting_receipt : 0);
  const receipt = outbox && outbox.last_receipt ? outbox.last_receipt.received_ms : 0;
  const hubMs = Math.max(newest(hubs, 'last_success_ms'), receipt || 0);
  const fresh = (ms) => ms && now - ms < FRESH_MS;
  const failing = (l) => l.last_error && (Number(l.last_attempt_ms) || 0) > (Number(l.last_success_ms) || 0);
  const hubOk = hubs.length ? hubs.some((l) => fresh(l.last_success_ms) && !failing(l)) : fresh(hubMs);
  const peerOk = links.some((l) => l.role !== 'hub' && fresh(l.last_success_ms) && !failing(l));
  const tail = waiting ? t('conn.waiting', { n: waiting }) : t('conn.all_sent');
  if (hubOk) {
    const synced = `${t('conn.online')} · ${t('conn.hub_synced', { ago: fmtAgo(hubMs, now) })}`;
    return { state: 'online', text: waiting ? `${synced} · ${tail}` : synced };
  }
  if (peerOk) return { state: 'partial', text: `${t('conn.peers_only')} · ${tail}` };
  return { state: 'offline', text: `${t('conn.offline')} · ${tail}` };
}

let timer = null;

async function poll() {
  const app = window.sentinelApp;
  if (!app || !app.config) return POLL_MS / 15;
  if (app.config.kind !== 'node') return null;
  const role = app.session && app.session.role;
  if (role !== 'officer' && role !== 'admin') return 3000;
  try {
    const [sync, outbox] = await Promise.all([syncState(), api.get('/api/v1/outbox')]);
    const c = connectivity(sync, outbox);
    app.setConnectivity(c.state, c.text);
  } catch (_) { /* unreachable: api.js has said so already */ }
  return POLL_MS;
}

// Reads the node now (and then every 15 s).
export function refreshConnectivity() {
  clearTimeout(timer);
  poll().then((next) => {
    if (next !== null) timer = setTimeout(refreshConnectivity, next);
  });
}

refreshConnectivity();

function linksTable(sync) {
  const links = sync.links || [];
  if (!links.length) return h('p', { class: 'hint', dataset: { test: 'no-links' } }, t('outbox.no_links'));
  return h('table', { dataset: { test: 'links' } },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('outbox.col_peer')),
      h('th', { scope: 'col' }, t('outbox.col_role')),
      h('th', { scope: 'col' }, t('outbox.col_last_success')),
      h('th', { scope: 'col' }, t('outbox.col_last_attempt')),
      h('th', { scope: 'col' }, t('outbox.col_error')))),
    h('tbody', {}, links.map((l) => h('tr', { dataset: { test: 'link' } },
      h('td', { title: l.peer || '' }, l.name || shortId(l.peer), l.address ? h('span', { class: 'hint' }, ` ${l.address}`) : null),
      h('td', {}, l.role ? t(`outbox.role_${l.role === 'hub' ? 'hub' : 'node'}`) : '—'),
      h('td', { title: fmtTime(l.last_success_ms) }, fmtAgo(l.last_success_ms)),
      h('td', { title: fmtTime(l.last_attempt_ms) }, fmtAgo(l.last_attempt_ms)),
      h('td', {}, l.last_error || '—')))));
}

// Background sync's link with each configured peer: what it is doing
// now, and when it tries again.
function peersList(sync) {
  const peers = sync.peers || [];
  if (!sync.background || !peers.length) return null;
  return h('ul', { class: 'plain', dataset: { test: 'background-links' } }, peers.map((p) => {
    const parts = [t(`outbox.state_${p.state}`)];
    if (p.state === 'waiting' && p.next_try_ms) {
      parts.push(t('outbox.retry_in', { s: Math.max(0, Math.ceil((p.next_try_ms - Date.now()) / 1000)) }));
    }
    if (p.last_error && p.state !== 'live') parts.push(p.last_error);
    return h('li', { dataset: { test: 'background-link', state: p.state } },
      h('strong', {}, p.name || p.address), ' ', h('span', { class: 'hint' }, p.address), ': ', parts.join(' — '));
  }));
}

function outboxView(outbox) {
  const r = outbox.last_receipt;
  const entries = outbox.entries || [];
  return [
    h('p', { dataset: { test: 'outbox-count' } },
      outbox.awaiting_receipt ? t('outbox.waiting', { n: outbox.awaiting_receipt }) : t('outbox.empty')),
    h('p', { class: 'hint' }, r
      ? t('outbox.last_receipt', { hub: r.hub_name || shortId(r.hub), seq: r.seq, when: fmtAgo(r.received_ms) })
      : t('outbox.no_receipt')),
    entries.length ? h('div', { class: 'scroll' }, h('table', { dataset: { test: 'outbox' } },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('outbox.col_seq')),
        h('th', { scope: 'col' }, t('outbox.col_kind')),
        h('th', { scope: 'col' }, t('outbox.col_event')),
        h('th', { scope: 'col' }, t('outbox.col_saved')))),
      h('tbody', {}, entries.slice(-SHOWN).reverse().map((e) => h('tr', { dataset: { test: 'outbox-entry', event: e.event || '' } },
        h('td', {}, String(e.seq)),
        h('td', {}, t(`event.kind.${e.kind}`)),
        h('td', {}, e.event ? h('a', { href: `#/events/${e.event}` }, shortId(e.event)) : '—'),
        h('td', { title: e.hlc }, fmtTime(e.hlc_ms))))))) : null,
  ];
}

async function render(ctx) {
  const links = h('div', {}, h('p', { class: 'hint' }, t('outbox.loading')));
  const box = h('div', {}, h('p', { class: 'hint' }, t('outbox.loading')));
  const running = h('p', { class: 'hint', role: 'status', 'aria-live': 'polite', dataset: { test: 'sync-state' } });
  const syncNow = h('button', { type: 'button', class: 'primary', dataset: { test: 'sync-now' } }, t('outbox.sync_now'));
  let stopped = false;
  let again = null;
  let hasSync = true;

  async function load() {
    clearTimeout(again);
    let sync = null;
    let outbox = null;
    try {
      [sync, outbox] = await Promise.all([syncState(), ctx.api.get('/api/v1/outbox')]);
    } catch (e) {
      if (!stopped) clear(box, h('p', { class: 'form-error', role: 'alert' }, e.message));
      return;
    }
    if (stopped) return;
    hasSync = !!sync;
    const peers = sync ? (sync.configured || []).length : 0;
    syncNow.disabled = !peers || !!sync.running;
    running.textContent = !sync ? t('outbox.no_sync_api')
      : sync.running ? t('outbox.running')
        : !peers ? t('outbox.no_peers')
          : t(sync.background ? 'outbox.background' : 'outbox.peers', { peers: sync.configured.join(', ') });
    clear(links, sync ? [peersList(sync), linksTable(sync)] : null);
    clear(box, outboxView(outbox));
    const c = connectivity(sync, outbox);
    ctx.app.setConnectivity(c.state, c.text);
    again = setTimeout(load, sync && sync.running ? 2000 : POLL_MS);
  }

  syncNow.addEventListener('click', async () => {
    if (!hasSync) return;
    syncNow.disabled = true;
    try {
      await ctx.api.post('/api/v1/sync');
      flash(t('outbox.sync_started'), 'ok');
      running.textContent = t('outbox.running');
    } catch (e) {
      flash(`${t('outbox.sync_failed')}: ${e.message}`, 'error');
    }
    clearTimeout(again);
    again = setTimeout(load, 1500);
  });

  ctx.main.append(h('h1', {}, t('outbox.heading')),
    h('div', { class: 'split' },
      h('section', { 'aria-labelledby': 'outbox-links' },
        h('h2', { id: 'outbox-links' }, t('outbox.connections')),
        h('div', { class: 'actions' }, syncNow), running, links),
      h('section', { 'aria-labelledby': 'outbox-box' },
        h('h2', { id: 'outbox-box' }, t('outbox.waiting_heading')),
        h('p', { class: 'hint' }, t('outbox.intro')), box)));
  await load();
  return () => {
    stopped = true;
    clearTimeout(again);
  };
}

export const pages = [{
  path: '/outbox',
  render,
  nav: { label: 'outbox.nav', kinds: ['node'], roles: ['officer', 'admin'], order: 40 },
}];
