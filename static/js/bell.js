// The header's bell: the unread count, kept live over the user's one notification stream.
(function () {
  "use strict";
  var bell = document.querySelector("a.bell[data-stream]");
  if (!bell || !window.EventSource) return;
  var count = bell.querySelector(".bell-count");

  function show(unread) {
    count.textContent = String(unread);
    count.hidden = unread <= 0;
    bell.setAttribute("aria-label", unread > 0
      ? bell.dataset.labelSome.replace("COUNT", String(unread))
      : bell.dataset.labelNone);
    bell.dataset.unread = String(unread);
  }

  function refresh() {
    fetch(bell.dataset.feed, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) show(data.unread); })
      .catch(function () {});
  }

  var source = new EventSource(bell.dataset.stream);
  source.onmessage = function (e) {
    var data;
    try { data = JSON.parse(e.data); } catch (err) { return; }
    if (data.type === "notifications_open") show(data.unread);
    else if (data.type === "notification") refresh();
  };
  window.addEventListener("pagehide", function () { source.close(); });
})();
