// scalerd's live page: every 2 s ask the server whether anything changed (the newest
// record this page shows is sent along); if so, swap <main> for the new one. Written for
// scalerd; no library. Focus is put back on the same link, so keyboard users keep their place.
(function () {
  "use strict";
  var status = document.getElementById("live-status");
  function main() { return document.querySelector("main[data-live]"); }
  function say(text) { if (status) { status.textContent = text; } }
  function keyOf(element) {
    if (!element || !main().contains(element)) { return null; }
    return element.getAttribute("href") || element.id || null;
  }
  function refocus(key) {
    if (!key) { return; }
    var found = main().querySelector('[href="' + CSS.escape(key) + '"], #' + CSS.escape(key));
    if (found) { found.focus(); }
  }
  function poll() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), { headers: { "X-Scalerd-Newest": main().dataset.newest || "" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 204) { say("live · up to date"); return null; }
        if (!response.ok) { say("live · the server answered " + response.status); return null; }
        return response.text();
      })
      .then(function (text) {
        if (!text) { return; }
        var template = document.createElement("template");
        template.innerHTML = text;
        var fresh = template.content.querySelector("main[data-live]");
        if (!fresh) { return; }
        var key = keyOf(document.activeElement);
        var open = Array.prototype.map.call(main().querySelectorAll("details[open]"), function (d) { return d.className; });
        main().replaceWith(fresh);
        open.forEach(function (name) { var d = fresh.querySelector("details." + name); if (d) { d.open = true; } });
        refocus(key);
        say("live · updated " + new Date().toISOString().slice(11, 19) + " UTC");
      })
      .catch(function () { say("live · scalerd is not answering; retrying"); })
      .then(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 2000);

  // a chart mark's decision, shown beside it on hover and on keyboard focus (a tap opens it)
  var tip = document.createElement("div");
  tip.id = "mark-tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  document.body.appendChild(tip);
  function markOf(event) {
    var target = event.target;
    return target && target.closest ? target.closest("a.mark") : null;
  }
  function show(event) {
    var mark = markOf(event);
    if (!mark) { return; }
    tip.textContent = mark.getAttribute("aria-label");
    tip.hidden = false;
    var box = mark.getBoundingClientRect();
    var left = Math.min(window.scrollX + box.left, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 8);
    tip.style.left = Math.max(window.scrollX + 4, left) + "px";
    tip.style.top = (window.scrollY + box.bottom + 6) + "px";
  }
  function hide(event) { if (markOf(event)) { tip.hidden = true; } }
  document.addEventListener("mouseover", show);
  document.addEventListener("focusin", show);
  document.addEventListener("mouseout", hide);
  document.addEventListener("focusout", hide);
})();
