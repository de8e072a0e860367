// The conversation page: replies stream in as they are written, the vote unlocks when both
// are complete, and the pair page's keys choose. Without this script every form still works
// (a message waits for both replies and the page shows them whole).
(function () {
  "use strict";

  var replies = document.getElementById("replies");
  var choiceForm = document.getElementById("choice-form");
  var stopForm = document.getElementById("stop-form");
  var status = document.getElementById("stream-status");
  var helpPanel = document.getElementById("shortcuts");
  var editPanel = document.getElementById("edit-panel");
  var composer = document.getElementById("message");
  var streaming = null;
  var submitting = false;

  // With the script, forms come back at once and the replies stream on the next page.
  Array.prototype.forEach.call(document.querySelectorAll("form[data-converse-form]"), function (form) {
    var wait = form.querySelector('input[name="wait"]');
    if (wait) {
      wait.value = "0";
    }
    form.addEventListener("submit", function (event) {
      if (submitting) {
        event.preventDefault();
        return;
      }
      submitting = true;
    });
  });

  function setVoting(enabled) {
    if (!choiceForm) {
      return;
    }
    Array.prototype.forEach.call(choiceForm.querySelectorAll('button[name="choice"]'), function (button) {
      button.disabled = !enabled;
    });
    var hint = document.getElementById("vote-hint");
    if (hint) {
      hint.textContent = enabled ? "" : "You can choose once both replies are complete.";
    }
  }

  function panel(side) {
    return document.getElementById("reply-" + side);
  }

  function body(side) {
    var section = panel(side);
    return section && section.querySelector(".reply-body");
  }

  function onText(data) {
    var target = body(data.side);
    if (!target) {
      return;
    }
    if (!target.classList.contains("streaming")) {
      target.classList.add("streaming");
      target.textContent = "";
    }
    target.appendChild(document.createTextNode(data.text));
  }

  function onReply(data) {
    var section = panel(data.side);
    if (!section) {
      return;
    }
    section.removeAttribute("aria-busy");
    if (data.status !== "complete") {
      return;
    }
    var target = body(data.side);
    // The server renders and sanitizes the reply, as it does for the page itself.
    target.classList.remove("streaming");
    target.innerHTML = data.html;
    section.classList.remove("reply-generating");
    section.classList.add("reply-complete");
  }

  function onDone(data) {
    streaming = null;
    if (stopForm) {
      stopForm.hidden = true;
    }
    if (!data.can_vote) {
      // A reply failed: the page shows why, with a button to try it again.
      window.location.reload();
      return;
    }
    setVoting(true);
    if (status) {
      status.textContent = "Both replies are complete: pick the better one.";
    }
  }

  function handle(name, payload) {
    var data = JSON.parse(payload);
    if (name === "text") {
      onText(data);
    } else if (name === "reply") {
      onReply(data);
    } else if (name === "done") {
      onDone(data);
    }
  }

  function parse(buffer) {
    // Server-sent events: blocks separated by a blank line, "event:" and "data:" lines.
    var blocks = buffer.split("\n\n");
    var rest = blocks.pop();
    blocks.forEach(function (block) {
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) {
          name = line.slice(6).trim();
        } else if (line.indexOf("data:") === 0) {
          data.push(line.slice(5).replace(/^ /, ""));
        }
      });
      if (data.length) {
        handle(name, data.join("\n"));
      }
    });
    return rest;
  }

  function follow(url) {
    var controller = window.AbortController ? new AbortController() : null;
    streaming = controller || true;
    setVoting(false);
    fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "text/event-stream" },
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (!response.ok || !response.body) {
        throw new Error("stream " + response.status);
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            return;
          }
          buffer = parse(buffer + decoder.decode(chunk.value, { stream: true }));
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      // The stream broke (network, server restart): the page knows where things stand.
      if (streaming) {
        window.setTimeout(function () { window.location.reload(); }, 1500);
      }
    });
  }

  function stopGenerating() {
    if (!streaming || !replies) {
      return false;
    }
    if (status) {
      status.textContent = "Stopping…";
    }
    fetch(replies.dataset.stopUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": replies.dataset.csrf }
    });
    return true;
  }

  if (replies && replies.dataset.streamUrl) {
    follow(replies.dataset.streamUrl);
  }
  if (stopForm) {
    stopForm.addEventListener("submit", function (event) {
      if (stopGenerating()) {
        event.preventDefault();
      }
    });
  }

  if (choiceForm) {
    var message = document.getElementById("choice-message");
    choiceForm.addEventListener("submit", function (event) {
      if (submitting) {
        event.preventDefault();
        return;
      }
      var choice = event.submitter ? event.submitter.value : "";
      var decisive = choice === "left" || choice === "right";
      if (decisive && choiceForm.dataset.needsStrength === "true" &&
          !choiceForm.querySelector('input[name="strength"]:checked')) {
        event.preventDefault();
        message.textContent = "First pick how much better the " + choice + " reply is.";
        choiceForm.querySelector('input[name="strength"]').focus();
        return;
      }
      submitting = true;
    });
  }

  // Ctrl+Enter (or Cmd+Enter) in a text box sends its form.
  Array.prototype.forEach.call(document.querySelectorAll("textarea[data-send-on-ctrl-enter]"), function (box) {
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (box.form.requestSubmit) {
          box.form.requestSubmit();
        } else {
          box.form.submit();
        }
      }
    });
  });

  // Back from another page: this copy is stale (keys and turn), so reload it.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload();
    }
  });

  var choiceKeys = { "1": "left", ArrowLeft: "left", "2": "right", ArrowRight: "right", "3": "tie", "4": "both_bad" };

  var isTyping = window.pickwiseKeys.isTyping;

  function choose(choice) {
    if (!choiceForm) {
      return false;
    }
    var button = choiceForm.querySelector('button[name="choice"][value="' + choice + '"]');
    if (!button || button.disabled) {
      return false;
    }
    if (choiceForm.requestSubmit) {
      choiceForm.requestSubmit(button);
    } else {
      button.click();
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) {
      return;
    }
    var target = event.target;
    var key = event.key;
    if (key === "Escape") {
      var open = [helpPanel, editPanel].filter(function (item) {
        return item && item.open && item.contains(target);
      });
      if (open.length) {
        open[0].open = false;
        open[0].querySelector("summary").focus();
      } else if (stopGenerating()) {
        event.preventDefault();
      }
      return;
    }
    if (isTyping(target)) {
      return;
    }
    if ((key === "ArrowLeft" || key === "ArrowRight") && target.tagName === "INPUT") {
      return;
    }
    if (Object.prototype.hasOwnProperty.call(choiceKeys, key)) {
      if (choose(choiceKeys[key])) {
        event.preventDefault();
      }
    } else if ((key === "e" || key === "E") && editPanel) {
      event.preventDefault();
      editPanel.open = true;
      editPanel.querySelector("textarea").focus();
    } else if ((key === "m" || key === "M") && composer) {
      event.preventDefault();
      composer.focus();
    } else if (key === "?" && helpPanel) {
      event.preventDefault();
      helpPanel.open = !helpPanel.open;
      if (helpPanel.open) {
        helpPanel.querySelector("summary").focus();
      }
    }
  });
})();
