// The officer's home on the node: the events assigned to them with the
// next step one tap away, and what they reported lately. Re-read when the
// live feed says something changed.
import { h, clear, fmtTime, fmtAgo, statusBadge, severityBadge } from '../dom.js';
import { t } from '../i18n.js';
import { workButtons } from './event.js';

const WEEK_MS = 7 * 24 * 3600 * 1000;
// How many recent events are looked into for the caller's own reports.
const RECENT = 30;

function eventLink(e) {
  return h('a', { href: `#/events/${encodeURIComponent(e.id)}`, dataset: { test: 'event-link' } }, e.title);
}

function card(ctx, e, reload) {
  return h('li', { class: 'work-item card', dataset: { test: 'work-item', event: e.id } },
    h('div', { class: 'work-head' }, eventLink(e), ' ', statusBadge(e.status), ' ', severityBadge(e.severity)),
    h('p', { class: 'hint' }, `${e.category} · ${t('work.reported_at', { when: fmtAgo(e.reported_ms) })}`,
      e.has_conflicts ? [' · ', h('strong', {}, t('work.has_conflicts'))] : null),
    h('div', { class: 'actions' }, workButtons(ctx, e, reload)));
}

// The caller's assigned events: the search has no assignee filter, so
// the open statuses are read and filtered here.
async function assigned(ctx) {
  const me = ctx.app.session.name;
  const out = [];
  let after;
  for (let i = 0; i < 4; i += 1) {
    const page = await ctx.api.get('/api/v1/events', { status: 'assigned,in_progress', limit: 500, after });
    out.push(...page.items.filter((e) => e.assignee === me));
    if (!page.next) break;
    after = page.next;
  }
  return out;
}

// The caller's recent reports: the newest events of the week, kept when
// their detail names the caller as reporter.
async function mine(ctx) {
  const me = ctx.app.session.name;
  const page = await ctx.api.get('/api/v1/events', { from: Math.max(0, Date.now() - WEEK_MS), limit: RECENT });
  const details = await Promise.all(page.items.map((e) => ctx.api
    .get(`/api/v1/events/${encodeURIComponent(e.id)}`).then((d) => (d.reported_by === me ? e : null))
    .catch(() => null)));
  return details.filter(Boolean);
}

async function render(ctx) {
  const mineList = h('div', { dataset: { test: 'my-reports' } }, h('p', { class: 'hint' }, t('work.loading')));
  const workList = h('div', { dataset: { test: 'my-work' } }, h('p', { class: 'hint' }, t('work.loading')));
  let stopped = false;

  async function load() {
    try {
      const items = await assigned(ctx);
      if (stopped) return;
      clear(workList, items.length
        ? h('ul', { class: 'work-list' }, items.map((e) => card(ctx, e, load)))
        : h('p', { class: 'hint' }, t('work.nothing_assigned')));
    } catch (e) {
      clear(workList, h('p', { class: 'form-error', role: 'alert' }, e.message));
    }
    try {
      const items = await mine(ctx);
      if (stopped) return;
      clear(mineList, items.length
        ? h('table', {},
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, t('work.col_title')),
            h('th', { scope: 'col' }, t('work.col_status')),
            h('th', { scope: 'col' }, t('work.col_reported')))),
          h('tbody', {}, items.map((e) => h('tr', {},
            h('td', {}, eventLink(e)),
            h('td', {}, statusBadge(e.status)),
            h('td', {}, fmtTime(e.reported_ms))))))
        : h('p', { class: 'hint' }, t('work.nothing_reported')));
    } catch (e) {
      clear(mineList, h('p', { class: 'form-error', role: 'alert' }, e.message));
    }
  }

  ctx.main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, t('work.heading')),
      h('a', { href: '#/report', class: 'btn primary', dataset: { test: 'new-report' } }, t('work.report'))),
    h('div', { class: 'split' },
      h('section', { 'aria-labelledby': 'work-assigned' }, h('h2', { id: 'work-assigned' }, t('work.assigned')), workList),
      h('section', { 'aria-labelledby': 'work-mine' }, h('h2', { id: 'work-mine' }, t('work.mine')), mineList)));
  await load();
  let timer = null;
  const stop = ctx.api.follow('/api/v1/feed', {}, (type) => {
    if (type === 'event' || type === 'lagged') {
      clearTimeout(timer);
      timer = setTimeout(load, 500);
    }
  });
  return () => {
    stopped = true;
    stop();
    clearTimeout(timer);
  };
}

export const pages = [{
  path: '/work',
  render,
  nav: { label: 'work.nav', kinds: ['node'], roles: ['officer', 'admin'], order: 10 },
}];
