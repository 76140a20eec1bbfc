// mssdispatch dashboard: progressive enhancement only; every form works without it.
"use strict";
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
});
// Type-ahead of the directory: an input with data-suggest="ID" becomes a
// combobox listing the directory's mailboxes under it as the user types (the
// focus stays there). Picking one, by click or by the arrow keys then Enter,
// puts its address in the field ID, fills the name fields named by
// data-fill-*, and only then moves the focus to the address; Escape closes the
// list. The mailboxes also fill the datalist ID-list of the address field,
// where choosing one fills the names the same way.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-suggest]").forEach(function (input) {
    var target = document.getElementById(input.getAttribute("data-suggest"));
    var list = target && document.getElementById(target.id + "-list");
    if (!list) { return; }
    var box = document.createElement("ul");
    box.id = input.id + "-suggestions";
    box.className = "suggestions";
    box.setAttribute("role", "listbox");
    box.setAttribute("aria-label", "Suggestions de l'annuaire");
    box.hidden = true;
    var wrap = document.createElement("span");
    wrap.className = "suggest";
    input.parentNode.insertBefore(wrap, input);
    wrap.append(input, box);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", box.id);
    input.setAttribute("aria-expanded", "false");
    var timer, asked = 0, found = {}, results = [], active = -1;
    var fill = function (attr, value) {
      var el = document.getElementById(input.getAttribute(attr) || "");
      if (el) { el.value = value || ""; }
    };
    var fillNames = function (m) {
      fill("data-fill-family", m.last_name || m.organisation);
      fill("data-fill-given", m.first_name);
      fill("data-fill-id", m.national_id);
    };
    var highlight = function (i) {
      active = i;
      Array.prototype.forEach.call(box.children, function (li, j) { li.setAttribute("aria-selected", String(j === i)); });
      if (i < 0) { input.removeAttribute("aria-activedescendant"); return; }
      input.setAttribute("aria-activedescendant", box.children[i].id);
      box.children[i].scrollIntoView({ block: "nearest" });
    };
    var open = function (yes) {
      box.hidden = !yes;
      input.setAttribute("aria-expanded", String(yes));
      highlight(-1);
    };
    var pick = function (i) {
      target.value = results[i].address;
      fillNames(results[i]);
      open(false);
      target.focus();
    };
    var render = function () {
      box.replaceChildren();
      results.forEach(function (m, i) {
        var li = document.createElement("li");
        li.id = box.id + "-" + i;
        li.setAttribute("role", "option");
        var who = document.createElement("strong");
        who.textContent = [m.last_name, m.first_name].filter(Boolean).join(" ") || m.organisation;
        var where = document.createElement("small");
        where.textContent = [m.last_name ? m.organisation : "", m.specialty, m.address].filter(Boolean).join(" · ");
        li.append(who, " ", where);
        li.addEventListener("mousedown", function (e) { e.preventDefault(); });
        li.addEventListener("click", function () { pick(i); });
        box.appendChild(li);
      });
      open(results.length > 0 && document.activeElement === input);
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var n = ++asked;
      if (input.value.trim().length < 2) { results = []; open(false); return; }
      timer = setTimeout(function () {
        fetch("/suggest?q=" + encodeURIComponent(input.value), { headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (mailboxes) {
            if (n !== asked) { return; }
            results = mailboxes;
            list.replaceChildren(); found = {};
            results.forEach(function (m) {
              var o = document.createElement("option");
              o.value = m.address;
              o.label = [m.last_name, m.first_name, m.organisation, m.specialty].filter(Boolean).join(" ");
              list.appendChild(o); found[m.address] = m;
            });
            render();
          });
      }, 200);
    });
    input.addEventListener("keydown", function (e) {
      var n = results.length;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        if (!n) { return; }
        e.preventDefault();
        if (box.hidden) { open(true); }
        highlight(e.key === "ArrowDown" ? (active + 1) % n : (active > 0 ? active : n) - 1);
      } else if (e.key === "Enter" && !box.hidden && active >= 0) {
        e.preventDefault();
        pick(active);
      } else if (e.key === "Escape" && !box.hidden) {
        e.preventDefault();
        open(false);
      }
    });
    input.addEventListener("blur", function () { open(false); });
    target.addEventListener("change", function () {
      var m = found[target.value];
      if (m) { fillNames(m); }
    });
  });
});
