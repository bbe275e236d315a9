// The notes thread in the task editor: the task's notes oldest first, read a page at a
// time (GET /api/tasks/{id}/notes, next_cursor), a box to add one (POST), and the notes
// others add while it is open, from the stream's task_note_added events.
//
// Each note shows once, in id order, wherever it comes from (a page, the answer to the
// page's own POST, an event): shown holds the ids on the list. A note that arrives
// while pages remain unread waits in pending, since it comes after all of them, and
// joins the list once the last page is read.

import { api } from './api.js';
import { h } from './board.js';

const PAGE = 50;

/**
 * NotesThread drives the notes section of the editor: its list, its "show more"
 * button, its form, its status line, its count and what it says when there is none.
 */
export class NotesThread {
  constructor({ list, more, form, status, count, empty }, describe) {
    this.el = { list, more, form, status, count, empty };
    this.describe = describe; // an error in words
    this.gen = 0;
    this.taskId = 0;
    this.shown = new Set();
    this.pending = new Map();
    this.cursor = null; // null: no page read yet; "": the whole thread read
    this.loading = false;
    more.addEventListener('click', () => this.page());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.add();
    });
    form.elements.text.addEventListener('input', () => this.status(''));
    form.elements.text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
  }

  /** open shows the thread of the task with id, from its first page. */
  open(id) {
    this.gen++;
    this.taskId = id;
    this.shown.clear();
    this.pending.clear();
    this.cursor = null;
    this.el.list.replaceChildren();
    this.el.form.reset();
    this.status('');
    this.page();
  }

  /** close drops the thread; answers still on their way are ignored. */
  close() {
    this.gen++;
    this.taskId = 0;
  }

  /** live takes a note from an event or an answer: shown once, in its place. */
  live(note) {
    if (!this.taskId || note.task_id !== this.taskId || this.shown.has(note.id)) return;
    if (this.cursor === '' && !this.loading) this.insert(note);
    else this.pending.set(note.id, note);
    this.update();
  }

  /** page reads the next page of the thread. */
  async page() {
    if (this.loading || this.cursor === '') return;
    const gen = this.gen;
    this.loading = true;
    this.update();
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (this.cursor) q.set('cursor', this.cursor);
      const p = await api('GET', `/api/tasks/${this.taskId}/notes?${q}`);
      if (gen !== this.gen) return;
      for (const n of p.notes) this.insert(n);
      this.cursor = p.next_cursor || '';
      if (this.cursor === '') {
        for (const n of this.pending.values()) this.insert(n);
        this.pending.clear();
      }
      this.status('');
    } catch (err) {
      if (gen === this.gen) this.status(`Could not read the notes: ${this.describe(err)}.`, true);
    } finally {
      if (gen === this.gen) {
        this.loading = false;
        this.update();
      }
    }
  }

  /** add sends the form's text as a new note. */
  async add() {
    const form = this.el.form;
    const text = form.elements.text.value.trim();
    if (!text) {
      this.status('A note needs some text.', true);
      form.elements.text.focus();
      return;
    }
    const gen = this.gen;
    const button = form.querySelector('[type=submit]');
    button.disabled = true;
    try {
      const note = await api('POST', `/api/tasks/${this.taskId}/notes`, { body: { text } });
      if (gen !== this.gen) return;
      form.reset();
      this.status('');
      this.live(note);
    } catch (err) {
      if (gen === this.gen) this.status(`Note not added: ${this.describe(err)}.`, true);
    } finally {
      button.disabled = false;
    }
  }

  insert(n) {
    if (this.shown.has(n.id)) return;
    this.shown.add(n.id);
    const li = h(
      'li',
      { class: 'note', dataset: { noteId: n.id } },
      h('div', { class: 'note-head' }, h('span', { class: 'note-author' }, n.author || 'unknown'), h('time', { datetime: n.time, title: n.time }, new Date(n.time).toLocaleString())),
      h('p', { class: 'note-text' }, n.text),
    );
    // Oldest first: by id, which only grows. Nearly always the last place.
    let after = this.el.list.lastElementChild;
    while (after && Number(after.dataset.noteId) > n.id) after = after.previousElementSibling;
    this.el.list.insertBefore(li, after ? after.nextElementSibling : this.el.list.firstElementChild);
  }

  update() {
    const { more, count, list, empty } = this.el;
    const waiting = this.pending.size;
    more.hidden = this.cursor === '' || (this.cursor === null && !this.loading);
    more.disabled = this.loading;
    more.textContent = this.loading ? 'Loading…' : waiting ? `Show more notes (${waiting} new)` : 'Show more notes';
    const n = list.children.length;
    count.textContent = this.cursor === '' ? String(n) : n ? `${n}+` : '';
    empty.hidden = !(this.cursor === '' && n === 0);
    list.dataset.state = this.loading && this.cursor === null ? 'loading' : this.cursor === '' ? 'whole' : 'partial';
  }

  status(text, error = false) {
    const s = this.el.status;
    s.textContent = text;
    s.hidden = !text;
    s.classList.toggle('alert', error);
  }
}
