// The HTML report is one file: the Analyze response embedded as JSON, and a small script
// that draws the charts as inline SVG. No network, no external scripts. When the script
// finishes it sets <body data-rendered="ok">; any script error lands in data-error, which
// is what the headless-Chromium test checks.
#include "absl/strings/str_replace.h"
#include "client/report/analyze_report.h"

namespace kvcomp::report {
namespace {

constexpr char kTemplate[] = R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kvcomp analysis: @TITLE@</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.muted{color:#667} .rec{border:2px solid #d9480f;border-radius:6px;padding:10px 14px;background:#fff4e6}
.rec code{font-size:15px;font-weight:600} .charts{display:flex;flex-wrap:wrap;gap:24px}
svg{background:#fafbfc;border:1px solid #dde} .pt{fill:#4263eb;opacity:.75}
.pt.lossless{fill:#2b8a3e} .pt.fail{fill:#adb5bd} .pt.recommended{fill:#d9480f;opacity:1;stroke:#000;stroke-width:1.5}
.front{fill:none;stroke:#4263eb;stroke-width:1.5;stroke-dasharray:4 3} .axis{stroke:#889} text{font-size:11px;fill:#445}
table{border-collapse:collapse;font-size:12px} td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left;font-family:monospace} tr.recommended{background:#fff4e6;font-weight:600}
.barK{fill:#4263eb} .barV{fill:#12b886}
</style></head>
<body>
<h1>kvcomp analysis: @TITLE@</h1>
<div class="muted" id="sampling"></div>
<h2>Recommendation</h2><div class="rec" id="recommendation"></div>
<h2>Ratio against error</h2>
<div class="muted">Each point is a configuration; x is the worst tensor's 1 &minus; cosine (log scale, bit-exact at the left edge), y its compression ratio with every byte of metadata counted. Dashed: the Pareto front. Orange: the recommendation. Grey: fails the thresholds.</div>
<div class="charts"><svg id="pareto-k" width="520" height="360"></svg><svg id="pareto-v" width="520" height="360"></svg></div>
<h2>Recommended policy, per layer</h2><svg id="layers" width="1064" height="260"></svg>
<h2>All configurations</h2><table id="configs"></table>
<script id="data" type="application/json">@DATA@</script>
<script>
window.addEventListener('error', function (e) { document.body.dataset.error = String(e.message); });
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var data = JSON.parse(document.getElementById('data').textContent);
  var rec = data.recommendation || {};
  function el(tag, attrs, parent, text) {
    var n = document.createElementNS(NS, tag);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    if (text !== undefined) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }
  function esc(s) { var d = document.createElement('div'); d.textContent = s; return d.innerHTML; }
  document.getElementById('sampling').textContent = 'Analysed ' + data.sampling;
  var box = document.getElementById('recommendation');
  var html = (rec.found ? 'Use <code>' : 'Nothing passes. Closest: <code>') + esc(rec.codec) + '</code><br>' + esc(rec.why);
  (rec.runners_up || []).forEach(function (r) { html += '<br><span class="muted">not <code>' + esc(r.codec) + '</code>: ' + esc(r.why) + '</span>'; });
  box.innerHTML = html;
  var configs = (data.codecs || []).filter(function (c) { return !c.error; });

  function pareto(svgId, kind) {
    var svg = document.getElementById(svgId), W = 520, H = 360, L = 56, R = 16, T = 28, B = 44;
    var pts = configs.map(function (c) {
      var worst = kind === 'K' ? c.worst_k : c.worst_v;
      var err = c.lossless ? 0 : Math.max(1e-9, 1 - worst.cosine);
      return { c: c, err: err, ratio: kind === 'K' ? c.ratio_k : c.ratio_v };
    }).filter(function (p) { return p.ratio > 0; });
    var lo = -9, hi = 0, ymax = 1;
    pts.forEach(function (p) { ymax = Math.max(ymax, p.ratio); if (p.err > 0) lo = Math.min(lo, Math.floor(Math.log10(p.err))); });
    ymax = Math.ceil(ymax * 1.1 * 2) / 2;
    function x(err) { return err <= 0 ? L + 8 : L + 30 + (Math.log10(err) - lo) / (hi - lo) * (W - L - R - 30); }
    function y(r) { return H - B - (r - 1) / (ymax - 1) * (H - T - B); }
    el('text', { x: L, y: 18, 'font-weight': 600 }, svg, kind + ': ratio vs worst-tensor error');
    el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }, svg);
    el('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }, svg);
    for (var e = lo; e <= hi; e += 2) el('text', { x: x(Math.pow(10, e)) - 12, y: H - B + 16 }, svg, '1e' + e);
    el('text', { x: L, y: H - B + 16 }, svg, 'exact');
    el('text', { x: W / 2 - 40, y: H - 8 }, svg, '1 - cosine (worst tensor)');
    for (var r = 1; r <= ymax + 1e-9; r += (ymax > 6 ? 1 : 0.5)) el('text', { x: 8, y: y(r) + 4 }, svg, r.toFixed(1) + 'x');
    var sorted = pts.slice().sort(function (a, b) { return a.err - b.err || b.ratio - a.ratio; });
    var front = [], best = 0;
    sorted.forEach(function (p) { if (p.ratio > best) { front.push(p); best = p.ratio; } });
    el('polyline', { class: 'front', points: front.map(function (p) { return x(p.err) + ',' + y(p.ratio); }).join(' ') }, svg);
    pts.forEach(function (p) {
      var cls = 'pt' + (p.c.lossless ? ' lossless' : '') + (p.c.passes ? '' : ' fail') + (p.c.codec === rec.codec ? ' recommended' : '');
      var dot = el('circle', { cx: x(p.err), cy: y(p.ratio), r: p.c.codec === rec.codec ? 7 : 4.5, class: cls }, svg);
      el('title', {}, dot, p.c.codec + '\nratio ' + p.ratio.toFixed(3) + 'x, 1-cos ' + p.err.toExponential(2) + '\n' + p.c.verdict);
    });
    return pts.length;
  }

  function layers() {
    var svg = document.getElementById('layers'), W = 1064, H = 260, L = 48, B = 36, T = 16;
    var c = configs.filter(function (c) { return c.codec === rec.codec; })[0];
    if (!c) { el('text', { x: L, y: 40 }, svg, 'no recommended configuration to show'); return 0; }
    var byLayer = {};
    (c.reports || []).forEach(function (t) {
      var k = t.kind === 'TENSOR_KIND_V' ? 'V' : 'K';
      (byLayer[t.layer] = byLayer[t.layer] || {})[k] = t;
    });
    var ls = Object.keys(byLayer).map(Number).sort(function (a, b) { return a - b; });
    var ymax = 1;
    ls.forEach(function (l) { ['K', 'V'].forEach(function (k) { if (byLayer[l][k]) ymax = Math.max(ymax, byLayer[l][k].ratio); }); });
    ymax = Math.ceil(ymax * 1.1);
    var slot = (W - L - 10) / Math.max(1, ls.length), bw = Math.max(2, slot / 2 - 2), n = 0;
    el('line', { x1: L, y1: H - B, x2: W - 10, y2: H - B, class: 'axis' }, svg);
    for (var r = 0; r <= ymax; r++) el('text', { x: 6, y: H - B - r / ymax * (H - T - B) + 4 }, svg, r + 'x');
    ls.forEach(function (l, i) {
      ['K', 'V'].forEach(function (k, j) {
        var t = byLayer[l][k]; if (!t) return;
        var h = t.ratio / ymax * (H - T - B);
        var bar = el('rect', { x: L + i * slot + j * (bw + 2), y: H - B - h, width: bw, height: h, class: 'bar' + k }, svg);
        el('title', {}, bar, 'layer ' + l + ' ' + k + ': ' + t.ratio.toFixed(3) + 'x, ' + t.codec);
        n++;
      });
      if (ls.length <= 40 || i % Math.ceil(ls.length / 40) === 0) el('text', { x: L + i * slot, y: H - B + 14 }, svg, String(l));
    });
    el('text', { x: W / 2 - 60, y: H - 6 }, svg, 'layer (K blue, V green)');
    return n;
  }

  function table() {
    var t = document.getElementById('configs');
    // The engine's verdict (kvcomp analyze --engine-model), when the client ran it.
    var judged = configs.some(function (c) { return c.engine && c.engine.judged; });
    function engine(c) {
      var e = c.engine;
      if (!e || !e.judged) return '';
      return 'top-1 ' + e.top1.toFixed(3) + ', ' + e.free_running_agree + '/' + e.tokens +
        ' greedy, max KL ' + e.kl_max.toExponential(2);
    }
    var rows = '<tr><th>codec</th><th>K</th><th>V</th><th>KV</th><th>K worst cos</th><th>V worst cos</th>' +
      (judged ? '<th>engine (llama.cpp)</th>' : '') + '<th>verdict</th></tr>';
    configs.slice().sort(function (a, b) { return b.totals.ratio - a.totals.ratio; }).forEach(function (c) {
      rows += '<tr class="' + (c.codec === rec.codec ? 'recommended' : '') + '"><td>' + esc(c.codec) + '</td><td>' + c.ratio_k.toFixed(3) +
        '</td><td>' + c.ratio_v.toFixed(3) + '</td><td>' + c.totals.ratio.toFixed(3) + '</td><td>' +
        (c.lossless ? 'exact' : c.worst_k.cosine.toFixed(6)) + '</td><td>' + (c.lossless ? 'exact' : c.worst_v.cosine.toFixed(6)) +
        '</td>' + (judged ? '<td>' + esc(engine(c)) + '</td>' : '') + '<td>' + esc(c.verdict) + '</td></tr>';
    });
    t.innerHTML = rows;
  }

  var nk = pareto('pareto-k', 'K'), nv = pareto('pareto-v', 'V'), nb = layers();
  table();
  document.body.dataset.pointsK = nk;
  document.body.dataset.pointsV = nv;
  document.body.dataset.bars = nb;
  document.body.dataset.rendered = 'ok';
})();
</script>
</body></html>
)HTML";

std::string EscapeHtml(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

}  // namespace

std::string AnalyzeHtml(const kvcomp::v1::AnalyzeResponse& response, const std::string& title) {
  // "</" inside the JSON would end the <script> element early; "<\/" means the same in JSON.
  const std::string data = absl::StrReplaceAll(AnalyzeJson(response), {{"</", "<\\/"}});
  return absl::StrReplaceAll(kTemplate, {{"@TITLE@", EscapeHtml(title)}, {"@DATA@", data}});
}

}  // namespace kvcomp::report
