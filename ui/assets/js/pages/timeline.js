// The hub's merged timeline (admins; the admin's home on a hub): every
// entry of the log, newest first, with its provenance (author device and
// key, acting person, HLC, when the hub received it, verification),
// filters kept in the address, paging by the API's `next`, and live
// updates: each change the feed announces brings that event's new
// entries to the top, marked as new, without a reload.
import { h, clear, field, fmtTime, hlcText, shortId, statusBadge, showProblem, clearErrors } from '../dom.js';
import { t } from '../i18n.js';
import { setQuery } from '../router.js';
import { notAllowed, msOf, localOf } from './admin-kit.js';

const KINDS = ['event_change', 'media_attached', 'sensor_reading', 'role_grant', 'revocation', 'hub_checkpoint', 'redaction'];
const PAGE = 100;
// Titles looked up for a page's events, at most (the rest show their id
// until the feed tells more): the API's rate limit is for people too.
const TITLE_LOOKUPS = 12;

function deviceText(e) {
  return e.author_name ? `${e.author_name} (${shortId(e.author)})` : shortId(e.author);
}

async function render(ctx) {
  if (ctx.config.kind !== 'hub') {
    notAllowed(ctx, 'timeline.title', 'hub_only');
    return undefined;
  }
  const q = ctx.query;
  const filters = {
    author: q.get('author') || '',
    event: q.get('event') || '',
    kind: q.get('kind') || '',
    from: q.get('from') || '',
    to: q.get('to') || '',
  };
  const events = new Map(); // event id → {title, status} as last known
  const shown = new Set(); // entry ids in the table
  let next = null;

  const author = h('select', { name: 'author' }, h('option', { value: '' }, t('timeline.any_author')));
  const event = h('input', { name: 'event', value: filters.event, maxlength: 32, spellcheck: 'false', autocomplete: 'off' });
  const kind = h('select', { name: 'kind' },
    h('option', { value: '' }, t('timeline.any_kind')),
    KINDS.map((k) => h('option', { value: k, selected: filters.kind === k }, t(`timeline.kind.${k}`))));
  const from = h('input', { name: 'from', type: 'datetime-local', value: localOf(filters.from) });
  const to = h('input', { name: 'to', type: 'datetime-local', value: localOf(filters.to) });
  const form = h('form', { class: 'card filters', 'data-test': 'timeline-filters', novalidate: true },
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'row' },
      field('timeline.author', author),
      field('timeline.event', event, 'timeline.event_hint'),
      field('timeline.kind', kind),
      field('timeline.from', from),
      field('timeline.to', to),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, t('timeline.apply')),
        h('button', { type: 'button', onclick: () => ctx.app.go('/timeline') }, t('timeline.clear')))));

  const live = h('span', { class: 'live-state', role: 'status', 'data-test': 'live-state' }, t('timeline.live_connecting'));
  const body = h('tbody', { 'data-test': 'timeline-rows' });
  const empty = h('p', { class: 'muted', hidden: true, 'data-test': 'timeline-empty' }, t('timeline.empty'));
  const more = h('button', { type: 'button', hidden: true, 'data-test': 'timeline-more', onclick: () => loadPage(true) }, t('timeline.more'));
  const table = h('table', { class: 'timeline' },
    h('caption', { class: 'visually-hidden' }, t('timeline.caption')),
    h('thead', {}, h('tr', {},
      ['hlc', 'kind', 'event', 'device', 'actor', 'received', 'verification'].map((c) => h('th', { scope: 'col' }, t(`timeline.col.${c}`))))),
    body);

  clear(ctx.main,
    h('div', { class: 'page-head' }, h('h1', {}, t('timeline.title')), live),
    form,
    h('div', { class: 'table-wrap' }, table),
    empty,
    h('div', { class: 'actions' }, more));

  function eventCell(id) {
    const cell = h('td', { class: 'tl-event', dataset: { event: id || '' } });
    fillEvent(cell, id);
    return cell;
  }

  function fillEvent(cell, id) {
    if (!id) {
      clear(cell, '—');
      return;
    }
    const known = events.get(id);
    clear(cell,
      h('a', { href: `#/events/${encodeURIComponent(id)}` }, known && known.title ? known.title : shortId(id)),
      known && known.status ? [' ', statusBadge(known.status)] : null);
  }

  function refreshEvent(id) {
    for (const cell of body.querySelectorAll(`td.tl-event[data-event="${CSS.escape(id)}"]`)) fillEvent(cell, id);
  }

  function row(e, fresh) {
    shown.add(e.id);
    const revoked = e.verification !== 'verified';
    return h('tr', { 'data-test': 'timeline-row', class: fresh ? 'fresh live-new' : null, dataset: { entry: e.id, event: e.event || '', kind: e.kind } },
      h('td', {}, h('span', { class: 'mono' }, hlcText(e.hlc)),
        fresh ? [' ', h('span', { class: 'badge new', 'data-test': 'fresh' }, t('timeline.new'))] : null),
      h('td', {}, t(`timeline.kind.${e.kind}`)),
      eventCell(e.event),
      h('td', { 'data-test': 'device', title: e.author }, deviceText(e), h('span', { class: 'muted' }, ` #${e.seq}`)),
      h('td', { 'data-test': 'actor' }, e.actor || '—'),
      h('td', {}, fmtTime(e.received_ms)),
      h('td', {}, h('span', { class: revoked ? 'badge unverified' : 'badge verified' }, t(`timeline.verification.${e.verification}`))));
  }

  function addAuthor(key, name) {
    if (!key || author.querySelector(`option[value="${CSS.escape(key)}"]`)) return;
    author.append(h('option', { value: key, selected: filters.author === key }, name ? `${name} (${shortId(key)})` : shortId(key)));
  }

  function params(extra) {
    return { ...filters, order: 'desc', limit: PAGE, ...extra };
  }

  async function lookUpTitles(items) {
    const ids = [...new Set(items.map((e) => e.event).filter((id) => id && !events.has(id)))].slice(0, TITLE_LOOKUPS);
    for (const id of ids) {
      try {
        const ev = await ctx.api.get(`/api/v1/events/${encodeURIComponent(id)}`);
        events.set(id, { title: ev.title, status: ev.status });
        refreshEvent(id);
      } catch (_) {
        events.set(id, {});
      }
    }
  }

  async function loadPage(append) {
    more.disabled = true;
    let page;
    try {
      page = await ctx.api.get('/api/v1/timeline', params(append && next ? { after: next } : {}));
    } catch (e) {
      if (e.status === 403) {
        notAllowed(ctx, 'timeline.title');
        return false;
      }
      showProblem(form, e);
      more.disabled = false;
      return true;
    }
    if (!append) {
      clear(body);
      shown.clear();
    }
    for (const e of page.items) {
      addAuthor(e.author, e.author_name);
      if (!shown.has(e.id)) body.append(row(e, false));
    }
    next = page.next;
    more.hidden = !next;
    more.disabled = false;
    empty.hidden = body.children.length > 0;
    lookUpTitles(page.items);
    return true;
  }

  // A change the feed announced: that event's entries the table lacks go
  // on top (newest first), marked new.
  async function changed(ev) {
    if (!ev || !ev.id) return;
    events.set(ev.id, { title: ev.title, status: ev.status });
    refreshEvent(ev.id);
    if (filters.event && filters.event.toLowerCase() !== ev.id) return;
    let page;
    try {
      page = await ctx.api.get('/api/v1/timeline', params({ event: ev.id, limit: 50 }));
    } catch (_) {
      return;
    }
    const fresh = page.items.filter((e) => !shown.has(e.id));
    for (const e of fresh.reverse()) {
      addAuthor(e.author, e.author_name);
      body.prepend(row(e, true));
    }
    empty.hidden = body.children.length > 0;
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const query = {
      author: author.value,
      event: event.value.trim(),
      kind: kind.value,
      from: msOf(from.value),
      to: msOf(to.value),
    };
    for (const k of Object.keys(query)) if (!query[k]) delete query[k];
    ctx.app.go('/timeline', query);
  });

  // Authors by name: the fleet's devices (the hub's own key shows up as
  // its entries do).
  addAuthor(filters.author, null);
  const ok = await loadPage(false);
  if (!ok) return undefined;
  setQuery(Object.fromEntries(Object.entries(filters).filter(([, v]) => v)));
  ctx.api.get('/api/v1/nodes').then((list) => {
    for (const n of list.items) addAuthor(n.author, n.name);
  }).catch(() => {});

  const stop = ctx.api.follow('/api/v1/feed', {}, (type, data) => {
    if (type === 'event') changed(data);
    else if (type === 'lagged') loadPage(false);
  }, (up) => {
    live.textContent = t(up ? 'timeline.live_on' : 'timeline.live_off');
    live.className = `live-state ${up ? 'on' : 'off'}`;
  });
  return stop;
}

export const pages = [{
  path: '/timeline',
  render,
  nav: { label: 'timeline.nav', kinds: ['hub'], roles: ['admin'], order: 10 },
}];
