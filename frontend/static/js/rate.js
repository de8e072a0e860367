// The rating page's keyboard, its messages, the new-pair cue and its address after a form was
// sent. The page works without it: every action is a plain form, answered with the next pair.
//
// A whole judgment takes two keys at most: the side (1 or ←, 2 or →), then how much better
// (1, 2, 3 … on the project's strength scale), which sends it. A tie (3) or "both are bad"
// (4) is one key, and so is a side once a strength is already ticked. Esc takes the side
// back. The same works with the mouse or a finger: a side, then a strength.
(function () {
  "use strict";

  // The answer to a form (a choice, skip or flag) is the next pair, sent with it: the address
  // bar then shows the form's action, which a reload would send again. Show the rating page's
  // own address instead, so a reload, a bookmark or back asks for the current pair.
  var head = document.querySelector(".rate-head[data-page-url]");
  if (head && window.history.replaceState) {
    window.history.replaceState(null, "", head.dataset.pageUrl);
  }

  var form = document.getElementById("choice-form");
  if (!form) {
    return;
  }
  var message = document.getElementById("choice-message");
  var cue = document.getElementById("pair-cue");
  var rationale = document.getElementById("rationale");
  var criteria = document.getElementById("criteria");
  var undoLink = document.getElementById("undo-link");
  var flash = document.querySelector(".flash:not(.editing-note)");
  var skipPanel = document.getElementById("skip-panel");
  var flagPanel = document.getElementById("flag-panel");
  var helpPanel = document.getElementById("shortcuts");
  var strengths = Array.prototype.slice.call(form.querySelectorAll('input[name="strength"]'));
  var stacked = window.matchMedia(form.dataset.stackedQuery);
  var draftKey = "pickwise:rationale:" + form.dataset.assignment;
  // A choice waiting for its strength (after a side key) or for the required reason.
  var pending = null;
  var touchOnly = window.matchMedia("(hover: none) and (pointer: coarse)").matches;
  var submitting = false;

  var sideKeys = { "1": "left", ArrowLeft: "left", "2": "right", ArrowRight: "right" };
  var otherKeys = { "3": "tie", "4": "both_bad" };

  // --- storage: drafts and the last pair seen are niceties (private windows, quotas) -------

  // Drafts live in localStorage (they survive a closed tab); the last pair seen in this tab
  // in sessionStorage.
  function stored(action, key, value, where) {
    try {
      var storage = where === "session" ? window.sessionStorage : window.localStorage;
      if (action === "get") {
        return storage.getItem(key);
      }
      if (action === "set" && value) {
        storage.setItem(key, value);
      } else {
        storage.removeItem(key);
      }
    } catch (error) {
      return null;
    }
    return null;
  }

  if (rationale) {
    var saved = stored("get", draftKey);
    if (saved && !rationale.value) {
      rationale.value = saved;
    }
    rationale.addEventListener("input", function () {
      stored("set", draftKey, rationale.value);
    });
  }

  // "Today" is the rater's own day: the server counts from their midnight.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) {
      document.cookie = "pickwise_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (error) {
    // No Intl: the day is counted in UTC.
  }

  // --- messages ----------------------------------------------------------------------------

  function sideWord(side) {
    var words = stacked.matches ? { left: "top", right: "bottom" } : { left: "left", right: "right" };
    return words[side];
  }

  function say(text, isProblem) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isProblem));
  }

  // Once the rater acts on this pair, the last pair's notes are out of date.
  function retireOldNotes() {
    if (flash) {
      flash.hidden = true;
      flash = null;
    }
    if (cue) {
      cue.textContent = "";
      cue.classList.remove("shown");
    }
  }

  function strengthKeysText() {
    return strengths
      .slice(0, 10)
      .map(function (input, index) {
        return String((index + 1) % 10) + " " + input.dataset.label;
      })
      .join(", ");
  }

  function setPending(choice) {
    pending = choice;
    form.querySelectorAll('button[name="choice"]').forEach(function (button) {
      button.classList.toggle("pending", button.value === choice);
    });
  }

  function cancelPending() {
    setPending(null);
    say("");
  }

  function awaitingStrength() {
    return (pending === "left" || pending === "right") && strengths.length > 0 && !checkedStrength();
  }

  function checkedStrength() {
    return form.querySelector('input[name="strength"]:checked');
  }

  function rationaleMissing() {
    return form.dataset.rationale === "required" && rationale && !rationale.value.trim();
  }

  // --- sending -----------------------------------------------------------------------------

  function send(choice) {
    var button = form.querySelector('button[name="choice"][value="' + choice + '"]');
    if (!button || submitting) {
      return false;
    }
    if (form.requestSubmit) {
      form.requestSubmit(button);
    } else {
      button.click();
    }
    return true;
  }

  // What is still missing before `choice` can be sent, said once; true when nothing is.
  function ready(choice) {
    setPending(choice);
    if (awaitingStrength()) {
      var word = sideWord(choice);
      var question = word.charAt(0).toUpperCase() + word.slice(1) + " is better. How much?";
      // A touch-only phone has no keys to name, and every line of the bar hides the answers.
      say(touchOnly ? question : question + " Press " + strengthKeysText() + "; Esc to pick again.");
      return false;
    }
    if (rationaleMissing()) {
      say("Say briefly why in the box first (this project asks for a reason), then press Ctrl+Enter.", true);
      rationale.focus();
      return false;
    }
    setPending(null);
    return true;
  }

  form.addEventListener("submit", function (event) {
    if (submitting) {
      event.preventDefault();
      return;
    }
    var choice = event.submitter ? event.submitter.value : "";
    retireOldNotes();
    if (!ready(choice)) {
      event.preventDefault();
      if (awaitingStrength()) {
        strengths[0].focus();
      }
      return;
    }
    submitting = true;
    say("Sending…");
    stored("clear", draftKey);
  });

  // A strength picked after the side (with a finger or the mouse) sends the choice.
  strengths.forEach(function (input) {
    input.addEventListener("change", function () {
      retireOldNotes();
      var choice = pending;
      if (!choice) {
        say("");
      } else if (ready(choice)) {
        send(choice);
      }
    });
  });

  [skipPanel, flagPanel].forEach(function (panel) {
    var panelForm = panel && panel.querySelector("form");
    if (panelForm) {
      panelForm.addEventListener("submit", function () {
        stored("clear", draftKey);
      });
    }
  });

  // Back from the next page: this copy is stale (lease and idempotency key), so reload it.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload();
    }
  });

  // --- the new-pair cue --------------------------------------------------------------------

  (function announceNewPair() {
    var seenKey = "pickwise:pair-shown:" + form.dataset.project;
    var shown = form.dataset.assignment + (form.dataset.editing === "true" ? ":edit" : "");
    var before = stored("get", seenKey, null, "session");
    stored("set", seenKey, shown, "session");
    if (!cue || before === shown) {
      return;
    }
    var today = document.querySelector("#done-today strong");
    var text = form.dataset.editing === "true"
      ? "Your previous pair is back, to change your choice."
      : "New pair loaded" + (today ? " (" + today.textContent + " done today)" : "") + ".";
    var prompt = document.querySelector(".turns .turn:last-child .md");
    if (prompt && form.dataset.editing !== "true") {
      var words = prompt.textContent.trim().replace(/\s+/g, " ");
      text += " It asks: " + (words.length > 90 ? words.slice(0, 90) + "…" : words);
    }
    document.getElementById("answers").classList.add("arrived");
    // After the page settles, so screen readers notice the change to the live region.
    window.setTimeout(function () {
      cue.textContent = text;
      cue.classList.add("shown");
    }, 300);
  })();

  // --- keys --------------------------------------------------------------------------------

  var isTyping = window.pickwiseKeys.isTyping;

  function openPanel(panel) {
    panel.open = true;
    var first = panel.querySelector("input:not([type=hidden]), textarea, button");
    (first || panel.querySelector("summary")).focus();
  }

  function strengthIndex(key) {
    if (!/^[0-9]$/.test(key)) {
      return -1;
    }
    var index = key === "0" ? 9 : Number(key) - 1;
    return index < strengths.length ? index : -1;
  }

  function pickStrength(key) {
    var index = strengthIndex(key);
    if (index < 0) {
      say("Press " + strengthKeysText() + " for how much better, or Esc to pick again.", true);
      return;
    }
    strengths[index].checked = true;
    var choice = pending;
    if (ready(choice)) {
      send(choice);
    }
  }

  function otherKeysText() {
    return Object.keys(otherKeys)
      .filter(function (key) {
        return form.querySelector('button[value="' + otherKeys[key] + '"]');
      })
      .map(function (key) {
        return key + " for " + (otherKeys[key] === "tie" ? "a tie" : "both are bad");
      })
      .join(", ");
  }

  function onTypingKey(event) {
    if (event.key === "Escape" && event.target === rationale) {
      rationale.blur();
      event.preventDefault();
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target === rationale) {
      event.preventDefault();
      if (!pending) {
        say("Now pick: 1 or 2 for a side" + (otherKeysText() ? ", " + otherKeysText() : "") + ".");
        rationale.blur();
      } else {
        var choice = pending;
        if (ready(choice)) {
          send(choice);
        }
      }
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.isComposing) {
      return;
    }
    var target = event.target;
    var key = event.key;
    if (isTyping(target)) {
      onTypingKey(event);
      return;
    }
    if (event.ctrlKey || event.metaKey) {
      return;
    }
    if (key === "Escape") {
      var closed = false;
      [skipPanel, flagPanel, helpPanel].forEach(function (panel) {
        if (panel && panel.open && panel.contains(target)) {
          panel.open = false;
          panel.querySelector("summary").focus();
          closed = true;
        }
      });
      if (!closed && pending) {
        cancelPending();
      }
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
    if (awaitingStrength() && /^[0-9]$/.test(key)) {
      event.preventDefault();
      pickStrength(key);
    } else if (Object.prototype.hasOwnProperty.call(sideKeys, key)) {
      event.preventDefault();
      retireOldNotes();
      if (ready(sideKeys[key])) {
        send(sideKeys[key]);
      }
    } else if (Object.prototype.hasOwnProperty.call(otherKeys, key)) {
      retireOldNotes();
      if (form.querySelector('button[value="' + otherKeys[key] + '"]') && ready(otherKeys[key])) {
        event.preventDefault();
        send(otherKeys[key]);
      }
    } else if (key === "u" || key === "U") {
      if (undoLink) {
        event.preventDefault();
        undoLink.click();
      } else {
        say("There is no choice of yours left to change: the time for that has passed, or you have made none yet.");
      }
    } else if ((key === "r" || key === "R") && rationale) {
      event.preventDefault();
      rationale.focus();
    } else if ((key === "c" || key === "C") && criteria) {
      event.preventDefault();
      var first = criteria.querySelector("input:checked") || criteria.querySelector("input");
      first.focus();
    } else if ((key === "s" || key === "S") && skipPanel) {
      event.preventDefault();
      openPanel(skipPanel);
    } else if ((key === "f" || key === "F") && flagPanel) {
      event.preventDefault();
      openPanel(flagPanel);
    } else if (key === "?" && helpPanel) {
      event.preventDefault();
      helpPanel.open = !helpPanel.open;
      if (helpPanel.open) {
        helpPanel.querySelector("summary").focus();
      }
    }
  });
})();
