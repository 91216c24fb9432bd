// The application: loads the server's config and the strings, learns who
// is signed in, builds the navigation for this server and role, and
// renders the page the address names.
import * as api from './api.js';
import { loadStrings, t, applyStrings } from './i18n.js';
import { h, clear, flash } from './dom.js';
import * as router from './router.js';
import { modules } from './pages/index.js';

const app = {
  config: null,
  session: null, // {name, role}
  cleanup: null,
  go: router.go,
  // Pages that change who is signed in call this.
  async refreshSession() {
    if (!api.token()) {
      app.session = null;
    } else {
      try {
        app.session = await api.get('/api/v1/session');
      } catch (e) {
        if (e.status === 401) api.setToken(null);
        app.session = e.status === 401 ? null : app.session;
      }
    }
    renderChrome();
  },
  signOut: async () => {
    try {
      await api.post('/api/v1/logout');
    } catch (_) { /* the token may be gone already */ }
    api.setToken(null);
    app.session = null;
    renderChrome();
    router.go('/login');
  },
  // The connectivity badge: pages that know better (the node's sync
  // state) set it; by default it says whether the server answers.
  setConnectivity(state, text) {
    const el = document.getElementById('conn');
    if (!el) return;
    el.className = `conn ${state}`;
    el.textContent = text;
  },
};

function visible(nav) {
  if (!nav) return false;
  if (nav.kinds && !nav.kinds.includes(app.config.kind)) return false;
  const role = app.session ? app.session.role : 'anonymous';
  return !nav.roles || nav.roles.includes(role);
}

function renderChrome() {
  const nav = document.getElementById('nav');
  const items = modules
    .flatMap((m) => m.pages || [])
    .filter((p) => visible(p.nav))
    .sort((a, b) => (a.nav.order || 0) - (b.nav.order || 0));
  const { path } = router.current();
  clear(nav, h('ul', {}, items.map((p) => {
    const href = `#${p.nav.href || p.path}`;
    const here = path === (p.nav.href || p.path);
    return h('li', {}, h('a', { href, 'aria-current': here ? 'page' : null }, t(p.nav.label)));
  })));
  const who = document.getElementById('who');
  if (app.session) {
    clear(who,
      h('span', { class: 'whoami' }, t('app.signed_in_as', { name: app.session.name, role: t(`role.${app.session.role}`) })),
      ' ',
      h('button', { type: 'button', class: 'link', onclick: app.signOut }, t('app.sign_out')));
  } else {
    clear(who);
  }
}

// Where `/` leads: the admin's timeline on a hub, the officer's work on a
// node, the events list for everyone else.
function home() {
  const role = app.session ? app.session.role : 'anonymous';
  if (app.config.kind === 'hub' && role === 'admin') return '/timeline';
  if (app.config.kind === 'node' && (role === 'officer' || role === 'admin')) return '/work';
  return '/events';
}

async function render() {
  if (app.cleanup) {
    try {
      app.cleanup();
    } catch (_) { /* a page's own teardown */ }
    app.cleanup = null;
  }
  const { path, query } = router.current();
  const main = document.getElementById('main');
  if (!app.session && path !== '/login') {
    router.go('/login', { next: path === '/' ? '' : path });
    return;
  }
  let target = path;
  if (path === '/') target = home();
  if (target !== path) {
    router.go(target);
    return;
  }
  const found = router.match(path);
  renderChrome();
  clear(main);
  if (!found) {
    main.append(h('h1', {}, t('app.not_found')));
    return;
  }
  const ctx = { app, main, params: found.params, query, api, config: app.config };
  try {
    const cleanup = await found.page.render(ctx);
    if (typeof cleanup === 'function') app.cleanup = cleanup;
  } catch (e) {
    main.append(h('p', { class: 'form-error', role: 'alert' }, `${t('error.generic')}: ${e.message}`));
    console.error(e);
  }
  applyStrings(main);
  document.title = `${main.querySelector('h1')?.textContent || ''} · ${t('app.name')} · ${app.config.name}`;
}

async function start() {
  await loadStrings();
  applyStrings();
  app.config = await (await fetch('/ui/config.json')).json();
  document.body.dataset.kind = app.config.kind;
  document.getElementById('server-name').textContent =
    t(app.config.kind === 'hub' ? 'app.hub' : 'app.node', { name: app.config.name });
  api.hooks.unauthorized = () => {
    if (app.session) flash(t('app.session_ended'), 'error');
    api.setToken(null);
    app.session = null;
    if (router.current().path !== '/login') router.go('/login');
  };
  api.hooks.reachable = (ok) => {
    if (!ok) app.setConnectivity('offline', t('conn.server_unreachable'));
  };
  for (const m of modules) for (const p of m.pages || []) router.add(p.path, p);
  await app.refreshSession();
  window.addEventListener('hashchange', render);
  await render();
  document.body.dataset.ready = 'true';
}

window.sentinelApp = app;
start().catch((e) => {
  document.getElementById('main').textContent = `Sentinel could not start: ${e.message}`;
});
