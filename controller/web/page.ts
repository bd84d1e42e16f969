// The operator page: one self-contained HTML document (inline CSS and script, no external assets, no CDN),
// served with a Content-Security-Policy that allows exactly that inline script and style (by hash) and
// same-origin requests. The script renders every value with textContent/createElement, never innerHTML,
// so agent-supplied text (a NACK reason, a node name) cannot inject markup.
import { createHash } from 'node:crypto';

import { ENDPOINTS_HTML, ENDPOINTS_SCRIPT } from './page-endpoints.js';
import { MESH_HTML, MESH_SCRIPT, MESH_STYLE } from './page-mesh.js';

const STYLE = String.raw`
:root { --bg:#fff; --fg:#1d232b; --muted:#5f6b7a; --line:#d9dee5; --ok:#1f7a3a; --warn:#8a5a00; --warnbg:#fff4d6; --err:#b3261e; --errbg:#fde7e5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 20px 6px; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; }
#stream { font-size: 12px; color: var(--muted); }
#stream.live::before { content: "\25CF "; color: var(--ok); }
#stream.down::before { content: "\25CF "; color: var(--err); }
#summary { display: flex; gap: 8px; padding: 4px 20px 10px; flex-wrap: wrap; }
.chip { border: 1px solid var(--line); border-radius: 12px; padding: 2px 10px; font-size: 13px; }
.chip.error { background: var(--errbg); border-color: var(--err); color: var(--err); font-weight: 600; }
.chip.warn { background: var(--warnbg); border-color: var(--warn); color: var(--warn); font-weight: 600; }
main { padding: 0 20px 20px; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; min-width: 1100px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.error td { background: var(--errbg); }
tr.warn td { background: var(--warnbg); }
.node { font-weight: 600; }
td.config, td.problems { min-width: 220px; max-width: 340px; overflow-wrap: anywhere; }
td.state, td.cert { white-space: nowrap; }
.sub { color: var(--muted); font-size: 12px; }
.flag { display: inline-block; font-size: 11px; font-weight: 700; padding: 0 6px; border-radius: 3px; margin: 0 4px 2px 0; }
.flag.error { background: var(--err); color: #fff; }
.flag.warn { background: var(--warn); color: #fff; }
.flag.ok { background: var(--ok); color: #fff; }
ul.problems { margin: 0; padding-left: 16px; }
#empty { color: var(--muted); padding: 20px 0; }
section.status { padding: 0 20px 20px; }
.nodes-h { font-size: 16px; margin: 14px 0 6px; }
section.status pre { background: #f5f7f9; border: 1px solid var(--line); padding: 8px; overflow-x: auto; font-size: 12px; }
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var body = document.getElementById('agents');
  var summary = document.getElementById('summary');
  var streamEl = document.getElementById('stream');
  var configEl = document.getElementById('config');
  var statusEl = document.getElementById('status');
  var empty = document.getElementById('empty');

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(n) { return n === null || n === undefined ? '\u2014' : Number(n).toLocaleString('en-US'); }
  function bytes(n) {
    if (n === null || n === undefined) return '\u2014';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }
  function dur(s) {
    if (s === null || s === undefined) return '\u2014';
    var a = Math.abs(Math.round(s));
    if (a < 120) return a + 's';
    var m = Math.round(a / 60);
    if (m < 60) return m + 'm';
    if (m < 2880) return Math.floor(m / 60) + 'h' + ('0' + (m % 60)).slice(-2) + 'm';
    return Math.round(a / 86400) + 'd';
  }
  function ts(iso) { return iso ? String(iso).replace('T', ' ').replace(/\.\d+Z$/, 'Z') : null; }
  function cell(tr, cls, main, sub) {
    var td = el('td', cls);
    if (main instanceof Node) td.appendChild(main); else td.appendChild(document.createTextNode(main === null || main === undefined ? '\u2014' : String(main)));
    if (sub) { td.appendChild(el('br')); td.appendChild(el('span', 'sub', sub)); }
    tr.appendChild(td);
    return td;
  }
  function flag(sev, text) { return el('span', 'flag ' + sev, text); }
  function has(a, kind) { for (var i = 0; i < a.problems.length; i++) if (a.problems[i].kind === kind) return true; return false; }

  function row(a) {
    var tr = el('tr', a.severity === 'ok' ? '' : a.severity);
    tr.setAttribute('data-node', a.node);
    tr.setAttribute('data-severity', a.severity);
    cell(tr, 'node', a.node, a.peer);
    var state = el('span');
    state.appendChild(a.connected ? flag('ok', 'CONNECTED') : flag('error', 'DISCONNECTED'));
    if (a.healthy === false) { state.appendChild(document.createTextNode(' ')); state.appendChild(flag('error', 'UNHEALTHY')); }
    cell(tr, 'state', state, a.connected ? (a.connectedAt ? 'since ' + ts(a.connectedAt) : null) : (a.disconnectedAt ? 'since ' + ts(a.disconnectedAt) : null));
    var cfg = el('span');
    if (a.ack) cfg.appendChild(flag(a.ack === 'NACK' ? 'error' : a.ack === 'ACK' ? 'ok' : 'warn', a.ack));
    cfg.appendChild(document.createTextNode(a.configVersion === null ? '\u2014' : ' v' + a.configVersion));
    var cfgSub = a.lastSentVersion !== null && a.lastSentVersion !== a.configVersion ? 'sent v' + a.lastSentVersion : null;
    if (a.ack === 'NACK') cfgSub = 'sent v' + a.lastSentVersion + ' rejected: ' + (a.nackReason || 'no reason given');
    cell(tr, 'config', cfg, cfgSub);
    var cert = el('span');
    if (has(a, 'cert-expired')) cert.appendChild(flag('error', 'CERT EXPIRED'));
    else if (has(a, 'cert-expiring')) cert.appendChild(flag('warn', 'CERT EXPIRING'));
    cert.appendChild(document.createTextNode(a.certExpiresInSeconds === null ? '\u2014' : (a.certExpiresInSeconds > 0 ? ' in ' : ' ') + dur(a.certExpiresInSeconds) + (a.certExpiresInSeconds > 0 ? '' : ' ago')));
    cell(tr, 'cert', cert, ts(a.certExpiry));
    var c = a.counters;
    cell(tr, 'num requests', c ? num(c.requests) : null);
    cell(tr, 'num errors', c ? num(c.requestErrors) : null, c && c.requests ? (100 * c.requestErrors / c.requests).toFixed(2) + ' %' : null);
    cell(tr, 'num connections', c ? num(c.connectionsActive) : null, c ? num(c.connectionsOpened) + ' opened' : null);
    cell(tr, 'num redirects', c ? num(c.redirects) : null);
    cell(tr, 'num cpu', c ? c.cpuPercent.toFixed(1) + ' %' : null);
    cell(tr, 'num memory', c ? bytes(c.memoryRssBytes) : null);
    cell(tr, 'num reported', a.reportAgeSeconds === null ? null : dur(a.reportAgeSeconds) + ' ago', ts(a.reportedAt));
    var pl = el('ul', 'problems');
    for (var i = 0; i < a.problems.length; i++) pl.appendChild(el('li', a.problems[i].severity, a.problems[i].message));
    cell(tr, 'problems', a.problems.length ? pl : '');
    return tr;
  }

  function chip(cls, text, id) { var c = el('span', 'chip ' + cls, text); c.id = id; return c; }

  function render(p) {
    var s = p.summary;
    summary.textContent = '';
    summary.appendChild(chip('', s.agents + ' agents', 'sum-agents'));
    summary.appendChild(chip('', s.connected + ' connected', 'sum-connected'));
    summary.appendChild(chip(s.disconnected ? 'error' : '', s.disconnected + ' disconnected', 'sum-disconnected'));
    summary.appendChild(chip(s.nack ? 'error' : '', s.nack + ' NACK', 'sum-nack'));
    summary.appendChild(chip(s.certExpiringSoon ? 'warn' : '', s.certExpiringSoon + ' certificates expiring', 'sum-cert'));
    body.textContent = '';
    for (var i = 0; i < p.agents.length; i++) body.appendChild(row(p.agents[i]));
    empty.hidden = p.agents.length > 0;
    configEl.textContent = p.config ? 'config v' + p.config.version : '';
    statusEl.textContent = '';
    var names = p.status ? Object.keys(p.status) : [];
    for (var j = 0; j < names.length; j++) {
      var d = el('details');
      d.appendChild(el('summary', '', names[j]));
      d.appendChild(el('pre', '', JSON.stringify(p.status[names[j]], null, 2)));
      statusEl.appendChild(d);
    }
    document.body.setAttribute('data-generated-at', p.generatedAt);
  }

  function setStream(cls, text) { streamEl.className = cls; streamEl.textContent = text; document.body.setAttribute('data-stream', cls); }

  if (!window.EventSource) { setStream('down', 'this browser has no EventSource: reload to refresh'); return; }
  var es = new EventSource('api/v1/agents/stream');
  es.addEventListener('open', function () { setStream('live', 'live'); });
  es.addEventListener('error', function () { setStream('down', 'disconnected from the controller, reconnecting\u2026'); });
  es.addEventListener('agents', function (ev) {
    setStream('live', 'live');
    try { render(JSON.parse(ev.data)); } catch (e) { setStream('down', 'bad update: ' + e); }
  });
})();
`;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('base64');

/** allows only this page's own inline script and style, and same-origin fetches (the event stream) */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${sha256(SCRIPT)}' 'sha256-${sha256(MESH_SCRIPT)}' 'sha256-${sha256(ENDPOINTS_SCRIPT)}'`,
  `style-src 'sha256-${sha256(STYLE)}' 'sha256-${sha256(MESH_STYLE)}'`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Weft mesh</title>
<style>${STYLE}</style>
<style>${MESH_STYLE}</style>
</head>
<body data-stream="connecting">
<header><h1>Weft mesh</h1><span id="config"></span><span id="stream">connecting\u2026</span></header>
<div id="summary" aria-label="Agents summary"></div>${MESH_HTML}${ENDPOINTS_HTML}
<main id="nodes" aria-labelledby="h-nodes">
<h2 id="h-nodes" class="nodes-h">Nodes</h2>
<table>
<thead><tr><th>Node</th><th>State</th><th>Config</th><th>Certificate expiry</th><th>Requests</th><th>Errors</th><th>Connections</th><th>Redirects</th><th>CPU</th><th>Memory</th><th>Last report</th><th>Problems</th></tr></thead>
<tbody id="agents"></tbody>
</table>
<p id="empty" hidden>No agent has connected yet.</p>
<noscript><p>This page updates with JavaScript. The same figures are at <a href="api/v1/agents">api/v1/agents</a> (JSON).</p></noscript>
</main>
<section class="status" id="status"></section>
<script>${SCRIPT}</script>
<script>${MESH_SCRIPT}</script>
<script>${ENDPOINTS_SCRIPT}</script>
</body>
</html>
`;
