// The rating page's keyboard shortcuts and rationale drafts. The page works without it:
// every action is a plain form.
(function () {
  "use strict";

  var form = document.getElementById("choice-form");
  if (!form) {
    return;
  }
  var message = document.getElementById("choice-message");
  var rationale = document.getElementById("rationale");
  var skipPanel = document.getElementById("skip-panel");
  var flagPanel = document.getElementById("flag-panel");
  var helpPanel = document.getElementById("shortcuts");
  var draftKey = "pickwise:rationale:" + form.dataset.assignment;
  var submitting = false;

  var choiceKeys = {
    "1": "left",
    ArrowLeft: "left",
    "2": "right",
    ArrowRight: "right",
    "3": "tie",
    "4": "both_bad"
  };

  // localStorage can be missing or full (private windows, quotas): drafts are a nicety.
  function draft(action, value) {
    try {
      if (action === "load") {
        return window.localStorage.getItem(draftKey);
      }
      if (action === "save" && value) {
        window.localStorage.setItem(draftKey, value);
      } else {
        window.localStorage.removeItem(draftKey);
      }
    } catch (error) {
      return null;
    }
    return null;
  }

  if (rationale) {
    var saved = draft("load");
    if (saved && !rationale.value) {
      rationale.value = saved;
    }
    rationale.addEventListener("input", function () {
      draft("save", rationale.value);
    });
  }

  form.addEventListener("submit", function (event) {
    if (submitting) {
      event.preventDefault();
      return;
    }
    var choice = event.submitter ? event.submitter.value : "";
    var decisive = choice === "left" || choice === "right";
    if (decisive && form.dataset.needsStrength === "true" &&
        !form.querySelector('input[name="strength"]:checked')) {
      event.preventDefault();
      message.textContent = "First pick how much better the " + choice + " answer is.";
      form.querySelector('input[name="strength"]').focus();
      return;
    }
    submitting = true;
    draft("clear");
  });

  [skipPanel, flagPanel].forEach(function (panel) {
    var panelForm = panel && panel.querySelector("form");
    if (panelForm) {
      panelForm.addEventListener("submit", function () {
        draft("clear");
      });
    }
  });

  // Back from the next page: this copy is stale (lease and idempotency key), so reload it.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload();
    }
  });

  function isTyping(element) {
    if (!element || !element.tagName) {
      return false;
    }
    if (element.isContentEditable) {
      return true;
    }
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") {
      return true;
    }
    if (tag === "INPUT") {
      return ["radio", "checkbox", "button", "submit", "reset"].indexOf(element.type) === -1;
    }
    return false;
  }

  function openPanel(panel) {
    panel.open = true;
    var first = panel.querySelector("input:not([type=hidden]), textarea, button");
    (first || panel.querySelector("summary")).focus();
  }

  function choose(choice) {
    var button = form.querySelector('button[name="choice"][value="' + choice + '"]');
    if (!button) {
      return false;
    }
    if (form.requestSubmit) {
      form.requestSubmit(button);
    } else {
      button.click();
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey ||
        event.isComposing) {
      return;
    }
    var target = event.target;
    var key = event.key;
    if (key === "Escape") {
      [skipPanel, flagPanel, helpPanel].forEach(function (panel) {
        if (panel && panel.open && panel.contains(target)) {
          panel.open = false;
          panel.querySelector("summary").focus();
        }
      });
      return;
    }
    if (isTyping(target)) {
      return;
    }
    // Inside the skip or flag form, keys belong to that form.
    if (target.closest && target.closest("#skip-panel, #flag-panel")) {
      return;
    }
    // Arrow keys move between radio buttons; leave them to the browser there.
    if ((key === "ArrowLeft" || key === "ArrowRight") && target.tagName === "INPUT") {
      return;
    }
    if (Object.prototype.hasOwnProperty.call(choiceKeys, key)) {
      if (choose(choiceKeys[key])) {
        event.preventDefault();
      }
    } else if ((key === "s" || key === "S") && skipPanel) {
      event.preventDefault();
      openPanel(skipPanel);
    } else if (key === "?" && helpPanel) {
      event.preventDefault();
      helpPanel.open = !helpPanel.open;
      if (helpPanel.open) {
        helpPanel.querySelector("summary").focus();
      }
    }
  });
})();
