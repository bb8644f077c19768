/* The theme chosen with the header's toggle, applied before the page paints.
   Without a choice the page follows the system (prefers-color-scheme). */
(function () {
  "use strict";
  try {
    var theme = window.localStorage.getItem("mqb-theme");
    if (theme === "light" || theme === "dark") {
      document.documentElement.setAttribute("data-theme", theme);
    }
  } catch (e) {
    /* storage refused (private mode): follow the system */
  }
})();
