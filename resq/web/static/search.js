// resq dashboard: after a search (/search?id=ID, answered 404 when no job has that id), keep the id in the box.
(function () {
  "use strict";
  if (!/\/search$/.test(window.location.pathname)) return;
  var box = document.getElementById("search-id");
  var id = new URLSearchParams(window.location.search).get("id");
  if (box && id) box.value = id;
})();
