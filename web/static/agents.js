// The Agents panel: each actor holding a claim, the tasks it holds with their leases'
// time left, and when it was last seen doing anything. Pure functions of the board's
// tasks and of the newest event time seen per actor; app.js decides when to draw.

import { h, renderLease, renderProgress } from './board.js';

/**
 * holders returns the claims among tasks (a Map of id → task), by holder: each actor
 * that is the assignee of a task with a lease (the server keeps a lease only on an
 * in_progress task) with those tasks, the soonest lease first; the actors by name.
 */
export function holders(tasks) {
  const by = new Map();
  for (const t of tasks.values()) {
    if (!t.lease_expires_at || !t.assignee) continue;
    if (!by.has(t.assignee)) by.set(t.assignee, []);
    by.get(t.assignee).push(t);
  }
  return [...by]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([actor, list]) => ({ actor, tasks: list.sort((a, b) => (a.lease_expires_at < b.lease_expires_at ? -1 : a.lease_expires_at > b.lease_expires_at ? 1 : a.id - b.id)) }));
}

/**
 * lastActivity is the newest time (RFC 3339) an actor was seen acting: the newest of
 * its events the page has seen (seen, a Map of actor → time) and of the changes it
 * made last to the tasks it holds; "" when there is none.
 */
export function lastActivity(actor, tasks, seen) {
  let last = seen.get(actor) || '';
  for (const t of tasks) if (t.updated_by === actor && t.updated_at > last) last = t.updated_at;
  return last;
}

/** ago says how long before now (milliseconds since the epoch) iso was, in words. */
export function ago(iso, now) {
  const s = Math.floor((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(s)) return 'never';
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/**
 * renderAgents builds the entries of the Agents panel for the claims of holders(tasks);
 * seen is the newest event time per actor. Each task's title carries data-action
 * "edit", which app.js listens for; each time ago carries data-since, which its clock
 * keeps current.
 */
export function renderAgents(list, seen, now) {
  return list.map(({ actor, tasks }) => {
    const last = lastActivity(actor, tasks, seen);
    return h(
      'li',
      { class: 'agent', dataset: { actor } },
      h(
        'div',
        { class: 'agent-head' },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }, actor.slice(0, 1).toUpperCase()),
        h('span', { class: 'agent-name' }, actor),
        h('span', { class: 'agent-count' }, tasks.length === 1 ? '1 claim' : `${tasks.length} claims`),
        h(
          'span',
          { class: 'agent-seen' },
          'active ',
          last
            ? h('time', { class: 'ago', datetime: last, title: new Date(last).toLocaleString(), dataset: { since: last } }, ago(last, now))
            : h('span', { class: 'ago' }, 'no event seen'),
        ),
      ),
      h(
        'ul',
        { class: 'agent-tasks' },
        tasks.map((t) =>
          h(
            'li',
            { class: 'agent-task', dataset: { taskId: t.id } },
            h('button', { type: 'button', class: 'link', dataset: { action: 'edit' }, title: 'Open this task' }, h('span', { class: 'task-id' }, `#${t.id}`), ' ', t.title),
            renderLease(t.lease_expires_at, actor, now),
            renderProgress(t),
          ),
        ),
      ),
    );
  });
}
