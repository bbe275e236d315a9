// Interop test: the official MCP TypeScript SDK, an independent client, against
// taskhub over Streamable HTTP, the SSE transport and stdio. For each it lists the
// tools, calls them (the SDK checks structured results against their output schemas),
// reads and subscribes to a task resource, changes the task through REST and waits for
// notifications/resources/updated, waits for an event with wait_for_events, lists and
// gets the prompts, and completes their arguments. Over Streamable HTTP it also ends a
// session (DELETE), and sees a client still holding its id refused (404) and
// initialize anew.
//
// Environment: TASKHUB_URL (a running `taskhub serve`), TASKHUB_DB (its database) and
// TASKHUB_CMD (a taskhub binary, for stdio; TASKHUB_CMD_ENV adds KEY=VALUE pairs to its
// environment, comma separated). `go test ./cmd/taskhub -run Interop` sets them all.
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const url = process.env.TASKHUB_URL;
const db = process.env.TASKHUB_DB;
const cmd = process.env.TASKHUB_CMD;
if (!url || !db || !cmd) {
  console.error('set TASKHUB_URL, TASKHUB_DB and TASKHUB_CMD');
  process.exit(2);
}

const tools = ['add_note', 'claim_task', 'create_task', 'delete_task', 'get_task', 'heartbeat_task', 'list_events',
  'list_notes', 'list_tasks', 'release_task', 'report_progress', 'update_task', 'update_task_status', 'wait_for_events'];
const prompts = ['handoff', 'next_task', 'plan', 'standup'];

async function rest(method, path, body) {
  const res = await fetch(url + path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms}ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function exercise(name, transport) {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  try {
    assert.equal(client.getServerVersion()?.name, 'taskhub');
    assert.match(client.getInstructions() ?? '', /claim_task/);

    const listed = await client.listTools();
    assert.deepEqual(listed.tools.map((t) => t.name).sort(), tools);
    for (const t of listed.tools) {
      assert.equal(t.inputSchema.additionalProperties, false, `${t.name}: strict input schema`);
      assert.equal(t.outputSchema?.type, 'object', `${t.name}: output schema`);
      assert.equal(t.annotations?.openWorldHint, false, `${t.name}: not open-world`);
    }

    const created = await client.callTool({ name: 'create_task', arguments: { title: `from ${name}`, project: name } });
    assert.ok(!created.isError, JSON.stringify(created));
    const task = created.structuredContent;
    assert.equal(task.created_by, name);
    assert.equal(task.project, name);

    const claimed = await client.callTool({ name: 'claim_task', arguments: { project: name } });
    assert.ok(!claimed.isError, JSON.stringify(claimed));
    assert.equal(claimed.structuredContent.id, task.id);
    assert.equal(claimed.structuredContent.assignee, name);
    assert.ok(claimed.structuredContent.lease_expires_at, 'a claim holds a lease');

    const renewed = await client.callTool({ name: 'heartbeat_task', arguments: { task_id: task.id } });
    assert.ok(!renewed.isError, JSON.stringify(renewed));
    assert.equal(renewed.structuredContent.version, claimed.structuredContent.version);
    const reported = await client.callTool({ name: 'report_progress', arguments: { task_id: task.id, progress: 40, message: 'halfway' } });
    assert.ok(!reported.isError, JSON.stringify(reported));
    assert.equal(reported.structuredContent.progress, 40);

    const noted = await client.callTool({ name: 'add_note', arguments: { task_id: task.id, text: `note from ${name}` } });
    assert.ok(!noted.isError, JSON.stringify(noted));
    assert.equal(noted.structuredContent.author, name);
    const notes = await client.callTool({ name: 'list_notes', arguments: { task_id: task.id } });
    assert.ok(!notes.isError, JSON.stringify(notes));
    assert.deepEqual(notes.structuredContent.notes.map((n) => n.id), [noted.structuredContent.id]);
    assert.equal(notes.structuredContent.next_cursor, '');
    const badNote = await client.callTool({ name: 'add_note', arguments: { task_id: task.id, text: ' ' } });
    assert.equal(badNote.isError, true);
    assert.match(badNote.content[0].text, /text/);

    const listedTasks = await client.callTool({ name: 'list_tasks', arguments: { project: name } });
    assert.equal(listedTasks.structuredContent.tasks.length, 1);

    const bad = await client.callTool({ name: 'update_task_status', arguments: { task_id: task.id, status: 'finished' } });
    assert.equal(bad.isError, true);
    assert.match(bad.content[0].text, /status/);

    const uri = `taskhub://tasks/${task.id}`;
    const templates = await client.listResourceTemplates();
    assert.equal(templates.resourceTemplates[0].uriTemplate, 'taskhub://tasks/{id}');
    const read = await client.readResource({ uri });
    assert.equal(JSON.parse(read.contents[0].text).id, task.id);

    const updated = new Promise((resolve) => {
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
        if (n.params.uri === uri) resolve(n.params.uri);
      });
    });
    await client.subscribeResource({ uri });
    await new Promise((r) => setTimeout(r, 200)); // the notification stream is open
    await rest('PATCH', `/api/tasks/${task.id}`, { status: 'review' });
    await withTimeout(updated, 5000, `${name}: resources/updated for ${uri}`);

    const events = await client.callTool({ name: 'list_events', arguments: { task_id: task.id } });
    const sources = events.structuredContent.events.map((e) => e.source === 'mcp_tool' ? `mcp_tool/${e.actor}` : e.source);
    assert.deepEqual(sources, [`mcp_tool/${name}`, `mcp_tool/${name}`, `mcp_tool/${name}`, `mcp_tool/${name}`, `mcp_tool/${name}`, 'rest_api']);
    assert.equal(events.structuredContent.events[4].note.id, noted.structuredContent.id);
    const released = await client.callTool({ name: 'release_task', arguments: { task_id: task.id, note: 'over to you' } });
    assert.ok(!released.isError, JSON.stringify(released));
    assert.equal(released.structuredContent.status, 'todo');
    assert.equal(released.structuredContent.lease_expires_at, null);

    // wait_for_events: none within its timeout, then woken by a change through REST.
    const after = (await client.callTool({ name: 'list_events', arguments: { task_id: task.id } })).structuredContent.last_seq;
    const quiet = await client.callTool({ name: 'wait_for_events', arguments: { after, task_id: task.id, timeout_seconds: 1 } });
    assert.ok(!quiet.isError, JSON.stringify(quiet));
    assert.equal(quiet.structuredContent.events.length, 0);
    assert.ok(quiet.structuredContent.last_seq >= after, JSON.stringify(quiet.structuredContent));
    const waiting = client.callTool({ name: 'wait_for_events', arguments: { after, task_id: task.id, status: ['done'], timeout_seconds: 30 } });
    await new Promise((r) => setTimeout(r, 200)); // the call is waiting (it would find the event anyway)
    await rest('PATCH', `/api/tasks/${task.id}`, { status: 'done' });
    const woken = await withTimeout(waiting, 10000, `${name}: wait_for_events`);
    assert.ok(!woken.isError, JSON.stringify(woken));
    assert.equal(woken.structuredContent.events.length, 1);
    assert.equal(woken.structuredContent.events[0].task.status, 'done');
    assert.equal(woken.structuredContent.last_seq, woken.structuredContent.events[0].seq);

    // Prompts, and completions of their arguments and of the task template's id.
    const listedPrompts = await client.listPrompts();
    assert.deepEqual(listedPrompts.prompts.map((p) => p.name).sort(), prompts);
    const next = await client.getPrompt({ name: 'next_task', arguments: { project: name } });
    assert.match(next.messages[0].content.text, /claim_task/);
    assert.match(next.messages[0].content.text, new RegExp(`"project":"${name}"`));
    const plan = await client.getPrompt({ name: 'plan', arguments: { project: name, goal: 'ship it' } });
    assert.match(plan.messages[0].content.text, /depends_on/);
    const standup = await client.getPrompt({ name: 'standup', arguments: { project: name, since: '1h' } });
    assert.match(standup.messages[0].content.text, new RegExp(`#${task.id} `));
    const handoff = await client.getPrompt({ name: 'handoff', arguments: { task_id: String(task.id) } });
    assert.match(handoff.messages[0].content.text, /release_task/);
    await assert.rejects(client.getPrompt({ name: 'handoff', arguments: {} }), /task_id/);
    const projects = await client.complete({ ref: { type: 'ref/prompt', name: 'next_task' }, argument: { name: 'project', value: name.slice(0, 4) } });
    assert.ok(projects.completion.values.includes(name), JSON.stringify(projects));
    const ids = await client.complete({ ref: { type: 'ref/resource', uri: 'taskhub://tasks/{id}' }, argument: { name: 'id', value: String(task.id) } });
    assert.ok(ids.completion.values.includes(String(task.id)), JSON.stringify(ids));
    console.log(`ok ${name}: ${listed.tools.length} tools, task ${task.id}, resources/updated received, waited, ${listedPrompts.prompts.length} prompts`);
  } finally {
    await client.close();
  }
}

async function sessions() {
  const mcpURL = new URL(url + '/mcp');
  const transport = new StreamableHTTPClientTransport(mcpURL);
  const client = new Client({ name: 'ts-sessions', version: '1.0.0' });
  await client.connect(transport);
  const ended = transport.sessionId;
  assert.ok(ended, 'a session id from initialize');
  await client.listTools();

  await transport.terminateSession();
  assert.equal(transport.sessionId, undefined);
  const stale = await fetch(mcpURL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': ended },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(stale.status, 404, 'a request in the terminated session');
  assert.equal((await stale.json()).error.code, 'not_found');
  await client.close();

  // A client that still holds the ended id (connect does not initialize then) is
  // refused with 404, and initializes a new session.
  const holder = new Client({ name: 'ts-sessions', version: '1.0.0' });
  await holder.connect(new StreamableHTTPClientTransport(mcpURL, { sessionId: ended }));
  await assert.rejects(holder.listTools(), (err) => err.code === 404, 'the ended session is refused with 404');
  await holder.close();
  const fresh = new StreamableHTTPClientTransport(mcpURL);
  const again = new Client({ name: 'ts-sessions', version: '1.0.0' });
  await again.connect(fresh);
  assert.ok(fresh.sessionId && fresh.sessionId !== ended, 'a new session');
  assert.equal((await again.listTools()).tools.length, tools.length);
  await fresh.terminateSession();
  await again.close();
  console.log('ok ts-sessions: terminated, refused with 404, initialized again');
}

const env = { ...process.env };
for (const pair of (process.env.TASKHUB_CMD_ENV ?? '').split(',').filter(Boolean)) {
  const i = pair.indexOf('=');
  env[pair.slice(0, i)] = pair.slice(i + 1);
}

await exercise('ts-streamable-http', new StreamableHTTPClientTransport(new URL(url + '/mcp')));
await sessions();
await exercise('ts-sse', new SSEClientTransport(new URL(url + '/mcp/sse')));
await exercise('ts-stdio', new StdioClientTransport({ command: cmd, args: ['mcp', '--db', db], env, stderr: 'inherit' }));
console.log('interop: ok');
