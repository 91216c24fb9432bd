// Hash routes (`#/events/3f2a?q=flood`): the page never reloads, the
// browser's back button works, and the server serves one file.
const routes = [];

// `pattern` like '/events/:id'.
export function add(pattern, page) {
  const names = [];
  const re = new RegExp(`^${pattern.replace(/:(\w+)/g, (_, n) => {
    names.push(n);
    return '([^/]+)';
  })}$`);
  routes.push({ re, names, page, pattern });
}

export function current() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  return { path, query: new URLSearchParams(qs || '') };
}

export function match(path) {
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      r.names.forEach((n, i) => {
        params[n] = decodeURIComponent(m[i + 1]);
      });
      return { page: r.page, params };
    }
  }
  return null;
}

export function go(path, query) {
  const qs = query ? new URLSearchParams(query).toString() : '';
  const target = `#${path}${qs ? `?${qs}` : ''}`;
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = target;
}

// Replaces the query of the current route without a new history step
// or a re-render (filters kept in the address, so a reload keeps them).
export function setQuery(query) {
  const { path } = current();
  const qs = new URLSearchParams(query).toString();
  history.replaceState(null, '', `#${path}${qs ? `?${qs}` : ''}`);
}
