// The comparison report's behaviour: views by URL hash, lazy canvas drawing.
// Every string from the data is set with textContent or setAttribute, never parsed as HTML.
(() => {
  'use strict';

  const DATA = JSON.parse(document.getElementById('imacs-data').textContent);
  const META = DATA.meta;
  const IMAGES = DATA.images;
  const REGIONS = DATA.regions;
  const CLUSTERS = DATA.clusters;
  const W = META.display.width;
  const H = META.display.height;
  const SY = H / META.original.height;
  const SX = W / META.original.width;
  const ZERO = META.map_zero;
  const STEPS = META.map_steps;
  const PAGE = META.page_size;
  const BY = ['a', 'b', 'both'];
  const BY_TEXT = ['A', 'B', 'A+B'];
  const TILE = 104;
  const EXEMPLAR = 48;
  const DRILL = 280;
  const clusterById = new Map(CLUSTERS.map((c) => [c.cluster, c]));

  function rgb(hex) {
    const v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }
  const COLOR = {
    a: rgb(META.colors.a),
    b: rgb(META.colors.b),
    both: rgb(META.colors.both),
    negative: [96, 96, 96],
  };
  const NAMES = META.names;

  // One outline rule, in the report and in the figures: a region is outlined in the colour
  // of the model that puts more attribution on it (B − A > 0: B's colour).
  function leanColor(row) {
    const diff = REGIONS.mass_b[row] - REGIONS.mass_a[row];
    if (diff > 0) return META.colors.b;
    return diff < 0 ? META.colors.a : META.colors.neutral;
  }

  function fail(error) {
    console.error('imacs report:', error);
  }

  // ---------------------------------------------------------------- DOM, as text only

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // replaceChildren would write null as the text "null"
  function put(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
  }

  function className(label) {
    if (label === null || label === undefined || label < 0) return 'unlabelled';
    const names = META.class_names;
    return names && label < names.length ? names[label] : String(label);
  }
  function fixed(value, digits = 3) {
    return value === null || value === undefined ? 'n/a' : Number(value).toFixed(digits);
  }
  function signed(value, digits = 3) {
    if (value === null || value === undefined) return 'n/a';
    const text = Number(value).toFixed(digits);
    return value > 0 ? '+' + text : text;
  }
  function percent(value) {
    return value === null || value === undefined ? 'n/a' : (100 * value).toFixed(1) + '%';
  }
  function qText(value) {
    if (value === null || value === undefined) return 'n/a';
    if (value === 0) return '0';
    return value >= 0.001 ? Number(value).toPrecision(2) : Number(value).toExponential(1);
  }
  function mark(correct) {
    if (correct === null || correct === undefined) return el('span', { class: 'muted' }, '–');
    return correct ? el('span', { class: 'ok' }, '✓') : el('span', { class: 'bad' }, '✗');
  }

  // ---------------------------------------------------------------- decoding, on demand

  class Cache {
    constructor(limit) {
      this.limit = limit;
      this.map = new Map();
    }
    get(key, make) {
      let value = this.map.get(key);
      if (value !== undefined) {
        this.map.delete(key);
      } else {
        value = make();
        if (this.map.size >= this.limit) this.map.delete(this.map.keys().next().value);
      }
      this.map.set(key, value);
      return value;
    }
  }

  let PIXELS = null;
  function pixelStrings() {
    if (PIXELS === null) PIXELS = JSON.parse(document.getElementById('imacs-pixels').textContent);
    return PIXELS;
  }

  const scratch = document.createElement('canvas');
  scratch.width = W;
  scratch.height = 2 * H;
  const scratchContext = scratch.getContext('2d', { willReadFrequently: true });

  // a data: URI for a base64 picture: JPEG base64 starts with /9j/, PNG's with iVBOR
  function dataUri(encoded) {
    return (encoded.startsWith('/9j/') ? 'data:image/jpeg;base64,' : 'data:image/png;base64,') + encoded;
  }

  async function readPixels(encoded, height) {
    const image = new Image();
    image.src = dataUri(encoded);
    await image.decode();
    if (image.naturalWidth !== W || image.naturalHeight !== height) {
      throw new Error(`expected a ${W}x${height} picture; got ${image.naturalWidth}x${image.naturalHeight}`);
    }
    scratchContext.clearRect(0, 0, W, 2 * H);
    scratchContext.drawImage(image, 0, 0);
    return scratchContext.getImageData(0, 0, W, height).data;
  }

  let regionsByImage = null;
  function imageRegions(index) {
    if (regionsByImage === null) {
      regionsByImage = new Map();
      REGIONS.image.forEach((image, row) => {
        if (!regionsByImage.has(image)) regionsByImage.set(image, []);
        regionsByImage.get(image).push(row);
      });
    }
    return regionsByImage.get(index) || [];
  }

  // Everything drawn for one image: its RGBA pixels, its labels and both maps' codes
  // (RGBA: A in red, B in green), decoded once and kept for the most recent images.
  const bundles = new Cache(300);
  function bundle(index) {
    return bundles.get(index, async () => {
      const strings = pixelStrings();
      const [rgba, data] = await Promise.all([
        readPixels(strings.picture[index], H),
        readPixels(strings.sheet[index], 2 * H),
      ]);
      const labels = new Int32Array(W * H);
      const present = new Set();
      for (let p = 0; p < W * H; p++) {
        const label = data[4 * p] | (data[4 * p + 1] << 8) | (data[4 * p + 2] << 16);
        labels[p] = label;
        present.add(label);
      }
      const maps = data.subarray(4 * W * H);
      // the PNGs carry no colour profile; if a browser altered their bytes anyway, say so
      if (maps[2] !== ZERO) fail(`the maps of image ${index} were altered while decoding`);
      for (const row of imageRegions(index)) {
        if (!present.has(REGIONS.region[row])) {
          fail(`region ${REGIONS.region[row]} of image ${index} is missing from its label map`);
        }
      }
      return { rgba, maps, labels };
    });
  }

  // ---------------------------------------------------------------- drawing

  const staging = document.createElement('canvas');
  const stagingContext = staging.getContext('2d');

  // Paint crop (x0, y0)-(x1, y1) of the display grid, `zoom` canvas pixels per pixel;
  // `shade(p, out, o)` writes the RGB of grid pixel p at out[o].
  function paint(canvas, x0, y0, x1, y1, zoom, shade) {
    const cw = x1 - x0;
    const ch = y1 - y0;
    const small = new ImageData(cw, ch);
    const out = small.data;
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const o = 4 * (y * cw + x);
        shade((y0 + y) * W + x0 + x, out, o);
        out[o + 3] = 255;
      }
    }
    staging.width = cw;
    staging.height = ch;
    stagingContext.putImageData(small, 0, 0);
    canvas.width = cw * zoom;
    canvas.height = ch * zoom;
    const context = canvas.getContext('2d');
    context.imageSmoothingEnabled = false;
    context.drawImage(staging, 0, 0, cw * zoom, ch * zoom);
    return context;
  }

  // Lines along pixel edges of the crop: between a region (test true) and the rest, or
  // between any two labels when `test` is null.
  function edges(context, labels, x0, y0, x1, y1, zoom, test, color, width) {
    const at = (x, y) => (x < 0 || y < 0 || x >= W || y >= H ? -1 : labels[y * W + x]);
    const differs = (p, q) => (test === null ? p !== q && p !== -1 && q !== -1 : test(p) !== test(q));
    context.beginPath();
    for (let y = y0; y < y1; y++) {
      for (let x = x0 - 1; x < x1; x++) {
        if (differs(at(x, y), at(x + 1, y))) {
          const X = (x + 1 - x0) * zoom;
          context.moveTo(X, (y - y0) * zoom);
          context.lineTo(X, (y + 1 - y0) * zoom);
        }
      }
    }
    for (let y = y0 - 1; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        if (differs(at(x, y), at(x, y + 1))) {
          const Y = (y + 1 - y0) * zoom;
          context.moveTo((x - x0) * zoom, Y);
          context.lineTo((x + 1 - x0) * zoom, Y);
        }
      }
    }
    context.strokeStyle = color;
    context.lineWidth = width;
    context.lineCap = 'square';
    context.stroke();
  }

  function outlineRegion(context, labels, row, box, zoom, width) {
    const region = REGIONS.region[row];
    const test = (label) => label === region;
    edges(context, labels, box[0], box[1], box[2], box[3], zoom, test, 'rgba(255,255,255,0.85)', width + 2);
    edges(context, labels, box[0], box[1], box[2], box[3], zoom, test, leanColor(row), width);
  }

  // A region's thumbnail: a square crop around it, the rest of the crop faded.
  async function drawRegion(canvas, row, size) {
    const index = REGIONS.image[row];
    const b = await bundle(index);
    const region = REGIONS.region[row];
    const top = Math.floor(REGIONS.y0[row] * SY);
    const left = Math.floor(REGIONS.x0[row] * SX);
    const bottom = Math.max(top + 1, Math.ceil(REGIONS.y1[row] * SY));
    const right = Math.max(left + 1, Math.ceil(REGIONS.x1[row] * SX));
    const extent = Math.max(bottom - top, right - left);
    const side = extent + 2 * Math.max(2, Math.round(0.25 * extent));
    const ch = Math.min(H, side);
    const cw = Math.min(W, side);
    const y0 = Math.min(Math.max(0, Math.round((top + bottom - ch) / 2)), H - ch);
    const x0 = Math.min(Math.max(0, Math.round((left + right - cw) / 2)), W - cw);
    const zoom = Math.max(1, Math.floor(size / Math.max(cw, ch)));
    const { rgba, labels } = b;
    const context = paint(canvas, x0, y0, x0 + cw, y0 + ch, zoom, (p, out, o) => {
      const keep = labels[p] === region;
      for (let k = 0; k < 3; k++) {
        out[o + k] = keep ? rgba[4 * p + k] : 0.25 * rgba[4 * p + k] + 0.75 * 240;
      }
    });
    outlineRegion(context, labels, row, [x0, y0, x0 + cw, y0 + ch], zoom, 2);
    canvas.dataset.ready = 'true';
  }

  function faint(rgba, p) {
    const grey = 0.299 * rgba[4 * p] + 0.587 * rgba[4 * p + 1] + 0.114 * rgba[4 * p + 2];
    return 226 + 0.11 * grey;
  }

  function mapShade(b, channel, color) {
    return (p, out, o) => {
      const code = b.maps[4 * p + channel] - ZERO;
      const t = Math.min(1, Math.abs(code) / STEPS);
      const tint = code >= 0 ? color : COLOR.negative;
      const base = faint(b.rgba, p);
      for (let k = 0; k < 3; k++) out[o + k] = base * (1 - t) + tint[k] * t;
    };
  }

  // B - A in common units; full colour at the larger of the two maps' scales
  function differenceShade(b, index) {
    const sa = IMAGES.scale_a[index] / STEPS;
    const sb = IMAGES.scale_b[index] / STEPS;
    const limit = Math.max(IMAGES.scale_a[index], IMAGES.scale_b[index]);
    return (p, out, o) => {
      const d = ((b.maps[4 * p + 1] - ZERO) * sb - (b.maps[4 * p] - ZERO) * sa) / limit;
      const t = Math.min(1, Math.abs(d));
      const tint = d > 0 ? COLOR.b : COLOR.a;
      const base = faint(b.rgba, p);
      for (let k = 0; k < 3; k++) out[o + k] = base * (1 - t) + tint[k] * t;
    };
  }

  function drawDrill(index, highlight) {
    return bundle(index).then((b) => {
      const zoom = Math.max(1, Math.floor(DRILL / Math.max(W, H)));
      const whole = [0, 0, W, H];
      const rows = imageRegions(index);
      const canvases = {
        image: document.getElementById('drill-image'),
        a: document.getElementById('drill-map-a'),
        b: document.getElementById('drill-map-b'),
        diff: document.getElementById('drill-diff'),
      };
      const shades = {
        image: (p, out, o) => {
          for (let k = 0; k < 3; k++) out[o + k] = b.rgba[4 * p + k];
        },
        a: mapShade(b, 0, COLOR.a),
        b: mapShade(b, 1, COLOR.b),
        diff: differenceShade(b, index),
      };
      for (const [name, canvas] of Object.entries(canvases)) {
        const context = paint(canvas, 0, 0, W, H, zoom, shades[name]);
        if (name === 'image') {
          edges(context, b.labels, 0, 0, W, H, zoom, null, 'rgba(255,255,255,0.55)', 1);
        }
        for (const row of rows) {
          const width = name === 'image' ? 2.5 : 1.5;
          outlineRegion(context, b.labels, row, whole, zoom, width);
        }
        if (highlight !== null && highlight !== undefined && name === 'image') {
          const test = (label) => label === REGIONS.region[highlight];
          edges(context, b.labels, 0, 0, W, H, zoom, test, '#ffffff', 6);
          edges(context, b.labels, 0, 0, W, H, zoom, test, '#d6004c', 3);
        }
        canvas.dataset.ready = 'true';
      }
    });
  }

  // An image on its own, scaled to fit a square canvas of `size` pixels.
  async function drawImage(canvas, index, size) {
    const b = await bundle(index);
    const zoom = Math.max(1, Math.floor(size / Math.max(W, H)));
    paint(canvas, 0, 0, W, H, zoom, (p, out, o) => {
      for (let k = 0; k < 3; k++) out[o + k] = b.rgba[4 * p + k];
    });
    canvas.dataset.ready = 'true';
  }

  // ---------------------------------------------------------------- mean maps

  // The mean maps of a group ("all", "class:<label>", "cluster:<id>"): one PNG, A's codes
  // in red and B's in green at one scale, and in blue the share of images in which a
  // pixel lies in the cluster's regions.
  const means = new Cache(200);
  function meanCodes(key) {
    return means.get(key, () => {
      const encoded = pixelStrings().means[key];
      if (encoded === undefined) return Promise.reject(new Error(`no mean maps for ${key}`));
      return readPixels(encoded, H);
    });
  }

  async function drawMean(canvas, key, kind) {
    const codes = await meanCodes(key);
    const zoom = Math.max(1, Math.floor(160 / Math.max(W, H)));
    paint(canvas, 0, 0, W, H, zoom, (p, out, o) => {
      const a = codes[4 * p] - ZERO;
      const b = codes[4 * p + 1] - ZERO;
      let t;
      let tint;
      if (kind === 'where') {
        t = codes[4 * p + 2] / 255;
        tint = [29, 33, 37];
      } else if (kind === 'diff') {
        const d = (b - a) / STEPS;
        t = Math.min(1, Math.abs(d));
        tint = d > 0 ? COLOR.b : COLOR.a;
      } else {
        const code = kind === 'a' ? a : b;
        t = Math.min(1, Math.abs(code) / STEPS);
        tint = code >= 0 ? COLOR[kind] : COLOR.negative;
      }
      for (let k = 0; k < 3; k++) out[o + k] = 255 * (1 - t) + tint[k] * t;
    });
    canvas.dataset.ready = 'true';
  }

  // Draw canvases once they come near the screen; `draw(canvas)` returns a promise.
  function lazily(canvases, draw, first) {
    if (!canvases.length || !('IntersectionObserver' in window)) {
      const all = Promise.all(canvases.map(draw)).catch(fail);
      if (first) all.finally(first);
      return;
    }
    let pending = first;
    const observer = new IntersectionObserver(
      (entries) => {
        const jobs = [];
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          jobs.push(draw(entry.target));
        }
        const done = Promise.all(jobs).catch(fail);
        if (pending) {
          done.finally(pending);
          pending = null;
        }
      },
      { rootMargin: '200px 0px' },
    );
    canvases.forEach((canvas) => observer.observe(canvas));
  }

  function initMainCanvases() {
    lazily(Array.from(document.querySelectorAll('#view-main canvas.mean-map')),
      (c) => drawMean(c, c.dataset.means, c.dataset.kind));
    lazily(Array.from(document.querySelectorAll('canvas.image-thumb')),
      (c) => drawImage(c, Number(c.dataset.image), EXEMPLAR));
  }

  // ---------------------------------------------------------------- search by file name

  const SEARCH_LIMIT = 30;
  function initSearch() {
    const input = document.getElementById('search');
    const box = document.getElementById('search-results');
    const lowered = IMAGES.name.map((name) => String(name).toLowerCase());
    function update() {
      const query = input.value.trim().toLowerCase();
      if (!query) {
        box.hidden = true;
        box.replaceChildren();
        return;
      }
      const hits = [];
      let total = 0;
      lowered.forEach((name, index) => {
        if (!name.includes(query)) return;
        total++;
        if (hits.length < SEARCH_LIMIT) hits.push(index);
      });
      const links = hits.map((index) => {
        const link = el('a', { href: '#image/' + index, 'data-testid': 'search-hit', 'data-image': index, title: IMAGES.name[index] },
          IMAGES.name[index]);
        link.addEventListener('click', () => {
          box.hidden = true;
        });
        return link;
      });
      const count = total === 0
        ? 'no image name contains this'
        : total > hits.length ? `${total} images, the first ${hits.length} shown` : `${total} image${total === 1 ? '' : 's'}`;
      box.replaceChildren(el('div', { class: 'search-count', 'data-testid': 'search-count' }, count), ...links);
      box.hidden = false;
    }
    input.addEventListener('input', update);
    input.addEventListener('focus', update);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        const first = box.querySelector('a');
        if (first) {
          location.hash = first.getAttribute('href');
          box.hidden = true;
        }
      } else if (event.key === 'Escape') {
        input.value = '';
        update();
      }
    });
    document.addEventListener('click', (event) => {
      if (!event.target.closest('.search')) box.hidden = true;
    });
  }

  // ---------------------------------------------------------------- histogram bins

  const BIN_LIMIT = 300;
  function initHistograms() {
    const list = document.getElementById('bin-list');
    function show(group) {
      const metric = group.dataset.metric;
      const bin = Number(group.dataset.bin);
      for (const other of document.querySelectorAll('.hist-bin.selected')) other.classList.remove('selected');
      group.classList.add('selected');
      const bins = DATA.bins[metric] || [];
      const members = [];
      bins.forEach((b, index) => {
        if (b === bin) members.push(index);
      });
      members.sort((p, q) => IMAGES[metric][p] - IMAGES[metric][q] || p - q);
      const items = members.slice(0, BIN_LIMIT).map((index) => el('li', null,
        el('a', { href: '#image/' + index, 'data-testid': 'bin-image', 'data-image': index, title: IMAGES.name[index] }, IMAGES.name[index]),
        el('span', { class: 'muted' }, ' ' + fixed(IMAGES[metric][index]))));
      const title = group.querySelector('title').textContent;
      const more = members.length > BIN_LIMIT ? ` (the first ${BIN_LIMIT})` : '';
      list.replaceChildren(
        el('b', null, metric + ' '), title + more,
        members.length ? el('ul', null, ...items) : el('div', { class: 'muted' }, 'no images in this bin'),
      );
      list.hidden = false;
    }
    for (const group of document.querySelectorAll('.hist-bin')) {
      group.addEventListener('click', () => show(group));
      group.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          show(group);
        }
      });
    }
  }

  // ---------------------------------------------------------------- the map over the image

  const overlay = { side: 'a', opacity: 0.65, index: null };
  function drawOverlay() {
    const index = overlay.index;
    if (index === null) return Promise.resolve();
    return bundle(index).then((b) => {
      const canvas = document.getElementById('drill-overlay');
      const zoom = Math.max(1, Math.floor(DRILL / Math.max(W, H)));
      const side = overlay.side;
      const alpha = overlay.opacity;
      const sa = IMAGES.scale_a[index] / STEPS;
      const sb = IMAGES.scale_b[index] / STEPS;
      const limit = Math.max(IMAGES.scale_a[index], IMAGES.scale_b[index]);
      paint(canvas, 0, 0, W, H, zoom, (p, out, o) => {
        let t;
        let tint;
        if (side === 'diff') {
          const d = ((b.maps[4 * p + 1] - ZERO) * sb - (b.maps[4 * p] - ZERO) * sa) / limit;
          t = Math.min(1, Math.abs(d));
          tint = d > 0 ? COLOR.b : COLOR.a;
        } else {
          const code = b.maps[4 * p + (side === 'a' ? 0 : 1)] - ZERO;
          t = Math.min(1, Math.abs(code) / STEPS);
          tint = code >= 0 ? COLOR[side] : COLOR.negative;
        }
        const w = alpha * t;
        for (let k = 0; k < 3; k++) out[o + k] = b.rgba[4 * p + k] * (1 - w) + tint[k] * w;
      });
      canvas.dataset.side = side;
      canvas.dataset.opacity = String(Math.round(100 * alpha));
      canvas.dataset.ready = 'true';
    });
  }

  function initOverlay() {
    for (const radio of document.querySelectorAll('input[name=overlay]')) {
      radio.addEventListener('change', () => {
        if (!radio.checked) return;
        overlay.side = radio.value;
        drawOverlay().catch(fail);
      });
    }
    const slider = document.getElementById('overlay-opacity');
    overlay.opacity = Number(slider.value) / 100;
    slider.addEventListener('input', () => {
      overlay.opacity = Number(slider.value) / 100;
      drawOverlay().catch(fail);
    });
  }

  // ---------------------------------------------------------------- the ranked list

  let listReady = false;
  function markListReady() {
    if (listReady) return;
    listReady = true;
    performance.mark('imacs:clusters-ready');
    document.body.dataset.ready = 'true';
  }

  function initClusterList() {
    for (const row of document.querySelectorAll('[data-testid=cluster-row]')) {
      const open = () => {
        location.hash = '#cluster/' + row.dataset.cluster;
      };
      row.addEventListener('click', (event) => {
        if (!event.target.closest('a')) open();
      });
      row.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') open();
      });
    }
    const canvases = Array.from(document.querySelectorAll('canvas.exemplar'));
    if (!canvases.length) {
      markListReady();
      return;
    }
    lazily(canvases, (c) => drawRegion(c, Number(c.dataset.region), EXEMPLAR), markListReady);
  }

  // ---------------------------------------------------------------- a cluster's regions

  const state = { cluster: null, page: 0, cls: 'all', by: 'all', correct: 'all', sort: 'weight' };
  let renderToken = 0;
  const selects = {
    cls: document.getElementById('filter-class'),
    by: document.getElementById('filter-selected-by'),
    correct: document.getElementById('filter-correct'),
    sort: document.getElementById('sort'),
  };

  function clusterHash() {
    const params = new URLSearchParams();
    if (state.page) params.set('page', String(state.page + 1));
    for (const key of ['cls', 'by', 'correct']) if (state[key] !== 'all') params.set(key, state[key]);
    if (state.sort !== 'weight') params.set('sort', state.sort);
    const query = params.toString();
    return '#cluster/' + state.cluster + (query ? '?' + query : '');
  }

  function passes(row) {
    const index = REGIONS.image[row];
    if (state.cls !== 'all' && String(IMAGES.label[index]) !== state.cls) return false;
    if (state.by !== 'all' && BY[REGIONS.by[row]] !== state.by) return false;
    if (state.correct === 'all') return true;
    const a = IMAGES.correct_a[index];
    const b = IMAGES.correct_b[index];
    if (a === null || b === null) return false;
    switch (state.correct) {
      case 'both-correct': return a && b;
      case 'a-wrong': return !a;
      case 'b-wrong': return !b;
      case 'only-a-wrong': return !a && b;
      case 'only-b-wrong': return a && !b;
      case 'both-wrong': return !a && !b;
      default: return true;
    }
  }

  function ordered(rows) {
    const diff = (row) => REGIONS.mass_b[row] - REGIONS.mass_a[row];
    if (state.sort === 'b-more') return rows.slice().sort((p, q) => diff(q) - diff(p));
    if (state.sort === 'a-more') return rows.slice().sort((p, q) => diff(p) - diff(q));
    if (state.sort === 'image') {
      return rows.slice().sort((p, q) => REGIONS.image[p] - REGIONS.image[q] || REGIONS.region[p] - REGIONS.region[q]);
    }
    return rows;
  }

  function correctness(index) {
    if (IMAGES.correct_a[index] === null && IMAGES.correct_b[index] === null) {
      return el('span', { class: 'muted' }, 'no label');
    }
    return el('span', null, 'A ', mark(IMAGES.correct_a[index]), ' B ', mark(IMAGES.correct_b[index]));
  }

  function tile(row, cluster) {
    const index = REGIONS.image[row];
    const by = REGIONS.by[row];
    const diff = REGIONS.mass_b[row] - REGIONS.mass_a[row];
    const canvas = el('canvas', { width: TILE, height: TILE });
    const node = el(
      'a',
      {
        class: 'tile',
        href: '#image/' + index + '?cluster=' + cluster,
        'data-testid': 'region-tile',
        'data-image': index,
        'data-region': REGIONS.region[row],
        title: IMAGES.name[index],
      },
      canvas,
      el('div', { class: 'tile-name' }, IMAGES.name[index]),
      el('div', { class: 'tile-row' },
        el('span', { class: 'tile-class' }, className(IMAGES.label[index])),
        el('span', { class: 'chip chip-' + BY[by], title: 'selected by ' + BY_TEXT[by] }, BY_TEXT[by])),
      el('div', { class: 'tile-row' },
        correctness(index),
        el('span', { class: diff > 0 ? 'text-b' : 'text-a', title: 'B − A attribution on this region' }, signed(diff, 2))),
    );
    return { node, canvas };
  }

  function pager(container, page, pages, total, shown) {
    const prev = el('button', { type: 'button', 'data-testid': 'page-prev' }, '‹ previous');
    const next = el('button', { type: 'button', 'data-testid': 'page-next' }, 'next ›');
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    prev.addEventListener('click', () => setPage(page - 1));
    next.addEventListener('click', () => setPage(page + 1));
    const first = total ? page * PAGE + 1 : 0;
    container.replaceChildren(
      prev,
      el('span', { 'data-testid': 'page-info' }, `page ${page + 1} of ${pages}`),
      next,
      el('span', { class: 'muted' }, `regions ${first}–${page * PAGE + shown} of ${total}`),
    );
  }

  function setPage(page) {
    state.page = page;
    history.replaceState(null, '', clusterHash());
    renderTiles();
    document.getElementById('view-cluster').scrollIntoView();
  }

  function renderTiles() {
    const view = document.getElementById('view-cluster');
    view.dataset.ready = 'false';
    const cluster = clusterById.get(state.cluster);
    const rows = ordered(cluster.regions.filter(passes));
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const slice = rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
    const tiles = slice.map((row) => tile(row, state.cluster));
    const grid = document.getElementById('tiles');
    if (tiles.length) {
      grid.replaceChildren(...tiles.map((t) => t.node));
    } else {
      grid.replaceChildren(el('p', { class: 'no-tiles' }, 'No region of this cluster passes these filters.'));
    }
    pager(document.getElementById('pager-top'), state.page, pages, rows.length, slice.length);
    pager(document.getElementById('pager-bottom'), state.page, pages, rows.length, slice.length);
    const token = ++renderToken;
    Promise.all(slice.map((row, k) => drawRegion(tiles[k].canvas, row, TILE)))
      .catch(fail)
      .finally(() => {
        if (token === renderToken) view.dataset.ready = 'true';
      });
  }

  function bar(cluster, width) {
    const ns = 'http://www.w3.org/2000/svg';
    const limit = Math.max(...CLUSTERS.flatMap((c) => [c.difference, c.ci_low, c.ci_high])
      .filter((v) => v !== null).map(Math.abs), 1e-12);
    const centre = width / 2;
    const x = (v) => centre + Math.max(-1, Math.min(1, v / limit)) * (width / 2 - 6);
    const svg = document.createElementNS(ns, 'svg');
    const make = (tag, attrs) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
      svg.append(node);
      return node;
    };
    svg.setAttribute('class', 'diverging');
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', '24');
    svg.setAttribute('viewBox', `0 0 ${width} 24`);
    make('line', { class: 'axis', x1: centre, x2: centre, y1: 1, y2: 23 });
    if (cluster.difference !== null) {
      const end = x(cluster.difference);
      make('rect', {
        class: cluster.difference > 0 ? 'fill-b' : 'fill-a',
        x: Math.min(centre, end), y: 6, width: Math.max(1, Math.abs(end - centre)), height: 12,
      });
    }
    if (cluster.ci_low !== null && cluster.ci_high !== null) {
      const lo = x(cluster.ci_low);
      const hi = x(cluster.ci_high);
      make('line', { class: 'ci', x1: lo, x2: hi, y1: 12, y2: 12 });
      make('line', { class: 'ci', x1: lo, x2: lo, y1: 8, y2: 16 });
      make('line', { class: 'ci', x1: hi, x2: hi, y1: 8, y2: 16 });
    }
    return svg;
  }

  function fact(label, ...value) {
    return el('span', { class: 'fact' }, label + ' ', el('b', null, ...value));
  }

  function fillClassFilter(cluster) {
    const counts = new Map();
    for (const row of cluster.regions) {
      const label = IMAGES.label[REGIONS.image[row]];
      counts.set(label, (counts.get(label) || 0) + 1);
    }
    const options = [el('option', { value: 'all' }, `all classes (${cluster.regions.length})`)];
    const labels = Array.from(counts.keys()).sort((p, q) => counts.get(q) - counts.get(p) || p - q);
    for (const label of labels) {
      options.push(el('option', { value: String(label) }, `${className(label)} (${counts.get(label)})`));
    }
    selects.cls.replaceChildren(...options);
  }

  function showCluster(id, params) {
    const cluster = clusterById.get(id);
    if (!cluster) {
      showMissing(`There is no cluster ${id} in this report.`);
      return;
    }
    if (state.cluster !== id) fillClassFilter(cluster);
    state.cluster = id;
    state.page = Math.max(0, (parseInt(params.get('page') || '1', 10) || 1) - 1);
    state.cls = params.get('cls') || 'all';
    state.by = params.get('by') || 'all';
    state.correct = params.get('correct') || 'all';
    state.sort = params.get('sort') || 'weight';
    for (const key of Object.keys(selects)) {
      selects[key].value = state[key];
      if (selects[key].value !== state[key]) {
        state[key] = key === 'sort' ? 'weight' : 'all';
        selects[key].value = state[key];
      }
    }
    const title = document.getElementById('cluster-title');
    put(title,
      el('span', { 'data-testid': 'cluster-title-name' }, cluster.name),
      el('span', { class: 'muted' }, ` · cluster ${id} · rank ${cluster.rank} of ${CLUSTERS.length}`),
      cluster.meaningful ? el('span', { class: 'star', title: 'significant and meaningful' }, ' ★') : null,
    );
    const confidence = +(100 * (META.confidence || 0.95)).toPrecision(4);
    put(document.getElementById('cluster-summary'),
      el('span', { class: 'fact' }, bar(cluster, 240)),
      fact('B − A', signed(cluster.difference)),
      fact(`${confidence}% CI (FCR-adjusted)`, `[${signed(cluster.ci_low)}, ${signed(cluster.ci_high)}]`),
      fact('q', qText(cluster.q_value)),
      cluster.causal_images
        ? fact('hiding the regions', `drops A's target probability by ${signed(cluster.causal_drop_a)}, ` +
          `B's by ${signed(cluster.causal_drop_b)} (${cluster.causal_images} images)`)
        : fact('hiding the regions', 'not checked (only the top clusters are)'),
      fact('mean A', fixed(cluster.mean_a)),
      fact('mean B', fixed(cluster.mean_b)),
      fact('regions', `${cluster.n_regions} in ${cluster.n_images} images`),
      fact('selected by', `A ${cluster.selected_a} · B ${cluster.selected_b} · both ${cluster.selected_both}`),
      fact('accuracy', `A ${percent(cluster.accuracy_a)} · B ${percent(cluster.accuracy_b)}`),
      cluster.note ? el('span', { class: 'fact muted' }, cluster.note) : null,
    );
    setWhere(`${cluster.name} · rank ${cluster.rank}`);
    showClusterMeans(id);
    renderTiles();
  }

  function showClusterMeans(id) {
    const key = 'cluster:' + id;
    const info = (DATA.means || {})[key];
    const box = document.querySelector('[data-testid=cluster-means]');
    box.hidden = !info;
    if (!info) return;
    document.getElementById('cluster-means-note').textContent =
      `Mean maps over the ${info.n} images that hold this cluster's regions, A, B and B − A ` +
      'on one scale, and in how many of them each pixel lies in one of the regions (darker: more).';
    box.dataset.ready = 'false';
    const jobs = ['a', 'b', 'diff', 'where'].map((kind) =>
      drawMean(document.getElementById('cluster-mean-' + kind), key, kind));
    Promise.all(jobs).catch(fail).finally(() => {
      box.dataset.ready = 'true';
    });
  }

  for (const key of Object.keys(selects)) {
    selects[key].addEventListener('change', () => {
      state[key] = selects[key].value;
      state.page = 0;
      history.replaceState(null, '', clusterHash());
      renderTiles();
    });
  }

  // ---------------------------------------------------------------- one image

  function row(label, ...cells) {
    return el('tr', null, el('th', null, label), ...cells.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : el('td', null, c))));
  }

  function showImage(index, params) {
    if (!(index >= 0 && index < IMAGES.name.length)) {
      showMissing(`There is no image ${index} in this report.`);
      return;
    }
    const from = params.get('cluster');
    const crumbs = [el('a', { href: '#clusters' }, '← all clusters')];
    if (from !== null && clusterById.has(Number(from))) {
      crumbs.push(' · ', el('a', { href: '#cluster/' + from }, `← ${clusterById.get(Number(from)).name}`));
    }
    document.getElementById('image-crumbs').replaceChildren(...crumbs);
    document.getElementById('image-title').replaceChildren(
      'Image ',
      el('span', { 'data-testid': 'image-name' }, IMAGES.name[index]),
      el('span', { class: 'muted' }, ` · #${index}`),
    );
    const header = el('tr', null, el('th', null, ''),
      el('th', null, el('span', { class: 'chip chip-a' }, 'A'), ' ', NAMES.a),
      el('th', null, el('span', { class: 'chip chip-b' }, 'B'), ' ', NAMES.b));
    document.getElementById('image-facts').replaceChildren(
      row('label', el('td', { colspan: 2, 'data-testid': 'image-label' }, className(IMAGES.label[index]))),
      header,
      row('prediction',
        el('td', null, className(IMAGES.pred_a[index]), ' ', mark(IMAGES.correct_a[index])),
        el('td', null, className(IMAGES.pred_b[index]), ' ', mark(IMAGES.correct_b[index]))),
      row('class explained', className(IMAGES.target_a[index]), className(IMAGES.target_b[index])),
      row('its probability', fixed(IMAGES.probability_a[index]), fixed(IMAGES.probability_b[index])),
      row('same prediction', el('td', { colspan: 2 }, IMAGES.agree[index] ? 'yes' : 'no')),
    );
    const metrics = [el('tr', null, el('th', null, 'map agreement'), el('th', null, ''))];
    for (const name of META.metrics) metrics.push(row(name, el('td', { class: 'num' }, fixed(IMAGES[name][index]))));
    metrics.push(row('regions', el('td', { class: 'num' }, String(IMAGES.n_regions[index]))));
    metrics.push(row('salient regions', el('td', { class: 'num' }, String(IMAGES.n_selected[index]))));
    document.getElementById('image-metrics').replaceChildren(...metrics);

    const rows = imageRegions(index)
      .slice()
      .sort((p, q) => (clusterById.get(REGIONS.cluster[p]) || {}).rank - (clusterById.get(REGIONS.cluster[q]) || {}).rank);
    const table = document.getElementById('image-regions');
    const head = el('tr', null, ...['region', 'cluster', 'selected by', 'area', 'mass A', 'mass B', 'B − A']
      .map((h) => el('th', null, h)));
    const body = rows.map((r) => {
      const cluster = clusterById.get(REGIONS.cluster[r]);
      const diff = REGIONS.mass_b[r] - REGIONS.mass_a[r];
      const tr = el('tr', { 'data-region': REGIONS.region[r] },
        el('td', { class: 'num' }, String(REGIONS.region[r])),
        el('td', null, el('a', { href: '#cluster/' + REGIONS.cluster[r] }, cluster ? cluster.name : `cluster ${REGIONS.cluster[r]}`),
          cluster ? el('span', { class: 'muted' }, ` (cluster ${cluster.cluster}, rank ${cluster.rank})`) : null),
        el('td', null, el('span', { class: 'chip chip-' + BY[REGIONS.by[r]] }, BY_TEXT[REGIONS.by[r]])),
        el('td', { class: 'num' }, String(REGIONS.area[r])),
        el('td', { class: 'num' }, fixed(REGIONS.mass_a[r])),
        el('td', { class: 'num' }, fixed(REGIONS.mass_b[r])),
        el('td', { class: 'num ' + (diff > 0 ? 'text-b' : 'text-a') }, signed(diff)),
      );
      tr.addEventListener('mouseenter', () => {
        tr.classList.add('highlight');
        drawDrill(index, r).catch(fail);
      });
      tr.addEventListener('mouseleave', () => {
        tr.classList.remove('highlight');
        drawDrill(index, null).catch(fail);
      });
      return tr;
    });
    table.replaceChildren(head, ...(body.length ? body : [el('tr', null, el('td', { colspan: 7 }, 'none'))]));

    const view = document.getElementById('view-image');
    view.dataset.ready = 'false';
    for (const canvas of view.querySelectorAll('canvas')) canvas.dataset.ready = 'false';
    overlay.index = index;
    Promise.all([drawDrill(index, null), drawOverlay()])
      .catch(fail)
      .finally(() => {
        view.dataset.ready = 'true';
      });
    setWhere(`Image ${IMAGES.name[index]}`);
  }

  // ---------------------------------------------------------------- views by URL hash

  const views = {
    main: document.getElementById('view-main'),
    cluster: document.getElementById('view-cluster'),
    image: document.getElementById('view-image'),
  };
  let current = 'main';
  let mainScroll = 0;

  function setView(name) {
    if (current === 'main' && name !== 'main') mainScroll = window.scrollY;
    for (const [key, node] of Object.entries(views)) node.hidden = key !== name;
    current = name;
  }

  function setWhere(text) {
    document.getElementById('nav-where').textContent = text ? '› ' + text : '';
  }

  function showMissing(message) {
    setView('main');
    setWhere('');
    fail(message);
  }

  function route() {
    const hash = location.hash.slice(1);
    const cut = hash.indexOf('?');
    const path = cut < 0 ? hash : hash.slice(0, cut);
    const params = new URLSearchParams(cut < 0 ? '' : hash.slice(cut + 1));
    let match = /^cluster\/(-?\d+)$/.exec(path);
    if (match) {
      setView('cluster');
      showCluster(Number(match[1]), params);
      window.scrollTo(0, 0);
      return;
    }
    match = /^image\/(\d+)$/.exec(path);
    if (match) {
      setView('image');
      showImage(Number(match[1]), params);
      window.scrollTo(0, 0);
      return;
    }
    const wasMain = current === 'main';
    setView('main');
    setWhere('');
    const target = path ? document.getElementById(path) : null;
    if (!wasMain && mainScroll > 0 && (path === '' || path === 'clusters')) {
      window.scrollTo(0, mainScroll);  // back from a cluster or an image: where the reader was
    } else if (target && views.main.contains(target)) {
      target.scrollIntoView();
    } else if (!wasMain) {
      window.scrollTo(0, 0);
    }
  }

  window.addEventListener('hashchange', route);
  initSearch();
  initHistograms();
  initOverlay();
  initMainCanvases();
  initClusterList();
  route();
})();
