// Progressive enhancement only: every page works without this file.
// Copy buttons for the embed snippets (the textareas stay selectable without JavaScript).
(function () {
  "use strict";

  function announce(text) {
    var status = document.querySelector(".copy-status");
    if (status) {
      status.textContent = text;
    }
  }

  function fallbackCopy(field) {
    field.focus();
    field.select();
    try {
      return document.execCommand("copy");
    } catch (err) {
      return false;
    }
  }

  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-copy-target"));
    if (!field) {
      return;
    }
    var text = field.value;
    var done = function () {
      button.setAttribute("data-copied", "true");
      announce(button.textContent.replace(/^Copy /, "") + " snippet copied to the clipboard.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {
        if (fallbackCopy(field)) {
          done();
        } else {
          announce("Copy failed: select the text and copy it by hand.");
        }
      });
    } else if (fallbackCopy(field)) {
      done();
    } else {
      announce("Copy failed: select the text and copy it by hand.");
    }
  }

  function init() {
    var buttons = document.querySelectorAll("button.copy[data-copy-target]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        copy(button);
      });
    });
    var fields = document.querySelectorAll("textarea.snippet-text");
    Array.prototype.forEach.call(fields, function (field) {
      field.addEventListener("focus", function () {
        field.select();
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
