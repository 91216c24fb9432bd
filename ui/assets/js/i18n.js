// The one string catalogue: every word a page shows comes from
// /ui/i18n/<lang>.json (English in en.json). A deployment translates the
// pages by adding a catalogue with the same keys; a missing key shows the
// English string, never the key.
let strings = {};
let fallback = {};

async function fetchCatalogue(lang) {
  const r = await fetch(`/ui/i18n/${lang}.json`, { credentials: 'same-origin' });
  if (!r.ok) return null;
  return r.json();
}

export async function loadStrings() {
  fallback = (await fetchCatalogue('en')) || {};
  strings = fallback;
  const lang = (navigator.language || 'en').slice(0, 2).toLowerCase();
  if (lang !== 'en') {
    const own = await fetchCatalogue(lang).catch(() => null);
    if (own) {
      strings = own;
      document.documentElement.lang = lang;
    }
  }
}

// The string for `key`, with {name} placeholders filled from `vars`.
export function t(key, vars) {
  let s = strings[key] ?? fallback[key];
  if (s === undefined) {
    console.warn('missing string', key);
    s = key;
  }
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
  }
  return s;
}

// Fills elements marked data-i18n (text), data-i18n-label (aria-label),
// data-i18n-placeholder and data-i18n-title under `root`.
export function applyStrings(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}
