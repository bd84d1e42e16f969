// The operator page's mesh views, next to the agents table: workloads and Services with live golden metrics
// (from /api/v1/stat), the service graph (/api/v1/graph: edges coloured by success rate, dashed without
// mTLS, with the same edges as a table for screen readers), and policies with their status
// (/api/v1/policies). Polled every few seconds; rendered with createElement/textContent only. Tables are
// filterable and sortable from the keyboard; at 1,000 workloads a render is one DOM rebuild of plain rows.

export const MESH_STYLE = String.raw`
nav.views { display: flex; gap: 4px; padding: 0 20px 8px; flex-wrap: wrap; }
nav.views a { padding: 4px 10px; border: 1px solid var(--line); border-radius: 4px; color: var(--fg); text-decoration: none; }
nav.views a:focus, nav.views a:hover { outline: 2px solid #2f6fd6; outline-offset: 1px; }
section.view { padding: 0 20px 16px; }
section.view h2 { font-size: 16px; margin: 14px 0 6px; }
.tools { display: flex; gap: 12px; align-items: center; margin: 4px 0 8px; flex-wrap: wrap; }
.tools input { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 4px; min-width: 240px; }
.note { color: var(--muted); font-size: 12px; }
table.golden { min-width: 900px; }
th button { font: inherit; font-size: 12px; color: var(--muted); font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer; }
th button:focus { outline: 2px solid #2f6fd6; }
td.ok { color: var(--ok); font-weight: 600; }
td.warnc { color: var(--warn); font-weight: 600; }
td.bad { color: var(--err); font-weight: 600; }
tr.nack td, tr.refused td { background: var(--errbg); }
#graph-wrap { border: 1px solid var(--line); overflow: auto; max-height: 640px; }
#graph text { font-size: 11px; fill: var(--fg); }
#graph .gnode rect { fill: #f5f7f9; stroke: #8a96a5; }
#graph .gnode.unmeshed rect { stroke-dasharray: 3 2; }
#graph .edge-label { font-size: 10px; fill: var(--muted); }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin: 6px 0; flex-wrap: wrap; }
.sw { display: inline-block; width: 18px; height: 0; border-top: 3px solid; vertical-align: middle; margin-right: 4px; }
.sw.ok { border-color: var(--ok); } .sw.warn { border-color: #c98a00; } .sw.err { border-color: var(--err); } .sw.plain { border-color: #555; border-top-style: dashed; }
`;

export const MESH_SCRIPT = String.raw`
(function () {
  'use strict';
  var REFRESH_MS = 5000;
  var state = { stat: null, graph: null, policies: null, sort: { workloads: ['name', 1], services: ['name', 1] }, filter: '' };
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pct(v) { return v === null || v === undefined ? '\u2014' : (v * 100).toFixed(2) + '%'; }
  function ms(v) { return v === null || v === undefined ? '\u2014' : (v < 10 ? v.toFixed(1) : String(Math.round(v))) + ' ms'; }
  function rate(v) { return v === null || v === undefined ? '\u2014' : v.toFixed(v < 10 ? 2 : 1); }
  function sr(v) { return v === null || v === undefined ? '' : v >= 0.99 ? 'ok' : v >= 0.9 ? 'warnc' : 'bad'; }

  var COLS = [
    ['name', 'Name'], ['meshed', 'Meshed'], ['success', 'Success'], ['rps', 'RPS'], ['p50', 'P50'], ['p95', 'P95'], ['p99', 'P99'], ['tcpConn', 'TCP conns'], ['mtls', 'mTLS']
  ];

  function header(kind, table) {
    var thead = el('thead'), tr = el('tr');
    COLS.forEach(function (c) {
      if (kind === 'services' && (c[0] === 'meshed' || c[0] === 'tcpConn')) return;
      var th = el('th');
      th.setAttribute('scope', 'col');
      var s = state.sort[kind];
      th.setAttribute('aria-sort', s[0] === c[0] ? (s[1] > 0 ? 'ascending' : 'descending') : 'none');
      var b = el('button', '', c[1]);
      b.type = 'button';
      b.setAttribute('data-sort', c[0]);
      b.addEventListener('click', function () {
        state.sort[kind] = [c[0], s[0] === c[0] ? -s[1] : (c[0] === 'name' ? 1 : -1)];
        renderStat();
      });
      th.appendChild(b);
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    table.appendChild(thead);
  }

  function sorted(rows, kind) {
    var s = state.sort[kind], key = s[0], dir = s[1];
    return rows.slice().sort(function (a, b) {
      var x = key === 'name' ? a.namespace + '/' + a.name : a[key], y = key === 'name' ? b.namespace + '/' + b.name : b[key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
  }

  function goldenTable(kind, rows) {
    var table = el('table', 'golden');
    table.id = kind + '-table';
    var cap = el('caption', 'note', (kind === 'workloads' ? 'Workloads' : 'Services') + ': golden metrics over the last ' + (state.stat ? state.stat.window : '') + (state.stat ? ' (from ' + (state.stat.source === 'prometheus' ? 'Prometheus' : 'the agents') + ')' : ''));
    table.appendChild(cap);
    header(kind, table);
    var tb = el('tbody');
    var f = state.filter;
    var shown = 0;
    sorted(rows, kind).forEach(function (r) {
      var name = r.namespace + '/' + r.name;
      if (f && name.indexOf(f) < 0) return;
      shown++;
      var tr = el('tr');
      tr.setAttribute('data-name', name);
      var th = el('th', 'node', name);
      th.setAttribute('scope', 'row');
      tr.appendChild(th);
      if (kind === 'workloads') tr.appendChild(el('td', 'num', r.meshed === null ? '\u2014' : r.meshed));
      var s = el('td', 'num ' + sr(r.success), pct(r.success));
      tr.appendChild(s);
      tr.appendChild(el('td', 'num', rate(r.rps)));
      tr.appendChild(el('td', 'num', ms(r.p50)));
      tr.appendChild(el('td', 'num', ms(r.p95)));
      tr.appendChild(el('td', 'num', ms(r.p99)));
      if (kind === 'workloads') tr.appendChild(el('td', 'num', r.tcpConn === null ? '\u2014' : r.tcpConn));
      tr.appendChild(el('td', 'num', pct(r.mtls)));
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    table.setAttribute('data-rows', String(shown));
    return table;
  }

  function renderStat() {
    var w = $('workloads-view'), s = $('services-view');
    if (!state.stat) return;
    if (state.stat.error) {
      w.textContent = ''; w.appendChild(el('p', 'note', 'Traffic metrics unavailable: ' + state.stat.error));
      s.textContent = '';
      return;
    }
    var t0 = performance.now();
    // a periodic re-render must not throw a keyboard user's focus away: remember the focused header button
    var f = document.activeElement, keep = null;
    if (f && f.dataset && f.dataset.sort) { var tbl = f.closest('table'); if (tbl) keep = '#' + tbl.id + ' button[data-sort="' + f.dataset.sort + '"]'; }
    w.textContent = '';
    w.appendChild(goldenTable('workloads', state.stat.workloads || []));
    s.textContent = '';
    s.appendChild(goldenTable('services', state.stat.services || []));
    if (keep) { var again = document.querySelector(keep); if (again) again.focus(); }
    document.body.setAttribute('data-stat-render-ms', String(Math.round(performance.now() - t0)));
    document.body.setAttribute('data-stat-at', state.stat.at || '');
  }

  // --- the service graph: callers to the left of what they call (longest-path layers), edges coloured
  function renderGraph() {
    var wrap = $('graph-wrap'), list = $('edges-view');
    if (!state.graph) return;
    wrap.textContent = '';
    list.textContent = '';
    if (state.graph.error) { wrap.appendChild(el('p', 'note', 'Service graph unavailable: ' + state.graph.error)); return; }
    var edges = state.graph.edges || [];
    var names = {}, order = [];
    edges.forEach(function (e) { [e.source, e.destination].forEach(function (n) { if (!(n in names)) { names[n] = 0; order.push(n); } }); });
    var MAX = 300;
    var truncated = order.length > MAX;
    // layers: a node sits one column right of its furthest caller (cycles stop after a few passes)
    for (var pass = 0; pass < 8; pass++) edges.forEach(function (e) { if (e.source !== e.destination && names[e.destination] < names[e.source] + 1 && names[e.source] < 12) names[e.destination] = names[e.source] + 1; });
    var cols = {}, pos = {};
    order.slice(0, MAX).forEach(function (n) { var c = names[n]; cols[c] = (cols[c] || 0) + 1; pos[n] = { x: 20 + c * 260, y: 20 + (cols[c] - 1) * 56 }; });
    var width = 20, height = 40;
    Object.keys(pos).forEach(function (n) { width = Math.max(width, pos[n].x + 200); height = Math.max(height, pos[n].y + 60); });
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    svg.id = 'graph';
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', String(height));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'Service graph: ' + order.length + ' workloads, ' + edges.length + ' edges; the same edges are listed in the table below');
    var meshed = {};
    (state.graph.nodes || []).forEach(function (n) { meshed[n.namespace + '/' + n.name] = n.meshed > 0; });
    edges.forEach(function (e) {
      var a = pos[e.source], b = pos[e.destination];
      if (!a || !b) return;
      var color = e.protocol === 'tcp' || e.success === null ? '#555' : e.success >= 0.99 ? '#1f7a3a' : e.success >= 0.9 ? '#c98a00' : '#b3261e';
      var line = document.createElementNS(NS, 'path');
      var x1 = a.x + 180, y1 = a.y + 18, x2 = b.x, y2 = b.y + 18;
      if (e.source === e.destination) line.setAttribute('d', 'M' + (a.x + 150) + ',' + (a.y + 36) + ' c 20,30 50,30 30,-18');
      else line.setAttribute('d', 'M' + x1 + ',' + y1 + ' C' + (x1 + 40) + ',' + y1 + ' ' + (x2 - 40) + ',' + y2 + ' ' + x2 + ',' + y2);
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', color);
      line.setAttribute('stroke-width', String(Math.min(6, 1.5 + Math.log10(1 + (e.rps || 0)) * 2)));
      if (!(e.mtls > 0)) line.setAttribute('stroke-dasharray', '6 4');
      line.setAttribute('class', 'edge');
      line.setAttribute('data-edge', e.source + '>' + e.destination);
      var title = document.createElementNS(NS, 'title');
      title.textContent = e.source + ' \u2192 ' + e.destination + ': ' + (e.protocol === 'tcp' ? 'TCP' : pct(e.success) + ' success, ' + rate(e.rps) + ' rps') + (e.mtls > 0 ? ', mTLS' : ', plaintext');
      line.appendChild(title);
      svg.appendChild(line);
      if (e.protocol !== 'tcp' && e.source !== e.destination) {
        var t = document.createElementNS(NS, 'text');
        t.setAttribute('x', String((x1 + x2) / 2 - 30));
        t.setAttribute('y', String((y1 + y2) / 2 - 4));
        t.setAttribute('class', 'edge-label');
        t.textContent = pct(e.success) + ' \u00b7 ' + rate(e.rps) + '/s' + (e.mtls > 0 ? ' \u00b7 mTLS' : '');
        svg.appendChild(t);
      }
    });
    Object.keys(pos).forEach(function (n) {
      var g = document.createElementNS(NS, 'g');
      g.setAttribute('class', 'gnode' + (meshed[n] === false ? ' unmeshed' : ''));
      g.setAttribute('data-node', n);
      var r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', String(pos[n].x)); r.setAttribute('y', String(pos[n].y));
      r.setAttribute('width', '180'); r.setAttribute('height', '36'); r.setAttribute('rx', '5');
      g.appendChild(r);
      var t = document.createElementNS(NS, 'text');
      t.setAttribute('x', String(pos[n].x + 8)); t.setAttribute('y', String(pos[n].y + 22));
      t.textContent = n.length > 28 ? n.slice(0, 27) + '\u2026' : n;
      g.appendChild(t);
      svg.appendChild(g);
    });
    wrap.appendChild(svg);
    if (truncated) wrap.appendChild(el('p', 'note', 'Showing ' + MAX + ' of ' + order.length + ' workloads; every edge is in the table below.'));
    if (!edges.length) wrap.appendChild(el('p', 'note', 'No traffic in the window.'));
    var table = el('table', 'golden');
    table.id = 'edges-table';
    table.appendChild(el('caption', 'note', 'Who calls whom (' + edges.length + ' edges)'));
    var hr = el('tr');
    ['From', 'To', 'Protocol', 'Success', 'RPS', 'P99', 'mTLS'].forEach(function (h) { var th = el('th', '', h); th.setAttribute('scope', 'col'); hr.appendChild(th); });
    var th0 = el('thead'); th0.appendChild(hr); table.appendChild(th0);
    var tb = el('tbody');
    edges.forEach(function (e) {
      var tr = el('tr');
      tr.setAttribute('data-edge', e.source + '>' + e.destination);
      tr.appendChild(el('td', '', e.source));
      tr.appendChild(el('td', '', e.destination));
      tr.appendChild(el('td', '', e.protocol.toUpperCase()));
      tr.appendChild(el('td', 'num ' + sr(e.success), pct(e.success)));
      tr.appendChild(el('td', 'num', rate(e.rps)));
      tr.appendChild(el('td', 'num', ms(e.p99)));
      tr.appendChild(el('td', '', e.mtls > 0 ? 'yes' : 'no'));
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    list.appendChild(table);
  }

  function renderPolicies() {
    var v = $('policies-view');
    if (!state.policies) return;
    v.textContent = '';
    if (state.policies.error) { v.appendChild(el('p', 'note', 'Policies unavailable: ' + state.policies.error)); return; }
    var p = state.policies;
    v.appendChild(el('p', 'note', 'Config version ' + p.configVersion + ': ' + p.agents.acked + ' of ' + p.agents.total + ' agents acknowledged' + (p.agents.nacks.length ? '; NACK from ' + p.agents.nacks.map(function (n) { return n.node + ' (' + n.reason + ')'; }).join(', ') : '')));
    var table = el('table', 'golden');
    table.id = 'policies-table';
    var hr = el('tr');
    ['Namespace', 'Name', 'Kind', 'Status', 'Selects', 'In force on', 'Allowed', 'Denied', 'Reason'].forEach(function (h) { var th = el('th', '', h); th.setAttribute('scope', 'col'); hr.appendChild(th); });
    var th0 = el('thead'); th0.appendChild(hr); table.appendChild(th0);
    var tb = el('tbody');
    (p.policies || []).forEach(function (x) {
      var tr = el('tr', x.status === 'Refused' ? 'refused' : x.status === 'NACKed' ? 'nack' : '');
      tr.setAttribute('data-policy', x.kind + '/' + x.namespace + '/' + x.name);
      tr.appendChild(el('td', '', x.namespace));
      tr.appendChild(el('td', 'node', x.name));
      tr.appendChild(el('td', '', x.kind));
      tr.appendChild(el('td', x.status === 'Enforced' ? 'ok' : x.status === 'Propagating' ? 'warnc' : 'bad', x.status));
      var authz = x.selected !== undefined;
      var nodes = x.nodes || [];
      var d = x.decisions;
      tr.appendChild(el('td', 'num', authz ? String(x.selected) + (x.selected === 1 ? ' pod' : ' pods') : ''));
      tr.appendChild(el('td', '', authz ? nodes.filter(function (n) { return n.inForce; }).map(function (n) { return n.node; }).join(', ') + (nodes.some(function (n) { return !n.inForce; }) ? ' (not yet: ' + nodes.filter(function (n) { return !n.inForce; }).map(function (n) { return n.node; }).join(', ') + ')' : '') : ''));
      tr.appendChild(el('td', 'num', authz && d ? String(d.allow + d.audit) : ''));
      tr.appendChild(el('td', 'num', authz && d ? String(d.deny) : ''));
      tr.appendChild(el('td', '', x.reason || ''));
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    v.appendChild(table);
    if (!(p.policies || []).length) v.appendChild(el('p', 'note', 'No policies.'));
  }

  function get(path) {
    return fetch(path, { headers: { accept: 'application/json' } }).then(function (r) {
      return r.json().then(function (b) {
        if (!r.ok) return { error: (b && b.error && (b.error.message || b.error)) || ('HTTP ' + r.status) };
        return b;
      });
    }, function (e) { return { error: String(e) }; });
  }

  function refresh() {
    var win = $('window').value;
    return Promise.all([get('api/v1/stat?window=' + encodeURIComponent(win)), get('api/v1/graph?window=' + encodeURIComponent(win)), get('api/v1/policies')]).then(function (r) {
      state.stat = r[0]; state.graph = r[1]; state.policies = r[2];
      renderStat(); renderGraph(); renderPolicies();
      document.body.setAttribute('data-mesh-loaded', String(Date.now()));
    });
  }

  $('filter').addEventListener('input', function (e) { state.filter = e.target.value.trim(); renderStat(); });
  $('window').addEventListener('change', function () { refresh(); });
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
`;

export const MESH_HTML = `
<nav class="views" aria-label="Views"><a href="#workloads">Workloads</a><a href="#services">Services</a><a href="#graph-section">Service graph</a><a href="#policies">Policies</a><a href="#endpoints">Endpoints</a><a href="#nodes">Nodes</a></nav>
<section class="view" id="workloads" aria-labelledby="h-workloads">
<h2 id="h-workloads">Workloads</h2>
<div class="tools"><label>Filter <input id="filter" type="search" placeholder="namespace/name" autocomplete="off"></label>
<label>Window <select id="window"><option value="30s">30 s</option><option value="1m" selected>1 min</option><option value="5m">5 min</option><option value="15m">15 min</option></select></label>
<span class="note">success = responses that are not 5xx; latency percentiles from Istio's histograms</span></div>
<div id="workloads-view" aria-live="off"><p class="note">Loading traffic metrics\u2026</p></div>
</section>
<section class="view" id="services" aria-labelledby="h-services"><h2 id="h-services">Services</h2><div id="services-view"></div></section>
<section class="view" id="graph-section" aria-labelledby="h-graph"><h2 id="h-graph">Service graph</h2>
<div class="legend" aria-hidden="true"><span><span class="sw ok"></span>success \u2265 99%</span><span><span class="sw warn"></span>\u2265 90%</span><span><span class="sw err"></span>below 90%</span><span><span class="sw plain"></span>dashed: no mTLS / TCP</span></div>
<div id="graph-wrap"></div><div id="edges-view"></div></section>
<section class="view" id="policies" aria-labelledby="h-policies"><h2 id="h-policies">Policies and routes</h2><div id="policies-view"></div></section>
`;
