// pmolens web app: draws the charts whose specs the server embedded, and wires the print button.
// No framework, no build step; plotly.js comes from /static/plotly.min.js when a page has charts.
(function () {
  "use strict";
  function drawCharts() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("script.plotly-spec").forEach(function (node) {
      var spec = JSON.parse(node.textContent);
      var target = document.createElement("div");
      target.className = "chart";
      node.parentNode.insertBefore(target, node);
      Plotly.newPlot(target, spec.data, spec.layout || {}, {
        displayModeBar: false, responsive: true, staticPlot: !!spec.static
      });
      if (spec.links) {  // a point links to the page behind it
        target.on("plotly_click", function (event) {
          var point = event.points && event.points[0];
          var href = point && spec.links[point.pointNumber];
          if (href) window.location.href = href;
        });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
