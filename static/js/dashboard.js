// Draws the admin dashboard's charts from the JSON the server embedded (no requests).
(function () {
  const data = JSON.parse(document.getElementById("dashboard-figures").textContent);
  const palette = ["#2456d6", "#f59e0b", "#ef4444", "#10b981", "#8b5cf6", "#64748b", "#ec4899"];
  const bar = (id, labels, values, label) => {
    const el = document.getElementById(id);
    if (!el) return;
    new Chart(el, {type: "bar", data: {labels, datasets: [{label, data: values, backgroundColor: palette[0]}]},
      options: {plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  };
  const groups = Object.keys(data.series);
  new Chart(document.getElementById("chart-flow"), {
    type: "bar",
    data: {labels: data.labels, datasets: groups.map((g, i) => ({label: g, data: data.series[g], backgroundColor: palette[i % palette.length]}))},
    options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}},
  });
  bar("chart-sources", Object.keys(data.sources), Object.values(data.sources), "leads");
  bar("chart-agents", Object.keys(data.agents), Object.values(data.agents), "leads");
  bar("chart-outcomes", Object.keys(data.outcomes), Object.values(data.outcomes), "attempts");
  if (data.turnover) {
    new Chart(document.getElementById("chart-turnover"), {type: "line",
      data: {labels: data.labels, datasets: [{label: "turnover", data: data.turnover, borderColor: palette[3], fill: false}]},
      options: {scales: {y: {beginAtZero: true}}}});
  }
  if (data.speed) {
    const line = (label, values, color) => ({label, data: values, borderColor: color, backgroundColor: color, spanGaps: true, fill: false});
    new Chart(document.getElementById("chart-speed"), {type: "line",
      data: {labels: data.speed.labels, datasets: [line("p50 (s)", data.speed.p50, palette[0]), line("p90 (s)", data.speed.p90, palette[2])]},
      options: {scales: {y: {beginAtZero: true, title: {display: true, text: "seconds"}}}}});
  }
  document.body.dataset.chartsReady = "1";
})();
