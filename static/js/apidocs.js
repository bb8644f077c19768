/* The API docs page (Swagger UI) in the site's theme: Swagger UI's stylesheet has a dark
   mode keyed on <html class="dark-mode">. Dark when the header's toggle chose dark
   (theme.js sets data-theme), or without a choice when the system prefers dark. */
(function () {
  "use strict";
  var root = document.documentElement;
  var system = window.matchMedia("(prefers-color-scheme: dark)");
  function apply() {
    var chosen = root.getAttribute("data-theme");
    root.classList.toggle("dark-mode", chosen ? chosen === "dark" : system.matches);
  }
  apply();
  system.addEventListener("change", apply);
})();
