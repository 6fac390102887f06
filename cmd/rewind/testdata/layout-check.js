// Appended to the HTML report by TestHTMLReportLayout: opens every
// details element, then records on <html data-layout> what breaks the
// layout rules of #20 item 8, as JSON: horizontal scrolling at the window's
// width, text that overflows its box (cells clipped on purpose with an
// ellipsis and a title excepted), SVG text outside its chart or over
// another label of the same chart.
(function () {
  var problems = [];
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  var doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) {
    problems.push("page is " + doc.scrollWidth + "px wide in a " + window.innerWidth + "px window");
  }
  document.querySelectorAll("h1, h2, dt, dd, li, p, summary, th, td").forEach(function (el) {
    var cs = getComputedStyle(el);
    if (cs.textOverflow === "ellipsis" && el.hasAttribute("title")) { return; }
    if (cs.textOverflow === "ellipsis" && el.tagName === "TH") { if (el.scrollWidth > el.clientWidth + 1) { problems.push("header cut: " + el.textContent); } return; }
    if (el.scrollWidth > el.clientWidth + 1) {
      problems.push(el.tagName.toLowerCase() + " overflows (" + el.scrollWidth + " > " + el.clientWidth + "): " + el.textContent.slice(0, 60));
    }
  });
  document.querySelectorAll("svg").forEach(function (svg) {
    var vb = svg.viewBox.baseVal;
    var boxes = [];
    svg.querySelectorAll("text").forEach(function (t) {
      var b = t.getBBox();
      var m = t.getCTM(), sm = svg.getCTM();
      // In the svg's own coordinates (rotated axis titles included).
      var r = t.getBoundingClientRect(), sr = svg.getBoundingClientRect();
      var x = r.left - sr.left, y = r.top - sr.top;
      if (x < -0.5 || y < -0.5 || x + r.width > sr.width + 0.5 || y + r.height > sr.height + 0.5) {
        problems.push("chart text outside its chart: " + t.textContent + " in " + (svg.querySelector("title") || {}).textContent);
      }
      if (t.getAttribute("class") === "ax") { boxes.push({ x: x, y: y, w: r.width, h: r.height, s: t.textContent }); }
    });
    for (var i = 0; i < boxes.length; i++) {
      for (var j = i + 1; j < boxes.length; j++) {
        var a = boxes[i], c = boxes[j];
        if (a.x < c.x + c.w - 0.5 && c.x < a.x + a.w - 0.5 && a.y < c.y + c.h - 0.5 && c.y < a.y + a.h - 0.5) {
          problems.push("chart labels overlap: " + a.s + " / " + c.s);
        }
      }
    }
  });
  doc.setAttribute("data-layout", JSON.stringify(problems));
})();
