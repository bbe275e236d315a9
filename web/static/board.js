// Building the page's elements: cards, columns and activity entries. Everything here is
// a pure function of its arguments; app.js decides when to call it.

// The sets of statuses and priorities, and their orders, are the server's
// (GET /api/vocabulary): app.js passes them in. Only the words shown for them live here;
// a value without words shows as it is.

const statusWords = new Map([
  ['todo', 'To do'],
  ['in_progress', 'In progress'],
  ['review', 'Review'],
  ['blocked', 'Blocked'],
  ['done', 'Done'],
  ['cancelled', 'Cancelled'],
]);

const priorityWords = new Map([
  ['low', 'Low'],
  ['medium', 'Medium'],
  ['high', 'High'],
  ['urgent', 'Urgent'],
]);

/** statusLabel returns the words for a status. */
export function statusLabel(status) {
  return statusWords.get(status) || status;
}

/** priorityLabel returns the words for a priority. */
export function priorityLabel(priority) {
  return priorityWords.get(priority) || priority;
}

/**
 * h makes an element: attrs are attributes, except class, dataset, hidden and on*
 * (listeners); children are nodes or strings, null and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'hidden') el.hidden = true;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) el.append(c);
  }
  return el;
}

/**
 * taskOrder returns how a column is ordered, given the priorities lowest first: the
 * most pressing first (a priority not among them last), then the oldest first.
 */
export function taskOrder(priorities) {
  const rank = new Map(priorities.map((p, i) => [p, i]));
  return (a, b) => (rank.get(b.priority) ?? -1) - (rank.get(a.priority) ?? -1) || a.id - b.id;
}

/**
 * leaseLeft is the time a lease that runs out at expires (RFC 3339) has left at now
 * (milliseconds since the epoch) as the page shows it: h:mm:ss, or m:ss under an hour,
 * and "due" once it has run out (the server expires it within a second, with an event
 * that takes the lease off the board).
 */
export function leaseLeft(expires, now) {
  const s = Math.ceil((Date.parse(expires) - now) / 1000);
  if (!(s > 0)) return 'due';
  const two = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return hours ? `${hours}:${two(minutes)}:${two(s % 60)}` : `${minutes}:${two(s % 60)}`;
}

/** leaseState is how a lease stands at now: due once run out, soon under a minute, else running. */
export function leaseState(expires, now) {
  const ms = Date.parse(expires) - now;
  return ms <= 0 ? 'due' : ms < 60000 ? 'soon' : 'running';
}

/**
 * renderLease builds the countdown of a claim's lease, held by holder, that runs out at
 * expires. Its data-expires is what the page's clock counts down from, each second
 * (app.js's tick), client-side.
 */
export function renderLease(expires, holder, now) {
  return h(
    'span',
    { class: 'lease', dataset: { expires, state: leaseState(expires, now) }, title: `${holder} holds the claim; its lease runs out at ${clock(expires)} unless renewed` },
    h('span', { class: 'lease-left' }, leaseLeft(expires, now)),
    ' left',
  );
}

/**
 * renderProgress builds a task's progress bar, labelled with its progress_message, or
 * null while its progress is 0.
 */
export function renderProgress(t) {
  if (!(t.progress > 0)) return null;
  const label = t.progress_message || 'Progress';
  return h(
    'div',
    { class: 'progress-wrap' },
    h('div', { class: 'progress-label', 'aria-hidden': 'true' }, h('span', { class: 'progress-message' }, label), h('span', { class: 'progress-pct' }, `${t.progress}%`)),
    h('progress', { class: 'progress', max: 100, value: t.progress, title: label, 'aria-label': label }, `${t.progress}%`),
  );
}

/** matchesText says whether a task shows under the search text q (already lower case). */
export function matchesText(t, q) {
  if (!q) return true;
  const hay = [t.title, t.description, t.assignee, t.project, `#${t.id}`, ...(t.labels || [])];
  return hay.some((s) => s && s.toLowerCase().includes(q));
}

/**
 * renderCard builds a task's card. tasks is the board's map, to show whether each
 * dependency is done; statuses are the columns in order, for the ← and → buttons; now
 * is the time its lease's countdown starts from. The buttons carry data-action, which
 * app.js listens for. A claimed task shows its holder (the assignee) marked as such,
 * with the lease's time left; a task with progress shows its bar.
 */
export function renderCard(t, tasks, statuses, now) {
  const i = statuses.indexOf(t.status);
  const prev = i > 0 ? statuses[i - 1] : null;
  const next = i >= 0 && i < statuses.length - 1 ? statuses[i + 1] : null;
  const deps = t.depends_on || [];
  // A dependency the filters leave off the board is unknown here, not open.
  const openDeps = deps.filter((d) => tasks.has(d) && tasks.get(d).status !== 'done').length;
  const unknownDeps = deps.filter((d) => !tasks.has(d)).length;
  const depClass = (d) => (!tasks.has(d) ? 'dep unknown' : tasks.get(d).status === 'done' ? 'dep done' : 'dep');
  const leased = Boolean(t.lease_expires_at);
  return h(
    'article',
    {
      class: `card prio-${t.priority}`,
      dataset: { taskId: t.id, status: t.status, version: t.version },
      draggable: 'true',
      'aria-labelledby': `card-title-${t.id}`,
    },
    h(
      'div',
      { class: 'card-top' },
      h('span', { class: 'task-id' }, `#${t.id}`),
      h('span', { class: `badge prio prio-${t.priority}`, title: 'Priority' }, priorityLabel(t.priority)),
    ),
    h(
      'h3',
      { class: 'card-title', id: `card-title-${t.id}` },
      h('button', { type: 'button', class: 'link', dataset: { action: 'edit' }, title: 'Edit this task' }, t.title),
    ),
    t.assignee || t.project || leased
      ? h(
          'p',
          { class: 'card-meta' },
          t.assignee
            ? h(
                'span',
                { class: leased ? 'assignee holder' : 'assignee', title: leased ? 'Holds the claim' : 'Assignee' },
                h('span', { class: 'avatar', 'aria-hidden': 'true' }, t.assignee.slice(0, 1).toUpperCase()),
                h('span', { class: 'name' }, t.assignee),
              )
            : null,
          leased ? renderLease(t.lease_expires_at, t.assignee || 'Nobody', now) : null,
          t.project ? h('span', { class: 'project', title: 'Project' }, t.project) : null,
        )
      : null,
    renderProgress(t),
    t.labels?.length ? h('ul', { class: 'labels', 'aria-label': 'Labels' }, t.labels.map((l) => h('li', { class: 'chip' }, l))) : null,
    deps.length
      ? h(
          'p',
          { class: `deps${openDeps ? ' open' : ''}` },
          openDeps ? `Waits on ${openDeps} of ${deps.length}: ` : unknownDeps ? 'Depends on: ' : 'Dependencies done: ',
          deps.map((d, k) => [
            k ? ', ' : '',
            h('span', { class: depClass(d), title: tasks.has(d) ? tasks.get(d).status : 'Not on the board with these filters' }, `#${d}`),
          ]),
        )
      : null,
    h(
      'div',
      { class: 'card-actions' },
      prev
        ? h('button', { type: 'button', class: 'icon', dataset: { action: 'move', to: prev, dir: 'prev' }, 'aria-label': `Move #${t.id} to ${statusLabel(prev)}`, title: `Move to ${statusLabel(prev)}` }, '←')
        : null,
      next
        ? h('button', { type: 'button', class: 'icon', dataset: { action: 'move', to: next, dir: 'next' }, 'aria-label': `Move #${t.id} to ${statusLabel(next)}`, title: `Move to ${statusLabel(next)}` }, '→')
        : null,
      t.status !== 'done' && statuses.includes('done')
        ? h('button', { type: 'button', class: 'small', dataset: { action: 'move', to: 'done', dir: 'done' }, 'aria-label': `Mark #${t.id} done` }, 'Done')
        : null,
      h('span', { class: 'version', title: `Version ${t.version}, changed by ${t.updated_by || 'unknown'}` }, `v${t.version}`),
    ),
  );
}

/** renderColumn builds an empty column for a status; cards go in its .cards list. */
export function renderColumn(status) {
  return h(
    'section',
    { class: `column status-${status}`, dataset: { column: status }, 'aria-labelledby': `col-${status}` },
    h('h2', { class: 'column-head', id: `col-${status}` }, h('span', {}, statusLabel(status)), h('span', { class: 'count', title: 'Tasks shown' }, '0')),
    h('div', { class: 'cards' }),
    h('p', { class: 'empty' }, 'Nothing here'),
  );
}

/** clock is the local time of day of an RFC 3339 time, or "" when it does not parse. */
export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function describeChanges(changes) {
  if (!changes) return '';
  const words = (k, s) => (k === 'status' ? statusLabel(s) : k === 'priority' ? priorityLabel(s) : k.endsWith('_at') ? clock(s) || s : s);
  const parts = Object.entries(changes).map(([k, [from, to]]) => {
    const v = (x) => (Array.isArray(x) ? x.join(', ') || '—' : x === null || x === '' ? '—' : words(k, String(x)));
    return k === 'description' ? 'description edited' : `${k}: ${v(from)} → ${v(to)}`;
  });
  return parts.slice(0, 3).join('; ') + (parts.length > 3 ? '; …' : '');
}

const typeWords = {
  task_created: 'created',
  task_updated: 'updated',
  task_deleted: 'deleted',
  file_changed: 'file',
  task_note_added: 'note',
  task_lease_renewed: 'lease',
};

/** eventWord is the short word for an event type, or the type itself. */
export function eventWord(type) {
  return typeWords[type] || type;
}

const reasonWords = { lease_expired: 'lease expired' };

function eventDetail(ev) {
  if (ev.type === 'task_note_added' && ev.note) return ev.note.text.length > 140 ? `${ev.note.text.slice(0, 140)}…` : ev.note.text;
  if (ev.type === 'task_lease_renewed' && ev.task?.lease_expires_at) return `lease renewed until ${clock(ev.task.lease_expires_at)}`;
  if (ev.type !== 'task_updated' || !ev.changes) return null;
  const changes = describeChanges(ev.changes);
  return ev.reason ? `${reasonWords[ev.reason] || ev.reason}: ${changes}` : changes;
}

/** renderActivity builds one entry of the activity feed. */
export function renderActivity(ev) {
  const file = ev.file || ev; // file_changed: {"path", "op"}
  const what = ev.task ? `#${ev.task_id} ${ev.task.title}` : file.path ? `${file.op || 'changed'} ${file.path}` : ev.task_id ? `#${ev.task_id}` : '';
  const detail = eventDetail(ev);
  return h(
    'li',
    { class: `activity type-${ev.type}`, dataset: { seq: ev.seq } },
    h('time', { datetime: ev.time, title: ev.time }, clock(ev.time)),
    h('span', { class: `badge type type-${ev.type}` }, eventWord(ev.type)),
    h('span', { class: 'what' }, what),
    detail ? h('span', { class: 'changes' }, detail) : null,
    h('span', { class: 'who' }, `${ev.actor || 'unknown'} · ${(ev.source || '').replace('_', ' ')}`),
  );
}
