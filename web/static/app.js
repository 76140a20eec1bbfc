// mssdispatch dashboard: progressive enhancement only; every form works without it.
"use strict";
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
});
// Type-ahead of the directory: an input with data-suggest="ID" fills the
// datalist ID-list of the address field ID with the directory's mailboxes;
// choosing one may fill the name fields named by data-fill-*.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-suggest]").forEach(function (input) {
    var target = document.getElementById(input.getAttribute("data-suggest"));
    var list = target && document.getElementById(target.id + "-list");
    if (!list) { return; }
    var timer, found = {};
    var fill = function (attr, value) {
      var el = document.getElementById(input.getAttribute(attr) || "");
      if (el) { el.value = value || ""; }
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (input.value.trim().length < 2) { return; }
        fetch("/suggest?q=" + encodeURIComponent(input.value), { headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (results) {
            list.innerHTML = ""; found = {};
            results.forEach(function (m) {
              var o = document.createElement("option");
              o.value = m.address;
              o.label = [m.last_name, m.first_name, m.organisation, m.specialty].filter(Boolean).join(" ");
              list.appendChild(o); found[m.address] = m;
            });
            if (results.length && !target.value) { target.focus(); }
          });
      }, 200);
    });
    target.addEventListener("change", function () {
      var m = found[target.value];
      if (!m) { return; }
      fill("data-fill-family", m.last_name || m.organisation);
      fill("data-fill-given", m.first_name);
      fill("data-fill-id", m.national_id);
    });
  });
});
