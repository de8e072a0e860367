// What the pages' keyboard shortcuts share (rate.js, converse.js): a key pressed while the
// person is typing into a field is theirs, never a shortcut. Loaded before those scripts.
(function () {
  "use strict";

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

  window.pickwiseKeys = { isTyping: isTyping };
})();
