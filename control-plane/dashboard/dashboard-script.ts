/**
 * The dashboard's browser script, plain ES2020 with no dependencies. It keeps the credential in
 * sessionStorage (never in the URL), polls the admin API every `POLL_MS`, redraws a section only
 * when its data changed (so focus and open details survive), and builds every element with
 * `textContent`, never HTML from data.
 */
export const DASHBOARD_SCRIPT = String.raw`
'use strict';
const POLL_MS = 2000;
const HISTORY_MS = 5 * 60 * 1000;
const TOKEN_KEY = 'llorch.adminToken';
const USAGE_DAYS = 30;
const history = new Map();
const drawn = new Map();
const openDetails = new Set();
let timer = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(message, isError) {
  const status = $('status');
  status.textContent = message;
  status.className = isError ? 'error' : '';
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: Object.assign({ Authorization: 'Bearer ' + token() }, body ? { 'Content-Type': 'application/json' } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401 || response.status === 403) {
    disconnect();
    throw new Error('The control plane refused the credential (' + response.status + '): ' + ((data && data.error && data.error.message) || ''));
  }
  if (!response.ok && response.status !== 502) throw new Error(method + ' ' + path + ': ' + response.status + ' ' + ((data && data.error && data.error.message) || ''));
  return { status: response.status, data };
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '-';
  if (seconds < 60) return seconds.toFixed(1) + ' s';
  if (seconds < 3600) return Math.floor(seconds / 60) + ' min';
  return Math.floor(seconds / 3600) + ' h';
}

function gib(mib) {
  return (mib / 1024).toFixed(1);
}

function redraw(section, data, render) {
  const key = JSON.stringify(data);
  if (drawn.get(section) === key) return;
  drawn.set(section, key);
  $(section).replaceChildren(render(data));
}

async function nodeCommand(node, verb) {
  const question = verb === 'cordon'
    ? 'Cordon node "' + node.name + '"? It takes no new task; running ones finish, then its pools drain on it.'
    : 'Uncordon node "' + node.name + '"? It takes tasks again; each pool\'s policy decides what starts on it.';
  if (!window.confirm(question)) return;
  try {
    const path = '/v2/nodes/' + encodeURIComponent(node.id) + '/' + (verb === 'cordon' ? 'drain' : 'uncordon');
    const result = await api('POST', path, verb === 'cordon' ? {} : undefined);
    const failed = verb === 'cordon' ? result.data.pools.filter((p) => !p.ok) : [];
    say(failed.length === 0 ? node.name + ' ' + verb + 'ed' : verb + ' of ' + node.name + ' failed for ' + failed.map((p) => p.pool + ': ' + (p.error ? p.error.message : '?')).join('; '), failed.length > 0);
    await refresh();
  } catch (error) {
    say(error.message, true);
  }
}

function gpusText(n) {
  if (n.status === 'new') return 'never connected';
  const busy = (g) => (typeof g.utilization_percent === 'number' ? ', ' + g.utilization_percent + '% busy' : '');
  return n.gpus.length === 0 ? 'CPU only' : n.gpus.map((g) => g.index + ': ' + g.name + ' (' + gib(g.memory_used_mib) + ' / ' + gib(g.memory_total_mib) + ' GiB' + busy(g) + ')').join(', ');
}

function renderNodes({ nodes, metrics }) {
  if (nodes.length === 0) return el('p', {}, 'No nodes yet. Register one with POST /v2/nodes or llorch nodes add.');
  const byId = new Map(metrics.map((m) => [m.node, m]));
  return el('table', { id: 'nodes-table' },
    el('caption', { class: 'visually-hidden' }, 'Nodes'),
    el('thead', {}, el('tr', {}, ['Name', 'Status', 'Host', 'GPUs', 'Heartbeat age', 'Agent', 'Replicas', 'Maintenance'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, nodes.map((n) => {
      const m = byId.get(n.id);
      const verb = n.cordoned_at ? 'uncordon' : 'cordon';
      return el('tr', { 'data-node': n.id },
        el('th', { scope: 'row' }, n.name, el('div', { class: 'id' }, n.id)),
        el('td', {}, el('span', { class: 'badge ' + n.status, 'data-field': 'status' }, n.status),
          n.cordoned_at ? el('span', { class: 'badge cordoned', 'data-field': 'cordoned' }, 'cordoned') : null),
        el('td', {}, n.hostname || '-'),
        el('td', { 'data-field': 'gpus' }, gpusText(n)),
        el('td', { 'data-field': 'heartbeat' }, age(m ? m.heartbeat_age_seconds : null)),
        el('td', {}, n.agent_version || '-'),
        el('td', {}, n.replicas.map((r) => r.pool + ' (' + r.state + ')').join(', ') || '-'),
        el('td', {}, n.status === 'revoked' ? '-' : el('button', { type: 'button', 'aria-label': verb + ' ' + n.name, onclick: () => nodeCommand(n, verb) }, verb)));
    })));
}

function limitsText(limits) {
  const parts = Object.entries(limits || {}).map(([field, value]) =>
    field.replace(/_/g, ' ') + ' ' + (value === null ? 'none' : typeof value === 'object' ? value.tokens + '/' + value.period : value));
  return parts.length === 0 ? 'pool default' : parts.join(', ');
}

function renderKeys({ keys, usage }) {
  if (keys.length === 0) return el('p', {}, 'No API keys yet. Create one with POST /v2/api-keys or llorch keys create.');
  const byKey = new Map(usage.groups.map((g) => [g.group, g]));
  return el('table', { id: 'keys-table' },
    el('caption', {}, 'API keys and their usage since ' + (usage.from || '').slice(0, 10)),
    el('thead', {}, el('tr', {}, ['Name', 'Scopes', 'Limits', 'Requests', 'Prompt tokens', 'Completion tokens', 'Created', 'Revoked'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, keys.map((k) => {
      const u = byKey.get(k.id) || { requests: 0, prompt_tokens: 0, completion_tokens: 0 };
      return el('tr', { 'data-key': k.id },
        el('th', { scope: 'row' }, k.name, el('div', { class: 'id' }, k.id + ' ' + k.prefix)),
        el('td', {}, k.scopes.join(', ')),
        el('td', { 'data-field': 'limits' }, limitsText(k.limits)),
        el('td', { 'data-field': 'requests' }, u.requests),
        el('td', {}, u.prompt_tokens),
        el('td', { 'data-field': 'completion-tokens' }, u.completion_tokens),
        el('td', {}, k.created_at ? k.created_at.slice(0, 10) : '-'),
        el('td', {}, k.revoked_at ? el('span', { class: 'badge revoked' }, 'revoked ' + k.revoked_at.slice(0, 10)) : '-'));
    })));
}

function sparkline(label, points, unit) {
  const width = 180;
  const height = 40;
  const now = points.length ? points[points.length - 1].v : 0;
  const max = Math.max(1, ...points.map((p) => p.v));
  // The x axis grows with the history, up to HISTORY_MS, so a fresh page draws a line at once.
  const t0 = points.length ? points[0].t : 0;
  const span = points.length ? Math.min(HISTORY_MS, Math.max(2 * POLL_MS, points[points.length - 1].t - t0)) : HISTORY_MS;
  const coords = points.map((p) => {
    const x = ((p.t - t0) / span) * width;
    const y = height - 2 - (p.v / max) * (height - 4);
    return x.toFixed(1) + ',' + y.toFixed(1);
  }).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label + ' over the last ' + Math.round(span / 1000) + ' s, now ' + now.toFixed(1) + ' ' + unit + ', peak ' + max.toFixed(1));
  const frame = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  frame.setAttribute('width', String(width));
  frame.setAttribute('height', String(height));
  frame.setAttribute('class', 'frame');
  svg.append(frame);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', coords);
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('stroke-width', '1.5');
  svg.append(line);
  return el('figure', { class: 'chart' }, svg, el('figcaption', {}, label + ': ' + now.toFixed(1) + ' ' + unit));
}

function record(fleet) {
  const t = Date.parse(fleet.collected_at);
  for (const p of fleet.pools) {
    const h = history.get(p.pool) || [];
    const last = h[h.length - 1];
    const rate = last && t > last.t ? Math.max(0, (p.completion_tokens - last.tokens) / ((t - last.t) / 1000)) : 0;
    h.push({ t, tokens: p.completion_tokens, rate, queue: p.queue_depth });
    while (h.length && h[0].t < t - HISTORY_MS) h.shift();
    history.set(p.pool, h);
  }
}

async function command(pool, verb) {
  const question = verb === 'drain'
    ? 'Drain pool "' + pool + '" on every node? Running tasks may finish; new ones wait until a preload.'
    : verb === 'reload' ? 'Reload pool "' + pool + '" on every node? Its engines restart.' : 'Preload pool "' + pool + '" on every node?';
  if (!window.confirm(question)) return;
  try {
    const result = await api('POST', '/v2/pools/' + encodeURIComponent(pool) + '/' + verb, {});
    const failed = result.data.nodes.filter((n) => !n.ok);
    say(failed.length === 0 ? verb + ' sent to ' + result.data.nodes.length + ' node(s) of ' + pool : verb + ' failed on ' + failed.map((n) => n.node_id + ': ' + (n.error ? n.error.message : '?')).join('; '), failed.length > 0);
    await refresh();
  } catch (error) {
    say(error.message, true);
  }
}

function remember(key) {
  return (event) => {
    if (event.target.open) openDetails.add(key);
    else openDetails.delete(key);
  };
}

function formatBytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return i === 0 ? n + ' B' : n.toFixed(1) + ' ' + units[i];
}

/** The fetch of a replica's files: a progress bar, then the file, bytes, rate and time left. */
function renderDownload(d) {
  const total = d.bytes_total;
  const percent = total ? Math.floor((d.bytes_done / total) * 100) + '% ' : '';
  const eta = d.eta_ms === null ? '' : ', ' + Math.ceil(d.eta_ms / 1000) + ' s left';
  return el('div', { class: 'download' },
    el('progress', { 'data-field': 'download', max: total || null, value: total ? d.bytes_done : null, 'aria-label': 'download of ' + d.file }),
    el('span', { 'data-field': 'download-text' }, d.file + ' ' + percent + formatBytes(d.bytes_done) + (total ? ' / ' + formatBytes(total) : '') + ' at ' + formatBytes(d.bytes_per_s) + '/s' + eta));
}

function renderReplica(pool, r, names) {
  const key = r.node_id + '/' + pool.id;
  const reason = r.reason
    ? el('details', { open: openDetails.has(key), ontoggle: remember(key) }, el('summary', {}, r.reason.split('\n')[0]), el('pre', {}, r.reason))
    : '-';
  return el('tr', { 'data-replica': key },
    el('th', { scope: 'row' }, names.get(r.node_id) || r.node_id, el('div', { class: 'id' }, r.node_id)),
    el('td', {}, el('span', { class: 'badge ' + r.state, 'data-field': 'state' }, r.state), r.download ? renderDownload(r.download) : null),
    el('td', {}, (r.slots_busy === null ? '?' : r.slots_busy) + ' / ' + r.slots),
    el('td', {}, r.engine + (r.engine_version ? ' ' + r.engine_version : '')),
    el('td', {}, reason));
}

function renderPools({ pools, names }) {
  if (pools.length === 0) return el('p', {}, 'No pools yet. A pool appears when an agent that serves it connects.');
  return el('div', {}, pools.map((pool) => el('article', { class: 'pool', 'data-pool': pool.id, 'aria-labelledby': 'pool-' + pool.id },
    el('header', {},
      el('h3', { id: 'pool-' + pool.id }, pool.id),
      el('span', { class: 'badge ' + pool.state, 'data-field': 'pool-state' }, pool.state),
      el('span', {}, 'queue ' + (pool.queue_depth === null ? '?' : pool.queue_depth)),
      el('span', {}, 'slots ' + (pool.slots_busy === null ? '?' : pool.slots_busy) + ' / ' + pool.slots_total),
      el('span', { class: 'actions' }, ['preload', 'drain', 'reload'].map((verb) =>
        el('button', { type: 'button', 'aria-label': verb + ' ' + pool.id, onclick: () => command(pool.id, verb) }, verb)))),
    el('div', { class: 'charts', 'data-charts': pool.id }),
    el('table', {},
      el('caption', {}, 'Replicas of ' + pool.id),
      el('thead', {}, el('tr', {}, ['Node', 'State', 'Slots', 'Engine', 'Reason / log tail'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, pool.replicas.map((r) => renderReplica(pool, r, names)))))));
}

const RUNNING_BATCH = ['validating', 'in_progress', 'finalizing', 'cancelling'];

function renderBatches({ batches }) {
  const running = batches.filter((b) => RUNNING_BATCH.includes(b.status));
  if (running.length === 0) return el('p', {}, 'No batch is running.');
  return el('table', {},
    el('caption', {}, 'Running batches, newest first'),
    el('thead', {}, el('tr', {}, ['Batch', 'Key', 'Model', 'Status', 'Progress', 'Predicted end'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, running.map((b) => {
      const c = b.request_counts;
      const done = c.completed + c.failed;
      return el('tr', { 'data-batch': b.id },
        el('th', { scope: 'row' }, b.id),
        el('td', {}, b.api_key_id),
        el('td', {}, b.model || '-'),
        el('td', {}, el('span', { class: 'badge', 'data-field': 'batch-status' }, b.status)),
        el('td', {},
          el('progress', { max: c.total || null, value: done, 'aria-label': 'lines of ' + b.id }),
          el('span', { 'data-field': 'batch-progress' }, ' ' + done + ' / ' + c.total + (c.failed ? ' (' + c.failed + ' failed)' : ''))),
        el('td', {}, b.llorch_predicted_completion_at ? new Date(b.llorch_predicted_completion_at * 1000).toLocaleTimeString() : '-'));
    })));
}

function renderCharts() {
  for (const [pool, h] of history) {
    const box = document.querySelector('[data-charts="' + CSS.escape(pool) + '"]');
    if (!box) continue;
    box.replaceChildren(
      sparkline('Tokens/s', h.map((p) => ({ t: p.t, v: p.rate })), 'tokens/s'),
      sparkline('Queue depth', h.map((p) => ({ t: p.t, v: p.queue })), 'tasks'));
  }
}

async function refresh() {
  if (!token()) return;
  try {
    const since = new Date(Date.now() - USAGE_DAYS * 24 * 3600 * 1000).toISOString().slice(0, 10);
    const [nodes, pools, fleet, keys, usage, batches] = await Promise.all([
      api('GET', '/v2/nodes'), api('GET', '/v2/pools'), api('GET', '/v2/metrics'),
      api('GET', '/v2/api-keys'), api('GET', '/v2/usage?group_by=key&from=' + since), api('GET', '/v2/batches?limit=100')]);
    redraw('keys', { keys: keys.data.api_keys, usage: usage.data }, renderKeys);
    record(fleet.data);
    redraw('nodes', { nodes: nodes.data.nodes, metrics: fleet.data.nodes.map((m) => ({ node: m.node, heartbeat_age_seconds: m.heartbeat_age_seconds === null ? null : Math.round(m.heartbeat_age_seconds) })) }, renderNodes);
    redraw('pools', { pools: pools.data.pools, names: nodes.data.nodes.map((n) => [n.id, n.name]) }, ({ pools, names }) => renderPools({ pools, names: new Map(names) }));
    redraw('batches', { batches: batches.data.data }, renderBatches);
    renderCharts();
    $('updated').textContent = 'Updated ' + new Date(fleet.data.collected_at).toLocaleTimeString();
  } catch (error) {
    say(error.message, true);
  }
}

function connect(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  document.body.classList.add('connected');
  say('');
  drawn.clear();
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
}

function disconnect() {
  sessionStorage.removeItem(TOKEN_KEY);
  document.body.classList.remove('connected');
  clearInterval(timer);
  timer = null;
  $('token').focus();
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('token').value.trim();
  $('token').value = '';
  if (value) connect(value);
});
$('logout').addEventListener('click', () => {
  disconnect();
  say('Disconnected; the credential was removed from this tab.');
});
if (token()) connect(token());
`
