"""The site's static files: one stylesheet and the failures view's script (vanilla JS, no
framework, nothing fetched: the site works offline from ``file://``)."""

from __future__ import annotations

__all__ = ["FAILURES_JS", "STYLE_CSS"]

STYLE_CSS = """\
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 12px;
  color: #222; background: #fafafa; }
a { color: #1f5fa8; }
h1, h2, h3 { margin: 0.6em 0 0.3em; }
nav.pages { margin: 8px 0; }
nav.pages a, nav.pages span { margin-right: 10px; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
.charts { display: flex; flex-wrap: wrap; gap: 14px; }
.chart { background: #fff; border: 1px solid #e3e3e3; }
.chart .ct { font-weight: 600; font-size: 12px; }
.chart .cl, .chart .cv { font-size: 11px; }
.sample { background: #fff; border: 1px solid #ddd; border-radius: 6px; margin: 14px 0;
  padding: 10px 12px; }
.sample.fail { border-left: 5px solid #c0392b; }
.sample.pass { border-left: 5px solid #27ae60; }
.head { color: #555; font-size: 12px; }
.turn { margin: 6px 0; padding: 6px 8px; border-radius: 4px; }
.turn.user { background: #eef3fa; }
.turn.assistant { background: #eef8ee; }
.role { font-weight: 600; font-size: 12px; color: #444; }
.text { white-space: pre-wrap; word-break: break-word; }
img.view { max-width: 100%; max-height: 420px; display: block; margin: 4px 0; }
.strip { display: flex; flex-wrap: wrap; gap: 3px; padding: 4px 0; }
.strip img { height: 80px; flex: none; }
.figs { display: flex; gap: 8px; flex-wrap: wrap; align-items: flex-start; }
.figs figure { margin: 0; }
.figs img { max-height: 400px; max-width: 100%; }
pre { background: #f4f4f4; padding: 6px; overflow-x: auto; font-size: 12px; margin: 4px 0; }
.answer { font-weight: 600; white-space: pre-wrap; }
.score { font-weight: 600; }
.filters { display: flex; gap: 14px; align-items: center; margin: 8px 0; flex-wrap: wrap; }
#fail-table img { height: 48px; }
"""

FAILURES_JS = """\
"use strict";
(function () {
  var data = window.VST_PREDICTIONS || [];
  var LIMIT = 500;
  var task = document.getElementById("f-task");
  var scene = document.getElementById("f-scene");
  var maxScore = document.getElementById("f-max");
  var body = document.querySelector("#fail-table tbody");
  var count = document.getElementById("f-count");
  data.sort(function (a, b) {
    return a.score - b.score || (a.task < b.task ? -1 : a.task > b.task ? 1 : 0) ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  });
  function options(select, values) {
    values.forEach(function (v) {
      var o = document.createElement("option");
      o.value = v; o.textContent = v; select.appendChild(o);
    });
  }
  function unique(key) {
    var seen = {};
    data.forEach(function (r) { seen[r[key]] = true; });
    return Object.keys(seen).sort();
  }
  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text; tr.appendChild(td); return td;
  }
  function render() {
    var t = task.value, s = scene.value, m = parseFloat(maxScore.value);
    if (isNaN(m)) { m = 1; }
    var shown = data.filter(function (r) {
      return (!t || r.task === t) && (!s || r.scene === s) && r.score <= m;
    });
    body.textContent = "";
    shown.slice(0, LIMIT).forEach(function (r) {
      var tr = document.createElement("tr");
      tr.className = "row";
      tr.dataset.task = r.task; tr.dataset.scene = r.scene; tr.dataset.score = r.score;
      var td = document.createElement("td");
      if (r.thumb) {
        var img = document.createElement("img");
        img.src = r.thumb; img.alt = r.id; td.appendChild(img);
      }
      tr.appendChild(td);
      cell(tr, r.score.toFixed(3)).className = "score";
      cell(tr, r.task); cell(tr, r.scene); cell(tr, r.answer); cell(tr, r.reference);
      var link = document.createElement("a");
      link.href = r.href; link.textContent = r.id;
      cell(tr, "").appendChild(link);
      body.appendChild(tr);
    });
    count.textContent = shown.length + " of " + data.length + " predictions" +
      (shown.length > LIMIT ? " (first " + LIMIT + " listed)" : "");
  }
  options(task, unique("task"));
  options(scene, unique("scene"));
  [task, scene, maxScore].forEach(function (el) {
    el.addEventListener("input", render); el.addEventListener("change", render);
  });
  render();
})();
"""
