// Draws each contract's spend per day (last 30 days) from the JSON the server embedded.
(function () {
  const data = JSON.parse(document.getElementById("spend-figures").textContent);
  document.querySelectorAll("canvas[data-contract]").forEach((canvas) => {
    const series = data[canvas.dataset.contract];
    if (!series || !window.Chart) return;
    new Chart(canvas, {
      type: "bar",
      data: {labels: series.days, datasets: [{label: "spent per day", data: series.spent, backgroundColor: "#2456d6"}]},
      options: {plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true}}},
    });
  });
  document.body.dataset.chartsReady = "1";
})();
