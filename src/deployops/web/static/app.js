// deployops dashboard: live updates (server-sent events), actions through the JSON API,
// and the rule charts (Chart.js, vendored). No build step.
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  var charts = [];

  function say(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  function api(method, path, payload) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Deployops-Request": "1" },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    }).then(function (resp) {
      return resp.json().then(function (data) { return { status: resp.status, data: data }; });
    });
  }

  function errorText(data) {
    var err = (data && data.error) || {};
    var text = err.message || "request failed";
    (err.issues || []).forEach(function (i) { text += " — " + i.path + ": " + i.message; });
    return text;
  }

  function opLink(el, data) {
    el.textContent = "";
    el.className = "";
    el.appendChild(document.createTextNode(data.kind + " started: "));
    var a = document.createElement("a");
    a.href = data.links.page || data.links.self;
    a.textContent = data.id;
    el.appendChild(a);
  }

  // ------------------------------------------------------------------ charts
  function clock(ms) { return new Date(ms).toISOString().substring(11, 19); }

  function drawRuleCharts() {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    if (typeof Chart === "undefined") return;
    var holder = document.getElementById("charts-data");
    if (holder) {
      JSON.parse(holder.textContent).forEach(function (c, i) {
        var canvas = document.getElementById("chart-" + (i + 1));
        if (canvas) charts.push(ruleChart(canvas, c));
      });
    }
    var trend = document.getElementById("trend-data");
    var canvas = document.getElementById("trend-chart");
    if (trend && canvas) charts.push(trendChart(canvas, JSON.parse(trend.textContent)));
  }

  function pts(series) {
    return series.filter(function (p) { return p.value !== null; })
      .map(function (p) { return { x: Date.parse(p.t), y: p.value }; });
  }

  function ruleChart(canvas, c) {
    var values = pts(c.series);
    var base = pts(c.baseline);
    var xs = values.concat(base).map(function (p) { return p.x; });
    c.decisions.forEach(function (d) { xs.push(Date.parse(d.at)); });
    var x0 = Math.min.apply(null, xs.length ? xs : [0]);
    var x1 = Math.max.apply(null, xs.length ? xs : [1]);
    var ys = values.concat(base).map(function (p) { return p.y; }).concat([c.threshold]);
    var ymax = Math.max.apply(null, ys) * 1.15 || 1;
    var datasets = [
      { label: c.metric + " (" + c.statistic + ")", data: values, borderColor: "#1f4e9c",
        backgroundColor: "#1f4e9c", pointRadius: 3, borderWidth: 2 },
      { label: "threshold " + c.comparison + " " + c.threshold, data: [{ x: x0, y: c.threshold }, { x: x1, y: c.threshold }],
        borderColor: "#b3261e", borderDash: [6, 4], pointRadius: 0, borderWidth: 2 },
    ];
    if (base.length) {
      datasets.push({ label: "baseline (previous version)", data: base, borderColor: "#5f6368",
        backgroundColor: "#5f6368", borderDash: [2, 3], pointRadius: 2, borderWidth: 1.5 });
    }
    if (c.window.from && c.window.to) {
      datasets.push({ label: "evaluation window", data: [{ x: Date.parse(c.window.from), y: ymax }, { x: Date.parse(c.window.to), y: ymax }],
        borderColor: "rgba(255,193,7,0)", backgroundColor: "rgba(255,193,7,0.22)", fill: "origin", pointRadius: 0 });
    }
    datasets.push({ label: "decision", type: "scatter",
      data: c.decisions.map(function (d) { return { x: Date.parse(d.at), y: c.threshold, action: d.action }; }),
      pointStyle: "triangle", pointRadius: 9, borderColor: "#8c1d18", backgroundColor: "#b3261e" });
    return new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        scales: {
          x: { type: "linear", ticks: { callback: function (v) { return clock(v); }, maxTicksLimit: 8 } },
          y: { beginAtZero: true, suggestedMax: ymax },
        },
        plugins: { tooltip: { callbacks: {
          title: function (items) { return items.length ? clock(items[0].parsed.x) : ""; },
          afterLabel: function (item) { return item.raw && item.raw.action ? "action: " + item.raw.action : ""; },
        } } },
      },
    });
  }

  function trendChart(canvas, delivery) {
    var days = null;
    var deploys = {}, failed = {};
    Object.keys(delivery.services).forEach(function (name) {
      var t = delivery.services[name].trend;
      days = days || t.map(function (b) { return b.day.substring(5); });
      t.forEach(function (b, i) {
        deploys[i] = (deploys[i] || 0) + b.deployments;
        failed[i] = (failed[i] || 0) + b.failed;
      });
    });
    days = days || [];
    return new Chart(canvas, {
      type: "bar",
      data: { labels: days, datasets: [
        { label: "deployments", data: days.map(function (_, i) { return deploys[i] || 0; }), backgroundColor: "#1f4e9c" },
        { label: "failed or rolled back", data: days.map(function (_, i) { return failed[i] || 0; }), backgroundColor: "#b3261e" },
      ] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  // ------------------------------------------------------------------ live updates
  var pending = null;
  function refresh() {
    var url = body.getAttribute("data-fragment");
    if (!url) return;
    fetch(url, { credentials: "same-origin" }).then(function (resp) {
      if (!resp.ok) return null;
      return resp.text();
    }).then(function (html) {
      if (html === null || html === undefined) return;
      var holder = document.getElementById("fragment");
      holder.innerHTML = html;
      drawRuleCharts();
      body.setAttribute("data-refreshed", String(Date.now()));
    });
  }

  function subscribe() {
    if (!body.getAttribute("data-fragment") || typeof EventSource === "undefined") return;
    var source = new EventSource("/api/events");
    var only = body.getAttribute("data-deployment");
    source.addEventListener("open", function () { say(live, "live"); });
    source.addEventListener("error", function () { say(live, "reconnecting…"); });
    source.addEventListener("event", function (msg) {
      var ev = JSON.parse(msg.data);
      if (only && ev.deployment_id && ev.deployment_id !== only) return;
      if (ev.kind === "progress") return;
      if (pending) return;
      pending = setTimeout(function () { pending = null; refresh(); }, 250);
    });
  }

  // ------------------------------------------------------------------ actions
  var form = document.getElementById("deploy-form");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var out = document.getElementById("deploy-result");
      var payload = { service: form.service.value, version: form.version.value.trim() };
      if (form.strategy.value) payload.strategy = form.strategy.value;
      say(out, "starting…");
      api("POST", "/api/deployments", payload).then(function (r) {
        if (r.status === 202) opLink(out, r.data); else say(out, errorText(r.data), true);
      });
    });
  }

  var dep = body.getAttribute("data-deployment");
  var preview = document.getElementById("rollback-preview");
  if (preview && dep) {
    preview.addEventListener("click", function () {
      var out = document.getElementById("action-result");
      api("POST", "/api/deployments/" + dep + "/rollback", { dry_run: true }).then(function (r) {
        if (r.status !== 200) { say(out, errorText(r.data), true); return; }
        var checks = document.getElementById("rollback-checks");
        var steps = document.getElementById("rollback-steps");
        checks.innerHTML = ""; steps.innerHTML = "";
        r.data.checks.forEach(function (c) {
          var li = document.createElement("li");
          li.textContent = c.status + " — " + c.name + ": " + c.detail;
          checks.appendChild(li);
        });
        r.data.steps.forEach(function (s) {
          var li = document.createElement("li");
          li.textContent = s.phase + ": " + s.step;
          steps.appendChild(li);
        });
        say(out, "rollback to " + r.data.to_version + " (" + r.data.mode + ")");
        document.getElementById("rollback-plan").hidden = false;
        document.getElementById("rollback-confirm").focus();
      });
    });
    document.getElementById("rollback-confirm").addEventListener("click", function () {
      var out = document.getElementById("action-result");
      api("POST", "/api/deployments/" + dep + "/rollback", { dry_run: false }).then(function (r) {
        if (r.status === 202) opLink(out, r.data); else say(out, errorText(r.data), true);
      });
    });
  }
  var resume = document.getElementById("resume-button");
  if (resume && dep) {
    resume.addEventListener("click", function () {
      var out = document.getElementById("action-result");
      api("POST", "/api/deployments/" + dep + "/resume", {}).then(function (r) {
        if (r.status === 202) opLink(out, r.data); else say(out, errorText(r.data), true);
      });
    });
  }

  drawRuleCharts();
  subscribe();
})();
