// A map any page can use, working with no internet at all.
//
// Layers, bottom up: a sea-coloured background; the bundled outlines
// (Natural Earth countries, and from a middle zoom the states and
// provinces Natural Earth draws at this scale), always; then the
// operator's tile file (`/tiles/{z}/{x}/{y}`) when the server has one, or
// the online tile URL the configuration names; then what the page puts
// on it: event clusters from the server, a marker.
//
//   const m = createMap(el, ctx, { label: t('events.map_label') });
//   m.showClusters({ category: 'flood' });  // fetched per view and zoom
//   m.pickLocation(({ lon, lat }) => …);     // tap, click or "use centre"
//   m.setMarker(lon, lat); m.setView(lon, lat, 12); m.fitBox('w,s,e,n');
//   m.bboxString();                          // the view, for `bbox=`
//   m.onMove(() => …);                       // after a pan or zoom
//   m.destroy();
//
// Leaflet (`L`) and topojson-client (`topojson`) are the vendored globals.
import { h } from './dom.js';
import { t } from './i18n.js';

const COUNTRIES = '/ui/vendor/world/countries-50m.json';
const PROVINCES = '/ui/vendor/admin1/world_50m.json';
// Provinces are drawn from this zoom on (a country fills the screen).
const PROVINCE_ZOOM = 4;
const MAX_ZOOM = 19;
const DEBOUNCE_MS = 250;
// Views at least this wide (degrees of longitude) ask for every cluster.
const WHOLE_WORLD_DEG = 180;

// The outlines, decoded once per page load and shared by every map.
let countries = null;
let provinces = null;

function outline(url, object) {
  return fetch(url)
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`${url}: ${r.status}`))))
    .then((topo) => window.topojson.feature(topo, topo.objects[object]));
}

function loadCountries() {
  if (!countries) countries = outline(COUNTRIES, 'countries');
  return countries;
}

function loadProvinces() {
  if (!provinces) provinces = outline(PROVINCES, 'subunits');
  return provinces;
}

// Attribution text as Leaflet shows it (it writes HTML): escaped.
function escapeText(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// A longitude moved by whole turns to lie within 180° of `centre`, so a
// cluster shows on the copy of the world the view is looking at.
function near(lon, centre) {
  return lon + 360 * Math.round((centre - lon) / 360);
}

function wrap(lon) {
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

function round(x) {
  return Math.round(x * 1e6) / 1e6;
}

// The component's styles, linked once.
function linkStyles() {
  if (document.querySelector('link[data-map-css]')) return;
  document.head.append(h('link', { rel: 'stylesheet', href: '/ui/map.css', 'data-map-css': 'true' }));
}

export function createMap(el, ctx, opts = {}) {
  linkStyles();
  const L = window.L;
  L.Icon.Default.imagePath = '/ui/vendor/leaflet/images/';
  let destroyed = false;
  el.classList.add('map');
  el.setAttribute('role', 'region');
  el.setAttribute('aria-label', opts.label || t('map.label'));
  el.dataset.test = el.dataset.test || 'map';
  const map = L.map(el, {
    center: [opts.lat ?? 20, opts.lon ?? 0],
    zoom: opts.zoom ?? 2,
    minZoom: 1,
    maxZoom: MAX_ZOOM,
    worldCopyJump: true,
    keyboard: true,
    zoomControl: true,
    attributionControl: true,
  });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(escapeText(t('map.outlines_attribution')));
  // Leaflet's zoom buttons are links; give them the catalogue's names.
  for (const [sel, key] of [['.leaflet-control-zoom-in', 'map.zoom_in'], ['.leaflet-control-zoom-out', 'map.zoom_out']]) {
    const b = el.querySelector(sel);
    if (b) {
      b.setAttribute('title', t(key));
      b.setAttribute('aria-label', t(key));
    }
  }

  const canvas = L.canvas({ padding: 0.5 });
  const land = { renderer: canvas, interactive: false, style: { color: '#8793a3', weight: 0.7, fillColor: '#f4f2ec', fillOpacity: 1 } };
  const lines = { renderer: canvas, interactive: false, style: { color: '#a7b0bd', weight: 0.5, dashArray: '3 3', fill: false } };
  let provinceLayer = null;
  loadCountries()
    .then((fc) => {
      if (destroyed) return;
      L.geoJSON(fc, land).addTo(map).bringToBack();
    })
    .catch((e) => console.warn('outlines', e));
  function provincesForZoom() {
    if (map.getZoom() < PROVINCE_ZOOM) {
      if (provinceLayer) map.removeLayer(provinceLayer);
      return;
    }
    loadProvinces()
      .then((fc) => {
        if (destroyed) return;
        if (!provinceLayer) provinceLayer = L.geoJSON(fc, lines);
        if (map.getZoom() >= PROVINCE_ZOOM && !map.hasLayer(provinceLayer)) provinceLayer.addTo(map);
      })
      .catch((e) => console.warn('provinces', e));
  }
  map.on('zoomend', provincesForZoom);
  provincesForZoom();

  const config = ctx.config || {};
  const attribution = config.attribution ? escapeText(config.attribution) : '';
  if (config.tiles) {
    L.tileLayer('/tiles/{z}/{x}/{y}', { maxZoom: MAX_ZOOM, attribution }).addTo(map);
  } else if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: MAX_ZOOM, attribution, crossOrigin: false }).addTo(map);
  }

  const clusterLayer = L.layerGroup().addTo(map);
  let marker = null;
  let filters = null;
  let seq = 0;
  let timer = null;
  const moveListeners = [];
  let status = null;

  function viewBounds() {
    const b = map.getBounds();
    return { w: b.getWest(), s: Math.max(b.getSouth(), -90), e: b.getEast(), n: Math.min(b.getNorth(), 90) };
  }

  // The view as `minLon,minLat,maxLon,maxLat` (`minLon > maxLon` across
  // the antimeridian); '' when the view spans the whole world.
  function bboxString() {
    const { w, s, e, n } = viewBounds();
    if (e - w >= 360) return '';
    return [wrap(w), s, wrap(e), n].map(round).join(',');
  }

  function clusterIcon(c) {
    const size = c.count < 10 ? 30 : c.count < 100 ? 36 : c.count < 1000 ? 42 : 50;
    return L.divIcon({
      className: 'cluster-count',
      iconSize: [size, size],
      html: h('span', { 'aria-hidden': 'true' }, c.count >= 10000 ? `${Math.round(c.count / 1000)}k` : String(c.count)),
    });
  }

  function draw(answer) {
    clusterLayer.clearLayers();
    const centre = map.getCenter().lng;
    for (const c of answer.clusters) {
      const at = [c.lat, near(c.lon, centre)];
      if (c.count === 1 && c.id) {
        const m = L.circleMarker(at, { radius: 8, color: '#fff', weight: 2, fillColor: '#1d4e89', fillOpacity: 0.9 });
        m.bindTooltip(t('map.open_event'));
        m.on('click', () => ctx.app.go(`/events/${encodeURIComponent(c.id)}`));
        m.addTo(clusterLayer);
        // A focusable, named element for keyboards and screen readers.
        const path = m.getElement && m.getElement();
        if (path) {
          path.setAttribute('tabindex', '0');
          path.setAttribute('role', 'link');
          path.setAttribute('aria-label', t('map.open_event'));
          path.dataset.test = 'map-event';
          path.dataset.id = c.id;
          path.addEventListener('keydown', (ev) => {
            if (ev.key === 'Enter' || ev.key === ' ') {
              ev.preventDefault();
              ctx.app.go(`/events/${encodeURIComponent(c.id)}`);
            }
          });
        }
      } else {
        const label = t('map.cluster', { n: c.count });
        const m = L.marker(at, { icon: clusterIcon(c), title: label, keyboard: true, riseOnHover: true });
        const zoomIn = () => {
          if (map.getZoom() >= MAX_ZOOM) return;
          map.setView(at, Math.min(map.getZoom() + 2, MAX_ZOOM));
        };
        m.on('click', zoomIn);
        // A focused marker takes Enter as a click.
        m.on('keypress', (e) => {
          if (e.originalEvent.key === 'Enter') zoomIn();
        });
        m.addTo(clusterLayer);
        const icon = m.getElement && m.getElement();
        if (icon) {
          icon.setAttribute('role', 'button');
          icon.setAttribute('aria-label', label);
          icon.dataset.test = 'map-cluster';
          icon.dataset.count = String(c.count);
        }
      }
    }
    if (status) status.textContent = t('map.in_view', { n: answer.total });
    el.dataset.clusters = String(answer.clusters.length);
    el.dataset.total = String(answer.total);
    el.dataset.ready = 'true';
  }

  async function refresh() {
    if (!filters) return;
    const mine = ++seq;
    const params = { ...filters, zoom: Math.max(0, Math.min(22, Math.round(map.getZoom()))) };
    // A view half the world wide or more asks for the whole world: a few
    // more clusters off screen, and no large area for the store to cut.
    const { w, e } = viewBounds();
    const bbox = e - w >= WHOLE_WORLD_DEG ? '' : bboxString();
    if (bbox) params.bbox = bbox;
    el.dataset.ready = 'false';
    try {
      const answer = await ctx.api.get("/api/v1/events/clusters", params);
      if (mine === seq) draw(answer);
    } catch (e) {
      if (mine !== seq) return;
      clusterLayer.clearLayers();
      if (status) status.textContent = e.problem?.detail || e.message;
      el.dataset.ready = 'error';
    }
  }

  function moved() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      refresh();
      for (const f of moveListeners) f();
    }, DEBOUNCE_MS);
  }
  map.on('moveend', moved);

  const api = {
    map,
    bboxString,

    // Draws the clusters of the events `f` finds (the search's filters,
    // without `bbox`: the view is the area), now and after every move.
    showClusters(f) {
      filters = { ...(f || {}) };
      delete filters.bbox;
      if (!status) {
        status = h('p', { class: 'map-status muted', role: 'status', 'aria-live': 'polite', 'data-test': 'map-status' });
        el.after(status);
      }
      return refresh();
    },

    // Tap or click sets the marker and calls back with {lon, lat}; so
    // does the "use the map centre" button (the keyboard's way: arrows
    // pan, + and - zoom, the cross marks the centre).
    pickLocation(onPick) {
      const pick = (lat, lon) => {
        const at = { lon: round(wrap(lon)), lat: round(lat) };
        api.setMarker(at.lon, at.lat);
        onPick(at);
      };
      map.on('click', (e) => pick(e.latlng.lat, e.latlng.lng));
      el.classList.add('picking');
      el.append(h('div', { class: 'map-cross', 'aria-hidden': 'true' }));
      const Centre = L.Control.extend({
        onAdd() {
          const b = h('button', { type: 'button', class: 'map-centre', 'data-test': 'map-use-centre' }, t('map.use_centre'));
          L.DomEvent.disableClickPropagation(b);
          b.addEventListener('click', () => {
            const c = map.getCenter();
            pick(c.lat, c.lng);
          });
          return b;
        },
      });
      new Centre({ position: 'topright' }).addTo(map);
      return api;
    },

    setMarker(lon, lat) {
      const at = [lat, lon];
      if (!marker) {
        marker = L.marker(at, { title: t('map.marker'), alt: t('map.marker'), keyboard: false }).addTo(map);
        const m = marker.getElement && marker.getElement();
        if (m) m.dataset.test = 'map-marker';
      } else marker.setLatLng(at);
      return api;
    },

    clearMarker() {
      if (marker) map.removeLayer(marker);
      marker = null;
      return api;
    },

    setView(lon, lat, zoom) {
      map.setView([lat, lon], zoom ?? map.getZoom());
      return api;
    },

    // Fits `bbox` (`w,s,e,n` text or [w, s, e, n]) into the view.
    fitBox(bbox) {
      const [w, s, e, n] = (Array.isArray(bbox) ? bbox : String(bbox).split(",")).map(Number);
      if ([w, s, e, n].some((x) => !Number.isFinite(x))) return api;
      map.fitBounds([[s, w], [n, e < w ? e + 360 : e]]);
      return api;
    },

    onMove(f) {
      moveListeners.push(f);
      return api;
    },

    // The view as {lon, lat, zoom}, for keeping it in the address.
    view() {
      const c = map.getCenter();
      return { lon: round(wrap(c.lng)), lat: round(c.lat), zoom: map.getZoom() };
    },

    refresh,

    destroy() {
      destroyed = true;
      clearTimeout(timer);
      seq += 1;
      map.off();
      map.remove();
      if (status) status.remove();
    },
  };
  return api;
}
