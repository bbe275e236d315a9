// The chart of events per minute by type over the last hour: counts kept per minute
// and type, drawn as stacked bars in inline SVG. readLastHour fills it from the log
// (GET /api/events) when the page loads; from then on app.js adds each event of the
// stream as it arrives.

import { h, clock, eventWord } from './board.js';

const SVG = 'http://www.w3.org/2000/svg';
const MINUTE = 60000;
const WINDOW = 60; // minutes shown
const COLORS = 10; // series colours in app.css, --series-0 … --series-9

/** minuteOf is the minute (since the epoch) of an RFC 3339 time, or NaN. */
function minuteOf(iso) {
  return Math.floor(Date.parse(iso) / MINUTE);
}

/**
 * EventChart counts events per minute and type. types are the vocabulary's event
 * types: their order is the order of the stack and of the legend, and gives each its
 * colour. A type the vocabulary lacks joins at the end.
 */
export class EventChart {
  constructor(types) {
    this.types = [...types];
    this.counts = new Map(); // minute → Map type → count
    this.wholeFrom = 0; // the counts are whole from this time (ms); 0: the whole hour
  }

  /** reset forgets every count, for a new fill. */
  reset() {
    this.counts.clear();
    this.wholeFrom = 0;
  }

  /**
   * add counts events in their minutes. An event stamped after now (a server clock
   * ahead of this one) counts in the current minute; one older than the hour is left
   * out. Each event must be added once: app.js adds the fill's (up to the seq the
   * stream starts after) and the stream's (after it), which never overlap.
   */
  add(events, now) {
    const current = Math.floor(now / MINUTE);
    for (const ev of events) {
      const m = Math.min(minuteOf(ev.time), current);
      if (!(m > current - WINDOW)) continue;
      if (!this.types.includes(ev.type)) this.types.push(ev.type);
      if (!this.counts.has(m)) this.counts.set(m, new Map());
      const byType = this.counts.get(m);
      byType.set(ev.type, (byType.get(ev.type) || 0) + 1);
    }
  }

  /** minutes returns the last hour's minutes at now, oldest first, with their counts. */
  minutes(now) {
    const current = Math.floor(now / MINUTE);
    for (const m of this.counts.keys()) if (m <= current - WINDOW) this.counts.delete(m);
    const out = [];
    for (let m = current - WINDOW + 1; m <= current; m++) out.push({ minute: m, byType: this.counts.get(m) || new Map() });
    return out;
  }
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** niceMax is the smallest of 1, 2, 5, 10, 20, 50, … that is at least n. */
function niceMax(n) {
  let step = 1;
  for (;;) {
    for (const k of [1, 2, 5]) if (k * step >= n) return k * step;
    step *= 10;
  }
}

/**
 * renderChart draws chart at now: the SVG of stacked bars (one group per minute with
 * counts, one rect.bar per type in it, with data-type and data-count), the scale, the
 * time axis and a legend with each type's total in the hour.
 */
export function renderChart(chart, now) {
  const minutes = chart.minutes(now);
  const totals = new Map();
  let peak = 0;
  let busiest = null;
  for (const m of minutes) {
    let sum = 0;
    for (const [type, n] of m.byType) {
      totals.set(type, (totals.get(type) || 0) + n);
      sum += n;
    }
    m.total = sum;
    if (sum > peak) {
      peak = sum;
      busiest = m;
    }
  }
  const all = [...totals.values()].reduce((a, b) => a + b, 0);
  const top = niceMax(Math.max(peak, 1));
  const width = WINDOW * 10;
  const height = 100;
  const plot = svg(
    'svg',
    { id: 'chart', class: 'chart-svg', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `Events per minute over the last hour: ${all} in all${busiest ? `, at most ${peak} at ${clock(new Date(busiest.minute * MINUTE).toISOString())}` : ''}` },
    ...[0, 0.5, 1].map((f) => svg('line', { class: 'grid', x1: 0, x2: width, y1: height - f * height, y2: height - f * height, 'vector-effect': 'non-scaling-stroke' })),
  );
  minutes.forEach((m, i) => {
    if (!m.total) return;
    const at = new Date(m.minute * MINUTE).toISOString();
    const parts = chart.types.filter((type) => m.byType.get(type)).map((type) => `${m.byType.get(type)} ${eventWord(type)}`);
    const g = svg('g', { class: 'minute', 'data-minute': at, 'data-total': m.total }, svg('title', {}, `${clock(at)}: ${parts.join(', ')}`));
    let y = height;
    chart.types.forEach((type, k) => {
      const n = m.byType.get(type);
      if (!n) return;
      const barHeight = (n / top) * height;
      y -= barHeight;
      g.append(svg('rect', { class: `bar series-${k % COLORS}`, x: i * 10 + 1, y, width: 8, height: barHeight, 'data-type': type, 'data-count': n }));
    });
    plot.append(g);
  });
  return [
    h('div', { class: 'chart-plot' }, h('span', { class: 'chart-top', 'aria-hidden': 'true' }, String(top)), h('span', { class: 'chart-mid', 'aria-hidden': 'true' }, top >= 2 ? String(top / 2) : ''), plot),
    h('div', { class: 'chart-axis', 'aria-hidden': 'true' }, ['−60 min', '−45', '−30', '−15', 'now'].map((s) => h('span', {}, s))),
    h(
      'ul',
      { class: 'legend', 'aria-label': 'Events in the last hour, by type' },
      chart.types.map((type, k) =>
        h('li', { dataset: { type, count: totals.get(type) || 0 } }, h('span', { class: `swatch series-${k % COLORS}`, 'aria-hidden': 'true' }), `${eventWord(type)} `, h('span', { class: 'n' }, String(totals.get(type) || 0))),
      ),
    ),
    h(
      'p',
      { class: 'meta-line' },
      `${all} ${all === 1 ? 'event' : 'events'} in the last hour`,
      chart.wholeFrom ? `; the log was read back to ${clock(new Date(chart.wholeFrom).toISOString())} only, so the minutes before count nothing` : '',
      '.',
    ),
  ];
}

/**
 * readLastHour reads from the log the events of the hour before now, up to lastSeq
 * (where the page's stream starts), keeping those keep accepts. It reads backwards from
 * lastSeq in pages of pageSize seqs (the server's largest limit), at most maxPages of
 * them, so its cost is bounded however busy the hour was; it stops once it reaches an
 * event older than the hour or the log's first retained event. It resolves to the
 * events, oldest first, and the time from which they are whole: 0 when the whole hour
 * was read, else the oldest event's.
 */
export async function readLastHour(api, { lastSeq, now, pageSize, maxPages, keep }) {
  const since = now - WINDOW * MINUTE;
  const first = await api('GET', '/api/events?after=0&limit=1');
  const firstSeq = first.events.length ? first.events[0].seq : lastSeq + 1;
  const chunks = [];
  let hi = lastSeq;
  let whole = hi < firstSeq;
  for (let pages = 0; !whole && pages < maxPages; pages++) {
    // (lo, hi] holds at most pageSize seqs, so one page of pageSize events covers it.
    const lo = Math.max(firstSeq - 1, hi - pageSize);
    const page = await api('GET', `/api/events?after=${lo}&limit=${pageSize}`);
    const chunk = page.events.filter((e) => e.seq <= hi);
    chunks.unshift(chunk);
    hi = lo;
    whole = hi < firstSeq || (chunk.length > 0 && Date.parse(chunk[0].time) < since);
  }
  const events = chunks.flat();
  return {
    events: events.filter((e) => Date.parse(e.time) >= since && keep(e)),
    wholeFrom: whole ? 0 : events.length ? Date.parse(events[0].time) : now,
  };
}
