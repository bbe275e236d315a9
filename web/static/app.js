// The dashboard: a board kept live by the event stream.
//
// What it shows comes from the server: the statuses (the columns, in order), the
// priorities (lowest first: the order of a column and of the priority selects), the
// event types and the form's limits are GET /api/vocabulary's, read once before the
// first load. board.js keeps only the words shown for them.
//
// How it stays right: load() first asks where the event log ends (last_seq), then lists
// the tasks, then opens the stream from that seq, so every change after the snapshot
// arrives, some perhaps twice in effect (already in the snapshot). Each event is applied
// by task id only when it carries a later state than the card (see newer), and each seq
// is applied once, so nothing doubles; the browser's own reconnects send Last-Event-ID,
// which the server replays from. A reset event (history pruned) reloads everything.
//
// Besides the board: the Agents panel (the claims among the board's tasks, and the
// newest event time seen per actor), the chart of events per minute (the log's last
// hour up to the snapshot's seq, then every event of the stream) and the notes thread
// of the task in the editor (its pages, then its task_note_added events). A clock
// counts the leases down and ages the times, each half second, with no request.

import { api, APIError, token, setToken } from './api.js';
import { h, statusLabel, priorityLabel, taskOrder, matchesText, renderCard, renderColumn, renderActivity, renderLease, renderProgress, leaseLeft, leaseState } from './board.js';
import { holders, renderAgents, ago } from './agents.js';
import { EventChart, renderChart, readLastHour } from './chart.js';
import { NotesThread } from './notes.js';

const MAX_SEQ = '9223372036854775807';
const FEED_SIZE = 100;
const DEBUG_EVERY = 3000;
const SERVER_FILTERS = ['project', 'assignee', 'label'];
const CLOCK_EVERY = 500;
const CHART_PAGES = 10; // of events_limit events each: how far back the chart reads the log

const $ = (sel) => document.querySelector(sel);

const state = {
  vocab: null, // GET /api/vocabulary, once it was read
  order: null, // how a column is sorted: taskOrder(vocab.priorities)
  tasks: new Map(), // id → task, those matching the server-side filters
  gone: new Set(), // ids deleted since the snapshot: a late event must not bring them back
  cards: new Map(), // id → card element
  lastSeq: 0, // the last event applied (or the snapshot's position)
  filters: { project: '', assignee: '', label: '', q: '' },
  es: null,
  gen: 0, // bumped by every load(), so a stale one drops its result
  retry: { timer: 0, delay: 1000 },
  editing: null, // the task the editor was opened on
  debugTimer: 0,
  chart: null, // EventChart, once the vocabulary was read
  chartNote: '', // why the chart could not read the log, if it could not
  seen: new Map(), // actor → the newest time of its events seen
  notes: null, // NotesThread of the editor
  drawQueued: false,
  chartMinute: 0, // the minute the chart was last drawn in
};

// ---- Connection state ----------------------------------------------------------------

const connWords = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline' };

function setConn(s) {
  const el = $('#conn');
  if (el.dataset.state === s) return;
  el.dataset.state = s;
  el.querySelector('.conn-text').textContent = connWords[s];
}

// ---- Messages ------------------------------------------------------------------------

function notify(text, kind = 'info') {
  const box = $('#messages');
  const close = h('button', { type: 'button', class: 'icon', 'aria-label': 'Dismiss' }, '×');
  const msg = h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('span', {}, text), close);
  close.addEventListener('click', () => msg.remove());
  box.prepend(msg);
  while (box.children.length > 4) box.lastElementChild.remove();
  setTimeout(() => msg.remove(), kind === 'error' ? 12000 : 5000);
}

function describe(err) {
  if (err instanceof APIError) return err.message;
  return 'the server cannot be reached';
}

// ---- Loading and the stream ----------------------------------------------------------

function serverQuery() {
  const q = new URLSearchParams();
  for (const k of SERVER_FILTERS) if (state.filters[k]) q.set(k, state.filters[k]);
  return q;
}

function matchesServer(t) {
  const f = state.filters;
  return (!f.project || t.project === f.project) && (!f.assignee || t.assignee === f.assignee) && (!f.label || (t.labels || []).includes(f.label));
}

/** load fetches the whole state and (re)opens the stream right after it. */
async function load() {
  const gen = ++state.gen;
  closeStream();
  clearTimeout(state.retry.timer);
  setConn('connecting');
  $('#board').setAttribute('aria-busy', 'true');
  try {
    if (!state.vocab) useVocabulary(await api('GET', '/api/vocabulary'));
    const { last_seq: lastSeq } = await api('GET', `/api/events?after=${MAX_SEQ}&limit=1`);
    const list = [];
    let cursor = '';
    do {
      const q = serverQuery();
      q.set('limit', String(state.vocab.limits.list_limit));
      if (cursor) q.set('cursor', cursor);
      const page = await api('GET', `/api/tasks?${q}`);
      list.push(...page.tasks);
      cursor = page.next_cursor || '';
    } while (cursor);
    if (gen !== state.gen) return;
    state.tasks = new Map(list.map((t) => [t.id, t]));
    state.gone.clear();
    state.lastSeq = lastSeq;
    state.chart.reset();
    renderBoard();
    openStream();
    fillChart(gen, lastSeq);
  } catch (err) {
    if (gen !== state.gen) return;
    if (err instanceof APIError && err.status === 401) {
      askToken();
      return;
    }
    setConn('offline');
    notify(`Could not load the tasks: ${describe(err)}. Trying again…`, 'error');
    retryLater();
  } finally {
    if (gen === state.gen) $('#board').setAttribute('aria-busy', 'false');
  }
}

function retryLater() {
  clearTimeout(state.retry.timer);
  state.retry.timer = setTimeout(load, state.retry.delay);
  state.retry.delay = Math.min(state.retry.delay * 2, 30000);
}

function closeStream() {
  if (state.es) state.es.close();
  state.es = null;
}

function openStream() {
  const q = serverQuery();
  q.set('batch', '250ms');
  q.set('last_event_id', String(state.lastSeq));
  if (token()) q.set('access_token', token());
  const es = new EventSource(`/events/stream?${q}`);
  state.es = es;
  es.addEventListener('open', () => {
    if (state.es !== es) return;
    state.retry.delay = 1000;
    setConn('live');
  });
  es.addEventListener('error', () => {
    if (state.es !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // Refused (an HTTP error, not a dropped connection): the browser gives up, we don't.
      closeStream();
      setConn('offline');
      retryLater();
    } else {
      // The browser reconnects by itself, with Last-Event-ID.
      setConn(navigator.onLine ? 'reconnecting' : 'offline');
    }
  });
  const on = (events) => {
    if (state.es === es) applyEvents(events);
  };
  es.addEventListener('batch_update', (m) => on(JSON.parse(m.data).events || []));
  for (const type of state.vocab.event_types) es.addEventListener(type, (m) => on([JSON.parse(m.data)]));
  es.addEventListener('reset', () => {
    if (state.es !== es) return;
    notify('Some history was pruned on the server: the board was reloaded.');
    load();
  });
}

/**
 * useVocabulary takes the server's vocabulary: the selects get its statuses and
 * priorities as options, in its order, and the text fields its limits. The board is
 * drawn from it by renderBoard.
 */
function useVocabulary(v) {
  state.vocab = v;
  state.order = taskOrder(v.priorities);
  state.chart = new EventChart(v.event_types);
  const options = (values, words) => values.map((x) => h('option', { value: x }, words(x)));
  // No priority is chosen for a new task until the user picks one: the server's default.
  $('#n-priority').replaceChildren(h('option', { value: '' }, 'Default'), ...options(v.priorities, priorityLabel));
  $('#e-priority').replaceChildren(...options(v.priorities, priorityLabel));
  $('#e-status').replaceChildren(...options(v.statuses, statusLabel));
  const max = v.limits;
  for (const [sel, n] of [
    ['#n-title, #e-title', max.title],
    ['#n-assignee, #e-assignee', max.assignee],
    ['#n-project, #e-project', max.project],
  ]) {
    for (const el of document.querySelectorAll(sel)) el.maxLength = n;
  }
  for (const el of document.querySelectorAll('#n-labels, #e-labels')) el.title = `Up to ${max.labels} labels of up to ${max.label} characters, comma separated`;
  $('#e-depends').title = `Up to ${max.depends_on} task ids`;
  $('#note-text').maxLength = max.note_text;
}

/**
 * matchesServerEvent says whether the stream, under the board's filters, sends ev: an
 * event with a task whose value, after the change or before it (its changes), is the
 * filter's, for each filter given. GET /api/events does not filter, so the chart's fill
 * keeps only these, to count what the stream would have sent.
 */
function matchesServerEvent(ev) {
  const f = state.filters;
  if (!SERVER_FILTERS.some((k) => f[k])) return true;
  const t = ev.task;
  if (!t) return false;
  const before = (k) => ev.changes?.[k]?.[0];
  return (
    (!f.project || t.project === f.project || before('project') === f.project) &&
    (!f.assignee || t.assignee === f.assignee || before('assignee') === f.assignee) &&
    (!f.label || (t.labels || []).includes(f.label) || (before('labels') || []).includes(f.label))
  );
}

/**
 * fillChart counts the log's last hour up to lastSeq (the snapshot's seq, after which
 * the stream counts) into the chart and the actors' last activity.
 */
async function fillChart(gen, lastSeq) {
  state.chartNote = '';
  try {
    const now = Date.now();
    const { events, wholeFrom } = await readLastHour(api, { lastSeq, now, pageSize: state.vocab.limits.events_limit, maxPages: CHART_PAGES, keep: matchesServerEvent });
    if (gen !== state.gen) return;
    state.chart.add(events, Date.now());
    state.chart.wholeFrom = wholeFrom;
    see(events);
  } catch (err) {
    if (gen !== state.gen) return;
    state.chartNote = `Could not read the log's last hour: ${describe(err)}. Counting from now.`;
  }
  drawSoon();
}

/** see keeps the newest time of each actor's events. */
function see(events) {
  for (const ev of events) {
    if (ev.actor && ev.time > (state.seen.get(ev.actor) || '')) state.seen.set(ev.actor, ev.time);
  }
}

// ---- Applying changes ----------------------------------------------------------------

/** applyEvents applies stream events in order, each seq once, then redraws what changed. */
function applyEvents(events) {
  const dirty = new Set();
  const fresh = [];
  for (const ev of events) {
    if (ev.seq <= state.lastSeq) continue;
    state.lastSeq = ev.seq;
    fresh.push(ev);
    if (ev.type === 'task_note_added' && ev.note) state.notes.live(ev.note);
    if (!ev.task_id || !ev.task) continue;
    if (ev.type === 'task_deleted') {
      state.gone.add(ev.task_id);
      if (state.tasks.delete(ev.task_id)) dirty.add(ev.task_id);
    } else {
      upsert(ev.task, dirty);
    }
  }
  redraw(dirty);
  addActivity(fresh);
  state.chart.add(fresh, Date.now());
  see(fresh);
  drawSoon();
  noteEditorChange();
}

/**
 * newer says whether t is a later state of its task than cur. Every change is a new
 * version, but for a lease's renewal (task_lease_renewed), which moves only
 * lease_expires_at, and only forward; a note (task_note_added) carries the task as it
 * is. So within a version the later lease is the later state. The server writes every
 * time with six fractional digits in UTC, so times compare as text.
 */
function newer(t, cur) {
  if (t.version !== cur.version) return t.version > cur.version;
  return (t.lease_expires_at || '') > (cur.lease_expires_at || '');
}

/**
 * upsert takes a task's new state (from an event or a REST answer) unless the board
 * already has that state or a later one; force takes it anyway (a fresh GET).
 */
function upsert(t, dirty, force = false) {
  if (state.gone.has(t.id)) return;
  const cur = state.tasks.get(t.id);
  if (cur && !force && !newer(t, cur)) return;
  if (!matchesServer(t)) {
    // It left the filtered view (the stream also sends the change that makes it leave).
    if (state.tasks.delete(t.id)) dirty.add(t.id);
    return;
  }
  state.tasks.set(t.id, t);
  dirty.add(t.id);
}

function forget(id, dirty) {
  state.gone.add(id);
  if (state.tasks.delete(id)) dirty.add(id);
}

// ---- Drawing -------------------------------------------------------------------------

function columnOf(status) {
  return $(`#board [data-column="${status}"] .cards`);
}

function renderBoard() {
  const board = $('#board');
  const { statuses } = state.vocab;
  board.replaceChildren(...statuses.map(renderColumn));
  state.cards.clear();
  const sorted = [...state.tasks.values()].sort(state.order);
  const byStatus = new Map(statuses.map((s) => [s, document.createDocumentFragment()]));
  for (const t of sorted) {
    const card = decorate(renderCard(t, state.tasks, statuses, Date.now()), t);
    state.cards.set(t.id, card);
    byStatus.get(t.status)?.append(card);
  }
  for (const [s, frag] of byStatus) columnOf(s).append(frag);
  updateCounts();
  updateSuggestions();
  drawSoon();
}

function decorate(card, t) {
  card.hidden = !matchesText(t, state.filters.q.toLowerCase());
  return card;
}

/** redraw replaces the cards of the changed tasks, and of the tasks that depend on them. */
function redraw(dirty) {
  if (!dirty.size || !state.vocab) return; // without the vocabulary there is no board yet
  for (const t of state.tasks.values()) {
    if ((t.depends_on || []).some((d) => dirty.has(d))) dirty.add(t.id);
  }
  for (const id of dirty) {
    const old = state.cards.get(id);
    const t = state.tasks.get(id);
    // Keep the keyboard where it was: focus follows the card.
    const active = document.activeElement;
    const focused = old && old.contains(active) ? (active.dataset.dir ? `[data-dir="${active.dataset.dir}"]` : '[data-action="edit"]') : null;
    if (old) old.remove();
    state.cards.delete(id);
    if (!t) continue;
    const card = decorate(renderCard(t, state.tasks, state.vocab.statuses, Date.now()), t);
    // A new version flashes; a renewed lease only shows its new time.
    if (!old || old.dataset.version !== String(t.version)) card.classList.add('fresh');
    state.cards.set(id, card);
    const col = columnOf(t.status);
    if (!col) continue;
    const before = [...col.children].find((c) => state.order(state.tasks.get(Number(c.dataset.taskId)) || t, t) > 0);
    col.insertBefore(card, before || null);
    if (focused) (card.querySelector(focused) || card.querySelector('[data-action="edit"]')).focus();
  }
  updateCounts();
  updateSuggestions();
  drawSoon();
}

/**
 * drawSoon draws the Agents panel and the chart once the current task is done: a batch
 * of events, with its redraw, draws them once.
 */
function drawSoon() {
  if (state.drawQueued) return;
  state.drawQueued = true;
  queueMicrotask(() => {
    state.drawQueued = false;
    drawAgents();
    drawChart();
  });
}

function drawAgents() {
  const box = $('#agents');
  const list = holders(state.tasks);
  // Keep the keyboard on the task it was on.
  const focused = box.contains(document.activeElement) ? document.activeElement.closest('[data-task-id]')?.dataset.taskId : null;
  box.replaceChildren(...renderAgents(list, state.seen, Date.now()));
  if (focused) box.querySelector(`[data-task-id="${focused}"] [data-action="edit"]`)?.focus();
  $('#agents-empty').hidden = list.length > 0;
}

function drawChart() {
  if (!state.chart) return;
  const now = Date.now();
  state.chartMinute = Math.floor(now / 60000);
  $('#chart-box').replaceChildren(...renderChart(state.chart, now), state.chartNote ? h('p', { class: 'alert' }, state.chartNote) : '');
}

/**
 * tick is the page's clock: every lease on the page counts down from its
 * data-expires, every time ago from its data-since, and the chart moves on at each
 * new minute. It only changes text; the server's events change the rest.
 */
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.lease[data-expires]')) {
    el.dataset.state = leaseState(el.dataset.expires, now);
    el.querySelector('.lease-left').textContent = leaseLeft(el.dataset.expires, now);
  }
  for (const el of document.querySelectorAll('[data-since]')) el.textContent = ago(el.dataset.since, now);
  if (state.chart && Math.floor(now / 60000) !== state.chartMinute) drawChart();
}

function updateCounts() {
  for (const col of document.querySelectorAll('#board .column')) {
    const cards = col.querySelectorAll('.card');
    const shown = [...cards].filter((c) => !c.hidden).length;
    col.querySelector('.count').textContent = shown === cards.length ? String(cards.length) : `${shown}/${cards.length}`;
    col.classList.toggle('is-empty', shown === 0);
  }
}

let suggestTimer = 0;
function updateSuggestions() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(() => {
    const sets = { projects: new Set(), assignees: new Set(), labels: new Set() };
    for (const t of state.tasks.values()) {
      if (t.project) sets.projects.add(t.project);
      if (t.assignee) sets.assignees.add(t.assignee);
      for (const l of t.labels || []) sets.labels.add(l);
    }
    for (const [id, set] of Object.entries(sets)) {
      $(`#${id}`).replaceChildren(...[...set].sort().slice(0, 200).map((v) => h('option', { value: v })));
    }
  }, 300);
}

function addActivity(events) {
  if (!events.length) return;
  const list = $('#activity');
  const items = events.slice(-FEED_SIZE).reverse().map(renderActivity);
  list.prepend(...items);
  while (list.children.length > FEED_SIZE) list.lastElementChild.remove();
  $('#activity-empty').hidden = true;
}

// ---- Filters -------------------------------------------------------------------------

function readFilters() {
  const form = $('#filters');
  const f = {};
  for (const k of [...SERVER_FILTERS, 'q']) f[k] = form.elements[k].value.trim();
  return f;
}

let filterTimer = 0;
function onFilterInput() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(applyFilters, 300);
}

function applyFilters() {
  const f = readFilters();
  const serverChanged = SERVER_FILTERS.some((k) => f[k] !== state.filters[k]);
  state.filters = f;
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(f)) {
    if (v) url.searchParams.set(k, v);
    else url.searchParams.delete(k);
  }
  history.replaceState(null, '', url);
  if (serverChanged) {
    load();
    return;
  }
  const q = f.q.toLowerCase();
  for (const [id, card] of state.cards) card.hidden = !matchesText(state.tasks.get(id), q);
  updateCounts();
}

// ---- Acting through the REST API -----------------------------------------------------

function splitList(s) {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

async function createTask(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const v = (k) => form.elements[k].value.trim();
  if (!v('title')) {
    form.elements.title.focus();
    notify('A task needs a title.', 'error');
    return;
  }
  const body = { title: v('title') };
  if (v('priority')) body.priority = v('priority');
  if (v('assignee')) body.assignee = v('assignee');
  if (v('project')) body.project = v('project');
  const labels = splitList(v('labels'));
  if (labels.length) body.labels = labels;
  const button = form.querySelector('[type=submit]');
  button.disabled = true;
  try {
    const t = await api('POST', '/api/tasks', { body });
    const dirty = new Set();
    upsert(t, dirty);
    redraw(dirty);
    form.reset();
    form.elements.title.focus();
    notify(matchesServer(t) ? `Created #${t.id}.` : `Created #${t.id}; the current filters hide it.`);
  } catch (err) {
    notify(`Not created: ${describe(err)}`, 'error');
    if (err.field && form.elements[err.field]) form.elements[err.field].focus();
  } finally {
    button.disabled = false;
  }
}

/** refetch reads a task again after a refusal, so the board shows what is true now. */
async function refetch(id) {
  const dirty = new Set();
  try {
    upsert(await api('GET', `/api/tasks/${id}`), dirty, true);
  } catch (err) {
    if (err instanceof APIError && err.status === 404) forget(id, dirty);
    else throw err;
  } finally {
    redraw(dirty);
  }
  return state.tasks.get(id) || null;
}

function conflictText(t) {
  return t ? `it is now “${statusLabel(t.status)}”, version ${t.version}, changed by ${t.updated_by || 'someone'}` : 'it was deleted';
}

async function move(id, to) {
  const t = state.tasks.get(id);
  if (!t || t.status === to) return;
  try {
    const dirty = new Set();
    upsert(await api('PATCH', `/api/tasks/${id}`, { body: { status: to }, version: t.version }), dirty);
    redraw(dirty);
  } catch (err) {
    await handleRefusal(err, id, `#${id} was not moved`);
  }
}

/** handleRefusal explains a refused change and shows the task's current state. */
async function handleRefusal(err, id, what) {
  if (err instanceof APIError && (err.status === 412 || err.status === 409 || err.status === 404)) {
    let now = null;
    try {
      now = await refetch(id);
    } catch {
      // The message below still holds.
    }
    const why = err.status === 409 ? err.message : `someone changed it first: ${conflictText(now)}`;
    notify(`${what}: ${why}.`, 'error');
    return now;
  }
  notify(`${what}: ${describe(err)}.`, 'error');
  return undefined;
}

// ---- The editor ----------------------------------------------------------------------

function fillEditor(t) {
  const f = $('#edit-task').elements;
  state.editing = t;
  f.title.value = t.title;
  f.description.value = t.description || '';
  f.status.value = t.status;
  f.priority.value = t.priority;
  f.assignee.value = t.assignee || '';
  f.project.value = t.project || '';
  f.labels.value = (t.labels || []).join(', ');
  f.depends_on.value = (t.depends_on || []).join(', ');
  $('#editor-title').textContent = `Edit task #${t.id}`;
  $('#editor-version').textContent = `v${t.version}`;
  $('#editor-meta').textContent = `Created ${new Date(t.created_at).toLocaleString()} by ${t.created_by || 'unknown'} · updated ${new Date(t.updated_at).toLocaleString()} by ${t.updated_by || 'unknown'}`;
  showClaim(t);
  for (const el of $('#edit-task').querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** showClaim shows, in the editor, who holds t's claim, its lease and its progress, as they are now. */
function showClaim(t) {
  const box = $('#editor-claim');
  const progress = renderProgress(t);
  box.replaceChildren(
    t.lease_expires_at ? h('p', { class: 'meta-line' }, `Claimed by ${t.assignee || 'someone'}: `, renderLease(t.lease_expires_at, t.assignee || 'someone', Date.now())) : '',
    progress || '',
  );
  box.hidden = !t.lease_expires_at && !progress;
}

function editorAlert(text) {
  const a = $('#editor-alert');
  a.textContent = text || '';
  a.hidden = !text;
}

function openEditor(id) {
  const t = state.tasks.get(id);
  if (!t) return;
  fillEditor(t);
  editorAlert('');
  state.notes.open(id);
  $('#editor').showModal();
  $('#e-title').focus();
}

function closeEditor() {
  const id = state.editing?.id;
  state.editing = null;
  $('#editor').close();
  state.cards.get(id)?.querySelector('[data-action="edit"]')?.focus();
}

/**
 * noteEditorChange warns, while the editor is open, that the task changed underneath,
 * and shows its claim as it is now (a renewed lease is no change to warn of).
 */
function noteEditorChange() {
  const base = state.editing;
  if (!base || !$('#editor').open) return;
  const now = state.tasks.get(base.id);
  if (now) showClaim(now);
  if (!now) editorAlert('This task was deleted, or no longer matches the filters, since you opened it.');
  else if (now.version > base.version) editorAlert(`${now.updated_by || 'Someone'} changed this task meanwhile (now v${now.version}): saving will be refused unless you reload it. Cancel and reopen to see the change.`);
}

function editorPatch() {
  const base = state.editing;
  const f = $('#edit-task').elements;
  const patch = {};
  const set = (k, v, old) => {
    if (JSON.stringify(v) !== JSON.stringify(old)) patch[k] = v;
  };
  set('title', f.title.value.trim(), base.title);
  set('description', f.description.value, base.description || '');
  set('status', f.status.value, base.status);
  set('priority', f.priority.value, base.priority);
  set('assignee', f.assignee.value.trim(), base.assignee || '');
  set('project', f.project.value.trim(), base.project || '');
  set('labels', [...new Set(splitList(f.labels.value))].sort(), [...(base.labels || [])].sort());
  const deps = splitList(f.depends_on.value).map(Number);
  if (deps.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error('Depends on takes task ids, such as 7, 9.');
  set('depends_on', deps, base.depends_on || []);
  return patch;
}

async function saveEditor(e) {
  e.preventDefault();
  const base = state.editing;
  if (!base) return;
  let patch;
  try {
    patch = editorPatch();
  } catch (err) {
    editorAlert(err.message);
    $('#e-depends').setAttribute('aria-invalid', 'true');
    $('#e-depends').focus();
    return;
  }
  if (!Object.keys(patch).length) {
    closeEditor();
    return;
  }
  try {
    const t = await api('PATCH', `/api/tasks/${base.id}`, { body: patch, version: base.version });
    const dirty = new Set();
    upsert(t, dirty);
    redraw(dirty);
    closeEditor();
    notify(`Saved #${t.id}.`);
  } catch (err) {
    await editorRefusal(err, base.id, 'Not saved', Object.keys(patch));
  }
}

async function editorRefusal(err, id, what, fields = []) {
  if (err instanceof APIError && err.status === 400) {
    editorAlert(`${what}: ${err.message}.`);
    const el = err.field && $('#edit-task').elements[err.field];
    if (el) {
      el.setAttribute('aria-invalid', 'true');
      el.focus();
    }
    return;
  }
  if (err instanceof APIError && (err.status === 412 || err.status === 409 || err.status === 404)) {
    let now = null;
    try {
      now = await refetch(id);
    } catch {
      // Explained below all the same.
    }
    if (!now) {
      closeEditor();
      notify(`${what}: #${id} was deleted meanwhile.`, 'error');
      return;
    }
    fillEditor(now);
    if (err.status === 409) editorAlert(`${what}: ${err.message}.`);
    else editorAlert(`${what}: ${now.updated_by || 'someone'} changed this task first (now version ${now.version}). The form shows its current state; your edits to ${fields.join(', ') || 'it'} were not applied — make them again if they still make sense.`);
    return;
  }
  editorAlert(`${what}: ${describe(err)}.`);
}

async function deleteFromEditor() {
  const base = state.editing;
  if (!base || !confirm(`Delete #${base.id} “${base.title}”? This cannot be undone.`)) return;
  try {
    await api('DELETE', `/api/tasks/${base.id}`, { version: base.version });
    const dirty = new Set();
    forget(base.id, dirty);
    redraw(dirty);
    closeEditor();
    notify(`Deleted #${base.id}.`);
  } catch (err) {
    await editorRefusal(err, base.id, 'Not deleted');
  }
}

// ---- Debug panel ---------------------------------------------------------------------

function fmtNum(n) {
  return typeof n === 'number' ? n.toLocaleString() : '—';
}

function fmtDuration(s) {
  if (typeof s !== 'number') return '—';
  if (s < 60) return `${s.toFixed(0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function fmtFilters(f) {
  const parts = Object.entries(f || {}).map(([k, v]) => `${k}=${[].concat(v).join(',')}`);
  return parts.join(' ') || 'all events';
}

function renderDebug(d) {
  const stat = (name, value) => h('div', { class: 'stat' }, h('dt', {}, name), h('dd', {}, value));
  const subs = d.subscribers || [];
  return [
    h(
      'dl',
      { class: 'stats' },
      stat('Connected clients', fmtNum(d.connected_clients)),
      stat('Events published', fmtNum(d.events_published)),
      stat('Events sent', fmtNum(d.events_sent)),
      stat('Batches sent', fmtNum(d.batches_sent)),
      stat('Subscribers dropped', fmtNum(d.subscribers_dropped)),
      stat('Last seq', fmtNum(d.last_seq)),
      stat('Uptime', fmtDuration(d.uptime_seconds)),
    ),
    subs.length
      ? h(
          'div',
          { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Subscribers' },
          h(
            'table',
            { class: 'subs' },
            h('thead', {}, h('tr', {}, ['Subscriber', 'Client', 'Filters', 'Connected', 'Sent', 'Queue', 'Last id'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              subs.map((s) =>
                h(
                  'tr',
                  {},
                  h('td', { class: 'mono' }, s.id),
                  h('td', { title: s.user_agent || '' }, s.remote_addr || ''),
                  h('td', { class: 'mono' }, fmtFilters(s.filters)),
                  h('td', {}, s.connected_at ? new Date(s.connected_at).toLocaleTimeString() : ''),
                  h('td', { class: 'num' }, fmtNum(s.events_sent)),
                  h(
                    'td',
                    { class: 'num' },
                    h('meter', { min: 0, max: s.queue_cap || 1, value: s.queue_len || 0, high: (s.queue_cap || 1) * 0.5, 'aria-label': 'Queue use' }),
                    ` ${fmtNum(s.queue_len)}/${fmtNum(s.queue_cap)}`,
                  ),
                  h('td', { class: 'num' }, fmtNum(s.last_event_id)),
                ),
              ),
            ),
          ),
        )
      : h('p', { class: 'empty-note' }, 'No subscribers.'),
    h('p', { class: 'meta-line' }, `Updated ${new Date().toLocaleTimeString()}`),
  ];
}

// renderWebhooks shows the webhook endpoints and where their delivery stands.
function renderWebhooks(list) {
  if (!list.length) return h('p', { class: 'empty-note' }, 'No webhook endpoints.');
  const cols = ['Webhook', 'URL', 'Filters', 'Enabled', 'Cursor', 'Lag', 'Last status', 'Failures', 'Next attempt', 'Disabled because'];
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Webhook endpoints' },
    h(
      'table',
      { class: 'subs' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        list.map((w) =>
          h(
            'tr',
            {},
            h('td', { class: 'num' }, fmtNum(w.id)),
            h('td', { class: 'mono' }, w.url),
            h('td', { class: 'mono' }, fmtFilters(w.filters)),
            h('td', {}, w.enabled ? 'yes' : 'no'),
            h('td', { class: 'num' }, fmtNum(w.state.cursor)),
            h('td', { class: 'num' }, fmtNum(w.state.lag)),
            h('td', { class: 'num' }, w.state.last_status ? String(w.state.last_status) : '—'),
            h('td', { class: 'num' }, fmtNum(w.state.failures)),
            h('td', {}, w.state.next_attempt_at ? new Date(w.state.next_attempt_at).toLocaleString() : '—'),
            h('td', {}, w.state.disabled_reason || ''),
          ),
        ),
      ),
    ),
  );
}

async function refreshDebug() {
  const box = $('#debug');
  const [debug, hooks] = await Promise.allSettled([api('GET', '/events/debug'), api('GET', '/api/webhooks')]);
  const parts = debug.status === 'fulfilled'
    ? renderDebug(debug.value)
    : [h('p', { class: 'alert' }, `Could not read /events/debug: ${describe(debug.reason)}.`)];
  parts.splice(parts.length - 1, 0, h('h3', {}, 'Webhooks'), hooks.status === 'fulfilled'
    ? renderWebhooks(hooks.value.webhooks || [])
    : h('p', { class: 'alert' }, `Could not read /api/webhooks: ${describe(hooks.reason)}.`));
  box.replaceChildren(...parts);
}

function onDebugToggle() {
  clearInterval(state.debugTimer);
  if ($('#debug-panel').open) {
    refreshDebug();
    state.debugTimer = setInterval(refreshDebug, DEBUG_EVERY);
  }
}

// ---- Token ---------------------------------------------------------------------------

function askToken() {
  setConn('offline');
  const d = $('#token-dialog');
  if (!d.open) d.showModal();
}

// ---- Wiring --------------------------------------------------------------------------

function cardAction(e) {
  const button = e.target.closest('button[data-action]');
  const card = e.target.closest('.card');
  if (!button || !card) return;
  const id = Number(card.dataset.taskId);
  if (button.dataset.action === 'edit') openEditor(id);
  else if (button.dataset.action === 'move') move(id, button.dataset.to);
}

function dragAndDrop(board) {
  board.addEventListener('dragstart', (e) => {
    const card = e.target.closest?.('.card');
    if (!card) return;
    e.dataTransfer.setData('text/x-taskhub-id', card.dataset.taskId);
    e.dataTransfer.effectAllowed = 'move';
    card.classList.add('dragging');
  });
  board.addEventListener('dragend', (e) => e.target.closest?.('.card')?.classList.remove('dragging'));
  board.addEventListener('dragover', (e) => {
    const col = e.target.closest('.column');
    if (!col || !e.dataTransfer.types.includes('text/x-taskhub-id')) return;
    e.preventDefault();
    for (const c of board.querySelectorAll('.drop-target')) if (c !== col) c.classList.remove('drop-target');
    col.classList.add('drop-target');
  });
  board.addEventListener('dragleave', (e) => {
    const col = e.target.closest('.column');
    if (col && !col.contains(e.relatedTarget)) col.classList.remove('drop-target');
  });
  board.addEventListener('drop', (e) => {
    const col = e.target.closest('.column');
    if (!col) return;
    e.preventDefault();
    col.classList.remove('drop-target');
    const id = Number(e.dataTransfer.getData('text/x-taskhub-id'));
    if (id) move(id, col.dataset.column);
  });
}

function start() {
  const params = new URLSearchParams(location.search);
  const form = $('#filters');
  for (const k of [...SERVER_FILTERS, 'q']) {
    form.elements[k].value = params.get(k) || '';
    state.filters[k] = form.elements[k].value.trim();
  }
  form.addEventListener('input', onFilterInput);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    applyFilters();
  });
  form.addEventListener('reset', () => setTimeout(applyFilters));

  $('#new-task').addEventListener('submit', createTask);
  const board = $('#board');
  board.addEventListener('click', cardAction);
  dragAndDrop(board);

  $('#edit-task').addEventListener('submit', saveEditor);
  $('#edit-task [data-action="cancel"]').addEventListener('click', closeEditor);
  $('#edit-task [data-action="delete"]').addEventListener('click', deleteFromEditor);
  $('#editor').addEventListener('close', () => {
    state.editing = null;
    state.notes.close();
  });
  state.notes = new NotesThread(
    { list: $('#notes-list'), more: $('#notes-more'), form: $('#note-form'), status: $('#notes-status'), count: $('#notes-count'), empty: $('#notes-empty') },
    describe,
  );
  $('#agents').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action="edit"]');
    const item = e.target.closest('[data-task-id]');
    if (button && item) openEditor(Number(item.dataset.taskId));
  });

  $('#debug-panel').addEventListener('toggle', onDebugToggle);

  $('#token-form').addEventListener('submit', () => {
    setToken($('#t-token').value.trim());
    load();
  });

  setInterval(tick, CLOCK_EVERY);

  window.addEventListener('offline', () => setConn('offline'));
  window.addEventListener('online', () => {
    if (!state.es || state.es.readyState === EventSource.CLOSED) load();
  });

  load();
}

start();
