// The rules screen: progressive enhancement only; every form works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var source = document.getElementById("rules-source");
  // A link to a line of the text (data-line: a mistake, the rule the form
  // wrote) selects that line in the text and scrolls to it.
  document.querySelectorAll("a[data-line]").forEach(function (a) {
    a.addEventListener("click", function (e) {
      if (!source) { return; }
      e.preventDefault();
      var line = parseInt(a.getAttribute("data-line"), 10);
      var lines = source.value.split("\n");
      var start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) { start += lines[i].length + 1; }
      var end = start + (lines[line - 1] || "").length;
      source.scrollIntoView({ block: "nearest" });
      source.focus();
      source.setSelectionRange(start, end);
      var height = parseFloat(window.getComputedStyle(source).lineHeight) || 18;
      source.scrollTop = Math.max(0, (line - 4) * height);
    });
  });
  // Enter in a field of the form of a rule writes the rule (without this
  // script, it previews the text, as in the other fields).
  var form = document.getElementById("rule-form");
  var write = document.getElementById("rule-write");
  if (form && write) {
    form.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && e.target.tagName === "INPUT") {
        e.preventDefault();
        write.click();
      }
    });
  }
});
