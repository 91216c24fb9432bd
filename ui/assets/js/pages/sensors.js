// Sensors (hub and node, for the roles the API lets read readings): the
// sensors this server holds readings of, with the fork flag (a sensor
// that signed two histories); a chart of the chosen sensor's recent
// readings, downsampled by the server (`bucket_ms`) and drawn with the
// vendored uPlot at a size that fits a 1024×600 screen; and the rules
// that fired.
import { h, clear, field, fmtTime, fmtAgo, shortId } from '../dom.js';
import { t } from '../i18n.js';
import { setQuery } from '../router.js';
import { notAllowed } from './admin-kit.js';

const HOUR = 3600 * 1000;
const RANGES = [['1h', HOUR], ['6h', 6 * HOUR], ['24h', 24 * HOUR], ['7d', 7 * 24 * HOUR], ['30d', 30 * 24 * HOUR]];
// Points per series the chart asks for (the server averages the rest).
const POINTS = 120;
const COLOURS = ['#1d4e89', '#b35900', '#1b6e20', '#8e24aa', '#b00020', '#00838f'];

function sensorName(s) {
  return s.name ? `${s.name} (${shortId(s.sensor)})` : shortId(s.sensor);
}

// Buckets (one list, many series) as uPlot's columns: x in seconds, one
// column of averages per value name and unit.
export function columns(buckets) {
  const series = [...new Set(buckets.map((b) => `${b.name}\u0000${b.unit}`))].sort();
  const xs = [...new Set(buckets.map((b) => b.start_ms))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const data = [xs.map((x) => x / 1000)];
  for (const s of series) {
    const col = new Array(xs.length).fill(null);
    for (const b of buckets) if (`${b.name}\u0000${b.unit}` === s) col[at.get(b.start_ms)] = b.avg;
    data.push(col);
  }
  return { labels: series.map((s) => s.replace('\u0000', ' (').concat(')').replace(' ()', '')), data };
}

// A rule that fired (GET /api/v1/sensors/alerts): the rule, the sensor,
// the event it raised, when the reading was measured and the event raised.
function ruleRow(r, names) {
  return h('tr', { 'data-test': 'rule-row' },
    h('td', {}, r.rule),
    h('td', { title: r.sensor }, names.get(r.sensor) || shortId(r.sensor)),
    h('td', {}, h('a', { href: `#/events/${encodeURIComponent(r.event)}` }, shortId(r.event))),
    h('td', {}, fmtTime(r.measured_ms)),
    h('td', {}, fmtTime(r.raised_ms)));
}

async function render(ctx) {
  let list;
  try {
    list = await ctx.api.get('/api/v1/sensors');
  } catch (e) {
    if (e.status === 403) {
      notAllowed(ctx, 'sensors.title');
      return undefined;
    }
    throw e;
  }
  const items = list.items;
  let chart = null;

  const pick = h('select', { name: 'sensor', 'data-test': 'sensor-select' },
    items.map((s) => h('option', { value: s.sensor, selected: ctx.query.get('sensor') === s.sensor }, sensorName(s))));
  const range = h('select', { name: 'range', 'data-test': 'range-select' },
    RANGES.map(([k]) => h('option', { value: k, selected: (ctx.query.get('range') || '24h') === k }, t(`sensors.range_${k}`))));
  const plot = h('div', { class: 'sensor-chart', 'data-test': 'sensor-chart', role: 'img', 'aria-label': t('sensors.chart_label') });
  const summary = h('p', { class: 'muted', 'data-test': 'chart-summary', 'aria-live': 'polite' });
  const rules = h('div', { 'data-test': 'rules' }, h('p', { class: 'muted' }, t('sensors.rules_loading')));

  const table = h('table', { class: 'sensors' },
    h('caption', { class: 'visually-hidden' }, t('sensors.caption')),
    h('thead', {}, h('tr', {}, ['sensor', 'kinds', 'readings', 'last', 'location', 'forks'].map((c) => h('th', { scope: 'col' }, t(`sensors.col.${c}`))))),
    h('tbody', {}, items.length ? items.map((s) => h('tr', { 'data-test': 'sensor-row', dataset: { sensor: s.sensor } },
      h('th', { scope: 'row', title: s.sensor }, h('button', { type: 'button', class: 'link', onclick: () => { pick.value = s.sensor; draw(); } }, sensorName(s))),
      h('td', {}, s.kinds.join(', ')),
      h('td', {}, String(s.n_readings)),
      h('td', { title: fmtTime(s.last_measured_ms) }, fmtAgo(s.last_measured_ms)),
      h('td', {}, s.last_location ? `${s.last_location.lat.toFixed(4)}, ${s.last_location.lon.toFixed(4)}` : '—'),
      h('td', {}, s.forks > 0
        ? h('span', { class: 'badge unverified', 'data-test': 'fork-flag', title: t('sensors.fork_hint') }, t('sensors.forked', { n: s.forks }))
        : h('span', { class: 'muted' }, t('sensors.no_fork')))))
      : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, t('sensors.none')))));

  async function draw() {
    if (chart) {
      chart.destroy();
      chart = null;
    }
    clear(plot);
    const sensor = pick.value;
    if (!sensor) {
      summary.textContent = t('sensors.none');
      return;
    }
    const span = (RANGES.find(([k]) => k === range.value) || RANGES[2])[1];
    const to = Date.now();
    const from = to - span;
    const bucket = Math.max(1000, Math.ceil(span / POINTS / 1000) * 1000);
    // The address keeps the choice (no re-render).
    setQuery({ sensor, range: range.value });
    let answer;
    try {
      answer = await ctx.api.get('/api/v1/sensors/readings', { sensor, from, to, bucket_ms: bucket });
    } catch (e) {
      summary.textContent = `${t('error.generic')}: ${e.message}`;
      return;
    }
    const buckets = answer.buckets || [];
    if (!buckets.length) {
      summary.textContent = t('sensors.no_readings');
      return;
    }
    const { labels, data } = columns(buckets);
    const n = buckets.reduce((a, b) => a + b.count, 0);
    summary.textContent = t('sensors.summary', { n, series: labels.join(', '), bucket: Math.round(bucket / 1000) });
    if (!window.uPlot) {
      plot.append(h('p', { class: 'muted' }, t('sensors.no_chart')));
      return;
    }
    const width = Math.max(300, Math.min(plot.clientWidth || 960, 980));
    chart = new window.uPlot({
      width,
      height: 240,
      series: [{}, ...labels.map((label, i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true }))],
      axes: [{}, {}],
      legend: { show: true },
    }, data, plot);
  }

  pick.addEventListener('change', draw);
  range.addEventListener('change', draw);

  clear(ctx.main,
    h('h1', {}, t('sensors.title')),
    h('div', { class: 'table-wrap' }, table),
    h('section', { class: 'card', 'aria-labelledby': 'sensors-chart-h' },
      h('h2', { id: 'sensors-chart-h' }, t('sensors.chart')),
      h('div', { class: 'row' }, field('sensors.sensor', pick), field('sensors.range', range)),
      summary,
      plot),
    h('section', { 'aria-labelledby': 'sensors-rules-h' },
      h('h2', { id: 'sensors-rules-h' }, t('sensors.rules')),
      rules));

  await draw();
  try {
    const fired = await ctx.api.get('/api/v1/sensors/alerts');
    const names = new Map(items.map((s) => [s.sensor, sensorName(s)]));
    clear(rules, fired.items.length
      ? h('table', {},
        h('thead', {}, h('tr', {}, ['rule', 'sensor', 'event', 'measured', 'raised'].map((c) => h('th', { scope: 'col' }, t(`sensors.rule_col.${c}`))))),
        h('tbody', {}, fired.items.map((r) => ruleRow(r, names))))
      : h('p', { class: 'muted', 'data-test': 'rules-none' }, t('sensors.rules_none')));
  } catch (e) {
    clear(rules, h('p', { class: 'muted' }, t('sensors.rules_unavailable', { detail: e.message })));
  }
  const redraw = () => {
    if (chart) chart.setSize({ width: Math.max(300, Math.min(plot.clientWidth, 980)), height: 240 });
  };
  window.addEventListener('resize', redraw);
  return () => {
    window.removeEventListener('resize', redraw);
    if (chart) chart.destroy();
  };
}

export const pages = [{
  path: '/sensors',
  render,
  nav: { label: 'sensors.nav', kinds: ['node', 'hub'], roles: ['admin', 'officer'], order: 50 },
}];
