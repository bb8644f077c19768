/* The layout's behaviour on every page (loaded by base.html): the phone menu,
   the theme toggle, and confirmation dialogs for [data-confirm]. No inline
   script anywhere (CSP): everything here hooks onto markup and data- attributes. */
(function () {
  "use strict";

  // -- the navigation menu on narrow screens ----------------------------------
  var menu = document.querySelector(".topbar .menu-button");
  var nav = menu && document.getElementById(menu.getAttribute("aria-controls"));

  function setMenu(open) {
    if (!menu || !nav) return;
    menu.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("open", open);
  }

  if (menu && nav) {
    menu.addEventListener("click", function () {
      setMenu(menu.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.getAttribute("aria-expanded") === "true") {
        setMenu(false);
        menu.focus();
      }
    });
    document.addEventListener("click", function (event) {
      var target = event.target;
      if (menu.getAttribute("aria-expanded") === "true" &&
          !nav.contains(target) && !menu.contains(target)) {
        setMenu(false);
      }
    });
  }

  // -- light and dark themes ----------------------------------------------------
  var toggle = document.getElementById("theme-toggle");
  var root = document.documentElement;
  var system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function currentTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") return chosen;
    return system && system.matches ? "dark" : "light";
  }

  function showTheme() {
    if (!toggle) return;
    var dark = currentTheme() === "dark";
    toggle.setAttribute("aria-pressed", dark ? "true" : "false");
    toggle.title = dark ? "Dark theme (switch to light)" : "Light theme (switch to dark)";
  }

  if (toggle) {
    showTheme();
    toggle.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try {
        window.localStorage.setItem("mqb-theme", next);
      } catch (e) {
        /* not remembered: storage refused */
      }
      showTheme();
    });
    if (system && system.addEventListener) system.addEventListener("change", showTheme);
  }

  // -- confirmation dialogs -------------------------------------------------------
  // A form (or a submit button) with data-confirm="Question?" asks in a modal
  // <dialog> before it submits; data-confirm-danger makes the confirm button red.
  var confirmed = new WeakSet();

  function ask(question, danger, label, onConfirm, returnFocus) {
    var dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-text");
    var text = document.createElement("p");
    text.id = "confirm-dialog-text";
    text.textContent = question;
    var actions = document.createElement("div");
    actions.className = "dialog-actions";
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    var ok = document.createElement("button");
    ok.type = "button";
    ok.className = danger ? "btn btn-danger" : "btn btn-primary";
    ok.textContent = label || "Confirm";
    actions.append(cancel, ok);
    dialog.append(text, actions);
    document.body.append(dialog);

    var accepted = false;
    cancel.addEventListener("click", function () { dialog.close(); });
    ok.addEventListener("click", function () { accepted = true; dialog.close(); });
    dialog.addEventListener("close", function () {
      dialog.remove();
      if (accepted) onConfirm();
      else if (returnFocus && returnFocus.focus) returnFocus.focus();
    });
    dialog.showModal();
    (danger ? cancel : ok).focus();
  }

  function confirmLabel(button) {
    if (!button) return "";
    return button.getAttribute("data-confirm-label") ||
      (button.textContent || button.value || "").trim();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var submitter = event.submitter || null;
    var source = submitter && submitter.hasAttribute("data-confirm") ? submitter
      : form.hasAttribute("data-confirm") ? form : null;
    if (!source) return;
    if (confirmed.has(form)) {
      confirmed.delete(form);
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    var danger = source.hasAttribute("data-confirm-danger") ||
      form.hasAttribute("data-confirm-danger");
    var question = source.getAttribute("data-confirm");
    ask(question, danger, confirmLabel(submitter), function () {
      confirmed.add(form);
      if (form.requestSubmit) form.requestSubmit(submitter || undefined);
      else form.submit();
    }, submitter);
  }, true);
  // A table box that scrolls sideways can be reached and scrolled by keyboard: it takes focus
  // (tabindex 0) as a named region while its table is wider than it, and gives it back when not.
  function boxName(box) {
    var table = box.querySelector("table");
    var caption = table && table.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    if (table && table.getAttribute("aria-label")) return table.getAttribute("aria-label");
    var node = box;
    while (node && node !== document.body) {
      var before = node.previousElementSibling;
      while (before) {
        if (/^H[1-6]$/.test(before.tagName)) return before.textContent.trim();
        var inner = before.querySelector && before.querySelector("h1, h2, h3, h4, h5, h6");
        if (inner) return inner.textContent.trim();
        before = before.previousElementSibling;
      }
      node = node.parentElement;
    }
    return "Table";
  }
  function markScrollers() {
    document.querySelectorAll(".table-scroll").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", boxName(box) + " (scrolls sideways)");
        box.dataset.scrollFocus = "";
      } else if (!scrolls && box.hasAttribute("data-scroll-focus")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
        delete box.dataset.scrollFocus;
      }
    });
  }
  var pending = null;
  function markSoon() {
    if (pending !== null) return;
    pending = window.setTimeout(function () { pending = null; markScrollers(); }, 100);
  }
  document.addEventListener("DOMContentLoaded", function () {
    markScrollers();
    window.addEventListener("resize", markSoon);
    var main = document.querySelector("main");
    if (main && window.MutationObserver) {
      new MutationObserver(markSoon).observe(main, { childList: true, subtree: true });
    }
  });
})();
