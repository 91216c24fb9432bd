// All events this server holds and the caller may see: a list (and, in
// the maps work, a map) with filters.
import { h, fmtTime, statusBadge, severityBadge } from '../dom.js';
import { t } from '../i18n.js';

async function render(ctx) {
  const page = await ctx.api.get('/api/v1/events', { limit: 100 });
  const rows = page.items.map((e) => h('tr', {},
    h('td', {}, h('a', { href: `#/events/${encodeURIComponent(e.id)}` }, e.title)),
    h('td', {}, e.category),
    h('td', {}, severityBadge(e.severity)),
    h('td', {}, statusBadge(e.status)),
    h('td', {}, fmtTime(e.reported_ms))));
  ctx.main.append(h('h1', {}, t('events.title')),
    h('table', {}, h('tbody', {}, rows)));
}

export const pages = [{
  path: '/events',
  render,
  nav: { label: 'events.nav', roles: ['admin', 'officer', 'public'], order: 20 },
}];
