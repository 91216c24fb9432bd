// All events this server holds and the caller may see, on node and hub
// and for every role: filters, a map of clusters (drawn by the server,
// so a world of events costs a few dozen points) and a list paged with
// the API's `next` cursor. Filters and the map's view stay in the
// address, so a reload or a shared link shows the same. What the filters
// find downloads as GeoJSON, CSV or KML (the API's exports, redacted for
// the public as the list is).
import { h, clear, field, fmtTime, statusBadge, severityBadge, showProblem } from '../dom.js';
import { t } from '../i18n.js';
import { createMap } from '../map.js';
import * as router from '../router.js';

const PAGE = 50;
const STATUSES = ['reported', 'assigned', 'in_progress', 'resolved', 'closed'];
// Filter names, as the API and the address name them.
const FILTERS = ['q', 'category', 'status', 'min_severity'];

function option(value, text, selected) {
  return h('option', { value, selected: selected || null }, text);
}

function readQuery(query) {
  const f = {};
  for (const k of [...FILTERS, 'area', 'view']) {
    const v = query.get(k);
    if (v) f[k] = v;
  }
  return f;
}

function row(e) {
  return h('tr', { 'data-test': 'event-row', 'data-id': e.id },
    h('td', {}, h('a', { href: `#/events/${encodeURIComponent(e.id)}` }, e.title)),
    h('td', {}, e.category),
    h('td', {}, severityBadge(e.severity)),
    h('td', {}, statusBadge(e.status)),
    h('td', {}, fmtTime(e.reported_ms)));
}

async function render(ctx) {
  const role = ctx.app.session ? ctx.app.session.role : 'public';
  // The public may not search text (it would search notes).
  const textAllowed = role !== 'public';
  const state = readQuery(ctx.query);
  if (!textAllowed) delete state.q;

  const q = h('input', { type: 'search', name: 'q', value: state.q || '', 'data-test': 'filter-q' });
  const category = h('input', { type: 'text', name: 'category', value: state.category || '', maxlength: 64, 'data-test': 'filter-category' });
  const status = h('select', { name: 'status', 'data-test': 'filter-status' },
    option('', t('events.any_status'), !state.status),
    STATUSES.map((s) => option(s, t(`status.${s}`), state.status === s)));
  const severity = h('select', { name: 'min_severity', 'data-test': 'filter-severity' },
    option('', t('events.any_severity'), !state.min_severity),
    [1, 2, 3, 4, 5].map((n) => option(String(n), t('events.severity_at_least', { n }), state.min_severity === String(n))));
  const area = h('input', { type: 'checkbox', name: 'area', id: 'events-area', checked: state.area === '1' || null, 'data-test': 'filter-area' });
  const form = h('form', { class: 'filters card', role: 'search', 'aria-label': t('events.filters'), 'data-test': 'events-filters' },
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'row' },
      textAllowed ? field('events.text', q) : null,
      field('events.category', category),
      field('events.status', status),
      field('events.min_severity', severity),
      h('div', { class: 'field check' },
        h('label', { for: 'events-area' }, area, ' ', t('events.area_only'))),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', 'data-test': 'filter-apply' }, t('events.apply')),
        h('button', { type: 'button', 'data-test': 'filter-clear', onclick: () => {
          q.value = '';
          category.value = '';
          status.value = '';
          severity.value = '';
          area.checked = false;
          apply();
        } }, t('events.clear')))));

  const mapEl = h('div', { class: 'map tall', 'data-test': 'events-map' });
  const tbody = h('tbody', {});
  const summary = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite', 'data-test': 'events-summary' });
  const more = h('button', { type: 'button', hidden: true, 'data-test': 'events-more' }, t('events.more'));
  const exportButton = (format, label) => h('button', {
    type: 'button', 'data-test': `events-export-${format}`, onclick: () => download(format),
  }, label);
  const exports = h('div', { class: 'actions', role: 'group', 'aria-label': t('events.export'), 'data-test': 'events-export' },
    h('span', { class: 'muted' }, t('events.export')),
    exportButton('geojson', t('events.export_geojson')),
    exportButton('csv', t('events.export_csv')),
    exportButton('kml', t('events.export_kml')));
  const table = h('table', { 'data-test': 'events-table', 'aria-label': t('events.list_caption') },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('events.col_title')),
      h('th', { scope: 'col' }, t('events.col_category')),
      h('th', { scope: 'col' }, t('events.col_severity')),
      h('th', { scope: 'col' }, t('events.col_status')),
      h('th', { scope: 'col' }, t('events.col_reported')))),
    tbody);

  ctx.main.append(
    h('h1', {}, t('events.title')),
    form,
    h('div', { class: 'split events-split' },
      h('section', { 'aria-label': t('events.map_section') }, mapEl),
      h('section', { class: 'events-list', 'aria-label': t('events.list_section') },
        summary, h('div', { class: 'scroll' }, table), more, exports)));

  const map = createMap(mapEl, ctx, { label: t('events.map_label') });
  const [vlon, vlat, vzoom] = (state.view || '').split(",").map(Number);
  if ([vlon, vlat, vzoom].every(Number.isFinite)) map.setView(vlon, vlat, vzoom);

  let next = null;
  let listSeq = 0;

  function filters() {
    const f = {};
    if (textAllowed && q.value.trim()) f.q = q.value.trim();
    if (category.value.trim()) f.category = category.value.trim();
    if (status.value) f.status = status.value;
    if (severity.value) f.min_severity = severity.value;
    return f;
  }

  function listParams() {
    const p = { ...filters(), limit: PAGE };
    if (area.checked) {
      const bbox = map.bboxString();
      if (bbox) p.bbox = bbox;
    }
    return p;
  }

  function remember() {
    const v = map.view();
    const query = { ...filters(), view: `${v.lon},${v.lat},${v.zoom}` };
    if (area.checked) query.area = '1';
    router.setQuery(query);
  }

  async function loadList(append) {
    const mine = ++listSeq;
    const params = listParams();
    if (append && next) params.after = next;
    more.disabled = true;
    try {
      const page = await ctx.api.get("/api/v1/events", params);
      if (mine !== listSeq) return;
      if (!append) clear(tbody);
      tbody.append(...page.items.map(row));
      next = page.next || null;
      more.hidden = !next;
      const shown = tbody.children.length;
      summary.textContent = shown === 0 ? t('events.none') : t(next ? 'events.shown_more' : 'events.shown', { n: shown });
    } catch (e) {
      if (mine !== listSeq) return;
      showProblem(form, e);
    } finally {
      more.disabled = false;
    }
  }

  // Fetched with the token (a plain link cannot send it), then saved.
  async function download(format) {
    const params = filters();
    if (area.checked) {
      const bbox = map.bboxString();
      if (bbox) params.bbox = bbox;
    }
    try {
      const r = await ctx.api.request('GET', `/api/v1/export.${format}`, { params, raw: true });
      const url = URL.createObjectURL(await r.blob());
      const a = h('a', { href: url, download: `events.${format}`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      showProblem(form, e);
    }
  }

  function apply() {
    remember();
    map.showClusters(filters()).catch(() => {});
    loadList(false);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply();
  });
  area.addEventListener('change', () => {
    remember();
    loadList(false);
  });
  more.addEventListener('click', () => loadList(true));
  map.onMove(() => {
    remember();
    if (area.checked) loadList(false);
  });

  await Promise.all([map.showClusters(filters()), loadList(false)]);
  return () => map.destroy();
}

export const pages = [{
  path: '/events',
  render,
  nav: { label: 'events.nav', roles: ['admin', 'officer', 'public'], order: 20 },
}];
