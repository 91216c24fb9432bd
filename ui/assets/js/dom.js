// Building the page from data without ever parsing data as HTML: every
// text a server or a person wrote goes in as a text node.
import { t } from './i18n.js';

// h('a', {href: '#/x', class: 'btn', onclick: f}, 'text', child, …)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

// A labelled form field with a place for its error, which fieldError fills.
// `input` is an element; its id ties the label and the error to it.
export function field(labelKey, input, hintKey) {
  if (!input.id) input.id = uid();
  const err = h('span', { class: 'field-error', id: `${input.id}-error`, role: 'alert' });
  input.setAttribute('aria-describedby', `${input.id}-error`);
  return h('div', { class: 'field', dataset: { field: input.name || '' } },
    h('label', { for: input.id }, t(labelKey)),
    input,
    hintKey ? h('span', { class: 'hint' }, t(hintKey)) : null,
    err);
}

// Shows `message` next to the form field named `name` (or on the form).
export function fieldError(form, name, message) {
  const input = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  const target = input ? form.querySelector(`#${CSS.escape(input.id)}-error`) : form.querySelector('.form-error');
  if (input) input.setAttribute('aria-invalid', 'true');
  if (target) target.textContent = message;
  else flash(message, 'error');
  return input || target;
}

export function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error, .form-error')) e.textContent = '';
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
}

// A problem+json answer shown on `form`: next to the field it names, or
// above the form.
export function showProblem(form, err) {
  clearErrors(form);
  const p = err.problem || {};
  const message = p.detail || p.title || err.message;
  const el = fieldError(form, p.field, p.field ? message : `${p.title || t('error.generic')}: ${message}`);
  if (el && el.focus) el.focus();
}

let flashTimer;
export function flash(message, kind = 'info') {
  const box = document.getElementById('flash');
  if (!box) return;
  clear(box, h('div', { class: `flash ${kind}` }, message));
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => clear(box), 6000);
}

export function fmtTime(ms) {
  if (ms === undefined || ms === null) return '';
  const d = new Date(Number(ms));
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function fmtAgo(ms, now = Date.now()) {
  if (!ms) return t('time.never');
  const s = Math.round((now - ms) / 1000);
  if (s < 60) return t('time.seconds_ago', { n: Math.max(s, 0) });
  if (s < 3600) return t('time.minutes_ago', { n: Math.round(s / 60) });
  if (s < 86400) return t('time.hours_ago', { n: Math.round(s / 3600) });
  return t('time.days_ago', { n: Math.round(s / 86400) });
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : '';
}

export function hlcText(hlc) {
  if (!hlc) return '';
  return `${new Date(hlc.wall_ms).toISOString()} #${hlc.counter}`;
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, t(`status.${status}`));
}

export function severityBadge(sev) {
  return h('span', { class: `badge sev-${sev}`, title: t('event.severity') }, `S${sev}`);
}
