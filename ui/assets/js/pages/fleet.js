// The fleet on the hub (admins): every device the sync server has seen
// (last seen, entries behind, its outbox and how old it is, how its last
// session closed), the alerts an admin acts on (forks, quarantine, checkpoint
// breaches), and revoking a device, after a confirmation that asks the
// reason and the last valid seq.
import { h, clear, field, fmtTime, fmtAgo, shortId, flash } from '../dom.js';
import { t } from '../i18n.js';
import { notAllowed, confirmDialog } from './admin-kit.js';

const ALERT_KINDS = ['forks', 'quarantine', 'breaches'];

function keyText(key, name) {
  return name ? `${name} (${shortId(key)})` : shortId(key);
}

function ageText(ms) {
  if (ms === undefined || ms === null) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return t('fleet.age_s', { n: s });
  if (s < 3600) return t('fleet.age_min', { n: Math.round(s / 60) });
  if (s < 86400) return t('fleet.age_h', { n: Math.round(s / 3600) });
  return t('fleet.age_d', { n: Math.round(s / 86400) });
}

// One alert as a row: the device, what happened, at which seq, how many,
// when (the shapes of GET /api/v1/alerts).
function alertRow(kind, a) {
  let what;
  let when;
  if (kind === 'forks') {
    what = t('fleet.fork_what', { other: shortId(a.other), held: a.held ? shortId(a.held) : '—' });
    when = a.detected_ms;
  } else if (kind === 'quarantine') {
    what = `${a.reason_code}: ${a.reason}`;
    when = a.newest_ms;
  } else {
    what = a.reason;
    when = a.received_ms;
  }
  return h('tr', { 'data-test': 'alert-row' },
    h('td', { title: a.author }, keyText(a.author, a.author_name)),
    h('td', {}, what),
    h('td', {}, a.seq !== undefined ? String(a.seq) : '—'),
    h('td', {}, a.count !== undefined ? String(a.count) : '1'),
    h('td', {}, when ? fmtTime(when) : '—'));
}

function alertSection(kind, items) {
  const list = Array.isArray(items) ? items : [];
  return h('section', { class: `card alerts ${list.length ? 'has-alerts' : ''}`, 'data-test': `alerts-${kind}`, 'aria-labelledby': `alerts-${kind}-h` },
    h('h3', { id: `alerts-${kind}-h` }, t(`fleet.alerts_${kind}`), ' ', h('span', { class: list.length ? 'badge unverified' : 'badge verified' }, String(list.length))),
    list.length
      ? h('table', {},
        h('thead', {}, h('tr', {}, ['device', 'what', 'seq', 'count', 'when'].map((c) => h('th', { scope: 'col' }, t(`fleet.alert_col.${c}`))))),
        h('tbody', {}, list.map((a) => alertRow(kind, a))))
      : h('p', { class: 'muted' }, t('fleet.alerts_none')));
}

async function render(ctx) {
  if (ctx.config.kind !== 'hub') {
    notAllowed(ctx, 'fleet.title', 'hub_only');
    return;
  }
  let nodes;
  try {
    nodes = await ctx.api.get('/api/v1/nodes');
  } catch (e) {
    if (e.status === 403) {
      notAllowed(ctx, 'fleet.title');
      return;
    }
    throw e;
  }
  const alertsBox = h('div', { class: 'alert-grid', 'data-test': 'alerts' }, h('p', { class: 'muted' }, t('fleet.alerts_loading')));
  const body = h('tbody', { 'data-test': 'fleet-rows' });

  function revoke(key, name, hubSeq) {
    const reason = h('input', { name: 'reason', maxlength: 256, autocomplete: 'off' });
    const seq = h('input', { name: 'last_valid_seq', type: 'number', min: 0, step: 1, inputmode: 'numeric', value: hubSeq ?? '' });
    return confirmDialog({
      title: t('fleet.revoke_title', { name: keyText(key, name) }),
      text: t('fleet.revoke_text'),
      fields: [field('fleet.reason', reason, 'fleet.reason_hint'), field('fleet.last_valid_seq', seq, 'fleet.last_valid_seq_hint')],
      confirm: t('fleet.revoke'),
      test: 'revoke-dialog',
      submit: async () => {
        const json = { reason: reason.value };
        if (seq.value !== '') json.last_valid_seq = Number(seq.value);
        const done = await ctx.api.post(`/api/v1/devices/${encodeURIComponent(key)}/revoke`, json);
        flash(t('fleet.revoked', { name: keyText(key, name), seq: done.last_valid_seq }), 'ok');
        return done;
      },
    });
  }

  function row(n) {
    return h('tr', { 'data-test': 'fleet-row', dataset: { author: n.author, name: n.name } },
      h('th', { scope: 'row', title: n.author }, n.name, h('span', { class: 'muted mono' }, ` ${shortId(n.author)}`)),
      h('td', {}, n.role),
      h('td', { title: fmtTime(n.last_seen_ms) }, fmtAgo(n.last_seen_ms)),
      h('td', { 'data-test': 'behind', class: n.entries_behind > 0 ? 'warn' : null }, String(n.entries_behind)),
      h('td', { 'data-test': 'outbox' }, n.outbox_entries
        ? t('fleet.outbox', { n: n.outbox_entries, age: ageText(n.outbox_age_ms) })
        : t(n.outbox_entries === 0 ? 'fleet.outbox_empty' : 'fleet.outbox_unknown')),
      h('td', { class: 'small' }, t('fleet.sessions', { n: n.sessions }), h('br'), h('span', { class: 'muted' }, n.last_close)),
      h('td', {}, h('button', {
        type: 'button',
        class: 'danger',
        'data-test': 'revoke',
        'aria-label': t('fleet.revoke_named', { name: n.name }),
        onclick: async () => {
          if (await revoke(n.author, n.name, n.hub_seq)) load();
        },
      }, t('fleet.revoke'))));
  }

  async function load() {
    try {
      nodes = await ctx.api.get('/api/v1/nodes');
    } catch (e) {
      flash(`${t('error.generic')}: ${e.message}`, 'error');
    }
    clear(body, nodes.items.map(row));
    if (!nodes.items.length) body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, t('fleet.none'))));
    try {
      const alerts = await ctx.api.get('/api/v1/alerts');
      clear(alertsBox, ALERT_KINDS.map((k) => alertSection(k, alerts[k])));
    } catch (e) {
      clear(alertsBox, h('p', { class: 'muted' }, t('fleet.alerts_unavailable', { detail: e.message })));
    }
  }

  const otherKey = h('input', { name: 'key', maxlength: 64, spellcheck: 'false', autocomplete: 'off', pattern: '[0-9a-fA-F]{64}' });
  const other = h('form', { class: 'card', 'data-test': 'revoke-other', novalidate: true },
    h('h3', {}, t('fleet.revoke_other')),
    h('div', { class: 'row' },
      field('fleet.key', otherKey, 'fleet.key_hint'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, t('fleet.revoke')))));
  other.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = otherKey.value.trim().toLowerCase();
    if (await revoke(key, null, null)) {
      other.reset();
      load();
    }
  });

  clear(ctx.main,
    h('div', { class: 'page-head' }, h('h1', {}, t('fleet.title')),
      h('button', { type: 'button', 'data-test': 'refresh', onclick: load }, t('fleet.refresh'))),
    h('h2', {}, t('fleet.alerts')),
    alertsBox,
    h('h2', {}, t('fleet.nodes')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'fleet' },
      h('caption', { class: 'visually-hidden' }, t('fleet.caption')),
      h('thead', {}, h('tr', {}, ['device', 'role', 'last_seen', 'behind', 'outbox', 'sessions', 'actions']
        .map((c) => h('th', { scope: 'col' }, t(`fleet.col.${c}`))))),
      body)),
    other);
  await load();
  // The fleet changes as devices sync: read it again every half minute.
  const timer = setInterval(load, 30000);
  return () => clearInterval(timer);
}

export const pages = [{
  path: '/fleet',
  render,
  nav: { label: 'fleet.nav', kinds: ['hub'], roles: ['admin'], order: 60 },
}];
