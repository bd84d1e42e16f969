// The operator page's Endpoints view: per caller node and endpoint, what its TrafficPolicy runtime holds
// (/api/v1/endpoints, from the agents' weft_traffic_* metrics): ejected or not and until when, outstanding
// requests, peak-EWMA latency, the backend's circuit (each limit the policy sets as in use/limit, flagged
// when reached), overloads, and the 429s the endpoint's rate limit answered. Polled every few seconds;
// rendered with createElement/textContent only (labels come from agents).

export const ENDPOINTS_SCRIPT = String.raw`
(function () {
  'use strict';
  var REFRESH_MS = 5000;
  var NAMES = { connections: 'connections', pending: 'pending', requests: 'requests', retries: 'retries' };
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function circuitText(c) {
    return Object.keys(NAMES).filter(function (k) { return c[k]; }).map(function (k) { return NAMES[k] + ' ' + c[k].inUse + '/' + c[k].limit; }).join(' \u00b7 ');
  }
  function full(c) {
    return Object.keys(c).some(function (k) { return c[k].limit !== null && c[k].inUse >= c[k].limit; });
  }
  function render(p) {
    var v = document.getElementById('endpoints-view');
    v.textContent = '';
    if (p.error) { v.appendChild(el('p', 'note', 'Endpoint state unavailable: ' + p.error)); return; }
    var rows = p.endpoints || [];
    var table = el('table', 'golden');
    table.id = 'endpoints-table';
    table.appendChild(el('caption', 'note', 'Each node\u2019s view of the endpoints it calls (TrafficPolicy runtime, from ' + (p.source === 'prometheus' ? 'Prometheus' : 'the agents') + ')'));
    var hr = el('tr');
    ['Node', 'Backend', 'Endpoint', 'State', 'Outstanding', 'EWMA latency', 'Circuit', 'Overloaded', 'Rate-limited'].forEach(function (h) { var th = el('th', '', h); th.setAttribute('scope', 'col'); hr.appendChild(th); });
    var th0 = el('thead'); th0.appendChild(hr); table.appendChild(th0);
    var tb = el('tbody');
    rows.forEach(function (r) {
      var tr = el('tr', r.ejected ? 'refused' : '');
      tr.setAttribute('data-endpoint', r.node + '|' + r.backend + '|' + r.endpoint);
      tr.appendChild(el('td', 'node', r.node));
      tr.appendChild(el('td', '', r.backend));
      tr.appendChild(el('td', '', r.endpoint));
      tr.appendChild(el('td', r.ejected ? 'bad' : 'ok', r.ejected ? 'ejected until ' + (r.ejectedUntil ? r.ejectedUntil.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '?') : 'healthy'));
      tr.appendChild(el('td', 'num', r.outstanding));
      tr.appendChild(el('td', 'num', r.ewmaLatencyMs === null ? '\u2014' : r.ewmaLatencyMs.toFixed(1) + ' ms'));
      var c = r.circuit || {};
      tr.appendChild(el('td', full(c) ? 'warnc' : '', circuitText(c) || 'no limits'));
      tr.appendChild(el('td', 'num', r.overloaded));
      tr.appendChild(el('td', 'num', r.rateLimited));
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    table.setAttribute('data-rows', String(rows.length));
    v.appendChild(table);
    if (!rows.length) v.appendChild(el('p', 'note', 'No node has sent traffic to a Service yet.'));
  }
  function refresh() {
    return fetch('api/v1/endpoints', { headers: { accept: 'application/json' } }).then(function (r) {
      return r.json().then(function (b) { return r.ok ? b : { error: (b && b.error && (b.error.message || b.error)) || ('HTTP ' + r.status) }; });
    }, function (e) { return { error: String(e) }; }).then(function (p) {
      render(p);
      document.body.setAttribute('data-endpoints-loaded', String(Date.now()));
    });
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
`;

export const ENDPOINTS_HTML = `
<section class="view" id="endpoints" aria-labelledby="h-endpoints"><h2 id="h-endpoints">Endpoints</h2>
<p class="note">Outlier ejections, load, latency estimate, circuit breaking (in use/limit) and rate-limit rejections per endpoint.</p>
<div id="endpoints-view" aria-live="off"><p class="note">Loading endpoint state\u2026</p></div></section>
`;
